/*
 * frames.h — the frames a fork-isolation child sends its worker over the
 * result pipe: a type byte, a 32-bit length (host order: same process
 * image), and that many bytes. 'V' handler event (type NUL data), 'R'
 * result, 'X' error, 'S' exit status (decimal). Pure: unit-tested alone
 * (tests/unit/test_frames.c). The child is tenant code: a frame may be
 * anything, and the parser must hold against it.
 */
#ifndef LW_FRAMES_H
#define LW_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define LW_FRAME_HEAD 5

typedef struct lw_frame {
    char type;
    const char *body; /* points into the buffer given */
    size_t len;
} lw_frame;

/* Reads the frame at buf[0..avail): returns the bytes it takes (header and
 * body) with *out filled, 0 when the frame is not complete yet, or -1 when
 * it announces more than max_len bytes (*oversize: how many) -- not what
 * our child code sends, so the caller stops reading and kills the child. */
long lw_frame_next(const char *buf, size_t avail, size_t max_len, lw_frame *out, size_t *oversize);

/* The exit status an 'S' frame's body gives: up to 3 leading digits (an
 * exit status is 0..255), 0 when there are none. */
int lw_frame_status(const lw_frame *f);

/* In a handler child (fork or pool): writes all n bytes of p to fd,
 * retrying EINTR; a write that fails means the worker is gone, and the
 * child _exits(3), having nothing left to report to. Async-signal-safe. */
void lw_frame_write_all(int fd, const void *p, size_t n);
/* The same for the n pieces of iov, in one writev(2) where the pipe takes
 * them all: the frames of one report cost the child one system call and
 * the worker one wake-up. iov is used up (advanced past what was written).
 * Async-signal-safe. */
void lw_frame_writev_all(int fd, struct iovec *iov, int n);
/* The header of a frame of `type` with a body of len bytes, into head
 * (LW_FRAME_HEAD bytes). */
void lw_frame_head(char *head, char type, uint32_t len);

#endif

/*
 * frames.c — parsing the frames of a fork child's result pipe (frames.h).
 */
#include "frames.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

long lw_frame_next(const char *buf, size_t avail, size_t max_len, lw_frame *out, size_t *oversize)
{
    if (avail < LW_FRAME_HEAD)
        return 0;
    uint32_t len;
    memcpy(&len, buf + 1, sizeof len);
    if ((size_t)len > max_len) {
        *oversize = len;
        return -1;
    }
    if (avail < LW_FRAME_HEAD + (size_t)len)
        return 0;
    out->type = buf[0];
    out->body = buf + LW_FRAME_HEAD;
    out->len = len;
    return (long)(LW_FRAME_HEAD + (size_t)len);
}

int lw_frame_status(const lw_frame *f)
{
    int status = 0;
    for (size_t i = 0; i < f->len && i < 3 && f->body[i] >= '0' && f->body[i] <= '9'; i++)
        status = status * 10 + (f->body[i] - '0');
    return status;
}

void lw_frame_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(3); /* the worker is gone: nothing left to report to */
        c += w;
        n -= (size_t)w;
    }
}

void lw_frame_writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(3);
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
}

void lw_frame_head(char *head, char type, uint32_t len)
{
    head[0] = type;
    memcpy(head + 1, &len, sizeof len);
}

/*
 * child.h — what the fork and exec runners share: reading a child's pipe
 * into memory on the loop, killing a process group with a grace period,
 * and collecting exit statuses on SIGCHLD.
 *
 * Every attempt child is the leader of its own process group (setpgid in the
 * child), so stopping an attempt stops everything it started.
 */
#ifndef LW_CHILD_H
#define LW_CHILD_H

#include <stddef.h>
#include <sys/types.h>

#include "attempt.h"

struct event_base;
struct event;

/* Grace between SIGTERM and SIGKILL when stopping an attempt. */
#define KILL_GRACE_MS 3000

typedef struct fdreader {
    int fd;               /* -1 once at EOF (closed) */
    struct event *ev;
    char *buf;            /* owned; what was read */
    size_t len, cap;
    size_t keep;          /* >0: keep only the last `keep` bytes (stderr tail) */
    size_t limit;         /* >0: stop storing beyond this many bytes */
    int truncated;        /* bytes were dropped because of keep/limit */
    void (*on_data)(struct fdreader *r, void *ud); /* after each read, may be NULL */
    void (*on_eof)(struct fdreader *r, void *ud);
    void *ud;
} fdreader;

/* Starts reading fd (non-blocking is set here). Returns 0 or -1. */
int fdreader_start(fdreader *r, struct event_base *base, int fd, void *ud);
/* Stops and closes the fd (if still open) and frees the buffer. */
void fdreader_close(fdreader *r);

/* Sends `sig` to the attempt's process group. */
void child_signal(attempt *a, int sig);
/* SIGTERM now, SIGKILL after KILL_GRACE_MS (immediately when `now`). Uses
 * a->timer. */
void child_stop(attempt *a, int immediately);

/* Resets, in a freshly forked child, every signal disposition the worker
 * changed (libevent's handlers would write into the parent's loop) and
 * unblocks all signals. Async-signal-safe. */
void child_reset_signals(void);

/* Collects every exited child and tells its runner (fork/exec). Called on
 * SIGCHLD. */
struct worker;
void children_reap(struct worker *w);

#endif

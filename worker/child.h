/*
 * child.h — what the fork and exec runners share: forking without letting a
 * signal reach the worker's handlers in the child, reading a child's pipe
 * into memory on the loop, stopping a process group with a grace period,
 * collecting exactly the children the worker started, and killing what an
 * attempt left behind.
 *
 * Every attempt child is the leader of its own process group (setpgid in
 * both parent and child), so stopping an attempt stops everything it
 * started; when the leader exits, what is left of its group is killed
 * before the leader is reaped (the zombie keeps the group id from being
 * reused meanwhile). It also gives up the worker's controlling terminal
 * (TIOCNOTTY), so tenant code cannot take the terminal from the worker
 * (tcsetpgrp) or get its job-control signals. A group and no session on
 * purpose: setsid() would also put every attempt in a scheduler autogroup
 * of its own -- a task group created per fork (tens of microseconds and a
 * context switch each), and each attempt weighing as much as a whole login
 * session against Redis and everything else on the machine. The worker
 * is a child subreaper
 * (PR_SET_CHILD_SUBREAPER), so processes that left an attempt's group
 * (setsid) and were orphaned come to it: the sweep kills those whose
 * LANEWORK_JOB_ID names no attempt running here and reaps them.
 */
#ifndef LW_CHILD_H
#define LW_CHILD_H

#include <stddef.h>
#include <sys/types.h>

#include "state.h"

struct event_base;
struct event;

typedef struct fdreader {
    int fd; /* -1 once at EOF (closed) */
    struct event *ev;
    char *buf; /* owned; what was read */
    size_t len, cap;
    size_t keep;   /* >0: keep only the last `keep` bytes (stderr tail) */
    size_t limit;  /* >0: stop storing beyond this many bytes */
    int truncated; /* bytes were dropped because of keep/limit */
    void (*on_data)(struct fdreader *r, void *ud); /* after each read, may be NULL */
    void (*on_eof)(struct fdreader *r, void *ud);
    void *ud;
} fdreader;

/* Starts reading fd (non-blocking is set here). Returns 0 or -1. */
int fdreader_start(fdreader *r, struct event_base *base, int fd, void *ud);
/* Stops and closes the fd (if still open) and frees the buffer. */
void fdreader_close(fdreader *r);

/* sigfork() for an attempt: the child leads a process group of its own
 * (set on both sides, so that signalling the group works as soon as this
 * returns) and has no controlling terminal (w->tty_fd, which the child
 * closes). Used by the fork and exec runners. */
struct worker;
pid_t child_fork_attempt(struct worker *w);
/* Sends `sig` to the attempt's process group. */
void child_signal(attempt *a, int sig);
/* Stops the attempt's processes: SIGKILL now when `immediately`, when its
 * group is frozen (it could not act on SIGTERM without being thawed, and
 * its lease is unproven), or for a lost lease; else SIGTERM now and
 * SIGKILL after KILL_GRACE_MS (a->timer). */
void child_stop(attempt *a, int immediately);
/* SIGKILL to the attempt's process group (its grace ran out). */
void child_kill(attempt *a);

/* 1 when `pid` (one of our children) has exited; it stays a zombie, to be
 * reaped by child_reap_leader. Never waitpid(-1): in thread isolation
 * modules start and wait for children of their own. */
int child_exited(pid_t pid);
/* The leader of a's group exited (its zombie is still there): kills what
 * is left of its group now, while the zombie keeps the group id from being
 * reused, then reaps it (a->reaped, a->exit_status). Telling the runner is
 * the caller's (dispatch_reap). */
void child_reap_leader(struct worker *w, attempt *a);
/* Kills and reaps processes an attempt left behind (see above); cheap to
 * call often: it scans at most every 200 ms, and only after a process
 * attempt ended. */
void children_sweep(struct worker *w, int64_t now);

#endif

/*
 * spool_io.h — spool file I/O off the event loop.
 *
 * Reading, fsyncing and renaming job.json files can take as long as the
 * disk wants (a flush behind a busy journal, a slow network file system);
 * the loop must not wait for that. A task's `work` runs on one of a few
 * I/O threads; its `done` runs afterwards on the loop thread, woken by an
 * eventfd (close-on-exec). Urgent tasks (an attempt's status writes) are
 * taken before scans.
 *
 * Rules for `work`: file system calls and memory only -- no logging, no
 * worker, tenant or attempt state, no lock other than what libc takes. A
 * fork child (made on the loop thread, at any moment of an I/O thread's
 * work) then never meets a lock an I/O thread held: the child calls
 * nothing of this file, and libc's own locks (malloc, the stdio list) are
 * reset by fork.
 */
#ifndef LW_SPOOL_IO_H
#define LW_SPOOL_IO_H

struct event_base;

typedef struct spool_io_task {
    /* On an I/O thread. */
    void (*work)(struct spool_io_task *task);
    /* On the loop thread, once `work` returned; `discarded`: the worker is
     * exiting and work may not have run -- free the task, touch nothing
     * else. Frees the task in both cases. */
    void (*done)(struct spool_io_task *task, int discarded);
    struct spool_io_task *next;
} spool_io_task;

typedef struct spool_io spool_io;

/* Returns NULL on OOM. Threads start with the first task. */
spool_io *spool_io_new(struct event_base *base);
/* Queues `task`; its `done` will run from the loop, never inside this
 * call (so the caller may go on using what the task points to). When no
 * thread can be started the work runs here, on the loop, as before. */
void spool_io_submit(spool_io *io, spool_io_task *task, int urgent);
/* Stops the threads (waiting at most wait_ms for a task in progress) and
 * discards what is left. A thread stuck in the file system is left behind
 * with its task (the process is exiting). */
void spool_io_free(spool_io *io, int wait_ms);

#endif

/*
 * spool_io.c — the spool I/O threads (spool_io.h).
 *
 * Two FIFOs, urgent (status writes an attempt waits for) before the rest
 * (scans); one list of finished tasks, drained by the loop in one go after
 * one eventfd write (written only when that list was empty).
 */
#include "spool_io.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"

/* A few: fsyncs of different files proceed in parallel (and journals batch
 * them). Scans may take only SCAN_THREADS of them: the rest is kept for the
 * status writes attempts wait for, so no scan -- however big a spool a
 * tenant keeps -- delays another tenant's attempts (a done write that waits
 * past the lease would let the reaper run the job a second time). */
#define IO_THREADS 4
#define SCAN_THREADS 2

typedef struct fifo {
    spool_io_task *head, **tail;
} fifo;

struct spool_io {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fifo urgent, scans, done;
    int working;  /* threads inside a task's work */
    int scanning; /* of them, on a scan */
    int stopping;
    int efd;
    struct event *ev;
    pthread_t threads[IO_THREADS];
    int nthreads;
    int started; /* thread creation was tried */
};

static void fifo_init(fifo *f)
{
    f->head = NULL;
    f->tail = &f->head;
}

static void fifo_push(fifo *f, spool_io_task *t)
{
    t->next = NULL;
    *f->tail = t;
    f->tail = &t->next;
}

static spool_io_task *fifo_pop(fifo *f)
{
    spool_io_task *t = f->head;
    if (t && !(f->head = t->next))
        f->tail = &f->head;
    return t;
}

static spool_io_task *fifo_take_all(fifo *f)
{
    spool_io_task *t = f->head;
    fifo_init(f);
    return t;
}

/* Under mu: a finished task for the loop; 1 when the loop must be woken. */
static int post_done(spool_io *io, spool_io_task *t)
{
    int was_empty = io->done.head == NULL;
    fifo_push(&io->done, t);
    return was_empty;
}

static void wake_loop(spool_io *io)
{
    uint64_t one = 1;
    (void)!write(io->efd, &one, sizeof one);
}

static void *io_main(void *arg)
{
    spool_io *io = arg;
    pthread_mutex_lock(&io->mu);
    for (;;) {
        while (!io->urgent.head && !(io->scans.head && io->scanning < SCAN_THREADS) &&
               !io->stopping)
            pthread_cond_wait(&io->cv, &io->mu);
        if (io->stopping)
            break;
        spool_io_task *t = fifo_pop(&io->urgent);
        int scan = !t;
        if (scan)
            t = fifo_pop(&io->scans);
        io->working++;
        io->scanning += scan;
        pthread_mutex_unlock(&io->mu);
        t->work(t);
        pthread_mutex_lock(&io->mu);
        io->working--;
        io->scanning -= scan;
        /* A scan slot is free: a thread waiting for one may take it. */
        if (scan && io->scans.head)
            pthread_cond_signal(&io->cv);
        int wake = post_done(io, t);
        if (wake) {
            pthread_mutex_unlock(&io->mu);
            wake_loop(io);
            pthread_mutex_lock(&io->mu);
        }
    }
    pthread_mutex_unlock(&io->mu);
    return NULL;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    spool_io *io = arg;
    uint64_t n;
    (void)!read(fd, &n, sizeof n);
    pthread_mutex_lock(&io->mu);
    spool_io_task *t = fifo_take_all(&io->done);
    pthread_mutex_unlock(&io->mu);
    while (t) {
        spool_io_task *next = t->next;
        t->done(t, 0);
        t = next;
    }
}

spool_io *spool_io_new(struct event_base *base)
{
    spool_io *io = calloc(1, sizeof *io);
    if (!io)
        return NULL;
    fifo_init(&io->urgent);
    fifo_init(&io->scans);
    fifo_init(&io->done);
    pthread_mutex_init(&io->mu, NULL);
    pthread_cond_init(&io->cv, NULL);
    io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (io->efd < 0 || !(io->ev = event_new(base, io->efd, EV_READ | EV_PERSIST, done_cb, io)) ||
        event_add(io->ev, NULL)) {
        if (io->ev)
            event_free(io->ev);
        if (io->efd >= 0)
            close(io->efd);
        pthread_mutex_destroy(&io->mu);
        pthread_cond_destroy(&io->cv);
        free(io);
        return NULL;
    }
    return io;
}

/* The threads take no signals: they all go to the loop thread, and an
 * fsync is not cut short by the worker's. */
static void start_threads(spool_io *io)
{
    io->started = 1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (io->nthreads < IO_THREADS &&
           pthread_create(&io->threads[io->nthreads], NULL, io_main, io) == 0)
        io->nthreads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void spool_io_submit(spool_io *io, spool_io_task *task, int urgent)
{
    if (!io->started)
        start_threads(io);
    if (io->nthreads == 0) {
        /* No thread to be had: do it here, but still answer from the loop. */
        task->work(task);
        pthread_mutex_lock(&io->mu);
        int wake = post_done(io, task);
        pthread_mutex_unlock(&io->mu);
        if (wake)
            wake_loop(io);
        return;
    }
    pthread_mutex_lock(&io->mu);
    fifo_push(urgent ? &io->urgent : &io->scans, task);
    pthread_cond_signal(&io->cv);
    pthread_mutex_unlock(&io->mu);
}

static void discard(spool_io_task *t)
{
    while (t) {
        spool_io_task *next = t->next;
        t->done(t, 1);
        t = next;
    }
}

void spool_io_free(spool_io *io, int wait_ms)
{
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    io->stopping = 1;
    pthread_cond_broadcast(&io->cv);
    pthread_mutex_unlock(&io->mu);
    int64_t deadline = lw_mono_ms() + wait_ms;
    for (;;) {
        pthread_mutex_lock(&io->mu);
        int working = io->working;
        pthread_mutex_unlock(&io->mu);
        if (!working)
            break;
        if (lw_mono_ms() >= deadline) {
            /* A thread stuck in the file system: it still owns its task
             * and this structure. */
            for (int i = 0; i < io->nthreads; i++)
                pthread_detach(io->threads[i]);
            event_free(io->ev);
            return;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < io->nthreads; i++)
        pthread_join(io->threads[i], NULL);
    discard(fifo_take_all(&io->done));
    discard(fifo_take_all(&io->urgent));
    discard(fifo_take_all(&io->scans));
    event_free(io->ev);
    close(io->efd);
    pthread_mutex_destroy(&io->mu);
    pthread_cond_destroy(&io->cv);
    free(io);
}

/*
 * run_thread.c — module handlers on a pool of threads (--isolation thread).
 *
 * The loop thread pushes attempts into `todo`; a pool thread runs handle()
 * and pushes a message into `done`: either a handler event or the end of the
 * attempt, in the order they happened, so a job's step events always precede
 * its outcome. One eventfd write wakes the loop for a whole burst of
 * messages (written only when `done` was empty).
 *
 * Limit (documented in README): a thread cannot be killed. A handler that
 * ignores lw_job_cancelled() past its timeout + grace is abandoned: its
 * attempt is recorded as failed, the thread stays busy (and keeps its slot)
 * until the handler returns.
 */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "run_thread.h"

#include "attempt.h"
#include "log.h"
#include "module_host.h"
#include "outcome.h"
#include "timefmt.h"

typedef struct msg {
    attempt *a;
    char *type; /* handler event type; NULL: the attempt ended */
    char *data;
    struct msg *next;
} msg;

struct thread_pool {
    worker *w;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    attempt **todo; /* ring buffer of nthreads entries */
    size_t head, count, cap;
    msg *done_head, **done_tail;
    int efd;
    struct event *ev;
    pthread_t *threads;
    int nthreads;
    int busy; /* threads inside a handler */
    int stopping;
};

/* Appends m to `done`; the caller holds p->mu. Returns 1 when `done` was
 * empty: the caller then wakes the loop (wake_loop), after unlocking. */
static int post_locked(struct thread_pool *p, msg *m)
{
    int was_empty = p->done_head == NULL;
    *p->done_tail = m;
    p->done_tail = &m->next;
    return was_empty;
}

static void wake_loop(struct thread_pool *p)
{
    uint64_t one = 1;
    (void)!write(p->efd, &one, sizeof one);
}

static void post(struct thread_pool *p, msg *m)
{
    pthread_mutex_lock(&p->mu);
    int was_empty = post_locked(p, m);
    pthread_mutex_unlock(&p->mu);
    if (was_empty)
        wake_loop(p);
}

static void thread_emit(lw_job *job, const char *type, const char *data)
{
    msg *m = calloc(1, sizeof *m);
    if (!m)
        return;
    m->a = job;
    m->type = strdup(type);
    m->data = data ? strdup(data) : NULL;
    if (!m->type || (data && !m->data)) {
        free(m->type), free(m->data), free(m);
        return;
    }
    post(job->tenant->w->pool, m);
}

/* One lock per attempt in the steady state: the end of one attempt, the
 * thread's return to idle and the taking of the next queued attempt share a
 * critical section. With a thread per slot on few cores, every extra lock
 * round was a futex wait and a context switch per job (perf: most of a
 * no-op drain's worker CPU was the kernel scheduling these threads). */
static void *thread_main(void *arg)
{
    struct thread_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->count == 0) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        attempt *a = p->todo[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->busy++;
        pthread_mutex_unlock(&p->mu);

        module_binding *mb = a->tenant->mod;
        msg *m = a->runner_state; /* the end's message, made at submit */
        a->runner_state = NULL;
        a->status = mb->mod->handle(mb->state, a);

        /* Posted before the thread counts as idle: pool_free must not
         * join a thread that still has an end to report. */
        m->a = a;
        pthread_mutex_lock(&p->mu);
        if (post_locked(p, m)) {
            /* The loop's wake-up is a system call: not under the lock, but
             * still counted busy, so pool_free closes no eventfd this
             * thread is about to write. */
            pthread_mutex_unlock(&p->mu);
            wake_loop(p);
            pthread_mutex_lock(&p->mu);
        }
        p->busy--;
    }
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct thread_pool *p = arg;
    uint64_t n;
    (void)!read(fd, &n, sizeof n);
    pthread_mutex_lock(&p->mu);
    msg *m = p->done_head;
    p->done_head = NULL;
    p->done_tail = &p->done_head;
    pthread_mutex_unlock(&p->mu);
    while (m) {
        msg *next = m->next;
        attempt *a = m->a;
        if (m->type) {
            if (a->phase != PHASE_ABANDONED)
                outcome_event(a, m->type, m->data);
        } else if (a->phase == PHASE_ABANDONED) {
            /* Its outcome was recorded when we gave up on it; the slot is
             * free only now. */
            lw_log_about(LW_LOG_WARN, "job.abandoned_returned", attempt_facts(a, 1),
                         "the handler returned %.1f s after its attempt was abandoned",
                         (double)(lw_mono_ms() - a->started_mono) / 1000.0);
            outcome_release_abandoned(a);
        } else {
            end_kind how = attempt_end_kind(a, a->status);
            outcome_finished(a, how, how == END_OK ? a->result : a->error);
        }
        free(m->type);
        free(m->data);
        free(m);
        m = next;
    }
}

static void pool_free(struct thread_pool *p, int wait_ms);

static struct thread_pool *pool_new(worker *w, int nthreads)
{
    struct thread_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->w = w;
    p->efd = -1;
    p->cap = (size_t)nthreads;
    p->done_tail = &p->done_head;
    p->todo = calloc(p->cap, sizeof *p->todo);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->todo || !p->threads)
        goto fail;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0)
        goto fail;
    p->ev = event_new(w->base, p->efd, EV_READ | EV_PERSIST, done_cb, p);
    if (!p->ev || event_add(p->ev, NULL))
        goto fail;
    /* Handler threads take no signals: they all go to the loop thread,
     * and a handler's system calls are not interrupted by the worker's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, thread_main, p))
            break;
        p->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->nthreads < nthreads)
        goto fail;
    return p;
fail:
    pool_free(p, 0);
    return NULL;
}

/* Queues `a` for a thread. Its end's message is allocated here, on the
 * loop thread, where a failure hands the job back (ENOMEM): a handler
 * that returned must never wait for memory to report it. */
static int pool_submit(struct thread_pool *p, attempt *a)
{
    msg *end = calloc(1, sizeof *end);
    if (!end) {
        errno = ENOMEM;
        return -1;
    }
    a->runner_state = end;
    a->emit = thread_emit;
    pthread_mutex_lock(&p->mu);
    /* The worker never runs more attempts than it has slots, and there are
     * as many ring entries as slots. */
    p->todo[(p->head + p->count) % p->cap] = a;
    p->count++;
    pthread_mutex_unlock(&p->mu);
    /* Signalled after unlocking, so the thread woken does not at once block
     * on the mutex this thread still holds (no lost wake-up: a thread
     * checks `count` under the mutex before it waits). */
    pthread_cond_signal(&p->cv);
    return 0;
}

/* Joins the threads; threads still inside a handler are waited for at most
 * `wait_ms`, then left behind (the process is exiting). */
static void pool_free(struct thread_pool *p, int wait_ms)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    int64_t deadline = lw_mono_ms() + wait_ms;
    int stuck = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int busy = p->busy;
        pthread_mutex_unlock(&p->mu);
        if (busy == 0)
            break;
        if (lw_mono_ms() >= deadline) {
            stuck = 1;
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (stuck) {
        /* A handler that never returns: joining would hang the exit. Its
         * job was handed back or recorded already. */
        lw_log(LW_LOG_WARN, "pool.stuck",
               "%d handler thread(s) did not return; exiting without them", p->busy);
        for (int i = 0; i < p->nthreads; i++)
            pthread_detach(p->threads[i]);
    } else {
        for (int i = 0; i < p->nthreads; i++)
            pthread_join(p->threads[i], NULL);
        msg *m = p->done_head;
        while (m) {
            msg *next = m->next;
            free(m->type), free(m->data), free(m);
            m = next;
        }
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    if (p->ev)
        event_free(p->ev);
    if (p->efd >= 0)
        close(p->efd);
    if (!stuck) {
        free(p->todo);
        free(p->threads);
        free(p);
    }
}

/* ---- the runner ---- */

static int handles(const attempt *a)
{
    const tenant *t = a->tenant;
    return t->w->opt->isolation == ISOLATION_THREAD && module_handles(t->mod, a->kind);
}

static int open_pool(worker *w, char *err, size_t errlen)
{
    if (w->opt->isolation != ISOLATION_THREAD)
        return 0;
    if ((w->pool = pool_new(w, w->opt->concurrency)))
        return 0;
    snprintf(err, errlen, "cannot start %d handler threads", w->opt->concurrency);
    return -1;
}

static void close_pool(worker *w)
{
    pool_free(w->pool, 2000);
    w->pool = NULL;
}

static int start(attempt *a) { return pool_submit(a->tenant->w->pool, a); }

/* The flag is what the handler polls; the grace timer decides when we stop
 * waiting for it -- except for a fence request, which keeps the timeout
 * running and is never given up on. */
static void stop(attempt *a, int now)
{
    if (now) {
        if (a->phase != PHASE_ABANDONED)
            outcome_abandon(a, END_RETRY, NULL);
    } else if (attempt_stop_reason(a) != STOP_FENCE) {
        attempt_arm_grace(a);
    }
}

static void grace_over(attempt *a)
{
    if (a->phase == PHASE_ABANDONED)
        return;
    stop_reason why = attempt_stop_reason(a);
    lw_log_about(
        LW_LOG_ERROR, "job.abandoned", attempt_facts(a, 1),
        "the handler ignores its stop request; abandoning the attempt (its thread stays busy until it returns)");
    outcome_abandon(a, END_RETRY,
                    why == STOP_TIMEOUT
                        ? "timed out; the handler did not stop (thread isolation cannot kill it)"
                        : NULL);
}

/* A forced exit: the end message of an attempt no thread took (pool_free
 * ran first: the threads are joined, or stuck inside handlers that took
 * theirs). */
static void release(attempt *a)
{
    free(a->runner_state);
    a->runner_state = NULL;
}

const runner run_thread_runner = {
    .name = "thread",
    .in_process = 1,
    .handles = handles,
    .open = open_pool,
    .start = start,
    .stop = stop,
    .grace_over = grace_over,
    .release = release,
    .close = close_pool,
};

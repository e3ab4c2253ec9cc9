/*
 * dispatch.c — starting an attempt with the right runner, its timeout, and
 * stopping it on request.
 *
 * Handler lookup for kind K of tenant T: the registry's `exec` entry for K,
 * else T's module if it handles K, else the job fails with "no handler for
 * kind K" (not retried: another attempt would not find one either).
 */
#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"

#include <sys/wait.h>

#include "attempt.h"
#include "child.h"
#include "fence.h"
#include "log.h"
#include "outcome.h"
#include "runners.h"
#include "slots.h"
#include "spool.h"
#include "spool_io.h"
#include "timefmt.h"

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    attempt *a = arg;
    worker *w = a->tenant->w;
    /* Its outcome is recorded; only its thread's return is awaited. (A
     * second signal may abandon it while its grace runs.) */
    if (a->phase == PHASE_ABANDONED)
        return;
    if (a->phase != PHASE_GRACE) {
        /* Time spent frozen (fence.h) moved the timeout later; a frozen
         * attempt is not stopped for a timeout it could not use. */
        int64_t now = lw_mono_ms();
        if (now < a->timeout_at ||
            (a->slot >= 0 && w->fence && a->pid > 0 && fence_frozen(w->fence, a->slot))) {
            attempt_arm_timer(a, now < a->timeout_at ? a->timeout_at - now : 1000);
            return;
        }
        lw_log_about(LW_LOG_WARN, "job.timeout", attempt_facts(a, 1),
                     "timed out after %.3g s; stopping it", (double)a->timeout_ms / 1000.0);
        dispatch_stop(a, STOP_TIMEOUT);
        return;
    }
    /* The grace after a stop request is over. */
    if (a->runner)
        a->runner->grace_over(a);
}

void dispatch_stop(attempt *a, stop_reason why)
{
    worker *w = a->tenant->w;
    int now = why == STOP_HANDBACK && w->state == W_HANDBACK && w->handback_immediate;
    const runner *r = a->runner; /* NULL: not started yet (a spool mark) */
    if (!attempt_request_stop(a, why)) {
        /* Already stopping; a second signal makes it immediate, and a lost
         * lease makes a process immediate whatever was asked before:
         * another worker may run the job already. */
        if (r && (now || (why == STOP_LOST && !r->in_process)))
            r->stop(a, 1);
        return;
    }
    if (r)
        r->stop(a, now);
}

/* Thread attempts cannot be frozen: at their freeze point the handler is
 * asked to stop (lw_job_cancelled), and the job is handed back unless it
 * succeeds (outcome.c). Process attempts are frozen by the fence itself. */
void dispatch_fence_threads(worker *w, int64_t now)
{
    for (attempt *a = w->running; a; a = a->next) {
        if (!a->runner || !a->runner->in_process || a->phase == PHASE_ABANDONED ||
            now < attempt_freeze_at(a))
            continue;
        if (attempt_stop_reason(a) != STOP_NONE)
            continue;
        lw_log_about(
            LW_LOG_WARN, "lease.fenced", attempt_facts(a, 1),
            "its lease could not be renewed for 0.65 of --lease; asking the handler to stop (thread isolation cannot pause it)");
        dispatch_stop(a, STOP_FENCE);
    }
}

/* A spooled job's file says how far it got: "done" means it ran already
 * (the worker died between the file and Redis) and must not run again.
 * Runs on a spool I/O thread (spool_io.h): only the file system. Returns 1
 * (done), 0 (now marked processing, on disk) or -1 with why. */
static int spool_check(const char *job_dir, char *why, size_t whylen, int *err_no)
{
    char *copy1 = strdup(job_dir), *copy2 = strdup(job_dir);
    int rc = -1;
    if (!copy1 || !copy2) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    const char *spool = dirname(copy1), *entry = basename(copy2);
    lw_spool_job sj;
    memset(&sj, 0, sizeof sj);
    char err[512];
    if (lw_spool_read(spool, entry, LW_SPOOL_FILE_MAX, &sj, err, sizeof err)) {
        snprintf(why, whylen, "spool %s: %s", job_dir, err);
        goto out;
    }
    if (!strcmp(sj.status, "done")) {
        rc = 1;
    } else if (lw_spool_set_status(job_dir, "processing", NULL, err, sizeof err)) {
        int e = errno;
        snprintf(why, whylen, "spool %s: cannot mark processing: %s", job_dir, err);
        /* The disk, not the job: hand it back (no attempt spent) rather
         * than fail a job that never ran. */
        if (e == ENOSPC || e == EDQUOT || e == EROFS || e == EIO || e == EMFILE || e == ENFILE ||
            e == ENOMEM) {
            *err_no = e;
            rc = -2;
        }
    } else {
        rc = 0;
    }
    lw_spool_job_clear(&sj);
out:
    free(copy1);
    free(copy2);
    return rc;
}

/* The start of a spooled attempt: job.json checked and marked processing
 * off the loop; the attempt waits in the running list (no runner yet, its slot
 * held, its lease renewed) until the mark is on disk. */
typedef struct mark_task {
    spool_io_task io;
    attempt *a;    /* borrowed: nothing ends an attempt without a runner but mark_done */
    char *job_dir; /* owned copy: the thread touches no attempt */
    int rc;
    int err_no; /* rc -2: the write's errno */
    char why[700];
} mark_task;

static void start_handler(attempt *a);
static void resource_handback(attempt *a, int e);

static void mark_work(spool_io_task *task)
{
    mark_task *m = (mark_task *)task;
    m->rc = spool_check(m->job_dir, m->why, sizeof m->why, &m->err_no);
}

static void mark_done(spool_io_task *task, int discarded)
{
    mark_task *m = (mark_task *)task;
    attempt *a = m->a;
    int rc = m->rc, e = m->err_no;
    char why[700];
    snprintf(why, sizeof why, "%s", m->why);
    free(m->job_dir);
    free(m);
    if (discarded)
        return;
    if (rc == -2) {
        lw_log_about(LW_LOG_ERROR, "spool.write", attempt_facts(a, 0), "%s", why);
        resource_handback(a, e);
    } else if (rc < 0) {
        outcome_finished(a, END_FAIL, why);
    } else if (rc == 1) {
        lw_log_about(LW_LOG_INFO, "spool.done", attempt_facts(a, 0),
                     "%s/job.json says done; not run again", a->spool_dir);
        outcome_finished(a, END_OK, NULL);
    } else if (attempt_stop_reason(a) != STOP_NONE) {
        /* Cancelled, handed back or its lease lost while the mark was
         * being written: the reason decides the record (outcome.c). */
        outcome_finished(a, END_RETRY, NULL);
    } else {
        start_handler(a);
    }
}

/* Errors that say "not now" about the worker, not the job: no attempt is
 * charged for them. */
static int resource_errno(int e)
{
    return e == EMFILE || e == ENFILE || e == EAGAIN || e == ENOMEM || e == ENOSPC;
}

/* The handler could not start for want of resources: hand the job back
 * (no attempt counted) and pause claims briefly, so the worker does not
 * claim and hand back in a loop while fds or processes are short. */
static void resource_handback(attempt *a, int e)
{
    worker *w = a->tenant->w;
    char why[300];
    snprintf(why, sizeof why, "the worker could not start the handler (%s); handed back",
             strerror(e));
    lw_log_about(lw_log_gate_level(&w->resource_gate, strerror(e), LW_LOG_ERROR, 60000),
                 "worker.resources", attempt_facts(a, 0),
                 "cannot start the handler: %s; handing it back and pausing claims for 1 s",
                 strerror(e));
    w->claim_pause_until = lw_mono_ms() + 1000;
    attempt_request_stop(a, STOP_RESOURCE);
    outcome_finished(a, END_RETRY, why);
}

void dispatch_attempt(attempt *a)
{
    tenant *t = a->tenant;
    worker *w = t->w;

    a->started_mono = lw_mono_ms();
    a->runner = NULL;
    a->prev = NULL;
    a->next = w->running;
    if (w->running)
        w->running->prev = a;
    w->running = a;
    w->nrunning++;
    t->running++;
    if (w->nfree == 0) {
        /* Claims never ask for more than the free slots: a broken count. */
        lw_log_about(LW_LOG_ERROR, "worker.bug", attempt_facts(a, 0),
                     "no free slot for it (running %d of %d); handing it back", w->nrunning,
                     w->opt->concurrency);
        attempt_request_stop(a, STOP_RESOURCE);
        outcome_finished(a, END_RETRY, "no free slot in the worker; handed back");
        return;
    }
    slots_take(w, a);

    /* The timer exists before anything starts: without it a timeout, and
     * the SIGKILL after a stop's grace, could never fire. */
    if (!(a->timer = evtimer_new(w->base, timer_cb, a))) {
        resource_handback(a, ENOMEM);
        return;
    }

    if (a->spool_dir) {
        mark_task *m = calloc(1, sizeof *m);
        if (!m || !(m->job_dir = strdup(a->spool_dir))) {
            free(m);
            resource_handback(a, ENOMEM);
            return;
        }
        m->io.work = mark_work;
        m->io.done = mark_done;
        m->a = a;
        spool_io_submit(w->spool_io, &m->io, 1);
        return;
    }
    start_handler(a);
}

/* Starts the handler of an attempt that holds its slot and timer (and,
 * when spooled, whose job.json says processing on disk). */
static void start_handler(attempt *a)
{
    worker *w = a->tenant->w;
    char why[700];

    const runner *r = runners_find(a);
    if (!r) {
        snprintf(why, sizeof why, "no handler for kind %s", a->kind);
        outcome_finished(a, END_FAIL, why);
        return;
    }
    int rc = r->start(a);
    if (rc) {
        int e = errno;
        if (resource_errno(e)) {
            resource_handback(a, e);
            return;
        }
        snprintf(why, sizeof why, "cannot start the handler: %s", strerror(e));
        outcome_finished(a, END_RETRY, why);
        return;
    }
    a->runner = r;
    attempt_set_phase(a, PHASE_RUNNING);
    if (a->pid > 0 && w->fence)
        fence_arm(w->fence, a->slot, a->pid, attempt_freeze_at(a));
    if (a->timeout_ms > 0) {
        /* From the handler's start: a slow spool mark is not its time. */
        a->timeout_at = lw_mono_ms() + a->timeout_ms;
        attempt_arm_timer(a, a->timeout_ms);
    }
}

void dispatch_reap(worker *w)
{
    int any = 0;
    for (attempt *a = w->running, *next; a; a = next) {
        next = a->next; /* the runner may end (and free) a */
        if (a->pid <= 0 || a->reaped || !child_exited(a->pid))
            continue;
        any = 1;
        child_reap_leader(w, a);
        if (a->runner && a->runner->reaped)
            a->runner->reaped(a);
    }
    pid_t keeper = fence_keeper_pid(w->fence);
    int status;
    if (keeper > 0 && waitpid(keeper, &status, WNOHANG) == keeper) {
        any = 1;
        fence_keeper_exited(w->fence, keeper, status);
    }
    /* A SIGCHLD for none of ours: an orphan that came to us died. */
    if (!any)
        w->sweep_wanted = 1;
}

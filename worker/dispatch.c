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

#include "child.h"
#include "log.h"
#include "outcome.h"
#include "runners.h"
#include "spool.h"
#include "timefmt.h"
#include "worker.h"

#define SPOOL_FILE_MAX (16 * 1024 * 1024)

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    attempt *a = arg;
    if (!a->timer_grace) {
        lw_log(LW_LOG_WARN, "job.timeout", "job %s kind=%s: timed out after %.3g s; stopping it",
               a->id, a->kind, (double)a->timeout_ms / 1000.0);
        dispatch_stop(a, STOP_TIMEOUT);
        return;
    }
    /* The grace after a stop request is over. */
    if (a->run == RUN_MODULE_THREAD) {
        if (a->timed_out_hard) return;
        stop_reason why = attempt_stop_reason(a);
        lw_log(LW_LOG_ERROR, "job.abandoned",
               "job %s: the handler ignores its stop request; abandoning the attempt (its thread stays busy until it returns)",
               a->id);
        attempt_abandon(a, END_RETRY,
                        why == STOP_TIMEOUT ? "timed out; the handler did not stop (thread isolation cannot kill it)" : NULL);
    } else {
        child_signal(a, SIGKILL);
    }
}

void attempt_arm_grace(attempt *a)
{
    if (!a->timer) return;
    a->timer_grace = 1;
    struct timeval tv = {KILL_GRACE_MS / 1000, (KILL_GRACE_MS % 1000) * 1000};
    evtimer_add(a->timer, &tv);
}

void dispatch_stop(attempt *a, stop_reason why)
{
    worker *w = a->tenant->w;
    int now = why == STOP_HANDBACK && w->state == W_HANDBACK && w->handback_immediate;
    if (!attempt_request_stop(a, why)) {
        /* Already stopping; a second signal makes it immediate. */
        if (now) {
            if (a->run == RUN_MODULE_THREAD) {
                if (!a->timed_out_hard) attempt_abandon(a, END_RETRY, NULL);
            } else {
                child_stop(a, 1);
            }
        }
        return;
    }
    switch (a->run) {
    case RUN_MODULE_FORK:
    case RUN_EXEC:
        child_stop(a, now);
        break;
    case RUN_MODULE_THREAD:
        /* The flag is what the handler polls; the grace timer decides when
         * we stop waiting for it. */
        if (now) attempt_abandon(a, END_RETRY, NULL);
        else attempt_arm_grace(a);
        break;
    case RUN_NONE:
        break;
    }
}

/* A spooled job's file says how far it got: "done" means it ran already
 * (the worker died between the file and Redis) and must not run again. */
static int spool_check(attempt *a, char *why, size_t whylen)
{
    char *copy1 = strdup(a->spool_dir), *copy2 = strdup(a->spool_dir);
    int rc = -1;
    if (!copy1 || !copy2) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    const char *spool = dirname(copy1), *entry = basename(copy2);
    lw_spool_job sj;
    memset(&sj, 0, sizeof sj);
    char err[512];
    if (lw_spool_read(spool, entry, SPOOL_FILE_MAX, &sj, err, sizeof err)) {
        snprintf(why, whylen, "spool %s: %s", a->spool_dir, err);
        goto out;
    }
    if (!strcmp(sj.status, "done")) {
        rc = 1;
    } else if (lw_spool_set_status(a->spool_dir, "processing", NULL, err, sizeof err)) {
        snprintf(why, whylen, "spool %s: cannot mark processing: %s", a->spool_dir, err);
    } else {
        rc = 0;
    }
    lw_spool_job_clear(&sj);
out:
    free(copy1);
    free(copy2);
    return rc;
}

void dispatch_attempt(attempt *a)
{
    tenant *t = a->tenant;
    worker *w = t->w;
    char why[700];

    a->started_mono = lw_mono_ms();
    a->run = RUN_NONE;
    a->prev = NULL;
    a->next = w->running;
    if (w->running) w->running->prev = a;
    w->running = a;
    w->nrunning++;
    t->running++;

    if (a->spool_dir) {
        int rc = spool_check(a, why, sizeof why);
        if (rc < 0) {
            attempt_finished(a, END_FAIL, why);
            return;
        }
        if (rc == 1) {
            lw_log(LW_LOG_INFO, "spool.done", "job %s: %s/job.json says done; not run again", a->id,
                   a->spool_dir);
            attempt_finished(a, END_OK, NULL);
            return;
        }
    }

    const lw_exec_handler *ex = lw_tenant_exec(t->cfg, a->kind);
    int rc = 0;
    if (ex) {
        rc = run_exec_start(a, ex);
    } else if (module_handles(t->mod, a->kind)) {
        if (w->opt->isolation == ISOLATION_FORK)
            rc = run_fork_start(a);
        else
            pool_submit(w->pool, a);
    } else {
        snprintf(why, sizeof why, "no handler for kind %s", a->kind);
        attempt_finished(a, END_FAIL, why);
        return;
    }
    if (rc) {
        snprintf(why, sizeof why, "cannot start the handler: %s", strerror(errno));
        attempt_finished(a, END_RETRY, why);
        return;
    }
    if (a->timeout_ms > 0) {
        a->timer = evtimer_new(w->base, timer_cb, a);
        struct timeval tv = {(time_t)(a->timeout_ms / 1000), (suseconds_t)((a->timeout_ms % 1000) * 1000)};
        if (a->timer) evtimer_add(a->timer, &tv);
    }
}

/* attempt.c — making and freeing attempts; the stop flag; the timer. */
#include "attempt.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "lease_rules.h"
#include "script_replies.h"
#include "tenants.h"
#include "timefmt.h"

attempt *attempt_new(tenant *t, const lw_claim_job *job)
{
    /* One block for every string the handler may read: one malloc per
     * attempt on the hot path instead of eight. */
    size_t need = strlen(t->cfg->name) + 1;
    const lw_rstr *strs[] = {&job->id,   &job->token,   &job->kind, &job->queue,
                             &job->lane, &job->payload, &job->spool};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        need += strs[i]->len + 1;
    attempt *a = calloc(1, sizeof *a);
    char *mem = a ? malloc(need) : NULL;
    if (!mem) {
        free(a);
        return NULL;
    }
    a->mem = mem;
    const char **dst[] = {&a->id,   &a->token,   &a->kind,     &a->queue,
                          &a->lane, &a->payload, &a->spool_dir};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        memcpy(mem, strs[i]->s, strs[i]->len);
        mem[strs[i]->len] = '\0';
        *dst[i] = mem;
        mem += strs[i]->len + 1;
    }
    strcpy(mem, t->cfg->name);
    a->tenant_name = mem;
    if (!a->spool_dir[0])
        a->spool_dir = NULL;
    a->attempt = (int)job->attempt;
    a->attempts = (int)job->attempts;
    a->timeout_ms = job->timeout_ms;
    a->backoff_ms = job->backoff_ms;
    atomic_init(&a->stop, STOP_NONE);
    a->slot = -1;
    a->max_payload = (size_t)t->w->opt->common.max_payload;
    a->tenant = t;
    tenant_ref(t);
    return a;
}

void attempt_free(attempt *a)
{
    if (!a)
        return;
    if (a->timer)
        event_free(a->timer);
    free(a->result);
    free(a->error);
    free(a->mem);
    if (a->tenant)
        tenant_unref(a->tenant);
    free(a);
}

int attempt_request_stop(attempt *a, stop_reason why)
{
    int expected = STOP_NONE;
    if (atomic_compare_exchange_strong(&a->stop, &expected, (int)why))
        return 1;
    /* A fence request (thread isolation: the lease went unproven) gives way
     * to a reason that follows it -- the timeout, a cancel, a lost lease, a
     * hand-back -- or the attempt would keep neither its timeout nor its
     * cancel. */
    if (expected == STOP_FENCE && why != STOP_FENCE)
        return atomic_compare_exchange_strong(&a->stop, &expected, (int)why);
    return 0;
}

stop_reason attempt_stop_reason(const attempt *a)
{
    return (stop_reason)atomic_load(&((attempt *)a)->stop);
}

end_kind attempt_end_kind(const attempt *a, lw_status st)
{
    if (a->oversize || st == LW_FAIL)
        return END_FAIL;
    return st == LW_OK ? END_OK : END_RETRY;
}

lw_log_facts attempt_facts(const attempt *a, int with_duration)
{
    lw_log_facts f = {.job = a->id,
                      .tenant = a->tenant_name,
                      .kind = a->kind,
                      .queue = a->queue,
                      .lane = a->lane,
                      .worker = a->tenant->w->opt->name,
                      .attempt = a->attempt,
                      .attempts = a->attempts};
    if (with_duration) {
        f.has_duration = 1;
        f.duration_s = (double)(lw_mono_ms() - a->started_mono) / 1000.0;
    }
    return f;
}

int64_t attempt_freeze_at(const attempt *a)
{
    return lease_rules_freeze_point(a->tenant->w->opt->lease_ms, a->proof_mono);
}

void attempt_arm_timer(attempt *a, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(a->timer, &tv);
}

void attempt_set_phase(attempt *a, attempt_phase to)
{
    if (!attempt_phase_allowed(a->phase, to)) {
        /* A broken caller: going on would run or record an attempt twice. */
        lw_log_about(LW_LOG_ERROR, "worker.bug", attempt_facts(a, 1),
                     "attempt phase %s cannot become %s", attempt_phase_name(a->phase),
                     attempt_phase_name(to));
        abort();
    }
    a->phase = to;
}

void attempt_arm_grace(attempt *a)
{
    attempt_set_phase(a, PHASE_GRACE);
    attempt_arm_timer(a, KILL_GRACE_MS);
}

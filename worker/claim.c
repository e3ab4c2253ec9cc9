/*
 * claim.c — one claim.lua call for one tenant, and what its reply starts.
 *
 * The worker asks for at most as many jobs as it has free slots (reserved
 * while the call is in flight), so a claimed job never waits inside a
 * worker: what is claimed starts at once, and lanes are never blocked by a
 * job sitting in a local buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "backoff.h"
#include "claim.h"
#include "attempt.h"
#include "dispatch.h"
#include "keys.h"
#include "kick.h"
#include "lease.h"
#include "lease_rules.h"
#include "log.h"
#include "metrics.h"
#include "outcome.h"
#include "script_args.h"
#include "script_replies.h"
#include "scripts.h"
#include "state.h"
#include "tenants.h"
#include "timefmt.h"

typedef struct claim_call {
    tenant *t;
    int n;
    int64_t sent_mono; /* the leases it takes are proven from here on */
} claim_call;

/* Redis's words when a script without allow-oom meets maxmemory. */
static int is_oom(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "OOM", 3) == 0;
}

/* A job claimed while the worker is shutting down is handed back at once,
 * without starting: it goes back to the head of its lane with its attempt
 * given back, rather than sitting leased until the reaper counts it lost. */
static void hand_back_unstarted(tenant *t, const lw_claim_job *job)
{
    attempt *a = attempt_new(t, job);
    if (!a) {
        lw_log(LW_LOG_ERROR, "claim.oom",
               "job %.*s: out of memory handing it back; its lease will expire", (int)job->id.len,
               job->id.s);
        return;
    }
    lw_log_about(
        LW_LOG_INFO, "job.handback", attempt_facts(a, 0),
        "handed back without starting (the worker is stopping, or the claim's reply came too late to prove the lease)");
    outcome_handback_unstarted(a);
    attempt_free(a);
}

static void claim_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    claim_call *c = ud;
    tenant *t = c->t;
    worker *w = t->w;
    int64_t sent = c->sent_mono;
    w->reserved -= c->n;
    t->claim_inflight = 0;
    free(c);

    if (!reply) {
        /* Lost with the connection. If the script ran, the jobs it claimed
         * come back through the reaper when their leases expire. */
        goto out;
    }
    if (is_oom(reply)) {
        /* Redis is at maxmemory: claims stop (claim.lua is refused before
         * it runs) while outcomes, renewals and the reaper go on. Ask again
         * every second: memory is freed by retention, not by us. */
        tenant_set_oom(t, 1);
        t->idle = 1;
        t->poll_at = lw_mono_ms() + 1000;
        goto out;
    }
    lw_claim_reply got;
    if (lw_claim_reply_read(reply, &got, NULL, 0) != 0) {
        tenant_redis_error(t, "claim", reply);
        /* An error reply is no connection problem: it would come back at
         * once. Back off (1 s doubling to 30 s); other tenants go on. */
        if (t->claim_errors < 30)
            t->claim_errors++;
        t->idle = 1;
        t->poll_at = lw_mono_ms() + lw_backoff_ms(1000, t->claim_errors, 30000, lw_random64());
        goto out;
    }
    tenant_set_oom(t, 0);
    if (t->claim_errors) {
        lw_log(LW_LOG_INFO, "tenant.redis_ok", "tenant %s: claims work again", t->cfg->name);
        t->claim_errors = 0;
        lw_log_gate_reset(&t->err_gate);
    }
    for (size_t i = 0; i < got.n_corrupt; i++) {
        lw_claim_corrupt bad;
        lw_claim_corrupt_at(&got, i, &bad);
        const char *why = bad.reason.s;
        lw_log_about(!strcmp(why, "missing") ? LW_LOG_DEBUG : LW_LOG_ERROR, "job.corrupt",
                     (lw_log_facts){.job = bad.id.s, .tenant = t->cfg->name}, "skipped: %s",
                     !strcmp(why, "missing") ? "record missing (expired or deleted)" : why);
    }
    lease_log_outage(t, got.gap);
    size_t njobs = got.n_job;
    /* A reply that comes back after the freeze point of the leases it
     * grants cannot prove them any more (they may have expired and gone to
     * another worker): its jobs are handed back without starting, which
     * finish.lua refuses if they went elsewhere meanwhile. */
    int stopping = (w->state != W_RUNNING && w->state != W_QUIET) ||
                   lease_rules_freeze_point(w->opt->lease_ms, sent) <= lw_mono_ms();
    w->m.claimed += njobs;
    if (!stopping)
        w->started_total += (int64_t)njobs;
    for (size_t j = 0; j < njobs; j++) {
        lw_claim_job job;
        lw_claim_job_at(&got, j, &job);
        if (stopping) {
            hand_back_unstarted(t, &job);
            continue;
        }
        attempt *a = attempt_new(t, &job);
        if (!a) {
            /* Its lease will expire and the reaper will hand it out again. */
            lw_log(LW_LOG_ERROR, "claim.oom", "job %.*s: out of memory starting it",
                   (int)job.id.len, job.id.s);
            continue;
        }
        a->proof_mono = sent;
        /* Runnable to started, on Redis's clock (claim.lua's wait_ms). */
        metrics_wait(&w->m, t->cfg->name, a->queue, (double)job.wait_ms / 1000.0);
        dispatch_attempt(a);
    }
    long long due_in = got.due_in, more = got.more;
    /* The reply's view of the schedule predates due times announced while
     * it was in flight: keep the earlier of both. */
    t->due_mono = due_in >= 0 ? lw_mono_ms() + due_in : -1;
    if (t->due_hint >= 0 && (t->due_mono < 0 || t->due_hint < t->due_mono))
        t->due_mono = t->due_hint;
    t->due_hint = -1;
    t->backlog = more != 0;
    if (njobs || more)
        t->poll_ivl = 0; /* busy again: the next idle poll is --poll away */
    /* Nothing more to take now: wait for a wake-up, the poll or the due
     * time rather than asking again at once -- unless something that may
     * have made work claimable happened while this claim was in flight. */
    t->idle = !more && t->work_seq == t->claim_seq;
out:
    worker_kick(w);
    tenant_unref(t);
}

void claim_send(tenant *t, int n)
{
    worker *w = t->w;
    const worker_options *o = w->opt;
    lw_argv a;
    size_t nq = 0;
    while (o->queues[nq])
        nq++;

    lw_argv_init(&a);
    lw_claim_keys(&a, t->prefix);
    for (size_t q = 0; q < nq; q++)
        lw_claim_queue_keys(&a, t->prefix, o->queues[q]);
    lw_claim_argv_add(&a, &(lw_claim_argv){.prefix = t->prefix,
                                           .events_cap = t->set.events_max,
                                           .worker = o->name,
                                           .lease_ms = o->lease_ms,
                                           .want = n,
                                           .keep_failed_s = t->set.keep_failed_s,
                                           .nq = (int64_t)nq});
    for (size_t q = 0; q < nq; q++)
        lw_claim_queue_argv_add(
            &a, &(lw_claim_queue_argv){.name = o->queues[q], .max_active = t->caps[q]});
    claim_call *c = malloc(sizeof *c);
    if (c) {
        c->t = t;
        c->n = n;
        c->sent_mono = lw_mono_ms();
        tenant_ref(t);
        if (lw_redis_script(t->link->r, &lw_script_claim, lw_claim_nkeys(nq), &a, claim_reply, c) ==
            0) {
            t->claim_inflight = n;
            t->claim_seq = t->work_seq;
            t->due_hint = -1;
            w->reserved += n;
            w->m.claims++;
        } else {
            tenant_unref(t);
            free(c);
        }
    }
    lw_argv_clear(&a);
}

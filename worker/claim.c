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
#include "dispatch.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "outcome.h"
#include "scripts.h"
#include "tenants.h"
#include "timefmt.h"
#include "state.h"
#include "attempt.h"
#include "kick.h"
#include "lease_rules.h"

#define CLAIM_FIELDS 11

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
static void hand_back_unstarted(tenant *t, const char *const *f, const size_t *flen)
{
    attempt *a = attempt_new(t, f, flen);
    if (!a) {
        lw_log(LW_LOG_ERROR, "claim.oom", "job %.*s: out of memory handing it back; its lease will expire",
               (int)flen[0], f[0]);
        return;
    }
    lw_log_about(LW_LOG_INFO, "job.handback", attempt_facts(a, 0),
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
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY) {
        tenant_redis_error(t, "claim", reply);
        /* An error reply is no connection problem: it would come back at
         * once. Back off (1 s doubling to 30 s); other tenants go on. */
        if (t->claim_errors < 30) t->claim_errors++;
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
    redisReply *jobs = reply->element[0], *bad = reply->element[1];
    for (size_t i = 0; i + 1 < bad->elements; i += 2) {
        const char *why = bad->element[i + 1]->str;
        lw_log_about(!strcmp(why, "missing") ? LW_LOG_DEBUG : LW_LOG_ERROR, "job.corrupt",
                     (lw_log_facts){.job = bad->element[i]->str, .tenant = t->cfg->name}, "skipped: %s",
                     !strcmp(why, "missing") ? "record missing (expired or deleted)" : why);
    }
    if (reply->element[4]->type == REDIS_REPLY_INTEGER) lease_log_outage(t, reply->element[4]->integer);
    size_t njobs = jobs->elements / CLAIM_FIELDS;
    /* A reply that comes back after the freeze point of the leases it
     * grants cannot prove them any more (they may have expired and gone to
     * another worker): its jobs are handed back without starting, which
     * finish.lua refuses if they went elsewhere meanwhile. */
    int stopping = (w->state != W_RUNNING && w->state != W_QUIET) || lease_rules_freeze_point(w->opt->lease_ms, sent) <= lw_mono_ms();
    w->m.claimed += njobs;
    if (!stopping) w->started_total += (int64_t)njobs;
    for (size_t j = 0; j < njobs; j++) {
        const char *f[CLAIM_FIELDS];
        size_t flen[CLAIM_FIELDS];
        for (int k = 0; k < CLAIM_FIELDS; k++) {
            redisReply *e = jobs->element[j * CLAIM_FIELDS + (size_t)k];
            f[k] = e->type == REDIS_REPLY_STRING ? e->str : "";
            flen[k] = e->type == REDIS_REPLY_STRING ? e->len : 0;
        }
        if (stopping) {
            hand_back_unstarted(t, f, flen);
            continue;
        }
        attempt *a = attempt_new(t, f, flen);
        if (!a) {
            /* Its lease will expire and the reaper will hand it out again. */
            lw_log(LW_LOG_ERROR, "claim.oom", "job %.*s: out of memory starting it", (int)flen[0], f[0]);
            continue;
        }
        a->proof_mono = sent;
        dispatch_attempt(a);
    }
    long long due_in = reply->element[2]->type == REDIS_REPLY_INTEGER ? reply->element[2]->integer : -1;
    long long more = reply->element[3]->type == REDIS_REPLY_INTEGER ? reply->element[3]->integer : 0;
    /* The reply's view of the schedule predates due times announced while
     * it was in flight: keep the earlier of both. */
    t->due_mono = due_in >= 0 ? lw_mono_ms() + due_in : -1;
    if (t->due_hint >= 0 && (t->due_mono < 0 || t->due_hint < t->due_mono)) t->due_mono = t->due_hint;
    t->due_hint = -1;
    t->backlog = more != 0;
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
    char key[400];
    size_t nq = 0;
    while (o->queues[nq]) nq++;

    lw_argv_init(&a);
    const char *fixed[5] = {"events", "schedule", "stats", "expiring", "fence"};
    for (int i = 0; i < 5; i++) {
        lw_key(key, sizeof key, t->prefix, fixed[i], NULL);
        lw_argv_adds(&a, key);
    }
    for (size_t q = 0; q < nq; q++) {
        lw_key(key, sizeof key, t->prefix, "ready:", o->queues[q]);
        lw_argv_adds(&a, key);
        lw_key(key, sizeof key, t->prefix, "active:", o->queues[q]);
        lw_argv_adds(&a, key);
    }
    lw_argv_adds(&a, t->prefix);
    lw_argv_addi(&a, t->set.events_max);
    lw_argv_adds(&a, o->name);
    lw_argv_addi(&a, o->lease_ms);
    lw_argv_addi(&a, n);
    lw_argv_addi(&a, t->set.keep_failed_s);
    lw_argv_addi(&a, (int64_t)nq);
    for (size_t q = 0; q < nq; q++) {
        lw_argv_adds(&a, o->queues[q]);
        lw_argv_addi(&a, t->caps[q]);
    }
    claim_call *c = malloc(sizeof *c);
    if (c) {
        c->t = t;
        c->n = n;
        c->sent_mono = lw_mono_ms();
        tenant_ref(t);
        if (lw_redis_script(t->link->r, &lw_script_claim, (int)(5 + 2 * nq), &a, claim_reply, c) == 0) {
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

/*
 * spool_scan.c — enqueueing the pending jobs of a tenant's spools
 * (CONTRACT section 8), at start and on SIGHUP, once the tenant's Redis is
 * ready.
 *
 * Each job.json whose status is "queued" or "processing" is enqueued with
 * the directory name as its id. enqueue.lua refuses to create a second job
 * with an existing id, so any number of workers starting at once enqueue
 * each job once, and a rescan is harmless. A scan whose enqueue calls are
 * lost to a connection problem is simply repeated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "backoff.h"
#include "enqueue_args.h"
#include "jobspec.h"
#include "log.h"
#include "scripts.h"
#include "spool.h"
#include "timefmt.h"
#include "worker.h"

#define SCAN_BATCH 256
#define SPOOL_FILE_MAX (16 * 1024 * 1024)

typedef struct scan_ctx {
    tenant *t;
    const lw_spool_cfg *sp;
    lw_argv batch;
    size_t found, skipped;
} scan_ctx;

typedef struct scan_call {
    tenant *t;
    char *spool;
} scan_call;

static void scan_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    scan_call *c = ud;
    tenant *t = c->t;
    t->spool_inflight--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply) {
            char what[600];
            snprintf(what, sizeof what, "enqueue from spool %s", c->spool);
            tenant_redis_error(t, what, reply);
            /* An error reply (an ACL denial, say) would come back at once:
             * rescan after a backoff, 1 s doubling to 60 s. */
            if (t->spool_errors < 30) t->spool_errors++;
            t->spool_retry_at = lw_mono_ms() + lw_backoff_ms(1000, t->spool_errors, 60000, lw_random64());
        }
        t->spool_pending = 1; /* scanned again when Redis is ready */
    } else {
        t->spool_errors = 0;
        t->spool_retry_at = 0;
        size_t created = 0;
        for (size_t i = 1; i < reply->elements; i += LW_ENQUEUE_REPLY)
            if (reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer == 1) created++;
        if (created)
            lw_log(LW_LOG_INFO, "spool.enqueued", "tenant %s: spool %s: %zu job(s) enqueued", t->cfg->name,
                   c->spool, created);
        t->idle = 0;
    }
    free(c->spool);
    free(c);
    worker_kick(t->w);
    tenant_unref(t);
}

static void send_batch(scan_ctx *s)
{
    tenant *t = s->t;
    if (lw_enqueue_count(&s->batch) == 0) return;
    scan_call *c = malloc(sizeof *c);
    if (c && (c->spool = strdup(s->sp->dir))) {
        c->t = t;
        tenant_ref(t);
        if (lw_redis_script(t->link->r, &lw_script_enqueue, LW_ENQUEUE_NKEYS, &s->batch, scan_reply, c) == 0) {
            t->spool_inflight++;
        } else {
            t->spool_pending = 1;
            tenant_unref(t);
            free(c->spool);
            free(c);
        }
    } else {
        free(c);
        t->spool_pending = 1;
    }
    lw_argv_reset(&s->batch);
    lw_enqueue_begin(&s->batch, t->prefix, t->set.events_max);
}

static void visit(void *ud, const char *spool, lw_spool_job *job)
{
    scan_ctx *s = ud;
    char err[512];
    /* done and failed are history (the parser refused any other status). */
    if (strcmp(job->status, "queued") != 0 && strcmp(job->status, "processing") != 0) return;
    lw_job_spec spec;
    lw_job_spec_init(&spec);
    size_t dlen = strlen(spool) + strlen(job->job_id) + 2;
    spec.tenant = strdup(s->t->cfg->name);
    spec.kind = strdup(s->sp->kind);
    spec.id = strdup(job->job_id);
    spec.lane = job->lane ? strdup(job->lane) : NULL;
    spec.queue = job->queue ? strdup(job->queue) : NULL;
    spec.payload = job->payload ? strdup(job->payload) : NULL;
    spec.spool_dir = malloc(dlen);
    if (spec.spool_dir) snprintf(spec.spool_dir, dlen, "%s/%s", spool, job->job_id);
    if (!spec.tenant || !spec.kind || !spec.id || !spec.spool_dir) {
        lw_log(LW_LOG_ERROR, "spool.skip", "spool %s: entry %s: out of memory", spool, job->job_id);
    } else if (lw_job_spec_validate(&spec, s->t->w->opt->common.max_payload, err, sizeof err)) {
        lw_log(LW_LOG_ERROR, "spool.skip", "spool %s: entry %s skipped: %s", spool, job->job_id, err);
        s->skipped++;
    } else if (lw_job_spec_resolve(&spec, &s->t->cfg->defaults)) {
        lw_log(LW_LOG_ERROR, "spool.skip", "spool %s: entry %s: out of memory", spool, job->job_id);
    } else {
        lw_enqueue_add(&s->batch, &spec);
        s->found++;
        if (lw_enqueue_count(&s->batch) >= SCAN_BATCH) send_batch(s);
    }
    lw_job_spec_clear(&spec);
}

static void bad(void *ud, const char *spool, const char *entry, const char *why)
{
    scan_ctx *s = ud;
    s->skipped++;
    lw_log(LW_LOG_WARN, "spool.skip", "tenant %s: spool %s: entry %s skipped: %s", s->t->cfg->name, spool,
           entry, why);
}

void spool_scan_tenant(tenant *t)
{
    if (!t->spool_pending || t->spool_inflight || !lw_redis_is_ready(t->link->r)) return;
    if (t->spool_retry_at && lw_mono_ms() < t->spool_retry_at) return;
    t->spool_pending = 0;
    for (size_t i = 0; i < t->cfg->nspools; i++) {
        scan_ctx s;
        char err[512];
        memset(&s, 0, sizeof s);
        s.t = t;
        s.sp = &t->cfg->spools[i];
        lw_argv_init(&s.batch);
        lw_enqueue_begin(&s.batch, t->prefix, t->set.events_max);
        if (lw_spool_scan(s.sp->dir, SPOOL_FILE_MAX, visit, bad, &s, err, sizeof err) < 0)
            lw_log(LW_LOG_ERROR, "spool.scan", "tenant %s: spool %s: %s", t->cfg->name, s.sp->dir, err);
        else
            send_batch(&s);
        lw_log(LW_LOG_INFO, "spool.scan", "tenant %s: spool %s (kind %s): %zu pending job(s), %zu skipped",
               t->cfg->name, s.sp->dir, s.sp->kind, s.found, s.skipped);
        lw_argv_clear(&s.batch);
    }
}

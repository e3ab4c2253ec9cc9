/*
 * spool_scan.c — enqueueing the pending jobs of a tenant's spools
 * (CONTRACT section 8): at start, on SIGHUP, when the tenant's Redis comes
 * back, on the periodic rescan (full scans), and for each entry the
 * watcher saw appear (named reads, spool_watch.c).
 *
 * Each job.json whose status is "queued" or "processing" is enqueued with
 * the directory name as its id. enqueue.lua refuses to create a second job
 * with an existing id, so any number of workers scanning the same spool at
 * once, and any number of rescans, enqueue each job once. A scan whose
 * enqueue calls are lost to a connection problem is simply repeated.
 *
 * The reading happens on a spool I/O thread (spool_io.h): the task lists
 * what it found, and the loop validates, batches and sends it. One scan
 * task per tenant at a time; names seen meanwhile wait for the next one.
 * A bad entry is logged once (per entry and reason, spool_seen), however
 * often it is scanned again.
 *
 * An entry still "queued" or "processing" whose job already ended in Redis
 * (cancelled or expired while it waited: no attempt wrote its file) is
 * settled: its file gets the job's end ("done", or "failed" with why).
 * Otherwise, once the record's retention ran out, the next rescan would
 * enqueue it anew and run a cancelled job.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "backoff.h"
#include "enqueue_args.h"
#include "invariant.h"
#include "jobspec.h"
#include "log.h"
#include "script_replies.h"
#include "scripts.h"
#include "spool.h"
#include "spool_io.h"
#include "spool_pending.h"
#include "spool_scan.h"
#include "grow.h"
#include "kick.h"
#include "partition.h"
#include "spool_watch.h"
#include "state.h"
#include "tenants.h"
#include "timefmt.h"

#define SCAN_BATCH 256
/* Bad entries remembered as reported; beyond that the memory is reset
 * (and each is said once more). */
#define SEEN_MAX 16384

/* ---- the task: on the I/O thread ---- */

typedef struct bad_entry {
    char *entry, *why;
} bad_entry;

typedef struct scan_task {
    spool_io_task io;
    tenant *t;    /* holds a reference; loop side only */
    size_t spool; /* index in t->cfg->spools */
    char *dir;    /* owned copy of the spool's path */
    char **names; /* owned; NULL: the whole spool */
    size_t nnames, ncap;
    int loud;            /* the summary at info level */
    int64_t max_payload; /* --max-payload: bigger ones are refused here, not kept */
    /* results, filled by the thread */
    lw_spool_job *jobs; /* pending (queued / processing) */
    size_t njobs, jcap;
    bad_entry *bad;
    size_t nbad, bcap;
    char **missing; /* named reads: directories without job.json yet */
    size_t nmissing, mcap;
    int failed;
    char err[512];
} scan_task;

static void oom(scan_task *s)
{
    s->failed = 1;
    snprintf(s->err, sizeof s->err, "out of memory");
}

static void keep_bad(scan_task *s, const char *entry, const char *why);

static void keep_job(scan_task *s, lw_spool_job *job)
{
    /* done and failed are history (the parser refused any other status). */
    if (strcmp(job->status, "queued") != 0 && strcmp(job->status, "processing") != 0)
        return;
    /* Refused here, on the thread: a scan keeps what it found until the
     * loop sends it, and an oversized payload (up to the 16 MiB a job.json
     * may have) per entry would make one scan of a big spool hold it all. */
    size_t plen = job->payload ? strlen(job->payload) : 0;
    if (s->max_payload > 0 && plen > (uint64_t)s->max_payload) {
        char why[160];
        snprintf(why, sizeof why, "payload: %zu bytes is over the limit of %lld (--max-payload)",
                 plen, (long long)s->max_payload);
        keep_bad(s, job->job_id, why);
        return;
    }
    if (lw_grow((void **)&s->jobs, &s->jcap, s->njobs, sizeof *s->jobs)) {
        oom(s);
        return;
    }
    s->jobs[s->njobs++] = *job;
    memset(job, 0, sizeof *job); /* taken: lw_spool_scan frees nothing */
}

static void keep_bad(scan_task *s, const char *entry, const char *why)
{
    if (lw_grow((void **)&s->bad, &s->bcap, s->nbad, sizeof *s->bad)) {
        oom(s);
        return;
    }
    bad_entry *b = &s->bad[s->nbad];
    b->entry = strdup(entry);
    b->why = strdup(why);
    if (!b->entry || !b->why) {
        free(b->entry), free(b->why);
        oom(s);
        return;
    }
    s->nbad++;
}

static void on_visit(void *ud, const char *spool, lw_spool_job *job)
{
    (void)spool;
    keep_job(ud, job);
}

static void on_bad(void *ud, const char *spool, const char *entry, const char *why)
{
    (void)spool;
    keep_bad(ud, entry, why);
}

static void scan_work(spool_io_task *task)
{
    scan_task *s = (scan_task *)task;
    if (!s->names) {
        if (lw_spool_scan(s->dir, LW_SPOOL_FILE_MAX, on_visit, on_bad, s, s->err, sizeof s->err) <
            0)
            s->failed = 1;
        return;
    }
    for (size_t i = 0; i < s->nnames; i++) {
        const char *nm = s->names[i];
        lw_spool_job job;
        char why[512];
        /* Still being built (enqueue --spool renames it into place). */
        if (!strncmp(nm, ".tmp-", 5))
            continue;
        if (lw_spool_read(s->dir, nm, LW_SPOOL_FILE_MAX, &job, why, sizeof why) == 0) {
            keep_job(s, &job);
            lw_spool_job_clear(&job);
        } else if (errno == ENOENT || errno == EBADMSG) {
            /* Gone again, its job.json not written yet, or not written
             * whole (`cp -r` writes it in place): the loop watches the
             * directory for its close. A file still bad then is reported
             * by the next full scan, not here. */
            if (lw_grow((void **)&s->missing, &s->mcap, s->nmissing, sizeof *s->missing) ||
                !(s->missing[s->nmissing] = strdup(nm)))
                oom(s);
            else
                s->nmissing++;
        } else {
            keep_bad(s, nm, why);
        }
    }
}

static void scan_task_free(scan_task *s)
{
    free(s->dir);
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
    for (size_t i = 0; i < s->njobs; i++)
        lw_spool_job_clear(&s->jobs[i]);
    free(s->jobs);
    for (size_t i = 0; i < s->nbad; i++)
        free(s->bad[i].entry), free(s->bad[i].why);
    free(s->bad);
    for (size_t i = 0; i < s->nmissing; i++)
        free(s->missing[i]);
    free(s->missing);
    free(s);
}

/* ---- bad entries: said once ---- */

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

/* 1 the first time (spool, entry, why) is seen by t. */
static int first_report(tenant *t, const char *spool, const char *entry, const char *why)
{
    uint64_t h = fnv(fnv(fnv(14695981039346656037ULL, spool), entry), why);
    size_t lo = 0, hi = t->nseen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->spool_seen[mid] == h)
            return 0;
        if (t->spool_seen[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (t->nseen >= SEEN_MAX)
        t->nseen = lo = 0;
    if (t->nseen == t->seen_cap) {
        size_t c = t->seen_cap ? t->seen_cap * 2 : 64;
        uint64_t *g = realloc(t->spool_seen, c * sizeof *g);
        if (!g)
            return 1;
        t->spool_seen = g;
        t->seen_cap = c;
    }
    memmove(t->spool_seen + lo + 1, t->spool_seen + lo, (t->nseen - lo) * sizeof *t->spool_seen);
    t->spool_seen[lo] = h;
    t->nseen++;
    return 1;
}

/* ---- enqueueing: on the loop ---- */

typedef struct scan_ctx {
    tenant *t;    /* the spool's: partition 0 */
    tenant *dest; /* the partition the batch goes to (t, or one of its others) */
    int nparts;   /* the count the jobs are routed by */
    const lw_spool_cfg *sp;
    lw_argv batch;
    char **ids; /* owned: the entries in `batch`, in order */
    size_t nids, idcap;
    size_t found, skipped;
} scan_ctx;

typedef struct scan_call {
    tenant *t;    /* holds a reference: the spool's */
    tenant *dest; /* holds a reference: whose link it went on */
    char *spool;
    char **ids; /* owned: the entries enqueued, in the reply's order */
    size_t nids;
} scan_call;

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* ---- settling entries whose job ended without an attempt ---- */

typedef struct settle_task {
    spool_io_task io;
    char *job_dir;      /* owned */
    const char *status; /* static: "done" or "failed" */
    char *error;        /* owned; NULL with "done" */
    int rc;
    char err[512];
} settle_task;

static void settle_work(spool_io_task *task)
{
    settle_task *st = (settle_task *)task;
    st->rc = lw_spool_set_status(st->job_dir, st->status, st->error, st->err, sizeof st->err);
}

static void settle_done(spool_io_task *task, int discarded)
{
    settle_task *st = (settle_task *)task;
    if (!discarded) {
        if (st->rc)
            lw_log(LW_LOG_ERROR, "spool.write", "cannot mark %s %s: %s", st->job_dir, st->status,
                   st->err);
        else
            lw_log(LW_LOG_INFO, "spool.settled",
                   "%s/job.json marked %s: the job ended in Redis (%s)", st->job_dir, st->status,
                   st->error ? st->error : "succeeded");
    }
    free(st->job_dir);
    free(st->error);
    free(st);
}

/* Entry `id` of spool `spool` was not enqueued, as `why` says (enqueue.lua):
 * "exists STATUS" -- its job exists; when STATUS is an end, that end is
 * written into the entry -- or "held STATUS" -- its unique key is held by
 * job `holder`: deduplicated, so it is marked failed, saying by whom. A
 * lost write only leaves the entry for the next rescan to settle. */
static void settle(tenant *t, const char *spool, const char *id, const char *why,
                   const char *holder)
{
    static const char *const ENDS[] = {"succeeded", "failed", "cancelled", "expired"};
    size_t k = 0;
    char held[300];
    const char *error;
    if (!strncmp(why, "held ", 5)) {
        snprintf(held, sizeof held, "not enqueued: its unique key is held by job %s", holder);
        error = held;
        k = 1;
    } else if (!strncmp(why, "exists ", 7)) {
        error = why + 7;
        while (k < 4 && strcmp(error, ENDS[k]) != 0)
            k++;
        if (k == 4)
            return; /* waiting or running: its attempt writes the file */
    } else {
        return;
    }
    settle_task *st = calloc(1, sizeof *st);
    size_t n = strlen(spool) + strlen(id) + 2;
    if (!st || !(st->job_dir = malloc(n)) || (k > 0 && !(st->error = strdup(error)))) {
        if (st)
            free(st->job_dir);
        free(st);
        return;
    }
    snprintf(st->job_dir, n, "%s/%s", spool, id);
    st->status = k == 0 ? "done" : "failed";
    st->io.work = settle_work;
    st->io.done = settle_done;
    spool_io_submit(t->w->spool_io, &st->io, 0);
}

static void scan_reply(lw_redis *r, redisReply *reply, void *ud)
{
    scan_call *c = ud;
    tenant *t = c->t;
    t->spool_inflight--;
    LW_ASSERT(t->spool_inflight >= 0);
    lw_enqueue_reply got;
    if (!reply || lw_enqueue_reply_read(reply, &got, NULL, 0) != 0) {
        if (reply) {
            char what[600];
            snprintf(what, sizeof what, "enqueue from spool %s", c->spool);
            tenant_redis_error(t, what, reply);
        }
        if (reply || lw_redis_unconfirmed(r)) {
            /* An error reply (an ACL denial, say) would come back at once,
             * and replicas not confirming (--min-replicas) answer within a
             * WAIT: rescan after a backoff, 1 s doubling to 60 s. */
            if (t->spool_errors < 30)
                t->spool_errors++;
            t->spool_retry_at =
                lw_mono_ms() + lw_backoff_ms(1000, t->spool_errors, 60000, lw_random64());
        }
        t->spool_pending |= SPOOL_RESCAN; /* scanned again when Redis is ready */
    } else {
        t->spool_errors = 0;
        t->spool_retry_at = 0;
        size_t created = 0;
        for (size_t i = 0; i < got.n_job; i++) {
            lw_enqueue_job job;
            lw_enqueue_job_at(&got, i, &job);
            if (job.created == 1)
                created++;
            else if (i < c->nids)
                settle(t, c->spool, c->ids[i], job.why.s, job.id.s);
        }
        if (created)
            lw_log_about(LW_LOG_INFO, "spool.enqueued", (lw_log_facts){.tenant = t->cfg->name},
                         "spool %s: %zu job(s) enqueued", c->spool, created);
        t->idle = 0;
    }
    free(c->spool);
    free_ids(c->ids, c->nids);
    tenant_unref(c->dest);
    free(c);
    worker_kick(t->w);
    tenant_unref(t);
}

static void send_batch(scan_ctx *s)
{
    tenant *t = s->t;
    if (lw_enqueue_count(&s->batch) == 0)
        return;
    scan_call *c = malloc(sizeof *c);
    if (c && (c->spool = strdup(s->sp->dir))) {
        c->t = t;
        c->dest = s->dest;
        c->ids = s->ids; /* the call owns them now */
        c->nids = s->nids;
        s->ids = NULL;
        s->nids = s->idcap = 0;
        tenant_ref(t);
        tenant_ref(c->dest);
        if (lw_redis_script_durable(c->dest->link->r, &lw_script_enqueue, LW_ENQUEUE_NKEYS,
                                    &s->batch, scan_reply, c) == 0) {
            t->spool_inflight++;
        } else {
            t->spool_pending |= SPOOL_RESCAN;
            tenant_unref(t);
            tenant_unref(c->dest);
            free(c->spool);
            free_ids(c->ids, c->nids);
            free(c);
        }
    } else {
        free(c);
        t->spool_pending |= SPOOL_RESCAN;
    }
    free_ids(s->ids, s->nids); /* left when the call could not be made */
    s->ids = NULL;
    s->nids = s->idcap = 0;
    lw_argv_reset(&s->batch);
    lw_enqueue_begin(&s->batch, s->dest->prefix, t->set.events_max, s->nparts);
}

static void skip(scan_ctx *s, const char *entry, const char *why, int level)
{
    s->skipped++;
    int first = first_report(s->t, s->sp->dir, entry, why);
    lw_log_about(first ? level : LW_LOG_DEBUG, "spool.skip",
                 (lw_log_facts){.tenant = s->t->cfg->name}, "spool %s: entry %s skipped: %s",
                 s->sp->dir, entry, why);
}

static void enqueue_job(scan_ctx *s, const lw_spool_job *job)
{
    const char *spool = s->sp->dir;
    char err[512];
    lw_job_spec spec;
    lw_job_spec_init(&spec);
    size_t dlen = strlen(spool) + strlen(job->job_id) + 2;
    spec.tenant = strdup(s->t->cfg->name);
    spec.kind = strdup(s->sp->kind);
    spec.id = strdup(job->job_id);
    spec.lane = job->lane ? strdup(job->lane) : NULL;
    spec.queue = job->queue ? strdup(job->queue) : NULL;
    spec.payload = job->payload ? strdup(job->payload) : NULL;
    /* The options `enqueue --spool` wrote: the same job whichever enqueue
     * comes first, its own or this one. */
    spec.unique = job->unique ? strdup(job->unique) : NULL;
    spec.attempts = job->attempts;
    spec.timeout_ms = job->timeout_ms;
    spec.delay_ms = job->delay_ms;
    spec.expires_ms = job->expires_ms;
    spec.unique_for_ms = job->unique_for_ms;
    spec.spool_dir = malloc(dlen);
    if (spec.spool_dir)
        snprintf(spec.spool_dir, dlen, "%s/%s", spool, job->job_id);
    if (!spec.tenant || !spec.kind || !spec.id || !spec.spool_dir ||
        (job->unique && !spec.unique)) {
        lw_log(LW_LOG_ERROR, "spool.skip", "spool %s: entry %s: out of memory", spool, job->job_id);
        s->t->spool_pending |= SPOOL_RESCAN;
    } else if (lw_job_spec_validate(&spec, s->t->w->opt->common.max_payload, err, sizeof err)) {
        skip(s, job->job_id, err, LW_LOG_ERROR);
    } else if (lw_job_spec_resolve(&spec, &s->t->cfg->defaults)) {
        lw_log(LW_LOG_ERROR, "spool.skip", "spool %s: entry %s: out of memory", spool, job->job_id);
        s->t->spool_pending |= SPOOL_RESCAN;
    } else if (lw_grow((void **)&s->ids, &s->idcap, s->nids, sizeof *s->ids) ||
               !(s->ids[s->nids] = strdup(job->job_id))) {
        lw_log(LW_LOG_ERROR, "spool.skip", "spool %s: entry %s: out of memory", spool, job->job_id);
        s->t->spool_pending |= SPOOL_RESCAN;
    } else {
        s->nids++;
        lw_enqueue_add(&s->batch, &spec);
        s->found++;
        if (lw_enqueue_count(&s->batch) >= SCAN_BATCH)
            send_batch(s);
    }
    lw_job_spec_clear(&spec);
}

/* The routing key of a spool job (partition.h): its lane, else its unique
 * key, else its id. */
static const char *route_key(const lw_spool_job *job)
{
    return job->lane ? job->lane : job->unique ? job->unique : job->job_id;
}

/* The struct of partition p of the spool's tenant t (partition 0), or NULL
 * when this worker has none (the count in force is past the registry's). */
static tenant *partition_struct(tenant *t, int p)
{
    if (p == 0)
        return t;
    for (tenant *x = t->w->tenants; x; x = x->next)
        if (x->lead == t && x->part == p)
            return x;
    return NULL;
}

/* The jobs of a scan, and which of them partition 0 answered for
 * (known.lua): those are settled, not enqueued. */
typedef struct found_jobs {
    lw_spool_job *jobs; /* owned */
    size_t njobs;
    unsigned char *known; /* owned; NULL: none */
} found_jobs;

static void found_free(found_jobs *f)
{
    for (size_t i = 0; i < f->njobs; i++)
        lw_spool_job_clear(&f->jobs[i]);
    free(f->jobs);
    free(f->known);
    memset(f, 0, sizeof *f);
}

static int found_part(const found_jobs *f, size_t i, int nparts, int p)
{
    return !(f->known && f->known[i]) && lw_partition_of(route_key(&f->jobs[i]), nparts) == p;
}

static void enqueue_found(scan_ctx *s, found_jobs *f);

/* ---- partition 0's answers from before partitioning (known.lua) ---- */

/* A known.lua call about the jobs of one scan that go to partitions >= 1. */
typedef struct known_call {
    tenant *t;    /* holds a reference: partition 0 */
    size_t spool; /* index in t->cfg->spools (t holds its registry) */
    found_jobs f;
    size_t *asked; /* owned: the index in f.jobs of each job asked about */
    size_t nasked;
} known_call;

static void known_call_free(known_call *k)
{
    found_free(&k->f);
    free(k->asked);
    tenant_unref(k->t);
    free(k);
}

static void known_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    known_call *k = ud;
    tenant *t = k->t;
    t->spool_inflight--;
    lw_known_reply got;
    if (!reply || lw_known_reply_read(reply, &got, NULL, 0) != 0 || got.n_job != k->nasked ||
        !(k->f.known = calloc(k->f.njobs, 1))) {
        if (reply)
            tenant_redis_error(t, "asking partition 0 about spool jobs", reply);
        /* Nothing of the scan went out: all of it again, after a pause. */
        t->spool_retry_at = lw_mono_ms() + 1000;
        t->spool_pending |= SPOOL_RESCAN;
        worker_kick(t->w);
        known_call_free(k); /* may free t */
        return;
    }
    if (!got.open)
        t->legacy_done = 1;
    const lw_spool_cfg *sp = &t->cfg->spools[k->spool];
    for (size_t i = 0; i < got.n_job; i++) {
        lw_known_job job;
        lw_known_job_at(&got, i, &job);
        if (job.id.len == 0)
            continue;
        k->f.known[k->asked[i]] = 1;
        settle(t, sp->dir, k->f.jobs[k->asked[i]].job_id, job.why.s, job.id.s);
    }
    if (!t->retired) {
        scan_ctx s;
        memset(&s, 0, sizeof s);
        s.t = t;
        s.sp = sp;
        lw_argv_init(&s.batch);
        enqueue_found(&s, &k->f);
        lw_argv_clear(&s.batch);
    }
    worker_kick(t->w);
    known_call_free(k); /* may free t */
}

/* When partition 0 may still answer for ids from before the tenant was
 * partitioned (DESIGN.md "Partitions"), asks it (one known.lua call) about
 * the jobs of f that go elsewhere, and takes f: they are enqueued when it
 * answers. Returns 0 when there is nothing to ask, 1 when it took f or
 * could not ask (out of memory: a rescan is due, nothing is enqueued). */
static int ask_known(scan_ctx *s, found_jobs *f)
{
    tenant *t = s->t;
    if (t->nparts < 2 || t->legacy_done || f->known)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < f->njobs; i++)
        n += lw_partition_of(route_key(&f->jobs[i]), t->nparts) != 0;
    if (n == 0)
        return 0;
    known_call *k = calloc(1, sizeof *k);
    if (!k || !(k->asked = malloc(n * sizeof *k->asked))) {
        free(k);
        t->spool_pending |= SPOOL_RESCAN;
        return 1;
    }
    lw_argv a;
    lw_argv_init(&a);
    lw_known_keys(&a, t->prefix);
    lw_known_argv_add(
        &a,
        &(lw_known_argv){.prefix = t->prefix, .events_cap = t->set.events_max, .n = (int64_t)n});
    for (size_t i = 0; i < f->njobs; i++) {
        if (lw_partition_of(route_key(&f->jobs[i]), t->nparts) == 0)
            continue;
        k->asked[k->nasked++] = i;
        lw_known_job_argv_add(
            &a, &(lw_known_job_argv){.id = f->jobs[i].job_id, .unique = f->jobs[i].unique});
    }
    k->t = t;
    k->spool = (size_t)(s->sp - t->cfg->spools);
    tenant_ref(t);
    if (lw_redis_script(t->link->r, &lw_script_known, LW_KNOWN_NKEYS, &a, known_reply, k) == 0) {
        t->spool_inflight++;
        k->f = *f; /* the call's now */
        memset(f, 0, sizeof *f);
    } else {
        t->spool_pending |= SPOOL_RESCAN;
        known_call_free(k);
    }
    lw_argv_clear(&a);
    return 1;
}

/* Enqueues the jobs a scan found, partition by partition: a stable pass per
 * partition keeps each lane's jobs in the spool's order (a lane lives in
 * one partition). */
static void enqueue_found(scan_ctx *s, found_jobs *f)
{
    tenant *t = s->t;
    s->nparts = t->nparts;
    if (s->nparts == 0) {
        /* A reload rebuilt the tenant while the scan ran: again, once known. */
        t->spool_pending |= SPOOL_RESCAN;
        return;
    }
    if (ask_known(s, f))
        return;
    for (int p = 0; p < s->nparts; p++) {
        s->dest = partition_struct(t, p);
        int any = 0;
        for (size_t i = 0; i < f->njobs && !any; i++)
            any = found_part(f, i, s->nparts, p);
        if (!any)
            continue;
        if (!s->dest) {
            /* Said by tenant_settings.c: left for a worker that serves it. */
            t->spool_pending |= SPOOL_RESCAN;
            t->spool_retry_at = lw_mono_ms() + 5000;
            continue;
        }
        lw_enqueue_begin(&s->batch, s->dest->prefix, t->set.events_max, s->nparts);
        for (size_t i = 0; i < f->njobs; i++)
            if (found_part(f, i, s->nparts, p))
                enqueue_job(s, &f->jobs[i]);
        send_batch(s);
    }
}

static void scan_done(spool_io_task *task, int discarded)
{
    scan_task *st = (scan_task *)task;
    tenant *t = st->t;
    t->spool_scanning--;
    if (discarded)
        goto out;
    scan_ctx s;
    memset(&s, 0, sizeof s);
    s.t = t;
    s.sp = &t->cfg->spools[st->spool];
    lw_argv_init(&s.batch);
    for (size_t i = 0; i < st->nbad; i++)
        skip(&s, st->bad[i].entry, st->bad[i].why, LW_LOG_WARN);
    found_jobs f = {st->jobs, st->njobs, NULL};
    size_t pending = st->njobs;
    st->jobs = NULL; /* f's now */
    st->njobs = 0;
    enqueue_found(&s, &f);
    /* A known.lua call took them (f emptied): enqueued once it answers. */
    size_t said = pending > 0 && f.njobs == 0 ? pending : s.found;
    found_free(&f);
    lw_argv_clear(&s.batch);
    for (size_t i = 0; i < st->nmissing; i++)
        /* Watched from now on; read once more, as job.json may have come
         * between the read and the watch. */
        if (spool_watch_job_dir(t->w->watch, s.sp->dir, st->missing[i]) == 1)
            spool_pending_name(t, st->spool, st->missing[i]);
    if (st->failed) {
        /* Said once: the periodic rescan meets a missing spool each time. */
        lw_log_about(first_report(t, s.sp->dir, "", st->err) ? LW_LOG_ERROR : LW_LOG_DEBUG,
                     "spool.scan", (lw_log_facts){.tenant = t->cfg->name}, "spool %s: %s",
                     s.sp->dir, st->err);
        /* A spool that cannot be read (yet): the periodic rescan tries
         * again; out of memory: a full scan once there is some. */
        if (st->names)
            t->spool_pending |= SPOOL_RESCAN;
    }
    if (!st->names)
        lw_log_about(st->loud ? LW_LOG_INFO : LW_LOG_DEBUG, "spool.scan",
                     (lw_log_facts){.tenant = t->cfg->name},
                     "spool %s (kind %s): %zu pending job(s), %zu skipped", s.sp->dir, s.sp->kind,
                     said, s.skipped);
    worker_kick(t->w);
out:
    scan_task_free(st);
    tenant_unref(t);
}

static scan_task *task_new(tenant *t, size_t spool)
{
    scan_task *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    if (!(st->dir = strdup(t->cfg->spools[spool].dir))) {
        free(st);
        return NULL;
    }
    st->io.work = scan_work;
    st->io.done = scan_done;
    st->spool = spool;
    st->t = t;
    st->max_payload = t->w->opt->common.max_payload;
    return st;
}

static void submit(tenant *t, scan_task *st)
{
    tenant_ref(t);
    t->spool_scanning++;
    spool_io_submit(t->w->spool_io, &st->io, 0);
}

void spool_scan_tenant(tenant *t)
{
    /* Jobs are routed by the partition count in force: not before it is
     * known (a scan by the registry's count put one job in two keyspaces). */
    if (t->spool_scanning || !lw_redis_is_ready(t->link->r) || t->nparts == 0)
        return;
    if (t->spool_pending && !t->spool_inflight &&
        (!t->spool_retry_at || lw_mono_ms() >= t->spool_retry_at)) {
        int loud = (t->spool_pending & SPOOL_RESCAN_LOUD) != 0;
        t->spool_pending = 0;
        spool_pending_clear(t); /* the full scan reads them too */
        for (size_t i = 0; i < t->cfg->nspools; i++) {
            scan_task *st = task_new(t, i);
            if (!st) {
                t->spool_pending |= SPOOL_RESCAN;
                continue;
            }
            st->loud = loud;
            submit(t, st);
        }
        return;
    }
    if (!t->npend)
        return;
    /* One task per spool with names, the names in the order seen. */
    for (size_t i = 0; i < t->cfg->nspools; i++) {
        scan_task *st = NULL;
        for (size_t k = 0; k < t->npend; k++) {
            if (t->pend_spool[k] != i || !t->pend_names[k])
                continue;
            if (!st && !(st = task_new(t, i)))
                break;
            if (lw_grow((void **)&st->names, &st->ncap, st->nnames, sizeof *st->names))
                break;
            st->names[st->nnames++] = t->pend_names[k];
            t->pend_names[k] = NULL;
        }
        if (st)
            submit(t, st);
    }
    for (size_t k = 0; k < t->npend; k++)
        if (t->pend_names[k])
            t->spool_pending |= SPOOL_RESCAN; /* out of memory for it */
    spool_pending_clear(t);
}

/*
 * queue_stats.c — the queue gauges of /metrics, read by each worker itself
 * (no leader: every worker scraped reports the tenants and queues it
 * serves; PromQL takes `max by (tenant, queue)` across workers).
 *
 * Every QSTATS_EVERY_MS a round reads each tenant struct (partition) the
 * worker serves, on that tenant's own link, with plain commands, pipelined
 * and asynchronous -- the loop never waits for them, and nothing of the
 * claim/finish path depends on them:
 *
 *   stage 1  TIME; HMGET P stats queued:Q scheduled:Q ... (every queue);
 *            SMEMBERS P paused; per queue ZCARD P active:Q and
 *            LRANGE P ready:Q 0 QSTATS_PEEK-1
 *   stage 2  per queue with entries: HMGET P job:HEAD status enqueued queued_at
 *            run_at
 *   stage 3  only where the head is a tombstone (a job cancelled, expired or
 *            deleted while queued): the same HMGET for the other entries read
 *
 * The oldest runnable job is the first entry of ready:Q whose record is
 * `queued`, aged from when it became runnable, against Redis's TIME: its
 * `queued_at` (set by `lanework retry`, a hand-back, a lost lease) or else
 * `enqueued`, or its `run_at` (the end of a delay or backoff) when later --
 * the start claim.lua's wait_ms counts from.
 * Past QSTATS_PEEK tombstones it is unknown and its series left out.
 *
 * Bounded: at most QSTATS_WINDOW tenant structs are read at once (a round
 * over many tenants proceeds as their replies come back), one read per
 * tenant struct, and a round starts only when the previous one ended. A
 * read that fails (lost connection, error reply) keeps the previous values,
 * which stop being shown once older than QSTATS_STALE_MS: a gauge is never
 * older than that.
 *
 * Only while someone scrapes: no --http, no reads; and once /metrics has
 * not been asked for QSTATS_IDLE_MS, the rounds stop until the next scrape
 * (which then finds no queue gauges, or old ones dropped as stale, and
 * starts a round at once). Kubernetes probes ask /healthz, not /metrics: a
 * fleet without Prometheus pays nothing.
 */
#include "queue_stats.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "keys.h"
#include "metrics.h"
#include "tenants.h"
#include "timefmt.h"

#define QSTATS_EVERY_MS 5000
#define QSTATS_STALE_MS (3 * QSTATS_EVERY_MS)
#define QSTATS_IDLE_MS 600000
#define QSTATS_WINDOW 16
#define QSTATS_PEEK 16

struct queue_stats {
    worker *w;
    struct event *timer;
    tenant **round; /* the round's tenant structs, each holding a reference */
    size_t nround, next;
    int inflight; /* reads of the round in flight */
    int64_t round_mono;
};

typedef struct qhead {
    char *ids[QSTATS_PEEK]; /* owned: ready:Q's first entries */
    size_t nids;
    int64_t since[QSTATS_PEEK]; /* -1: not queued (a tombstone), or not read */
} qhead;

typedef struct qread {
    worker *w;
    tenant *t; /* holds a reference */
    size_t nq;
    qstat *v; /* owned until it replaces t->qs */
    qhead *h; /* owned, nq entries */
    int stage, pending, failed;
    int64_t now; /* Redis ms */
} qread;

enum { C_TIME, C_STATS, C_PAUSED, C_ACTIVE, C_READY, C_HEAD };

typedef struct qcmd {
    qread *rd;
    int kind;
    size_t qi, k;
} qcmd;

static void round_more(struct queue_stats *qs);

static void read_free(qread *rd)
{
    for (size_t q = 0; q < rd->nq; q++)
        for (size_t k = 0; k < rd->h[q].nids; k++)
            free(rd->h[q].ids[k]);
    free(rd->h);
    free(rd->v);
    free(rd);
}

static void cmd_reply(lw_redis *r, redisReply *reply, void *ud);

/* Sends one command for rd; a failure to send marks the read failed. */
static void qsend(qread *rd, lw_argv *a, int kind, size_t qi, size_t k)
{
    qcmd *c = malloc(sizeof *c);
    if (!c) {
        rd->failed = 1;
        return;
    }
    *c = (qcmd){.rd = rd, .kind = kind, .qi = qi, .k = k};
    if (lw_redis_command(rd->t->link->r, a, cmd_reply, c)) {
        free(c);
        rd->failed = 1;
        return;
    }
    rd->pending++;
}

static void send_head(qread *rd, size_t q, size_t k)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_argv_adds(&a, "HMGET");
    lw_argv_addkey(&a, rd->t->prefix, "job:", rd->h[q].ids[k]);
    lw_argv_adds(&a, "status");
    lw_argv_adds(&a, "enqueued");
    lw_argv_adds(&a, "queued_at");
    lw_argv_adds(&a, "run_at");
    qsend(rd, &a, C_HEAD, q, k);
    lw_argv_clear(&a);
}

static int64_t int_of(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return 0;
}

/* The first queued entry read of queue q: its age, 0 when none waits, -1
 * when only tombstones were seen among QSTATS_PEEK entries. */
static int64_t oldest_of(const qread *rd, size_t q)
{
    const qhead *h = &rd->h[q];
    for (size_t k = 0; k < h->nids; k++)
        if (h->since[k] >= 0)
            return rd->now > h->since[k] ? rd->now - h->since[k] : 0;
    return h->nids == QSTATS_PEEK ? -1 : 0;
}

static void read_done(qread *rd)
{
    worker *w = rd->w;
    tenant *t = rd->t;
    t->qs_inflight = 0;
    if (!rd->failed) {
        for (size_t q = 0; q < rd->nq; q++)
            rd->v[q].oldest_ms = oldest_of(rd, q);
        free(t->qs);
        t->qs = rd->v;
        rd->v = NULL;
        t->qs_mono = lw_mono_ms();
    }
    read_free(rd);
    tenant_unref(t);
    if (w->qstats) {
        w->qstats->inflight--;
        round_more(w->qstats);
    }
}

/* Every reply of a stage came: send the next stage, or finish. */
static void stage_next(qread *rd)
{
    if (rd->failed) {
        read_done(rd);
        return;
    }
    rd->stage++;
    for (size_t q = 0; q < rd->nq; q++) {
        qhead *h = &rd->h[q];
        if (rd->stage == 2 && h->nids > 0)
            send_head(rd, q, 0);
        else if (rd->stage == 3 && h->nids > 1 && h->since[0] < 0)
            for (size_t k = 1; k < h->nids; k++)
                send_head(rd, q, k);
    }
    if (!rd->pending)
        read_done(rd);
}

static void cmd_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    qcmd *c = ud;
    qread *rd = c->rd;
    size_t q = c->qi;
    rd->pending--;
    if (!reply) {
        rd->failed = 1;
    } else if (reply->type == REDIS_REPLY_ERROR && c->kind != C_HEAD && c->kind != C_PAUSED) {
        /* An unreadable job record, or a paused set of another type
         * (which pauses nothing: claim.lua), is fsck's to report: it only
         * does not count. Anything else spoils the read. */
        tenant_redis_error(rd->t, "reading the queue gauges", reply);
        rd->failed = 1;
    } else {
        switch (c->kind) {
        case C_TIME:
            if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
                rd->now = int_of(reply->element[0]) * 1000 + int_of(reply->element[1]) / 1000;
            else
                rd->failed = 1;
            break;
        case C_STATS:
            if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 * rd->nq)
                for (size_t i = 0; i < rd->nq; i++) {
                    rd->v[i].queued = int_of(reply->element[2 * i]);
                    rd->v[i].scheduled = int_of(reply->element[2 * i + 1]);
                }
            else
                rd->failed = 1;
            break;
        case C_PAUSED:
            if (reply->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < reply->elements; i++)
                    for (size_t k = 0; k < rd->nq; k++)
                        if (reply->element[i]->type == REDIS_REPLY_STRING &&
                            !strcmp(reply->element[i]->str, rd->w->opt->queues[k]))
                            rd->v[k].paused = 1;
            break;
        case C_ACTIVE: rd->v[q].active = int_of(reply); break;
        case C_READY:
            if (reply->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < reply->elements && i < QSTATS_PEEK; i++) {
                    if (reply->element[i]->type != REDIS_REPLY_STRING)
                        continue;
                    qhead *h = &rd->h[q];
                    if (!(h->ids[h->nids] = strdup(reply->element[i]->str))) {
                        rd->failed = 1;
                        break;
                    }
                    h->since[h->nids++] = -1;
                }
            break;
        case C_HEAD:
            if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
                reply->element[0]->type == REDIS_REPLY_STRING &&
                !strcmp(reply->element[0]->str, "queued")) {
                /* Runnable since, as claim.lua's wait_ms: queued_at (queued
                 * anew: retry, hand-back, lost) or else the enqueue, and
                 * the end of a delay or backoff (run_at) when later. */
                const redisReply *since = reply->element[2]->type == REDIS_REPLY_STRING
                                              ? reply->element[2]
                                              : reply->element[1];
                int64_t from = int_of(since), run_at = int_of(reply->element[3]);
                rd->h[q].since[c->k] = run_at > from ? run_at : from;
            }
            break;
        }
    }
    free(c);
    if (!rd->pending)
        stage_next(rd);
}

/* Sends stage 1 of a read of t; 0, or -1 when it could not start. */
static int read_start(worker *w, tenant *t)
{
    char *const *queues = w->opt->queues;
    size_t nq = 0;
    while (queues[nq])
        nq++;
    if (!lw_redis_is_ready(t->link->r) || !nq)
        return -1;
    qread *rd = calloc(1, sizeof *rd);
    if (!rd)
        return -1;
    rd->w = w;
    rd->t = t;
    rd->nq = nq;
    rd->stage = 1;
    rd->v = calloc(nq, sizeof *rd->v);
    rd->h = calloc(nq, sizeof *rd->h);
    if (!rd->v || !rd->h) {
        free(rd->v), free(rd->h), free(rd);
        return -1;
    }
    tenant_ref(t);
    t->qs_inflight = 1;
    lw_argv a;
    lw_argv_init(&a);
    lw_argv_adds(&a, "TIME");
    qsend(rd, &a, C_TIME, 0, 0);
    lw_argv_reset(&a);
    lw_argv_adds(&a, "HMGET");
    lw_argv_addkey(&a, t->prefix, "stats", NULL);
    char field[600];
    for (size_t q = 0; q < nq; q++) {
        snprintf(field, sizeof field, "queued:%s", queues[q]);
        lw_argv_adds(&a, field);
        snprintf(field, sizeof field, "scheduled:%s", queues[q]);
        lw_argv_adds(&a, field);
    }
    qsend(rd, &a, C_STATS, 0, 0);
    lw_argv_reset(&a);
    lw_argv_adds(&a, "SMEMBERS");
    lw_argv_addkey(&a, t->prefix, "paused", NULL);
    qsend(rd, &a, C_PAUSED, 0, 0);
    for (size_t q = 0; q < nq; q++) {
        lw_argv_reset(&a);
        lw_argv_adds(&a, "ZCARD");
        lw_argv_addkey(&a, t->prefix, "active:", queues[q]);
        qsend(rd, &a, C_ACTIVE, q, 0);
        lw_argv_reset(&a);
        lw_argv_adds(&a, "LRANGE");
        lw_argv_addkey(&a, t->prefix, "ready:", queues[q]);
        lw_argv_adds(&a, "0");
        lw_argv_addi(&a, QSTATS_PEEK - 1);
        qsend(rd, &a, C_READY, q, 0);
    }
    lw_argv_clear(&a);
    if (!rd->pending) /* nothing could be sent: the callbacks will not run */
        read_done(rd);
    return 0;
}

static void round_end(struct queue_stats *qs)
{
    for (size_t i = 0; i < qs->nround; i++)
        tenant_unref(qs->round[i]);
    free(qs->round);
    qs->round = NULL;
    qs->nround = qs->next = 0;
}

/* Starts reads of the round while fewer than QSTATS_WINDOW are in flight. */
static void round_more(struct queue_stats *qs)
{
    while (qs->next < qs->nround && qs->inflight < QSTATS_WINDOW) {
        tenant *t = qs->round[qs->next++];
        if (t->retired || t->qs_inflight)
            continue;
        qs->inflight++;
        if (read_start(qs->w, t))
            qs->inflight--;
        /* else read_done, maybe already run, took the count back */
    }
    if (qs->next >= qs->nround && qs->round && !qs->inflight)
        round_end(qs);
}

static void round_start(struct queue_stats *qs)
{
    worker *w = qs->w;
    if (qs->round || qs->inflight || w->state == W_EXITING)
        return; /* the previous round is still going */
    size_t n = 0;
    for (tenant *t = w->tenants; t; t = t->next)
        n++;
    if (!n || !(qs->round = calloc(n, sizeof *qs->round)))
        return;
    for (tenant *t = w->tenants; t; t = t->next) {
        tenant_ref(t);
        qs->round[qs->nround++] = t;
    }
    qs->round_mono = lw_mono_ms();
    round_more(qs);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct queue_stats *qs = arg;
    int64_t scraped = qs->w->m.scraped_mono;
    if (scraped && lw_mono_ms() - scraped <= QSTATS_IDLE_MS)
        round_start(qs);
}

int queue_stats_start(worker *w)
{
    struct queue_stats *qs = calloc(1, sizeof *qs);
    if (!qs)
        return -1;
    qs->w = w;
    if (!(qs->timer = event_new(w->base, -1, EV_PERSIST, tick_cb, qs))) {
        free(qs);
        return -1;
    }
    struct timeval tv = {QSTATS_EVERY_MS / 1000, (QSTATS_EVERY_MS % 1000) * 1000};
    event_add(qs->timer, &tv);
    w->qstats = qs;
    return 0;
}

void queue_stats_free(worker *w)
{
    struct queue_stats *qs = w->qstats;
    if (!qs)
        return;
    w->qstats = NULL; /* reads in flight end without going on */
    event_free(qs->timer);
    round_end(qs);
    free(qs);
}

void queue_stats_scraped(worker *w)
{
    int64_t now = lw_mono_ms(), before = w->m.scraped_mono;
    w->m.scraped_mono = now;
    /* The rounds had stopped (or never ran): one now, not at the next tick. */
    if (w->qstats && (!before || now - before > QSTATS_IDLE_MS))
        round_start(w->qstats);
}

/* t's latest read, or NULL when there is none younger than QSTATS_STALE_MS. */
static const qstat *fresh(const tenant *t, int64_t now)
{
    return t->qs && t->qs_mono && now - t->qs_mono <= QSTATS_STALE_MS ? t->qs : NULL;
}

/* a + b, held at the int64 bounds: the counts are the tenant's to write
 * (its ACL user may HSET its stats hash), and partitions add them up. */
static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* Sums queue q over the partitions of lead (the structs following it in
 * the tenant list); 0 when one of them has no fresh read. */
static int sum_parts(const tenant *lead, size_t q, int64_t now, qstat *out)
{
    memset(out, 0, sizeof *out);
    int unknown_oldest = 1;
    for (const tenant *p = lead; p && tenant_lead((tenant *)p) == lead; p = p->next) {
        const qstat *s = fresh(p, now);
        if (!s)
            return 0;
        out->queued = sat_add(out->queued, s[q].queued);
        out->scheduled = sat_add(out->scheduled, s[q].scheduled);
        out->active = sat_add(out->active, s[q].active);
        out->paused |= s[q].paused;
        if (s[q].oldest_ms >= 0) {
            unknown_oldest = 0;
            if (s[q].oldest_ms > out->oldest_ms)
                out->oldest_ms = s[q].oldest_ms;
        }
    }
    if (unknown_oldest)
        out->oldest_ms = -1;
    return 1;
}

int queue_stats_render(worker *w, char **buf, size_t *len, size_t *cap)
{
    char *const *queues = w->opt->queues;
    int64_t now = lw_mono_ms();
    char tq[512], qq[512];
    static const char *const states[3] = {"queued", "scheduled", "active"};
    /* One pass over the series; the oldest family goes to a buffer of its
     * own, appended after (a family's samples stand together). */
    char *ob = NULL;
    size_t olen = 0, ocap = 0;
    int rc = metrics_appendf(
        buf, len, cap,
        "# HELP lanework_queue_jobs Jobs of a tenant queue now, by state (queued, scheduled, active; paused: 1 when the queue is paused), as this worker last read them from Redis.\n"
        "# TYPE lanework_queue_jobs gauge\n");
    rc |= metrics_appendf(
        &ob, &olen, &ocap,
        "# HELP lanework_queue_oldest_seconds Age of the oldest runnable (queued) job of a tenant queue; 0 when none waits.\n"
        "# TYPE lanework_queue_oldest_seconds gauge\n");
    for (tenant *t = w->tenants; t; t = t->next) {
        if (t->lead)
            continue;
        metrics_esc(tq, sizeof tq, t->cfg->name);
        for (size_t q = 0; queues[q]; q++) {
            qstat s;
            if (!sum_parts(t, q, now, &s))
                continue;
            metrics_esc(qq, sizeof qq, queues[q]);
            const int64_t v[4] = {s.queued, s.scheduled, s.active, s.paused};
            for (int i = 0; i < 4; i++)
                rc |= metrics_appendf(
                    buf, len, cap,
                    "lanework_queue_jobs{tenant=\"%s\",queue=\"%s\",state=\"%s\"} %lld\n", tq, qq,
                    i < 3 ? states[i] : "paused", (long long)v[i]);
            if (s.oldest_ms >= 0)
                rc |= metrics_appendf(
                    &ob, &olen, &ocap,
                    "lanework_queue_oldest_seconds{tenant=\"%s\",queue=\"%s\"} %.3f\n", tq, qq,
                    (double)s.oldest_ms / 1000.0);
        }
    }
    rc |= !ob || metrics_appendf(buf, len, cap, "%s", ob);
    free(ob);
    return rc ? -1 : 0;
}

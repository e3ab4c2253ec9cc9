/*
 * cmd_stats.c — `lanework stats [--tenant T]... [--json]`: per tenant and
 * queue, the jobs waiting and running now, how long the oldest runnable one
 * has waited, and the running totals of each outcome; per tenant, the failed
 * jobs kept for `lanework retry`.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "names.h"
#include "partition.h"

static const char USAGE[] =
    "Usage: lanework stats [--tenant T]... [--json]\n"
    "\n"
    "Per tenant and queue, two groups of columns:\n"
    "  now     QUEUED, SCHEDULED (waiting for a delay or a retry backoff), ACTIVE\n"
    "          (running), and OLDEST: how long the job at the head of the queue's\n"
    "          ready list -- the runnable job that has waited longest -- has\n"
    "          waited since its enqueue or `lanework retry` (\"-\": none is\n"
    "          ready; \"?\": none among the first 4096 entries, all tombstones\n"
    "          of ended jobs).\n"
    "  totals  counted since the tenant's first job: SUCCEEDED, FAILED,\n"
    "          CANCELLED, EXPIRED; RETRIED (attempts retried after a failure);\n"
    "          MANUAL (jobs given new attempts by `lanework retry`); LOST\n"
    "          (attempts whose worker died).\n"
    "Below the table, per tenant: the failed jobs kept now (the ones `lanework\n"
    "retry --all-failed` would retry; the FAILED total also counts those whose\n"
    "record has expired). Tenants: those given with --tenant (repeatable), else\n"
    "every tenant of the registry, else every tenant found in Redis (SCAN of\n"
    "NS:{*}:queues on the default Redis; on a Cluster, on every master).\n"
    "Queues: every queue the tenant ever used, and those of its registry entry;\n"
    "a queue paused for the fleet (lanework pause) ends its line with `paused`.\n"
    "\n"
    "  --json   one JSON object: {\"tenants\": {T: {\"failed_kept\": N, \"queues\":\n"
    "           {Q: {\"queued\": N, ..., \"oldest_waiting_s\": S or null,\n"
    "           \"paused\": BOOL}}}}}\n"
    "           (with \"oldest_unknown\": true where the table says \"?\")\n"
    "\n"
    "A partitioned tenant whose partition 0 answers is printed even when other\n"
    "partitions' masters are down: the figures are those of the partitions read,\n"
    "stderr names each one left out (--json: \"unreadable_partitions\": [P...] in\n"
    "the tenant's object), and the exit status is 3.\n"
    "\n"
    "Exit status: 0 printed; 2 usage error or unknown tenant; 3 Redis unreachable\n"
    "or refused (with partitions left out: printed without them).\n";

/* The counters of P stats, by status (or event) name; NOW_COLS of them are
 * current counts, the rest running totals. ACTIVE is ZCARD active:Q. */
enum { NCOLS = 10, NOW_COLS = 3, COL_ACTIVE = 2 };
static const char *const COLS[NCOLS] = {"queued",         "scheduled", "active",  "succeeded",
                                        "failed",         "cancelled", "expired", "retried",
                                        "retried_manual", "lost"};
static const char *const HEAD[NCOLS] = {"QUEUED",    "SCHEDULED", "ACTIVE",  "SUCCEEDED", "FAILED",
                                        "CANCELLED", "EXPIRED",   "RETRIED", "MANUAL",    "LOST"};
/* Ready-list entries looked at for the oldest waiting job, per page and
 * in all: entries at the head may be tombstones (finished jobs left
 * behind, DESIGN section 2). */
#define OLDEST_PEEK 64
#define OLDEST_SCAN 4096
#define OLDEST_UNKNOWN (-2) /* oldest_ms: no queued job among the first OLDEST_SCAN */

typedef struct qrow {
    char *queue;
    long long v[NCOLS];
    long long oldest_ms; /* -1: no job is ready; OLDEST_UNKNOWN */
    int paused;          /* in the paused set (lanework pause) */
} qrow;

typedef struct trow {
    char *tenant;
    qrow *q;
    size_t nq;
    long long failed_kept;
    /* Partitions that could not be read (their master down or frozen):
     * the figures leave them out. missing_why[i] is owned. */
    int missing[LW_PARTITIONS_MAX];
    char *missing_why[LW_PARTITIONS_MAX];
    int nmissing;
} trow;

static qrow *queue_row(trow *t, const char *q, size_t len)
{
    for (size_t i = 0; i < t->nq; i++)
        if (strlen(t->q[i].queue) == len && memcmp(t->q[i].queue, q, len) == 0)
            return &t->q[i];
    qrow *nq = realloc(t->q, (t->nq + 1) * sizeof *nq);
    if (!nq)
        return NULL;
    t->q = nq;
    qrow *row = &t->q[t->nq++];
    memset(row, 0, sizeof *row);
    row->oldest_ms = -1;
    row->queue = strndup(q, len);
    if (!row->queue) {
        t->nq--;
        return NULL;
    }
    return row;
}

static int cmp_queue(const void *a, const void *b)
{
    return strcmp(((const qrow *)a)->queue, ((const qrow *)b)->queue);
}

/* Redis's clock in ms (the one every record's times are on), or -1. */
static int64_t redis_now(cli_tenant *t)
{
    const char *tm[1] = {"TIME"};
    redisReply *r = cli_cmd(t->conn, 1, tm);
    int64_t now = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
        now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
              strtoll(r->element[1]->str, NULL, 10) / 1000;
    else if (r)
        cli_redis_err(t->conn, r, NULL);
    if (r)
        freeReplyObject(r);
    return now;
}

/* The oldest runnable job of queue i: the first entry of ready:Q whose
 * record is queued -- entries may be tombstones (cancelled, expired), so
 * it pages on, OLDEST_SCAN entries at most (then "unknown"). Fills
 * oldest_ms. */
static int read_oldest_of(cli_tenant *t, qrow *q, int64_t now)
{
    char key[CLI_KEY_MAX], from[24], to[24];
    for (long start = 0; start < OLDEST_SCAN; start += OLDEST_PEEK) {
        lw_key(key, sizeof key, t->prefix, "ready:", q->queue);
        snprintf(from, sizeof from, "%ld", start);
        snprintf(to, sizeof to, "%ld", start + OLDEST_PEEK - 1);
        const char *lr[4] = {"LRANGE", key, from, to};
        redisReply *ids = cli_cmd(t->conn, 4, lr);
        if (!ids)
            return CLI_REDIS;
        if (ids->type != REDIS_REPLY_ARRAY) {
            int rc = cli_redis_err(t->conn, ids, NULL);
            freeReplyObject(ids);
            return rc;
        }
        int rc = CLI_OK;
        size_t sent = 0;
        for (size_t k = 0; k < ids->elements && rc == CLI_OK; k++) {
            if (ids->element[k]->type != REDIS_REPLY_STRING)
                continue;
            lw_key(key, sizeof key, t->prefix, "job:", ids->element[k]->str);
            /* Runnable since: queued_at (queued anew by `lanework retry`, a
             * hand-back, a lost lease) or the enqueue, and run_at (the end
             * of a delay or backoff) when later -- as the worker's gauge. */
            const char *hm[6] = {"HMGET", key, "status", "enqueued", "queued_at", "run_at"};
            if (cli_append(t->conn, 6, hm))
                rc = CLI_REDIS;
            else
                sent++;
        }
        for (size_t k = 0; k < sent; k++) {
            redisReply *r = cli_next_reply(t->conn);
            if (!r) {
                rc = CLI_REDIS;
                break;
            }
            /* An unreadable record (not a hash) is for fsck to report. */
            if (q->oldest_ms < 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
                cli_reply_is(r->element[0], "queued") &&
                r->element[1]->type == REDIS_REPLY_STRING) {
                const redisReply *since =
                    r->element[2]->type == REDIS_REPLY_STRING ? r->element[2] : r->element[1];
                long long at = strtoll(since->str, NULL, 10);
                if (r->element[3]->type == REDIS_REPLY_STRING) {
                    long long run_at = strtoll(r->element[3]->str, NULL, 10);
                    if (run_at > at)
                        at = run_at;
                }
                q->oldest_ms = now > at ? now - at : 0;
            }
            freeReplyObject(r);
        }
        size_t got = ids->elements;
        freeReplyObject(ids);
        if (rc || q->oldest_ms >= 0 || got < OLDEST_PEEK)
            return rc;
    }
    q->oldest_ms = OLDEST_UNKNOWN;
    return CLI_OK;
}

/* The older of two partitions' oldest waits: a known age over "none" and
 * over "unknown" (then it is at least that old). */
static long long older(long long a, long long b)
{
    if (a >= 0 || b >= 0)
        return a > b ? a : b;
    return a == OLDEST_UNKNOWN || b == OLDEST_UNKNOWN ? OLDEST_UNKNOWN : -1;
}

static int read_oldest(cli_tenant *t, trow *tr, int64_t now)
{
    for (size_t i = 0; i < tr->nq; i++) {
        long long before = tr->q[i].oldest_ms; /* earlier partitions' */
        tr->q[i].oldest_ms = -1;
        int rc = read_oldest_of(t, &tr->q[i], now);
        tr->q[i].oldest_ms = older(before, tr->q[i].oldest_ms);
        if (rc)
            return rc;
    }
    return CLI_OK;
}

/* The failed jobs kept now: members of the failed index younger than the
 * tenant's keep_failed (as the workers published it), the ones retry
 * --all-failed would take (older ones wait for the next trim). */
static int read_failed_kept(cli_tenant *t, trow *tr, int64_t now)
{
    char key[CLI_KEY_MAX], min[32];
    lw_key(key, sizeof key, t->prefix, "settings", NULL);
    const char *hg[3] = {"HGET", key, "keep_failed"};
    redisReply *r = cli_cmd(t->conn, 3, hg);
    if (!r)
        return CLI_REDIS;
    int64_t keep_s = t->set.keep_failed_s;
    if (r->type == REDIS_REPLY_STRING)
        keep_s = strtoll(r->str, NULL, 10);
    else if (r->type != REDIS_REPLY_NIL) {
        int rc = cli_redis_err(t->conn, r, NULL);
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    snprintf(min, sizeof min, "%lld", (long long)(now - keep_s * 1000));
    lw_key(key, sizeof key, t->prefix, "failed", NULL);
    const char *zc[4] = {"ZCOUNT", key, min, "+inf"};
    r = cli_cmd(t->conn, 4, zc);
    if (!r)
        return CLI_REDIS;
    int rc = CLI_OK;
    if (r->type == REDIS_REPLY_INTEGER)
        tr->failed_kept += r->integer;
    else
        rc = cli_redis_err(t->conn, r, NULL);
    freeReplyObject(r);
    return rc;
}

/* What only a reading of "now" tells: the oldest waits, the failures kept. */
static int read_now(cli_tenant *t, trow *tr)
{
    int64_t now = redis_now(t);
    if (now < 0)
        return CLI_REDIS;
    int rc = read_oldest(t, tr, now);
    return rc ? rc : read_failed_kept(t, tr, now);
}

/* Adds one partition's numbers (t: connected) to tr. Returns 0 or an exit
 * status. */
static int read_part(cli *c, cli_tenant *tp, trow *tr)
{
    cli_tenant t = *tp;
    int rc;
    char kq[CLI_KEY_MAX], ks[CLI_KEY_MAX], ka[CLI_KEY_MAX], kp[CLI_KEY_MAX];
    lw_key(kq, sizeof kq, t.prefix, "queues", NULL);
    lw_key(ks, sizeof ks, t.prefix, "stats", NULL);
    lw_key(kp, sizeof kp, t.prefix, "paused", NULL);
    const char *smembers[2] = {"SMEMBERS", kq}, *hgetall[2] = {"HGETALL", ks};
    const char *paused[2] = {"SMEMBERS", kp};
    if (cli_append(t.conn, 2, smembers) || cli_append(t.conn, 2, hgetall) ||
        cli_append(t.conn, 2, paused))
        return CLI_REDIS;
    redisReply *qs = cli_next_reply(t.conn);
    redisReply *st = qs ? cli_next_reply(t.conn) : NULL;
    redisReply *ps = st ? cli_next_reply(t.conn) : NULL;
    rc = CLI_OK;
    if (!qs || !st || !ps) {
        rc = CLI_REDIS;
        goto out;
    }
    if (qs->type != REDIS_REPLY_ARRAY || st->type != REDIS_REPLY_ARRAY) {
        rc = cli_redis_err(t.conn, qs->type != REDIS_REPLY_ARRAY ? qs : st, NULL);
        goto out;
    }
    /* A paused key of another type pauses nothing (claim.lua; fsck says). */
    for (size_t i = 0; ps->type == REDIS_REPLY_ARRAY && i < ps->elements; i++) {
        qrow *row = ps->element[i]->type == REDIS_REPLY_STRING
                        ? queue_row(tr, ps->element[i]->str, ps->element[i]->len)
                        : NULL;
        if (row)
            row->paused = 1;
    }
    for (size_t i = 0; i < qs->elements; i++)
        if (qs->element[i]->type == REDIS_REPLY_STRING &&
            !queue_row(tr, qs->element[i]->str, qs->element[i]->len))
            rc = CLI_USAGE;
    for (size_t i = 0; t.reg && i < t.reg->nqueues; i++)
        if (!queue_row(tr, t.reg->queues[i].name, strlen(t.reg->queues[i].name)))
            rc = CLI_USAGE;
    for (size_t i = 0; i + 1 < st->elements; i += 2) {
        const redisReply *f = st->element[i], *v = st->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        const char *colon = memchr(f->str, ':', f->len);
        if (!colon)
            continue;
        size_t slen = (size_t)(colon - f->str);
        for (int k = 0; k < NCOLS; k++) {
            if (k == COL_ACTIVE || strlen(COLS[k]) != slen || memcmp(COLS[k], f->str, slen) != 0)
                continue;
            qrow *row = queue_row(tr, colon + 1, f->len - slen - 1);
            if (row)
                row->v[k] += strtoll(v->str, NULL, 10);
        }
    }
    if (rc) {
        cli_err(c->cmd, "out of memory");
        goto out;
    }
    if (tr->nq) /* a tenant with no queue yet has no array: qsort(NULL) is undefined */
        qsort(tr->q, tr->nq, sizeof *tr->q, cmp_queue);
    for (size_t i = 0; i < tr->nq; i++) {
        lw_key(ka, sizeof ka, t.prefix, "active:", tr->q[i].queue);
        const char *zcard[2] = {"ZCARD", ka};
        if (cli_append(t.conn, 2, zcard)) {
            rc = CLI_REDIS;
            goto out;
        }
    }
    for (size_t i = 0; i < tr->nq; i++) {
        redisReply *r = cli_next_reply(t.conn);
        if (!r) {
            rc = CLI_REDIS;
            goto out;
        }
        if (r->type == REDIS_REPLY_INTEGER)
            tr->q[i].v[COL_ACTIVE] += r->integer;
        else if (rc == CLI_OK)
            rc = cli_redis_err(t.conn, r, NULL);
        freeReplyObject(r);
    }
    if (rc == CLI_OK)
        rc = read_now(&t, tr);
out:
    if (qs)
        freeReplyObject(qs);
    if (st)
        freeReplyObject(st);
    if (ps)
        freeReplyObject(ps);
    return rc;
}

static void trow_clear(trow *tr)
{
    for (size_t j = 0; j < tr->nq; j++)
        free(tr->q[j].queue);
    free(tr->q);
    for (int i = 0; i < tr->nmissing; i++)
        free(tr->missing_why[i]);
    free(tr->tenant);
    memset(tr, 0, sizeof *tr);
}

/* Adds partition `from`'s numbers to tr. Returns 0 or CLI_USAGE (OOM,
 * printed). */
static int trow_add(trow *tr, const trow *from)
{
    for (size_t i = 0; i < from->nq; i++) {
        const qrow *f = &from->q[i];
        qrow *row = queue_row(tr, f->queue, strlen(f->queue));
        if (!row) {
            cli_err("stats", "out of memory");
            return CLI_USAGE;
        }
        for (int k = 0; k < NCOLS; k++)
            row->v[k] += f->v[k];
        row->oldest_ms = older(row->oldest_ms, f->oldest_ms);
        row->paused |= f->paused;
    }
    tr->failed_kept += from->failed_kept;
    if (tr->nq)
        qsort(tr->q, tr->nq, sizeof *tr->q, cmp_queue);
    return CLI_OK;
}

/* Reads partition pt into a row of its own, added to tr only once whole: a
 * partition lost halfway leaves nothing behind. The queues tr knows are
 * looked at too (ACTIVE, OLDEST), as for every partition. Returns 0 or an
 * exit status. */
static int read_part_whole(cli *c, cli_tenant *pt, trow *tr)
{
    trow mine;
    memset(&mine, 0, sizeof mine);
    int rc = CLI_OK;
    for (size_t i = 0; rc == CLI_OK && i < tr->nq; i++)
        if (!queue_row(&mine, tr->q[i].queue, strlen(tr->q[i].queue))) {
            cli_err(c->cmd, "out of memory");
            rc = CLI_USAGE;
        }
    if (rc == CLI_OK)
        rc = read_part(c, pt, &mine);
    if (rc == CLI_OK)
        rc = trow_add(tr, &mine);
    trow_clear(&mine);
    return rc;
}

/* Notes partition p as unreadable in tr (its line is printed after the
 * figures). Returns 0 or CLI_USAGE (OOM). */
static int note_missing(trow *tr, int p, const char *why)
{
    char *w = strdup(why);
    if (!w) {
        cli_err("stats", "out of memory");
        return CLI_USAGE;
    }
    tr->missing[tr->nmissing] = p;
    tr->missing_why[tr->nmissing++] = w;
    return CLI_OK;
}

/* Reads one tenant's numbers into tr, summed over its partitions. A
 * partition that cannot be read (an unpartitioned tenant's only one too)
 * is noted in tr and the others are summed (partition 0 too: only the
 * count in force must come from it). Returns 0, CLI_REDIS when some
 * partition is missing, or another exit status. */
static int read_tenant(cli *c, const char *name, trow *tr)
{
    cli_tenant t, p0;
    char why0[256];
    int rc = cli_tenant_get(c, name, &t);
    if (rc)
        return rc;
    /* Partition 0 (the tenant itself, unpartitioned) unreadable: the tenant
     * is left out and named, the others printed. */
    rc = cli_part_open(c, &t, 0, &p0, why0, sizeof why0);
    if (rc == 0)
        rc = cli_partitions_quiet(c, &t, why0, sizeof why0);
    if (rc == CLI_REDIS)
        return note_missing(tr, 0, why0) ? CLI_USAGE : CLI_REDIS;
    if (rc)
        return rc;
    if (t.nparts == 1) {
        /* Read whole, and a failure (a key of the wrong type its own Redis
         * user wrote, a reply lost) leaves this tenant out, named, not
         * every other tenant of the command. */
        if ((rc = read_part_whole(c, &t, tr)) != CLI_REDIS)
            return rc;
        cli_part_why(&t, why0, sizeof why0);
        return note_missing(tr, 0, why0) ? CLI_USAGE : CLI_REDIS;
    }
    for (int p = 0; rc == 0 && p < t.nparts; p++) {
        cli_tenant pt;
        char why[256];
        int got = cli_part_open(c, &t, p, &pt, why, sizeof why);
        if (got == 0 && (got = read_part_whole(c, &pt, tr)) == CLI_REDIS)
            cli_part_why(&pt, why, sizeof why);
        if (got == CLI_REDIS)
            rc = note_missing(tr, p, why);
        else
            rc = got;
    }
    return rc ? rc : tr->nmissing ? CLI_REDIS : CLI_OK;
}

/* One line per partition the figures leave out. */
static void print_missing(cli *c, const trow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < rows[i].nmissing; k++)
            cli_part_unreadable(c, rows[i].tenant, rows[i].missing[k], rows[i].missing_why[k],
                                "the figures above leave it out");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the tenant named by `key` (NS:{T}:queues) to names[0..*n) (malloc'ed,
 * grown here), when its name is safe. Returns 0 or CLI_USAGE (OOM). */
static int add_found(const redisReply *key, size_t nslen, char ***names, size_t *n)
{
    if (key->type != REDIS_REPLY_STRING || key->len < nslen + 10)
        return 0;
    size_t tlen = key->len - nslen - 2 - 8;
    char *name = strndup(key->str + nslen + 2, tlen);
    char **nn = name ? realloc(*names, (*n + 1) * sizeof *nn) : NULL;
    if (!nn) {
        free(name);
        cli_err("stats", "out of memory");
        return CLI_USAGE;
    }
    *names = nn;
    if (lw_name_is_safe(name))
        nn[(*n)++] = name;
    else
        free(name);
    return 0;
}

/* SCANs one server for NS:{T}:queues, adding each tenant to names. */
static int scan_node(cli_conn *k, const char *pattern, size_t nslen, char ***names, size_t *n)
{
    char cursor[32] = "0";
    int rc = CLI_OK;
    do {
        const char *scan[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        redisReply *r = cli_cmd(k, 6, scan);
        if (!r)
            return CLI_REDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = cli_redis_err(k, r, NULL);
            freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; rc == CLI_OK && i < keys->elements; i++)
            rc = add_found(keys->element[i], nslen, names, n);
        freeReplyObject(r);
    } while (rc == CLI_OK && strcmp(cursor, "0") != 0);
    return rc;
}

/* Finds the tenants that have keys on the default Redis -- on a Cluster,
 * on every master (each holds its slots' tenants) -- by SCAN for
 * NS:{T}:queues. Fills a sorted, de-duplicated, malloc'ed list. */
static int discover(cli *c, char ***out, size_t *nout)
{
    cli_conn *nodes[CLI_CONNS_MAX];
    size_t nnodes;
    int rc = cli_nodes(c, NULL, nodes, &nnodes);
    if (rc)
        return rc;
    char pattern[CLI_KEY_MAX];
    snprintf(pattern, sizeof pattern, "%s:{*}:queues", c->cfg.ns);
    size_t nslen = strlen(c->cfg.ns);
    char **names = NULL;
    size_t n = 0;
    for (size_t i = 0; rc == CLI_OK && i < nnodes; i++)
        rc = scan_node(nodes[i], pattern, nslen, &names, &n);
    if (n > 0)
        qsort(names, n, sizeof *names, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && strcmp(names[u - 1], names[i]) == 0)
            free(names[i]);
        else
            names[u++] = names[i];
    }
    *out = names;
    *nout = u;
    return rc;
}

/* "-", or a duration a glance can read: 42s, 7m, 3h, 2d. */
static void fmt_age(long long ms, char *out, size_t len)
{
    long long s = ms / 1000;
    if (ms == OLDEST_UNKNOWN)
        snprintf(out, len, "?");
    else if (ms < 0)
        snprintf(out, len, "-");
    else if (s < 120)
        snprintf(out, len, "%llds", s);
    else if (s < 7200)
        snprintf(out, len, "%lldm", s / 60);
    else if (s < 172800)
        snprintf(out, len, "%lldh", s / 3600);
    else
        snprintf(out, len, "%lldd", s / 86400);
}

static void print_text(const trow *rows, size_t n)
{
    /* Columns: the NOW_COLS current counts, OLDEST, then the totals. */
    int wt = 6, wq = 5, w[NCOLS], wo = 6;
    char age[32];
    for (int k = 0; k < NCOLS; k++)
        w[k] = (int)strlen(HEAD[k]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rows[i].nq; j++) {
            if ((int)strlen(rows[i].tenant) > wt)
                wt = (int)strlen(rows[i].tenant);
            if ((int)strlen(rows[i].q[j].queue) > wq)
                wq = (int)strlen(rows[i].q[j].queue);
            for (int k = 0; k < NCOLS; k++) {
                int l = snprintf(NULL, 0, "%lld", rows[i].q[j].v[k]);
                if (l > w[k])
                    w[k] = l;
            }
        }
    }
    /* A first header line puts "now" over the current counts and OLDEST,
     * "totals" over the rest. */
    int now_width = wo;
    for (int k = 0; k < NOW_COLS; k++)
        now_width += w[k] + 2;
    printf("%-*s  %-*s  %-*s  %s\n", wt, "", wq, "", now_width, "now", "totals");
    printf("%-*s  %-*s", wt, "TENANT", wq, "QUEUE");
    for (int k = 0; k < NCOLS; k++) {
        printf("  %*s", w[k], HEAD[k]);
        if (k == NOW_COLS - 1)
            printf("  %*s", wo, "OLDEST");
    }
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rows[i].nq; j++) {
            printf("%-*s  %-*s", wt, rows[i].tenant, wq, rows[i].q[j].queue);
            for (int k = 0; k < NCOLS; k++) {
                printf("  %*lld", w[k], rows[i].q[j].v[k]);
                if (k == NOW_COLS - 1) {
                    fmt_age(rows[i].q[j].oldest_ms, age, sizeof age);
                    printf("  %*s", wo, age);
                }
            }
            fputs(rows[i].q[j].paused ? "  paused\n" : "\n", stdout);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!(rows[i].nmissing && rows[i].missing[0] == 0)) /* partition 0 read */
            printf("%s: %lld failed job(s) kept (lanework retry --all-failed)\n", rows[i].tenant,
                   rows[i].failed_kept);
}

/* The --json object of rows[0..n): caller frees with cJSON_Delete; NULL on
 * OOM. */
static cJSON *rows_json(const trow *rows, size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *tenants = root ? cJSON_AddObjectToObject(root, "tenants") : NULL;
    int ok = tenants != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(tenants, rows[i].tenant);
        cJSON *qs = t && cJSON_AddNumberToObject(t, "failed_kept", (double)rows[i].failed_kept)
                        ? cJSON_AddObjectToObject(t, "queues")
                        : NULL;
        ok = qs != NULL;
        for (size_t j = 0; ok && j < rows[i].nq; j++) {
            cJSON *q = cJSON_AddObjectToObject(qs, rows[i].q[j].queue);
            ok = q != NULL;
            for (int k = 0; ok && k < NCOLS; k++)
                ok = cJSON_AddNumberToObject(q, COLS[k], (double)rows[i].q[j].v[k]) != NULL;
            long long oldest = rows[i].q[j].oldest_ms;
            if (ok)
                ok = (oldest < 0 ? cJSON_AddNullToObject(q, "oldest_waiting_s")
                                 : cJSON_AddNumberToObject(q, "oldest_waiting_s",
                                                           (double)oldest / 1000.0)) != NULL;
            if (ok && oldest == OLDEST_UNKNOWN)
                ok = cJSON_AddTrueToObject(q, "oldest_unknown") != NULL;
            if (ok)
                ok = cJSON_AddBoolToObject(q, "paused", rows[i].q[j].paused) != NULL;
        }
        /* Only when some partition is missing, as "oldest_unknown": the
         * shape of a whole answer is unchanged. */
        if (ok && rows[i].nmissing)
            ok = cJSON_AddItemToObject(t, "unreadable_partitions",
                                       cJSON_CreateIntArray(rows[i].missing, rows[i].nmissing));
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int print_json(const trow *rows, size_t n)
{
    cJSON *root = rows_json(rows, n);
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        cli_err("stats", "out of memory");
        return CLI_USAGE;
    }
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}

int cli_stats_tenants(cli *c, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    int rc = cli_registry(c);
    if (rc)
        return rc;
    if (!c->reg)
        return discover(c, names, n);
    *names = calloc(c->reg->ntenants + 1, sizeof **names);
    if (!*names) {
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    for (size_t i = 0; i < c->reg->ntenants; i++)
        (*names)[(*n)++] = cli_strdup(c->reg->tenants[i].name);
    return CLI_OK;
}

/* Reads tenants[0..n) into rows (their count in *nrows, to clear even
 * after an error). A tenant with partitions missing is read as far as it
 * can be, and sets *partial. Returns 0 or the first other exit status. */
static int read_rows(cli *c, const char *const *tenants, size_t n, trow *rows, size_t *nrows,
                     int *partial)
{
    for (size_t i = 0; i < n; i++) {
        rows[i].tenant = cli_strdup(tenants[i]);
        (*nrows)++;
        int rc = read_tenant(c, tenants[i], &rows[i]);
        if (rc == CLI_REDIS && rows[i].nmissing)
            *partial = 1;
        else if (rc != 0)
            return rc;
    }
    return CLI_OK;
}

int cli_stats_json(cli *c, const char *const *tenants, size_t n, cJSON **out)
{
    return cli_stats_json_gaps(c, tenants, n, out, NULL);
}

int cli_stats_json_gaps(cli *c, const char *const *tenants, size_t n, cJSON **out, cli_gaps *g)
{
    *out = NULL;
    trow *rows = calloc(n + 1, sizeof *rows);
    if (!rows) {
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    int partial = 0;
    size_t nrows = 0;
    int rc = read_rows(c, tenants, n, rows, &nrows, &partial);
    if (rc == CLI_OK && !(*out = rows_json(rows, nrows))) {
        cli_err(c->cmd, "out of memory");
        rc = CLI_USAGE;
    }
    for (int k = 0; g && nrows > 0 && k < rows[0].nmissing; k++)
        cli_gap_add(g, rows[0].missing[k], rows[0].missing_why[k]);
    if (rc == CLI_OK && partial) {
        print_missing(c, rows, nrows);
        rc = CLI_REDIS;
    }
    for (size_t i = 0; i < nrows; i++)
        trow_clear(&rows[i]);
    free(rows);
    return rc;
}

int cmd_stats(cli *c, int argc, char **argv)
{
    int json = 0;
    size_t ntenants = 0;
    const char **tenants = calloc((size_t)argc + 1, sizeof *tenants);
    char **found = NULL;
    size_t nfound = 0;
    trow *rows = NULL;
    size_t nrows = 0;
    if (!tenants)
        return CLI_USAGE;
    const cli_opt opts[] = {{"--tenant", NULL, NULL, tenants, &ntenants},
                            {"--json", NULL, &json, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        goto out;
    if (ntenants == 0) {
        if ((rc = cli_registry(c)) != 0)
            goto out;
        if (c->reg) {
            for (size_t i = 0; i < c->reg->ntenants; i++)
                tenants[ntenants++] = c->reg->tenants[i].name;
        } else {
            if ((rc = discover(c, &found, &nfound)) != 0)
                goto out;
            free(tenants);
            tenants = calloc(nfound + 1, sizeof *tenants);
            if (!tenants) {
                rc = CLI_USAGE;
                goto out;
            }
            for (size_t i = 0; i < nfound; i++)
                tenants[ntenants++] = found[i];
        }
    }
    rows = calloc(ntenants + 1, sizeof *rows);
    if (!rows) {
        rc = CLI_USAGE;
        goto out;
    }
    /* A tenant with partitions missing is printed with the others, its
     * missing partitions named below; the status then says Redis failed. */
    int partial = 0;
    if ((rc = read_rows(c, tenants, ntenants, rows, &nrows, &partial)) != 0)
        goto out;
    rc = json ? print_json(rows, nrows) : (print_text(rows, nrows), CLI_OK);
    if (rc == CLI_OK)
        rc = cli_flush(c);
    if (rc == CLI_OK && partial) {
        print_missing(c, rows, nrows);
        rc = CLI_REDIS;
    }
out:
    for (size_t i = 0; i < nrows; i++)
        trow_clear(&rows[i]);
    free(rows);
    for (size_t i = 0; i < nfound; i++)
        free(found[i]);
    free(found);
    free(tenants);
    return rc;
}

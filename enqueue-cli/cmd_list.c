/*
 * cmd_list.c — `lanework list --tenant T [--status S] [--queue Q] [--lane L]
 * [--limit N]`: jobs as `lanework status` prints them, one JSON object per
 * line, newest first.
 *
 * Reads bounded ranges only, so it stays fast on a tenant with millions of
 * jobs (DESIGN.md section 13, "Admin commands"). Where the jobs come from:
 *   --lane L          the lane's unfinished jobs (its list), newest LIST_SCAN;
 *   --status failed   the failed index (every failed job kept);
 *   --status active   the leases of the tenant's queues;
 *   --status queued   the ready lists' heads, and the event stream;
 *   --status scheduled  the schedule (lane heads), and the event stream;
 *   otherwise         the event stream, newest first, LIST_SCAN entries at most.
 * Each candidate's record is read and filtered (status, queue, lane); a job
 * whose record expired is not shown. "Newest" is the time of its latest
 * change (finished, started, queued again, enqueued).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "names.h"
#include "partition.h"

static const char USAGE[] =
    "Usage: lanework list --tenant T [--status S] [--queue Q] [--lane L] [--limit N]\n"
    "\n"
    "Prints jobs of tenant T, newest first (by their latest change), one JSON\n"
    "object per line as `lanework status` does, at most N (default 100).\n"
    "\n"
    "  --status S   queued, scheduled, active, succeeded, failed, cancelled or\n"
    "               expired\n"
    "  --queue Q    jobs of queue Q only\n"
    "  --lane L     the unfinished jobs of lane L (waiting or running)\n"
    "  --limit N    1 to 10000\n"
    "\n"
    "Failed jobs come from the failed index (all those kept), running ones\n"
    "from their leases, a lane's from its list. Jobs of other statuses are\n"
    "found through the tenant's event stream, as far back as it reaches (its\n"
    "cap, events_max), and at most the newest 20000 of its entries are read:\n"
    "on a busy tenant, older jobs may be left out.\n"
    "\n"
    "Exit status: 0 printed (also when none matched); 2 usage error; 3 Redis\n"
    "unreachable or refused.\n";

#define LIST_SCAN 20000 /* entries of one source looked at, at most */
#define PAGE 500

static const char *const STATUSES[] = {"queued", "scheduled", "active", "succeeded",
                                       "failed", "cancelled", "expired"};

typedef struct filter {
    const char *status, *queue, *lane; /* NULL: any */
    long limit;
} filter;

typedef struct found {
    char *json; /* owned: the job as status prints it */
    long long at;
} found;

typedef struct listing {
    cli *c;
    const filter *f;
    const char *tenant;
    char **seen; /* owned: ids already read in this partition (a hash set) */
    size_t nseen, capseen;
    found *hits; /* owned */
    size_t nhits, caphits;
    long part_hits; /* of the partition being read */
    int oom;
} listing;

/* FNV-1a of s: the seen set's hash. */
static size_t hash_of(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* 1 when id was not met yet in this partition (and is noted now): an open
 * addressing set, kept at most half full. */
static int first_time(listing *l, const char *id)
{
    if (2 * (l->nseen + 1) > l->capseen) {
        size_t cap = l->capseen ? l->capseen * 2 : 1024;
        char **n = calloc(cap, sizeof *n);
        if (!n)
            return l->oom = 1, 0;
        for (size_t i = 0; i < l->capseen; i++)
            if (l->seen[i]) {
                size_t k = hash_of(l->seen[i]) & (cap - 1);
                while (n[k])
                    k = (k + 1) & (cap - 1);
                n[k] = l->seen[i];
            }
        free(l->seen);
        l->seen = n;
        l->capseen = cap;
    }
    size_t k = hash_of(id) & (l->capseen - 1);
    for (; l->seen[k]; k = (k + 1) & (l->capseen - 1))
        if (!strcmp(l->seen[k], id))
            return 0;
    if (!(l->seen[k] = strdup(id)))
        return l->oom = 1, 0;
    l->nseen++;
    return 1;
}

static void seen_clear(listing *l)
{
    for (size_t i = 0; i < l->capseen; i++)
        free(l->seen[i]);
    free(l->seen);
    l->seen = NULL;
    l->nseen = l->capseen = 0;
}

static const char *field(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && !strcmp(r->element[i]->str, name))
            return r->element[i + 1]->type == REDIS_REPLY_STRING ? r->element[i + 1]->str : NULL;
    return NULL;
}

/* Keeps the job in HGETALL reply r when it passes the filter. */
static void consider(listing *l, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return; /* expired, deleted, or not a hash */
    const filter *f = l->f;
    const char *st = field(r, "status"), *q = field(r, "queue"), *ln = field(r, "lane");
    if ((f->status && (!st || strcmp(st, f->status))) ||
        (f->queue && (!q || strcmp(q, f->queue))) || (f->lane && (!ln || strcmp(ln, f->lane))))
        return;
    long long at = 0;
    static const char *const TIMES[] = {"finished", "started", "queued_at", "enqueued"};
    for (size_t i = 0; i < 4; i++) {
        const char *v = field(r, TIMES[i]);
        long long t = v ? strtoll(v, NULL, 10) : 0;
        if (t > at)
            at = t;
    }
    char *json = cli_job_json(l->tenant, r);
    if (!json)
        return; /* a record without its id: fsck's business */
    if (l->nhits == l->caphits) {
        size_t cap = l->caphits ? l->caphits * 2 : 64;
        found *n = realloc(l->hits, cap * sizeof *n);
        if (!n) {
            free(json);
            l->oom = 1;
            return;
        }
        l->hits = n;
        l->caphits = cap;
    }
    l->hits[l->nhits++] = (found){json, at};
    l->part_hits++;
}

/* 1 when HMGET status queue lane reply r passes l's filter. */
static int passes(const listing *l, const redisReply *r)
{
    const char *want[3] = {l->f->status, l->f->queue, l->f->lane};
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return 0;
    for (size_t i = 0; i < 3; i++) {
        const redisReply *v = r->element[i];
        if (want[i] && (v->type != REDIS_REPLY_STRING || strcmp(v->str, want[i]) != 0))
            return 0;
    }
    return 1;
}

/* Appends one command on key job:ID of pt. 0, 1 (no key: skipped) or
 * CLI_REDIS. */
static int ask_job(cli_tenant *pt, const char *cmd, const char *id, int fields)
{
    char key[CLI_KEY_MAX];
    if (lw_key(key, sizeof key, pt->prefix, "job:", id) != 0)
        return 1;
    const char *argv[5] = {cmd, key, "status", "queue", "lane"};
    return cli_append(pt->conn, fields ? 5 : 2, argv) ? CLI_REDIS : 0;
}

/* Reads the records of ids[0..n) (pipelined) into l. With a filter, the
 * fields it looks at come first (HMGET), and only the records that pass
 * are read whole (HGETALL, the payload too): a filter that few candidates
 * pass costs three short fields of each, not their payloads (a queue page
 * of no match read 50 MB of them). 0 or CLI_REDIS. */
static int read_jobs(listing *l, cli_tenant *pt, const char *const *ids, size_t n)
{
    int filtered = l->f->status || l->f->queue || l->f->lane;
    const char **ask = calloc(n + 1, sizeof *ask);
    if (!ask) {
        l->oom = 1;
        return CLI_USAGE;
    }
    size_t nask = 0, sent = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (first_time(l, ids[i]))
            ask[nask++] = ids[i];
    if (filtered) {
        const char **asked = calloc(nask + 1, sizeof *asked);
        for (size_t i = 0; asked && rc == 0 && i < nask; i++) {
            int got = ask_job(pt, "HMGET", ask[i], 1);
            if (got == 0)
                asked[sent++] = ask[i];
            else if (got == CLI_REDIS)
                rc = CLI_REDIS;
        }
        size_t kept = 0;
        for (size_t i = 0; asked && i < sent; i++) {
            redisReply *r = rc ? NULL : cli_next_reply(pt->conn);
            if (!r) {
                rc = CLI_REDIS;
                break;
            }
            if (passes(l, r))
                ask[kept++] = asked[i];
            freeReplyObject(r);
        }
        if (!asked) {
            l->oom = 1;
            rc = CLI_USAGE;
        }
        free(asked);
        nask = kept;
    }
    sent = 0;
    for (size_t i = 0; rc == 0 && i < nask; i++) {
        int got = ask_job(pt, "HGETALL", ask[i], 0);
        if (got == 0)
            sent++;
        else if (got == CLI_REDIS)
            rc = CLI_REDIS;
    }
    for (size_t i = 0; rc == 0 && i < sent; i++) {
        redisReply *r = cli_next_reply(pt->conn);
        if (!r) {
            rc = CLI_REDIS;
            break;
        }
        consider(l, r); /* the filter again: the record may have changed */
        freeReplyObject(r);
    }
    free(ask);
    return rc ? rc : l->oom ? CLI_USAGE : 0;
}

/* The ids of an array reply r (strings only), read as jobs; optionally
 * from the end (lists whose newest entries are last). */
static int read_reply_ids(listing *l, cli_tenant *pt, redisReply *r, int reverse)
{
    int bad = cli_not_array(pt->conn, r);
    if (bad)
        return bad;
    const char **ids = malloc((r->elements + 1) * sizeof *ids);
    size_t n = 0;
    for (size_t i = 0; ids && i < r->elements; i++) {
        const redisReply *e = r->element[reverse ? r->elements - 1 - i : i];
        if (e->type == REDIS_REPLY_STRING)
            ids[n++] = e->str;
    }
    int rc = ids ? read_jobs(l, pt, ids, n) : CLI_USAGE;
    free(ids);
    freeReplyObject(r);
    return rc;
}

/* An index of ids, newest first: a sorted set from its highest score, or a
 * list from its tail. Read a page at a time until the partition has its
 * limit, the index ends, or LIST_SCAN entries were read. */
static int from_index(listing *l, cli_tenant *pt, const char *key, int is_list)
{
    for (long at = 0; at < LIST_SCAN && l->part_hits < l->f->limit; at += PAGE) {
        char from[32], to[32];
        if (is_list) {
            snprintf(from, sizeof from, "%ld", -(at + PAGE));
            snprintf(to, sizeof to, "%ld", -(at + 1));
        } else {
            snprintf(from, sizeof from, "%ld", at);
            snprintf(to, sizeof to, "%ld", at + PAGE - 1);
        }
        const char *cmd[4] = {is_list ? "LRANGE" : "ZREVRANGE", key, from, to};
        redisReply *r = cli_cmd(pt->conn, 4, cmd);
        if (!r)
            return CLI_REDIS;
        size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        int rc = read_reply_ids(l, pt, r, is_list);
        if (rc || got < PAGE)
            return rc;
    }
    return 0;
}

/* The event stream, newest first, until the partition has its limit or
 * LIST_SCAN entries were read. */
static int from_stream(listing *l, cli_tenant *pt)
{
    char key[CLI_KEY_MAX], end[64] = "+";
    lw_key(key, sizeof key, pt->prefix, "events", NULL);
    for (long read = 0; read < LIST_SCAN && l->part_hits < l->f->limit;) {
        const char *cmd[6] = {"XREVRANGE", key, end, "-", "COUNT", "500"};
        redisReply *r = cli_cmd(pt->conn, 6, cmd);
        if (!r)
            return CLI_REDIS;
        int bad = cli_not_array(pt->conn, r);
        if (bad)
            return bad;
        const char **ids = malloc((r->elements + 1) * sizeof *ids);
        size_t n = 0;
        for (size_t i = 0; ids && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
                continue;
            const redisReply *fv = e->element[1];
            for (size_t k = 0; fv->type == REDIS_REPLY_ARRAY && k + 1 < fv->elements; k += 2)
                if (fv->element[k]->type == REDIS_REPLY_STRING &&
                    !strcmp(fv->element[k]->str, "job") &&
                    fv->element[k + 1]->type == REDIS_REPLY_STRING && fv->element[k + 1]->len)
                    ids[n++] = fv->element[k + 1]->str;
        }
        size_t got = r->elements;
        int rc = ids ? read_jobs(l, pt, ids, n) : CLI_USAGE;
        /* The next page ends just before this one's last (oldest) entry. */
        if (rc == 0 && got > 0) {
            const redisReply *last = r->element[got - 1];
            if (last->type == REDIS_REPLY_ARRAY && last->elements == 2 &&
                last->element[0]->type == REDIS_REPLY_STRING)
                snprintf(end, sizeof end, "(%s", last->element[0]->str);
        }
        free(ids);
        freeReplyObject(r);
        if (rc)
            return rc;
        if (got < PAGE)
            break;
        read += (long)got;
    }
    return 0;
}

/* Per queue of pt (its queues set, or --queue alone): the index
 * P<suffix>Q. */
static int each_queue(listing *l, cli_tenant *pt, const char *suffix, int is_list)
{
    redisReply *qs = NULL;
    size_t nq = 1;
    if (!l->f->queue) {
        char key[CLI_KEY_MAX];
        lw_key(key, sizeof key, pt->prefix, "queues", NULL);
        const char *cmd[2] = {"SMEMBERS", key};
        if (!(qs = cli_cmd(pt->conn, 2, cmd)))
            return CLI_REDIS;
        if (qs->type != REDIS_REPLY_ARRAY) {
            int rc = cli_redis_err(pt->conn, qs, NULL);
            freeReplyObject(qs);
            return rc;
        }
        nq = qs->elements;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nq; i++) {
        const char *q = qs ? qs->element[i]->str : l->f->queue;
        char key[CLI_KEY_MAX];
        if (q && lw_key(key, sizeof key, pt->prefix, suffix, q) == 0)
            rc = from_index(l, pt, key, is_list);
    }
    if (qs)
        freeReplyObject(qs);
    return rc;
}

static int list_part(listing *l, cli_tenant *pt)
{
    const filter *f = l->f;
    char key[CLI_KEY_MAX];
    seen_clear(l);
    l->part_hits = 0;
    if (f->lane) {
        lw_key(key, sizeof key, pt->prefix, "lane:", f->lane);
        return from_index(l, pt, key, 1);
    }
    if (f->status && !strcmp(f->status, "failed")) {
        lw_key(key, sizeof key, pt->prefix, "failed", NULL);
        return from_index(l, pt, key, 0);
    }
    if (f->status && !strcmp(f->status, "active"))
        return each_queue(l, pt, "active:", 0);
    int rc = 0;
    if (f->status && !strcmp(f->status, "queued"))
        rc = each_queue(l, pt, "ready:", 1);
    if (rc == 0 && f->status && !strcmp(f->status, "scheduled")) {
        lw_key(key, sizeof key, pt->prefix, "schedule", NULL);
        rc = from_index(l, pt, key, 0);
    }
    return rc ? rc : from_stream(l, pt);
}

static int cmp_found(const void *a, const void *b)
{
    const found *x = a, *y = b;
    return (x->at < y->at) - (x->at > y->at);
}

static int safe_or_usage(cli *c, const char *opt, const char *v)
{
    if (v && !lw_name_is_safe(v)) {
        cli_err(c->cmd, "%s: \"%s\" is not a safe name (letters, digits, - _ .)", opt, cli_show(v));
        return CLI_USAGE;
    }
    return 0;
}

void cli_list_free(char **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(jobs[i]);
    free(jobs);
}

int cli_list_jobs(cli *c, cli_tenant *t, const char *status, const char *queue, const char *lane,
                  long limit, char ***out, size_t *nout)
{
    return cli_list_jobs_partial(c, t, status, queue, lane, limit, out, nout, NULL);
}

int cli_list_jobs_partial(cli *c, cli_tenant *t, const char *status, const char *queue,
                          const char *lane, long limit, char ***out, size_t *nout, cli_gaps *g)
{
    filter f = {status, queue, lane, limit};
    *out = NULL;
    *nout = 0;
    int rc = cli_partitions(c, t);
    if (rc)
        return rc;
    listing l = {.c = c, .f = &f, .tenant = t->name};
    for (int p = 0; rc == 0 && p < t->nparts; p++) {
        if (f.lane && p != lw_partition_of(f.lane, t->nparts))
            continue; /* a lane lives in one partition */
        cli_tenant pt;
        if (!g) {
            if ((rc = cli_tenant_part(c, t, p, &pt)) == 0 &&
                (rc = cli_connect(pt.conn, 0, NULL, 0)) == 0)
                rc = list_part(&l, &pt);
            continue;
        }
        /* Partial: a partition that cannot be read is left out whole. */
        char why[256];
        size_t before = l.nhits;
        if ((rc = cli_part_open(c, t, p, &pt, why, sizeof why)) == 0 &&
            (rc = list_part(&l, &pt)) == CLI_REDIS) {
            const lw_sconn *ctx = pt.conn->ctx;
            snprintf(why, sizeof why, "%s",
                     ctx && ctx->err && ctx->errstr[0] ? ctx->errstr
                     : cli_last_err()[0]               ? cli_last_err()
                                                       : "the server refused a command");
            pt.conn->part_failed = 1;
            snprintf(pt.conn->part_why, sizeof pt.conn->part_why, "%s", why);
        }
        if (rc == CLI_REDIS) {
            for (size_t i = before; i < l.nhits; i++)
                free(l.hits[i].json);
            l.nhits = before;
            cli_gap_add(g, p, why);
            rc = 0;
        }
    }
    if (l.oom) {
        cli_err(c->cmd, "out of memory");
        rc = CLI_USAGE;
    }
    if (rc == 0 && l.nhits) {
        qsort(l.hits, l.nhits, sizeof *l.hits, cmp_found);
        size_t keep = l.nhits < (size_t)f.limit ? l.nhits : (size_t)f.limit;
        char **v = calloc(keep + 1, sizeof *v);
        if (!v) {
            cli_err(c->cmd, "out of memory");
            rc = CLI_USAGE;
        }
        for (size_t i = 0; v && i < keep; i++) {
            v[i] = l.hits[i].json;
            l.hits[i].json = NULL;
        }
        *out = v;
        *nout = v ? keep : 0;
    }
    for (size_t i = 0; i < l.nhits; i++)
        free(l.hits[i].json);
    free(l.hits);
    seen_clear(&l);
    return rc;
}

int cmd_list(cli *c, int argc, char **argv)
{
    const char *tenant = NULL, *limit = NULL;
    filter f = {NULL, NULL, NULL, 100};
    const cli_opt opts[] = {
        {"--tenant", &tenant, NULL, NULL, NULL}, {"--status", &f.status, NULL, NULL, NULL},
        {"--queue", &f.queue, NULL, NULL, NULL}, {"--lane", &f.lane, NULL, NULL, NULL},
        {"--limit", &limit, NULL, NULL, NULL},   {NULL, NULL, NULL, NULL, NULL}};
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        return rc;
    if (f.status) {
        size_t i = 0;
        while (i < sizeof STATUSES / sizeof *STATUSES && strcmp(STATUSES[i], f.status))
            i++;
        if (i == sizeof STATUSES / sizeof *STATUSES) {
            cli_err(c->cmd,
                    "--status: \"%s\" is not a status (queued, scheduled, active, succeeded, "
                    "failed, cancelled, expired)",
                    cli_show(f.status));
            return CLI_USAGE;
        }
    }
    int64_t n = 100;
    if ((limit && cli_int(c, "--limit", limit, 1, 10000, &n)) ||
        safe_or_usage(c, "--queue", f.queue) || safe_or_usage(c, "--lane", f.lane))
        return CLI_USAGE;
    f.limit = (long)n;
    cli_tenant t;
    char **jobs = NULL;
    size_t n_jobs = 0;
    if ((rc = cli_tenant_open(c, tenant, NULL, 0, &t)) != 0 ||
        (rc = cli_bound_replies(t.conn)) != 0 ||
        (rc = cli_list_jobs(c, &t, f.status, f.queue, f.lane, f.limit, &jobs, &n_jobs)) != 0)
        return rc;
    for (size_t i = 0; i < n_jobs; i++)
        printf("%s\n", jobs[i]);
    cli_list_free(jobs, n_jobs);
    return cli_flush(c);
}

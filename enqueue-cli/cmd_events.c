/*
 * cmd_events.c — `lanework events --tenant T [--follow] [--since EVENT_ID]`:
 * the tenant's event stream, one JSON object per line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "partition.h"
#include "redis_sync.h"
#include "timefmt.h"
#include "views.h"

#define PAGE "1000"
#define FOLLOW_BLOCK_MS "1000"
/* How often a follower of an unpartitioned tenant reads the count again, be
 * its stream quiet or busy: the tenant may be partitioned meanwhile, and the
 * new jobs' events are then in other streams. */
#define FOLLOW_COUNT_MS 3000
/* --follow on a partitioned tenant: how often every partition is read
 * while nothing new came. */
#define FOLLOW_POLL_MS 200

static const char USAGE[] =
    "Usage: lanework events --tenant T [--follow] [--since EVENT_ID]\n"
    "\n"
    "Prints the tenant's event stream, oldest first, one JSON object per line:\n"
    "id (the stream entry id), type, job, kind, lane, attempt, worker, ts, data.\n"
    "The stream is capped (--events-max): old events are dropped.\n"
    "\n"
    "  --since EVENT_ID  only events after EVENT_ID (an id printed before)\n"
    "  --follow          then keep printing new events until killed; stdout is\n"
    "                    flushed after each batch, and a closed pipe ends it quietly.\n"
    "                    A lost connection (Redis restarted, failed over, CLIENT\n"
    "                    KILL, silent for 10 s) is not the end: one warning line\n"
    "                    on stderr, then it reconnects with backoff and goes on\n"
    "                    after the last id printed (no gap, no duplicate). A\n"
    "                    refusal (NOPERM, WRONGPASS) still ends it with exit 3.\n"
    "\n"
    "A partitioned tenant's events are merged in (id, partition) order, also\n"
    "with --follow: a new event is printed once every partition's master's clock\n"
    "has passed its id, so none printed later can come before it.\n"
    "A partitioned tenant whose partition 0 answers is printed without --follow\n"
    "even when other partitions' masters are down: stderr names each partition\n"
    "left out (none of its events is printed) and the exit status is 3.\n"
    "\n"
    "Exit status: 0 printed (or the reader went away); 2 usage error; 3 Redis\n"
    "unreachable or refused (with partitions left out: printed without them).\n";

/* 1 when s looks like a stream id: MS or MS-SEQ, decimal, with "#P" after
 * it for an event of a partition P >= 1 (events of partitioned tenants). */
/* 1 when the n decimal digits at p are a 64-bit unsigned number (what a
 * stream id's parts are: Redis refuses a bigger one). */
static int fits_u64(const char *p, size_t n)
{
    static const char MAX[] = "18446744073709551615";
    return n < sizeof MAX - 1 || (n == sizeof MAX - 1 && memcmp(p, MAX, n) <= 0);
}

static int is_stream_id(const char *s)
{
    int digits = 0, dash = 0;
    const char *hash = strchr(s, '#');
    if (hash) {
        char *end;
        long p = strtol(hash + 1, &end, 10);
        if (hash[1] < '1' || hash[1] > '9' || *end || p >= LW_PARTITIONS_MAX)
            return 0;
    }
    for (; *s && s != hash; s++) {
        if (*s >= '0' && *s <= '9')
            digits++;
        else if (*s == '-' && digits && !dash && fits_u64(s - digits, (size_t)digits)) {
            dash = 1;
            digits = 0;
        } else
            return 0;
    }
    return digits > 0 && fits_u64(s - digits, (size_t)digits);
}

/* The id an event is shown with: the stream's, and "#P" for partition P >= 1
 * (part < 0: an unpartitioned tenant). Returns id or buf. */
static const char *shown_id(const char *id, int part, char *buf, size_t len)
{
    if (part < 1)
        return id;
    snprintf(buf, len, "%s#%d", id, part);
    return buf;
}

/* 1 when e is a stream entry as XRANGE gives it: [id, [f, v...]]. */
int cli_is_entry(const redisReply *e)
{
    return e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING;
}

/* The JSON line of stream entry e (is_entry) of partition part (< 1: shown
 * without "#P"): malloc'ed, the caller frees it; NULL on OOM. */
char *cli_event_json(const redisReply *e, int part)
{
    char idbuf[80];
    const char *fv[64];
    size_t fl[64];
    const redisReply *f = e->element[1];
    size_t nf = 0;
    for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k < f->elements && nf < 64; k++) {
        fv[nf] = f->element[k]->str ? f->element[k]->str : "";
        fl[nf++] = f->element[k]->str ? f->element[k]->len : 0;
    }
    return lw_view_event(shown_id(e->element[0]->str, part, idbuf, sizeof idbuf), fv, fl,
                         nf & ~(size_t)1);
}

/* Prints the entries of an XRANGE-shaped reply (array of [id, [f, v...]]),
 * remembers the last id, and flushes them: a follower sees each batch as it
 * comes. Returns 0 or an exit status (printed). */
static int print_entries(cli *c, const redisReply *entries, char last[64], int part)
{
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (!cli_is_entry(e))
            continue;
        char *json = cli_event_json(e, part);
        if (!json) {
            cli_err(c->cmd, "out of memory");
            return CLI_USAGE;
        }
        fputs(json, stdout);
        putchar('\n');
        free(json);
        snprintf(last, 64, "%s", e->element[0]->str);
    }
    return cli_flush(c);
}

/* -1, 0, 1 as stream id a is before, equal to, after b ("MS-SEQ"). */
static int id_cmp(const char *a, const char *b)
{
    unsigned long long am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
    const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
    unsigned long long as = ad ? strtoull(ad + 1, NULL, 10) : 0,
                       bs = bd ? strtoull(bd + 1, NULL, 10) : 0;
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

/* Back after an outage: if the last event printed is gone from the stream
 * (its oldest entry is newer), the cap trimmed past it meanwhile, and any
 * events between the two were never printed. Says so: a follower must not
 * skip events without a word. */
static void warn_if_trimmed(cli *c, cli_tenant *t, const char *key, const char *last)
{
    if (!last[0])
        return;
    const char *xr[6] = {"XRANGE", key, "-", "+", "COUNT", "1"};
    redisReply *r = lw_sconn_command(t->conn->ctx, 6, xr, NULL);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
        id_cmp(r->element[0]->element[0]->str, last) > 0)
        cli_err(
            c->cmd,
            "warning: the stream's oldest event is now %s, after the last one printed (%s): "
            "events between them were trimmed by its cap (events_max) before they could be read",
            r->element[0]->element[0]->str, last);
    if (r)
        freeReplyObject(r); /* a failure shows on the read that follows */
}

/* Runs one read (XRANGE or XREAD) and returns its reply, never an error
 * reply; NULL with *rc set (printed) when it failed. When following, an
 * outage is waited out (cli_reconnect) and the same read sent again: its
 * arguments start after the last id printed, so nothing is skipped or
 * printed twice. */
static redisReply *read_cmd_why(cli *c, cli_tenant *t, int follow, cli_outage *o, const char *key,
                                const char *last, int argc, const char **argv, int *rc, char *why,
                                size_t whylen);

static redisReply *read_cmd(cli *c, cli_tenant *t, int follow, cli_outage *o, const char *key,
                            const char *last, int argc, const char **argv, int *rc)
{
    return read_cmd_why(c, t, follow, o, key, last, argc, argv, rc, NULL, 0);
}

/* read_cmd; without follow, a failure fills why (when not NULL) instead of
 * being printed: the caller names the partition it could not read. */
static redisReply *read_cmd_why(cli *c, cli_tenant *t, int follow, cli_outage *o, const char *key,
                                const char *last, int argc, const char **argv, int *rc, char *why,
                                size_t whylen)
{
    for (;;) {
        redisReply *r = lw_sconn_command(t->conn->ctx, argc, argv, NULL);
        if (r && r->type != REDIS_REPLY_ERROR) {
            o->tries = o->warned = 0;
            return r;
        }
        if (!follow && why) {
            cli_outage_why(t->conn, r, why, whylen);
            *rc = CLI_REDIS;
        } else if (!follow || !cli_is_outage(r)) {
            *rc = cli_redis_err(t->conn, r, t->conn->ctx->errstr);
        } else {
            char reason[512];
            cli_outage_why(t->conn, r, reason, sizeof reason);
            *rc = cli_reconnect(c, t->conn, reason, -1, o);
            if (*rc == 0)
                warn_if_trimmed(c, t, key, last);
        }
        if (r)
            freeReplyObject(r);
        if (*rc)
            return NULL;
    }
}

/* One event of a partitioned tenant, read and not printed yet. */
typedef struct pevent {
    char *json;  /* owned: its line */
    char id[64]; /* its stream id, without "#P" */
    int part;
} pevent;

/* The events read and not printed yet: with --follow, those a later read
 * of another partition may still come before (events_round). */
typedef struct pbuf {
    pevent *ev; /* owned, each with its json */
    size_t n, cap;
} pbuf;

static int pevent_cmp(const void *a, const void *b)
{
    const pevent *x = a, *y = b;
    int k = id_cmp(x->id, y->id);
    return k ? k : (x->part > y->part) - (x->part < y->part);
}

/* Adds entry e (is_entry) of partition part to b. Returns 0 or CLI_USAGE
 * (OOM, printed). */
static int pbuf_push(cli *c, pbuf *b, const redisReply *e, int part)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        pevent *ne = realloc(b->ev, cap * sizeof *ne);
        if (!ne)
            goto oom;
        b->ev = ne, b->cap = cap;
    }
    pevent *ev = &b->ev[b->n];
    if (!(ev->json = cli_event_json(e, part)))
        goto oom;
    snprintf(ev->id, sizeof ev->id, "%s", e->element[0]->str);
    ev->part = part;
    b->n++;
    return 0;
oom:
    cli_err(c->cmd, "out of memory");
    return CLI_USAGE;
}

/* Drops b's events from index `from` on. */
static void pbuf_drop(pbuf *b, size_t from)
{
    while (b->n > from)
        free(b->ev[--b->n].json);
}

/* Prints b's events whose id is before ms `below` (their ms part is
 * lower), in (id, partition) order, and keeps the rest for later. Returns
 * 0 or an exit status (printed). */
static int pbuf_print(cli *c, pbuf *b, int64_t below, size_t *printed)
{
    if (b->n == 0)
        return 0;
    qsort(b->ev, b->n, sizeof *b->ev, pevent_cmp);
    size_t k = 0;
    for (; k < b->n && strtoll(b->ev[k].id, NULL, 10) < below; k++) {
        fputs(b->ev[k].json, stdout);
        putchar('\n');
        free(b->ev[k].json);
    }
    memmove(b->ev, b->ev + k, (b->n - k) * sizeof *b->ev);
    b->n -= k;
    *printed += k;
    return k ? cli_flush(c) : 0;
}

/* Redis's clock on pt's server, in ms, through read_cmd (a follower rides
 * outages out); -1 with *rc set (printed) when it failed. */
static int64_t server_ms(cli *c, cli_tenant *pt, cli_outage *o, const char *key, const char *last,
                         int *rc)
{
    const char *tm[1] = {"TIME"};
    redisReply *r = read_cmd(c, pt, 1, o, key, last, 1, tm, rc);
    if (!r)
        return -1;
    int64_t ms = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
        ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
             strtoll(r->element[1]->str, NULL, 10) / 1000;
    else
        *rc = cli_redis_err(pt->conn, r, NULL);
    freeReplyObject(r);
    return ms;
}

/* Reads partition p's events after its cursor (last; "": all; *incl: the
 * cursor's own id too) up to id `end` ("+": all) into held, moving the
 * cursor. why: as read_cmd_why. Returns 0 or an exit status (printed
 * unless why took it). */
static int read_part_events(cli *c, cli_tenant *pt, int p, int follow, cli_outage *o, char last[64],
                            int *incl, const char *end, pbuf *held, char *why, size_t whylen)
{
    char key[CLI_KEY_MAX], start[70];
    lw_key(key, sizeof key, pt->prefix, "events", NULL);
    for (;;) {
        if (last[0])
            snprintf(start, sizeof start, "%s%s", *incl ? "" : "(", last);
        else
            snprintf(start, sizeof start, "-");
        const char *xr[6] = {"XRANGE", key, start, end, "COUNT", PAGE};
        int rc = 0;
        redisReply *r = read_cmd_why(c, pt, follow, o, key, last, 6, xr, &rc, why, whylen);
        if (!r)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY) {
            rc = cli_redis_err(pt->conn, r, NULL);
            if (why)
                snprintf(why, whylen, "an unexpected reply (above)");
            freeReplyObject(r);
            return rc;
        }
        for (size_t i = 0; rc == 0 && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (!cli_is_entry(e))
                continue;
            if ((rc = pbuf_push(c, held, e, p)) == 0) {
                snprintf(last, 64, "%s", e->element[0]->str);
                *incl = 0;
            }
        }
        size_t got = r->elements;
        freeReplyObject(r);
        if (rc || got < (size_t)atoi(PAGE))
            return rc;
    }
}

/* One round over every partition: reads each one's new events into held
 * and prints them in (id, partition) order.
 *
 * Without --follow that is all of them. A follower prints as it goes, and
 * a partition read late in a round may hold an event with a lower id than
 * one already printed of another (their ids are different masters'
 * clocks, and the reads are not at one instant). So it first takes every
 * master's TIME: an event added to a partition later gets an id at or past
 * its master's. Below the lowest of them nothing can come any more, and a
 * follower reads each partition only up to there: the rest stays in Redis
 * for a later round, rather than in memory (a master whose clock runs an
 * hour ahead held an hour of events, sorted again at every poll).
 *
 * down (not following; else NULL): the partitions not to read, and where
 * one that fails now is marked (why[p] says why) -- its events are left
 * out, none half. Returns 0 or an exit status (printed). */
static int events_round(cli *c, cli_tenant *parts, int n, char (*last)[64], int *incl, int follow,
                        cli_outage *o, pbuf *held, size_t *printed, int *down, char (*why)[256])
{
    int rc = 0;
    int64_t below = INT64_MAX;
    for (int p = 0; follow && p < n; p++) {
        char key[CLI_KEY_MAX];
        lw_key(key, sizeof key, parts[p].prefix, "events", NULL);
        int64_t ms = server_ms(c, &parts[p], o, key, last[p], &rc);
        if (ms < 0)
            return rc;
        below = ms < below ? ms : below;
    }
    char end[32] = "+";
    if (follow)
        snprintf(end, sizeof end, "%lld", (long long)below - 1);
    for (int p = 0; p < n && rc == 0; p++) {
        if (down && down[p])
            continue;
        size_t mark = held->n; /* where p's events start: dropped if p fails */
        rc = read_part_events(c, &parts[p], p, follow, o, last[p], &incl[p], end, held,
                              down ? why[p] : NULL, sizeof why[p]);
        if (rc == CLI_REDIS && down) {
            down[p] = 1;
            pbuf_drop(held, mark);
            rc = 0;
        }
    }
    return rc ? rc : pbuf_print(c, held, below, printed);
}

/* Names each partition left out (down[p]) on stderr. Returns CLI_REDIS
 * when there was one, else 0. */
static int report_down(cli *c, const cli_tenant *t, const int *down, char (*why)[256])
{
    int rc = 0;
    for (int p = 0; p < t->nparts; p++) {
        if (!down[p])
            continue;
        cli_part_unreadable(c, t->name, p, why[p], "its events are not above");
        rc = CLI_REDIS;
    }
    return rc;
}

/* `events` of a tenant over several partitions (partition.h): each
 * partition's stream read after its own cursor, merged by (id, partition),
 * ids shown as ID#P. --since ID#P resumes exactly after that event of the
 * merged order (same-id events of later partitions are still to come).
 * --follow polls every partition (a cluster cannot block on several
 * slots at once) and prints in the same order (events_round holds what a
 * later read may still precede); the order across partitions is that of
 * their ids, which on a cluster are different servers' clocks. `since`
 * applies to partition 0 alone when only0 (a follower that saw the tenant
 * partitioned: it printed partition 0's stream up to since and nothing of
 * the others, which are read from their start). */
static int events_partitioned(cli *c, cli_tenant *t, const char *since, int follow, int only0)
{
    int n = t->nparts, rc = 0;
    cli_tenant parts[LW_PARTITIONS_MAX];
    char last[LW_PARTITIONS_MAX][64];
    int incl[LW_PARTITIONS_MAX];
    int since_part = 0;
    char since_id[64] = "";
    if (since) {
        snprintf(since_id, sizeof since_id, "%s", since);
        char *hash = strchr(since_id, '#');
        if (hash) {
            since_part = atoi(hash + 1);
            *hash = '\0';
        }
        if (since_part >= n) {
            cli_err(c->cmd, "--since: \"%s\" names partition %d, but tenant %s has %d",
                    cli_show(since), since_part, cli_show(t->name), n);
            return CLI_USAGE;
        }
    }
    /* Without --follow, a partition whose master is down is left out and
     * named (the others are printed); a follower waits each outage out. */
    int down[LW_PARTITIONS_MAX] = {0};
    char why[LW_PARTITIONS_MAX][256];
    for (int p = 0; p < n && rc == 0; p++) {
        if (!follow) {
            rc = cli_part_open(c, t, p, &parts[p], why[p], sizeof why[p]);
            down[p] = rc == CLI_REDIS;
            rc = down[p] ? 0 : rc;
        } else if ((rc = cli_tenant_part(c, t, p, &parts[p])) == 0) {
            rc = cli_connect(parts[p].conn, 0, NULL, 0);
        }
        if (rc == 0 && follow)
            rc = cli_set_reply_timeout(parts[p].conn, CLI_CONNECT_TIMEOUT_MS * 2);
        snprintf(last[p], sizeof last[p], "%s", only0 && p > 0 ? "" : since_id);
        incl[p] = last[p][0] && p > since_part;
    }
    cli_outage o = {0, 0};
    size_t printed = 0;
    pbuf held = {NULL, 0, 0};
    if (rc == 0)
        rc = events_round(c, parts, n, last, incl, follow, &o, &held, &printed,
                          follow ? NULL : down, why);
    while (rc == 0 && follow) {
        size_t before = printed;
        rc = events_round(c, parts, n, last, incl, follow, &o, &held, &printed, NULL, why);
        if (rc == 0 && printed == before)
            cli_sleep_ms(FOLLOW_POLL_MS);
    }
    pbuf_drop(&held, 0);
    free(held.ev);
    return rc ? rc : report_down(c, t, down, why);
}

int cmd_events(cli *c, int argc, char **argv)
{
    const char *tenant = NULL, *since = NULL;
    int follow = 0;
    const cli_opt opts[] = {{"--tenant", &tenant, NULL, NULL, NULL},
                            {"--since", &since, NULL, NULL, NULL},
                            {"--follow", NULL, &follow, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        return rc;
    if (since && (!is_stream_id(since) || strlen(since) > 60)) {
        cli_err(c->cmd, "--since: \"%s\" is not an event id (like 1700000000000-0)",
                cli_show(since));
        return CLI_USAGE;
    }
    cli_tenant t;
    /* A follower sets its own bound (its block time and a margin). */
    if ((rc = cli_tenant_open(c, tenant, NULL, 0, &t)) != 0 ||
        (!follow && (rc = cli_bound_replies(t.conn)) != 0) || (rc = cli_partitions(c, &t)) != 0)
        return rc;
    if (t.nparts > 1)
        return events_partitioned(c, &t, since, follow, 0);
    if (since && strchr(since, '#')) {
        cli_err(c->cmd, "--since: \"%s\" names a partition, but tenant %s is not partitioned",
                cli_show(since), cli_show(t.name));
        return CLI_USAGE;
    }
    /* A server that stays silent past the block time is as good as gone. */
    if (follow &&
        (rc = cli_set_reply_timeout(t.conn, atoi(FOLLOW_BLOCK_MS) + CLI_CONNECT_TIMEOUT_MS)) != 0)
        return rc;
    cli_outage o = {0, 0};
    char key[CLI_KEY_MAX], last[64], start[70];
    lw_key(key, sizeof key, t.prefix, "events", NULL);
    snprintf(last, sizeof last, "%s", since ? since : "");

    /* What is there: pages of XRANGE, each after the last id printed. */
    for (;;) {
        if (last[0])
            snprintf(start, sizeof start, "(%s", last);
        else
            snprintf(start, sizeof start, "-");
        const char *xr[6] = {"XRANGE", key, start, "+", "COUNT", PAGE};
        redisReply *r = read_cmd(c, &t, follow, &o, key, last, 6, xr, &rc);
        if (!r)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY) {
            rc = cli_redis_err(t.conn, r, NULL);
            freeReplyObject(r);
            return rc;
        }
        rc = print_entries(c, r, last, -1);
        size_t got = r->elements;
        freeReplyObject(r);
        if (rc)
            return rc;
        if (got < (size_t)atoi(PAGE))
            break;
    }
    if (!follow)
        return CLI_OK;

    /* New events: XREAD BLOCK after the last id seen ("0-0" when the stream
     * was empty: everything added since counts as new). */
    if (!last[0])
        snprintf(last, sizeof last, "0-0");
    int64_t count_at = lw_mono_ms() + FOLLOW_COUNT_MS;
    for (;;) {
        const char *xr[8] = {"XREAD",         "COUNT",   PAGE, "BLOCK",
                             FOLLOW_BLOCK_MS, "STREAMS", key,  last};
        redisReply *r = read_cmd(c, &t, follow, &o, key, last, 8, xr, &rc);
        if (!r)
            return rc;
        if (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_ARRAY) {
            rc = cli_redis_err(t.conn, r, NULL);
            freeReplyObject(r);
            return rc;
        }
        rc = CLI_OK;
        int quiet = r->type == REDIS_REPLY_NIL;
        for (size_t s = 0; !quiet && s < r->elements && rc == 0; s++) {
            const redisReply *st = r->element[s];
            if (st->type == REDIS_REPLY_ARRAY && st->elements == 2)
                rc = print_entries(c, st->element[1], last, -1);
        }
        freeReplyObject(r);
        if (rc)
            return rc;
        /* After a quiet block, or every FOLLOW_COUNT_MS of a busy stream. */
        if (!quiet && lw_mono_ms() < count_at)
            continue;
        /* Partitioned meanwhile: on over every partition, after the last
         * event printed (partition 0's stream is this one). */
        count_at = lw_mono_ms() + FOLLOW_COUNT_MS;
        t.nparts = 0;
        if ((rc = cli_partitions(c, &t)) != 0)
            return rc;
        if (t.nparts > 1)
            return events_partitioned(c, &t, strcmp(last, "0-0") ? last : NULL, follow, 1);
    }
}

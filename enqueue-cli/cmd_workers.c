/*
 * cmd_workers.c — `lanework workers [--json]`: the fleet's workers, from
 * NS:workers (name -> last heartbeat ms) and each NS:worker:NAME hash.
 * On a Cluster URL those keys are in as many slots as there are workers:
 * each is read from its master, pipelined on one connection per master.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "timefmt.h"

static const char USAGE[] =
    "Usage: lanework workers [--json]\n"
    "\n"
    "Lists the workers of the workers directory, oldest heartbeat first (the\n"
    "1,000 newest heartbeats at most; a line on stderr says how many more it\n"
    "holds). Columns:\n"
    "NAME HOST PID STATE CONCURRENCY ISOLATION ACTIVE PROCESSED SEEN (time since\n"
    "the last heartbeat, measured against the Redis server's clock) TENANTS QUEUES.\n"
    "ACTIVE and PROCESSED are written within a quarter second of a change, and\n"
    "every heartbeat (a sixth of the worker's --lease). STATE is the worker's own\n"
    "(running, quiet, draining, stopping) while its heartbeat is fresh; `lost`\n"
    "once the heartbeat is older than the worker's lease (it died, hangs or is\n"
    "cut off: the reaper takes its jobs back from then on); `gone` once its\n"
    "details expired (3 leases), with only its name and last heartbeat.\n"
    "\n"
    "  --json   one JSON array; each object holds the worker's fields (numbers as\n"
    "           numbers), \"started_at\" and \"last_heartbeat\" (RFC 3339),\n"
    "           \"seen_ago_s\", \"lease\" (ms) and \"state\" (as in the table).\n"
    "\n"
    "Exit status: 0 printed; 2 usage error; 3 Redis unreachable or refused.\n";

/* Fields shown in the table, in order (after NAME). */
static const char *const TABLE[] = {"host",      "pid",    "state",     "concurrency",
                                    "isolation", "active", "processed", NULL};
static const char *const TABLE_HEAD[] = {"HOST",      "PID",    "STATE",     "CONCURRENCY",
                                         "ISOLATION", "ACTIVE", "PROCESSED", NULL};
/* Fields that are numbers in the JSON output when they parse as integers. */
static const char *const NUMERIC[] = {"pid",     "concurrency", "active", "processed",
                                      "started", "lease",       NULL};

/* Entries of the directory read at most, and how far past the server's
 * clock a heartbeat may be (clock steps; later is no worker's). */
#define WORKERS_SHOWN_MAX 1000
#define WORKERS_FUTURE_MS 60000

/* Without a "lease" field (a worker older than the field): the default. */
#define DEFAULT_LEASE_MS 15000

static const char *hash_get(const redisReply *h, const char *field)
{
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    return NULL;
}

static int is_int(const char *s)
{
    if (*s == '-')
        s++;
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* What to call worker state: its details gone, its heartbeat older than
 * its lease (dead, hung or cut off: its own word is stale), or its word. */
static const char *state_of(const redisReply *h, int64_t hb, int64_t now)
{
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return "gone";
    const char *lease = hash_get(h, "lease");
    int64_t lease_ms = lease && is_int(lease) ? strtoll(lease, NULL, 10) : DEFAULT_LEASE_MS;
    if (now - hb > lease_ms)
        return "lost";
    const char *st = hash_get(h, "state");
    return st ? st : "-";
}

/* The worker's hash as a JSON object, with its heartbeat. NULL on OOM. */
static cJSON *worker_json(const char *name, int64_t hb, int64_t now, const redisReply *h)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", name);
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strcmp(f->str, "name") == 0)
            continue;
        if (in_list(NUMERIC, f->str) && is_int(v->str))
            cJSON_AddNumberToObject(o, f->str, (double)strtoll(v->str, NULL, 10));
        else
            cJSON_AddStringToObject(o, f->str, v->str);
    }
    char ts[LW_RFC3339_LEN];
    const char *started = hash_get(h, "started");
    if (started && is_int(started)) {
        lw_rfc3339(strtoll(started, NULL, 10), ts);
        cJSON_AddStringToObject(o, "started_at", ts);
    }
    lw_rfc3339(hb, ts);
    cJSON_AddStringToObject(o, "last_heartbeat", ts);
    cJSON_AddNumberToObject(o, "seen_ago_s", (double)(now - hb) / 1000.0);
    cJSON_DeleteItemFromObject(o, "state");
    cJSON_AddStringToObject(o, "state", state_of(h, hb, now));
    return o;
}

/* What the workers directory holds: z the ZREVRANGEBYSCORE WITHSCORES
 * reply (turned oldest first), t the server's TIME, card its ZCARD, h[i]
 * worker i's HGETALL reply; all owned (wf_free). */
typedef struct wfetch {
    redisReply *z, *t, *card, **h;
    cli_conn **on; /* on[i]: the connection holding worker i's hash (c's) */
    size_t n;
    long long total; /* entries in the directory */
    int64_t now;
} wfetch;

static void wf_free(wfetch *w)
{
    for (size_t i = 0; w->h && i < w->n; i++)
        if (w->h[i])
            freeReplyObject(w->h[i]);
    free(w->h);
    free(w->on);
    if (w->z)
        freeReplyObject(w->z);
    if (w->t)
        freeReplyObject(w->t);
    if (w->card)
        freeReplyObject(w->card);
    memset(w, 0, sizeof *w);
}

/* Reads the directory and every worker's hash into *w (zeroed first; freed
 * with wf_free whatever it returns). Returns 0 or an exit status (printed). */
static int wf_read(cli *c, wfetch *w)
{
    memset(w, 0, sizeof *w);
    int rc;
    if ((rc = cli_cluster_map(c, NULL)) != 0)
        return rc;
    char key[CLI_KEY_MAX];
    lw_key_global(key, sizeof key, c->cfg.ns, "workers");
    cli_conn *k = cli_conn_for(c, NULL, key);
    if (!k)
        return CLI_USAGE;
    const char *tm[1] = {"TIME"};
    const char *zc[2] = {"ZCARD", key};
    if (cli_append(k, 1, tm) || cli_append(k, 2, zc))
        return CLI_REDIS;
    w->t = cli_next_reply(k);
    w->card = w->t ? cli_next_reply(k) : NULL;
    if (!w->t || !w->card)
        return CLI_REDIS;
    if (w->t->type != REDIS_REPLY_ARRAY || w->t->elements != 2 ||
        w->card->type != REDIS_REPLY_INTEGER)
        return cli_redis_err(k, w->t->type != REDIS_REPLY_ARRAY ? w->t : w->card, NULL);
    w->now = strtoll(w->t->element[0]->str, NULL, 10) * 1000 +
             strtoll(w->t->element[1]->str, NULL, 10) / 1000;
    w->total = w->card->integer;
    /* The newest heartbeats, no later than the clock allows: every
     * tenant's Redis user may write the directory (its workers write it),
     * so it is read in bounded measure, and entries from the future are
     * no worker's. */
    char max[32], lim[16];
    snprintf(max, sizeof max, "%lld", (long long)(w->now + WORKERS_FUTURE_MS));
    snprintf(lim, sizeof lim, "%d", WORKERS_SHOWN_MAX);
    const char *zr[8] = {"ZREVRANGEBYSCORE", key, max, "-inf", "WITHSCORES", "LIMIT", "0", lim};
    if (!(w->z = cli_cmd(k, 8, zr)))
        return CLI_REDIS;
    if (w->z->type != REDIS_REPLY_ARRAY || w->z->elements % 2)
        return cli_redis_err(k, w->z, NULL);
    w->n = w->z->elements / 2;
    for (size_t i = 0; i < w->n / 2; i++) { /* oldest heartbeat first */
        size_t j = w->n - 1 - i;
        for (size_t f = 0; f < 2; f++) {
            redisReply *x = w->z->element[2 * i + f];
            w->z->element[2 * i + f] = w->z->element[2 * j + f];
            w->z->element[2 * j + f] = x;
        }
    }
    w->h = calloc(w->n + 1, sizeof *w->h);
    w->on = calloc(w->n + 1, sizeof *w->on);
    if (!w->h || !w->on) {
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    for (size_t i = 0; i < w->n; i++) {
        char wk[CLI_KEY_MAX + 256];
        char sub[CLI_KEY_MAX];
        snprintf(sub, sizeof sub, "worker:%s", w->z->element[2 * i]->str);
        lw_key_global(wk, sizeof wk, c->cfg.ns, sub);
        const char *hg[2] = {"HGETALL", wk};
        if (!(w->on[i] = cli_conn_for(c, NULL, wk)))
            return CLI_USAGE;
        if (cli_append(w->on[i], 2, hg))
            return CLI_REDIS;
    }
    /* Each connection answers in the order it was asked: reading in the
     * workers' order takes every connection's replies in its own order. */
    for (size_t i = 0; i < w->n; i++) {
        w->h[i] = cli_next_reply(w->on[i]);
        if (!w->h[i])
            return CLI_REDIS;
        if (w->h[i]->type == REDIS_REPLY_ERROR && rc == CLI_OK)
            rc = cli_redis_err(w->on[i], w->h[i], NULL);
    }
    return rc;
}

/* Says how much of the directory was left out (a line to stderr). */
static void say_left_out(const cli *c, const wfetch *w, long long *more)
{
    long long left = w->total - (long long)w->n;
    if (more)
        *more = left > 0 ? left : 0;
    if (left > 0)
        cli_err(c->cmd,
                "the workers directory holds %lld entries: %zu shown (the newest heartbeats, "
                "none from the future; at most %d)",
                w->total, w->n, WORKERS_SHOWN_MAX);
}

int cli_workers_json(cli *c, cJSON **out, long long *more)
{
    wfetch w;
    *out = NULL;
    int rc = wf_read(c, &w);
    if (rc == CLI_OK)
        say_left_out(c, &w, more);
    cJSON *arr = rc ? NULL : cJSON_CreateArray();
    for (size_t i = 0; arr && i < w.n; i++) {
        int64_t hb = strtoll(w.z->element[2 * i + 1]->str, NULL, 10);
        cJSON *o = worker_json(w.z->element[2 * i]->str, hb, w.now, w.h[i]);
        if (o)
            cJSON_AddItemToArray(arr, o);
    }
    if (rc == CLI_OK && !arr) {
        cli_err(c->cmd, "out of memory");
        rc = CLI_USAGE;
    }
    wf_free(&w);
    *out = arr;
    return rc;
}

int cmd_workers(cli *c, int argc, char **argv)
{
    int json = 0;
    const cli_opt opts[] = {{"--json", NULL, &json, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        return rc;
    if (json) {
        cJSON *arr;
        if ((rc = cli_workers_json(c, &arr, NULL)) != 0)
            return rc;
        char *text = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
        if (!text) {
            cli_err(c->cmd, "out of memory");
            return CLI_USAGE;
        }
        printf("%s\n", text);
        free(text);
        return cli_flush(c);
    }
    wfetch wf;
    if ((rc = wf_read(c, &wf)) != 0)
        goto out;
    say_left_out(c, &wf, NULL);
    redisReply *z = wf.z, **h = wf.h;
    size_t n = wf.n;
    int64_t now = wf.now;
    {
        /* Cells first, then widths over the header and every row; the last
         * column (QUEUES) is not padded. */
        enum { NF = 7, NC = NF + 4 };
        const char *head[NC] = {"NAME"};
        for (size_t f = 0; f < NF; f++)
            head[f + 1] = TABLE_HEAD[f];
        head[NF + 1] = "SEEN";
        head[NF + 2] = "TENANTS";
        head[NF + 3] = "QUEUES";
        char(*seen)[32] = calloc(n + 1, sizeof *seen);
        if (!seen) {
            rc = CLI_USAGE;
            goto out;
        }
        int w[NC];
        for (size_t col = 0; col < NC; col++)
            w[col] = (int)strlen(head[col]);
        const char *cell[NC];
        /* Pass 1 measures, pass 2 prints the header then the rows. */
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                for (size_t col = 0; col + 1 < NC; col++)
                    printf(col == 0 ? "%-*s" : "  %-*s", w[col], head[col]);
                printf("  %s\n", head[NC - 1]);
            }
            for (size_t i = 0; i < n; i++) {
                int64_t hb = strtoll(z->element[2 * i + 1]->str, NULL, 10);
                snprintf(seen[i], sizeof seen[i], "%.1fs", (double)(now - hb) / 1000.0);
                cell[0] = z->element[2 * i]->str;
                for (size_t f = 0; f < NF; f++) {
                    const char *v = hash_get(h[i], TABLE[f]);
                    if (strcmp(TABLE[f], "state") == 0)
                        v = state_of(h[i], hb, now);
                    cell[f + 1] = v ? v : "-";
                }
                cell[NF + 1] = seen[i];
                const char *tn = hash_get(h[i], "tenants"), *qs = hash_get(h[i], "queues");
                cell[NF + 2] = tn && *tn ? tn : "-";
                cell[NF + 3] = qs && *qs ? qs : "-";
                for (size_t col = 0; col < NC; col++) {
                    int l = (int)strlen(cell[col]);
                    if (pass == 0 && l > w[col])
                        w[col] = l;
                }
                if (pass == 1) {
                    for (size_t col = 0; col + 1 < NC; col++)
                        printf(col == 0 ? "%-*s" : "  %-*s", w[col], cell[col]);
                    printf("  %s\n", cell[NC - 1]);
                }
            }
        }
        free(seen);
    }
    rc = cli_flush(c);
out:
    wf_free(&wf);
    return rc;
}

/*
 * cmd_stats.c — `lanework stats [--tenant T]... [--json]`: per tenant and
 * queue, the jobs waiting and running now and the totals of each outcome.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "names.h"

static const char USAGE[] =
    "Usage: lanework stats [--tenant T]... [--json]\n"
    "\n"
    "Per tenant and queue: jobs queued, scheduled and active now, and the totals\n"
    "of jobs succeeded, failed, cancelled and expired, attempts retried, and\n"
    "attempts lost (worker died). Tenants: those given with --tenant (repeatable),\n"
    "else every tenant of the registry, else every tenant found in Redis (SCAN of\n"
    "NS:{*}:queues on the default Redis). Queues: every queue the tenant ever\n"
    "used, and those of its registry entry.\n"
    "\n"
    "  --json   one JSON object: {\"tenants\": {T: {\"queues\": {Q: {\"queued\": N, ...}}}}}\n"
    "\n"
    "Exit status: 0 printed; 2 usage error or unknown tenant; 3 Redis unreachable\n"
    "or refused.\n";

enum { NCOLS = 9 };
static const char *const COLS[NCOLS] = {"queued",    "scheduled", "active",  "succeeded", "failed",
                                        "cancelled", "expired",   "retried", "lost"};

typedef struct qrow {
    char *queue;
    long long v[NCOLS];
} qrow;

typedef struct trow {
    char *tenant;
    qrow *q;
    size_t nq;
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

/* Reads one tenant's numbers into tr. Returns 0 or an exit status. */
static int read_tenant(cli *c, const char *name, trow *tr)
{
    cli_tenant t;
    int rc = cli_tenant_open(c, name, NULL, 0, &t);
    if (rc)
        return rc;
    char kq[CLI_KEY_MAX], ks[CLI_KEY_MAX], ka[CLI_KEY_MAX];
    lw_key(kq, sizeof kq, t.prefix, "queues", NULL);
    lw_key(ks, sizeof ks, t.prefix, "stats", NULL);
    const char *smembers[2] = {"SMEMBERS", kq}, *hgetall[2] = {"HGETALL", ks};
    if (cli_append(t.conn, 2, smembers) || cli_append(t.conn, 2, hgetall))
        return CLI_REDIS;
    redisReply *qs = cli_next_reply(t.conn);
    redisReply *st = qs ? cli_next_reply(t.conn) : NULL;
    rc = CLI_OK;
    if (!qs || !st) {
        rc = CLI_REDIS;
        goto out;
    }
    if (qs->type != REDIS_REPLY_ARRAY || st->type != REDIS_REPLY_ARRAY) {
        rc = cli_redis_err(t.conn, qs->type != REDIS_REPLY_ARRAY ? qs : st, NULL);
        goto out;
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
            if (k == 2 || strlen(COLS[k]) != slen || memcmp(COLS[k], f->str, slen) != 0)
                continue;
            qrow *row = queue_row(tr, colon + 1, f->len - slen - 1);
            if (row)
                row->v[k] = strtoll(v->str, NULL, 10);
        }
    }
    if (rc) {
        cli_err(c->cmd, "out of memory");
        goto out;
    }
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
            tr->q[i].v[2] = r->integer;
        else if (rc == CLI_OK)
            rc = cli_redis_err(t.conn, r, NULL);
        freeReplyObject(r);
    }
out:
    if (qs)
        freeReplyObject(qs);
    if (st)
        freeReplyObject(st);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Finds the tenants that have keys on the default Redis: SCAN for
 * NS:{T}:queues. Fills a sorted, de-duplicated, malloc'ed list. */
static int discover(cli *c, char ***out, size_t *nout)
{
    cli_conn *k = cli_conn_for(c, NULL);
    if (!k)
        return CLI_USAGE;
    char pattern[CLI_KEY_MAX];
    snprintf(pattern, sizeof pattern, "%s:{*}:queues", c->cfg.ns);
    size_t nslen = strlen(c->cfg.ns);
    char cursor[32] = "0";
    char **names = NULL;
    size_t n = 0;
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
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *key = keys->element[i];
            /* NS:{T}:queues */
            if (key->type != REDIS_REPLY_STRING || key->len < nslen + 10)
                continue;
            size_t tlen = key->len - nslen - 2 - 8;
            char *name = strndup(key->str + nslen + 2, tlen);
            char **nn = name ? realloc(names, (n + 1) * sizeof *nn) : NULL;
            if (!nn) {
                free(name);
                rc = CLI_USAGE;
                break;
            }
            names = nn;
            if (lw_name_is_safe(name))
                names[n++] = name;
            else
                free(name);
        }
        freeReplyObject(r);
    } while (rc == CLI_OK && strcmp(cursor, "0") != 0);
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

static void print_text(const trow *rows, size_t n)
{
    static const char *const HEAD[NCOLS] = {"QUEUED", "SCHEDULED", "ACTIVE",  "SUCCEEDED", "FAILED",
                                            "CANCELLED", "EXPIRED", "RETRIED", "LOST"};
    int wt = 6, wq = 5, w[NCOLS];
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
    printf("%-*s  %-*s", wt, "TENANT", wq, "QUEUE");
    for (int k = 0; k < NCOLS; k++)
        printf("  %*s", w[k], HEAD[k]);
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rows[i].nq; j++) {
            printf("%-*s  %-*s", wt, rows[i].tenant, wq, rows[i].q[j].queue);
            for (int k = 0; k < NCOLS; k++)
                printf("  %*lld", w[k], rows[i].q[j].v[k]);
            putchar('\n');
        }
    }
}

static int print_json(const trow *rows, size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *tenants = root ? cJSON_AddObjectToObject(root, "tenants") : NULL;
    int ok = tenants != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(tenants, rows[i].tenant);
        cJSON *qs = t ? cJSON_AddObjectToObject(t, "queues") : NULL;
        ok = qs != NULL;
        for (size_t j = 0; ok && j < rows[i].nq; j++) {
            cJSON *q = cJSON_AddObjectToObject(qs, rows[i].q[j].queue);
            ok = q != NULL;
            for (int k = 0; ok && k < NCOLS; k++)
                ok = cJSON_AddNumberToObject(q, COLS[k], (double)rows[i].q[j].v[k]) != NULL;
        }
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        cli_err("stats", "out of memory");
        return CLI_USAGE;
    }
    printf("%s\n", text);
    free(text);
    return CLI_OK;
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
    for (size_t i = 0; i < ntenants; i++) {
        rows[i].tenant = cli_strdup(tenants[i]);
        nrows++;
        if ((rc = read_tenant(c, tenants[i], &rows[i])) != 0)
            goto out;
    }
    rc = json ? print_json(rows, nrows) : (print_text(rows, nrows), CLI_OK);
    if (rc == CLI_OK)
        rc = cli_flush(c);
out:
    for (size_t i = 0; i < nrows; i++) {
        for (size_t j = 0; j < rows[i].nq; j++)
            free(rows[i].q[j].queue);
        free(rows[i].q);
        free(rows[i].tenant);
    }
    free(rows);
    for (size_t i = 0; i < nfound; i++)
        free(found[i]);
    free(found);
    free(tenants);
    return rc;
}

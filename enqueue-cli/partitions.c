/*
 * partitions.c — the CLI's view of a partitioned tenant (cli.h,
 * partition.h): the count in force, a partition's prefix and connection,
 * and which partition holds a job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "redis_sync.h"
#include "partition.h"
#include "script_args.h"
#include "script_replies.h"

/* The count and the legacy window in reply r of HMGET partitions
 * legacy_until (NULL: the read failed), into t->nparts and t->legacy. */
static int read_count(cli *c, cli_tenant *t, redisReply *r, const char *why)
{
    if (!r)
        return why ? cli_redis_err(t->conn, NULL, why) : CLI_REDIS;
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        const redisReply *k = r->element[0], *w = r->element[1];
        long n = k->type == REDIS_REPLY_STRING ? strtol(k->str, NULL, 10) : 1;
        t->nparts = n >= 1 && n <= LW_PARTITIONS_MAX ? (int)n : 1;
        t->legacy = t->nparts > 1 && w->type == REDIS_REPLY_STRING;
    } else {
        rc = cli_redis_err(t->conn, r, NULL);
    }
    freeReplyObject(r);
    /* On a Cluster URL the partitions are slots on a few masters: one
     * connection per master, not per partition. */
    if (rc == 0 && t->nparts > 1)
        rc = cli_cluster_map(c, t->reg ? t->reg->redis_url : NULL);
    return rc;
}

int cli_partitions(cli *c, cli_tenant *t)
{
    if (t->nparts > 0)
        return 0;
    char key[CLI_KEY_MAX];
    if (lw_key(key, sizeof key, t->prefix, "settings", NULL) != 0)
        return CLI_USAGE;
    const char *cmd[4] = {"HMGET", key, "partitions", "legacy_until"};
    return read_count(c, t, cli_cmd_moved(t->conn, 4, cmd), NULL);
}

int cli_partitions_quiet(cli *c, cli_tenant *t, char *why, size_t whylen)
{
    if (t->nparts > 0)
        return 0;
    char key[CLI_KEY_MAX];
    if (lw_key(key, sizeof key, t->prefix, "settings", NULL) != 0)
        return CLI_USAGE;
    if (cli_connect(t->conn, 1, why, whylen) != 0)
        return CLI_REDIS;
    const char *cmd[4] = {"HMGET", key, "partitions", "legacy_until"};
    redisReply *r = lw_sconn_command(t->conn->ctx, 4, cmd, NULL);
    if (!r) {
        snprintf(why, whylen, "%s",
                 t->conn->ctx->errstr[0] ? t->conn->ctx->errstr : "connection lost");
        return CLI_REDIS;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0) {
        freeReplyObject(r); /* the slot moved: the loud path follows it */
        return cli_partitions(c, t);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cli_oneline(r->str, r->len, why, whylen);
        freeReplyObject(r);
        return CLI_REDIS;
    }
    return read_count(c, t, r, NULL);
}

int cli_partitions_apart(cli *c, cli_tenant *t)
{
    if (t->nparts > 0)
        return 0;
    char key[CLI_KEY_MAX], err[256] = "";
    if (lw_key(key, sizeof key, t->prefix, "settings", NULL) != 0)
        return CLI_USAGE;
    const char *cmd[4] = {"HMGET", key, "partitions", "legacy_until"};
    redisReply *r = NULL;
    lw_sconn *ctx = lw_redis_connect_sync(t->conn->url, t->conn->slot, CLI_CONNECT_TIMEOUT_MS, NULL,
                                          err, sizeof err);
    if (ctx) {
        lw_sconn_set_timeout(ctx, CLI_CONNECT_TIMEOUT_MS);
        r = lw_sconn_command(ctx, 4, cmd, NULL);
        if (!r)
            snprintf(err, sizeof err, "%s", ctx->errstr);
        lw_sconn_free(ctx);
    }
    return read_count(c, t, r, err[0] ? err : "connection lost");
}

int cli_known_needed(const cli_tenant *t, int part, const lw_job_spec *s, int own_id)
{
    return t->legacy && part != 0 && (own_id || (s->unique && s->unique[0]));
}

void cli_known_args(lw_argv *a, const cli_tenant *t, const lw_job_spec *s)
{
    lw_argv_reset(a);
    lw_known_keys(a, t->prefix);
    lw_known_argv_add(
        a, &(lw_known_argv){.prefix = t->prefix, .events_cap = t->set.events_max, .n = 1});
    lw_known_job_argv_add(a, &(lw_known_job_argv){.id = s->id, .unique = s->unique});
}

int cli_known_read(cli_tenant *t, const redisReply *r, char **existing, char *why, size_t whylen)
{
    *existing = NULL;
    lw_known_reply got;
    if (!r || lw_known_reply_read(r, &got, NULL, 0) != 0 || got.n_job != 1)
        return -1;
    lw_known_job job;
    lw_known_job_at(&got, 0, &job);
    if (!got.open)
        t->legacy = 0; /* the window has passed: no need to ask again */
    if (job.id.len == 0)
        return 0;
    snprintf(why, whylen, "%s", job.why.s);
    if (!(*existing = strdup(job.id.s))) {
        cli_err("enqueue", "out of memory");
        return -2;
    }
    return 0;
}

int cli_known_before(cli_tenant *t, const lw_job_spec *s, char **existing, char *why, size_t whylen,
                     char *fail, size_t faillen)
{
    lw_argv a;
    lw_argv_init(&a);
    cli_known_args(&a, t, s);
    char err[512] = "";
    redisReply *r = cli_script(t->conn, &lw_script_known, LW_KNOWN_NKEYS, &a, err, sizeof err);
    lw_argv_clear(&a);
    int got = cli_known_read(t, r, existing, why, whylen);
    int rc = got == 0 ? 0 : got == -2 ? CLI_USAGE : CLI_REDIS;
    if (got == -1) {
        if (!fail)
            cli_redis_err(t->conn, r, err[0] ? err : NULL);
        else if (r && r->type == REDIS_REPLY_ERROR)
            cli_oneline(r->str, r->len, fail, faillen);
        else
            snprintf(fail, faillen, "%s", r ? "unexpected reply to known.lua" : err);
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int cli_tenant_part(cli *c, const cli_tenant *t, int p, cli_tenant *out)
{
    *out = *t;
    out->part = p;
    if (lw_partition_prefix(out->prefix, sizeof out->prefix, c->cfg.ns, t->name, p) != 0) {
        cli_err(c->cmd, "tenant \"%s\": name too long", cli_show(t->name));
        return CLI_USAGE;
    }
    out->conn = cli_conn_for(c, t->reg ? t->reg->redis_url : NULL, out->prefix);
    return out->conn ? 0 : CLI_USAGE;
}

/* 1 when p's keyspace holds job:ID, 0 when not, or an exit status + 1 << 8. */
static int holds(cli_tenant *p, const char *id)
{
    char key[CLI_KEY_MAX];
    if (lw_key(key, sizeof key, p->prefix, "job:", id) != 0)
        return CLI_USAGE << 8;
    const char *cmd[2] = {"EXISTS", key};
    redisReply *r = cli_cmd(p->conn, 2, cmd);
    if (!r)
        return CLI_REDIS << 8;
    int got = r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : -1;
    if (got < 0)
        got = cli_redis_err(p->conn, r, NULL) << 8;
    freeReplyObject(r);
    return got;
}

int cli_job_partition(cli *c, cli_tenant *t, const char *id, cli_tenant *out)
{
    int rc = cli_partitions(c, t);
    if (rc)
        return rc;
    int own = lw_partition_of(id, t->nparts);
    if ((rc = cli_tenant_part(c, t, own, out)) != 0)
        return rc;
    if (t->nparts == 1)
        return 0; /* one keyspace: the command itself says "no such job" */
    int got = holds(out, id);
    if (got)
        return got == 1 ? 0 : got >> 8;
    for (int p = 0; p < t->nparts; p++) {
        cli_tenant cand;
        if (p == own)
            continue;
        if ((rc = cli_tenant_part(c, t, p, &cand)) != 0)
            return rc;
        if ((got = holds(&cand, id)) == 1) {
            *out = cand;
            return 0;
        }
        if (got)
            return got >> 8;
    }
    return CLI_NOJOB;
}

int cli_each_partition(cli *c, cli_tenant *t, const char *const *ids, size_t n, cli_ids_fn fn,
                       void *ud)
{
    int rc = cli_partitions(c, t);
    if (rc)
        return rc;
    if (t->nparts == 1)
        return fn(c, t, ids, n, ud);
    int *part = malloc((n + 1) * sizeof *part);
    const char **mine = malloc((n + 1) * sizeof *mine);
    if (!part || !mine) {
        free(part);
        free(mine);
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    cli_tenant pt;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = cli_job_partition(c, t, ids[i], &pt);
        if (rc == CLI_NOJOB)
            rc = 0;
        part[i] = pt.part;
    }
    int worst = CLI_OK;
    for (int p = 0; p < t->nparts && rc == 0; p++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (part[i] == p)
                mine[k++] = ids[i];
        if (k == 0)
            continue;
        if ((rc = cli_tenant_part(c, t, p, &pt)) != 0 ||
            (rc = cli_connect(pt.conn, 0, NULL, 0)) != 0)
            break;
        int got = fn(c, &pt, mine, k, ud);
        if (got == CLI_REDIS || got == CLI_TIMEOUT)
            rc = got;
        else if (worst == CLI_OK)
            worst = got;
    }
    free(part);
    free(mine);
    return rc ? rc : worst;
}

int cli_part_open(cli *c, const cli_tenant *t, int p, cli_tenant *out, char *why, size_t whylen)
{
    int rc = cli_tenant_part(c, t, p, out);
    if (rc)
        return rc;
    if (out->conn->part_failed) {
        snprintf(why, whylen, "%s", out->conn->part_why);
        return CLI_REDIS;
    }
    why[0] = '\0';
    /* A frozen master (SIGSTOP, a cut link) accepts the connection and
     * never answers: a bound on replies makes it one unreadable partition
     * instead of a command that hangs. A bound the caller set stays. */
    if (out->conn->reply_timeout_ms == 0)
        cli_set_reply_timeout(out->conn, CLI_PART_REPLY_MS);
    if (cli_connect(out->conn, 1, why, whylen) == 0)
        return 0;
    if (!why[0])
        cli_part_why(out, why, whylen);
    out->conn->part_failed = 1;
    snprintf(out->conn->part_why, sizeof out->conn->part_why, "%s", why);
    return CLI_REDIS;
}

void cli_part_why(const cli_tenant *pt, char *why, size_t whylen)
{
    const lw_sconn *ctx = pt->conn->ctx;
    snprintf(why, whylen, "%s",
             ctx && ctx->err && ctx->errstr[0] ? ctx->errstr
                                               : "the server refused a command (above)");
}

void cli_part_unreadable(const cli *c, const char *tenant, int p, const char *why, const char *tail)
{
    char pre[CLI_PREFIX_MAX];
    if (lw_partition_prefix(pre, sizeof pre, c->cfg.ns, tenant, p) != 0)
        snprintf(pre, sizeof pre, "?");
    cli_err(c->cmd, "tenant \"%s\" partition %d (%s) unreadable: %s; %s", cli_show(tenant), p, pre,
            why, tail);
}

int cli_bound_replies(cli_conn *k)
{
    return k->reply_timeout_ms ? 0 : cli_set_reply_timeout(k, CLI_PART_REPLY_MS);
}

void cli_gap_add(cli_gaps *g, int p, const char *why)
{
    if (!g || cli_gap_has(g, p) || g->n >= LW_PARTITIONS_MAX)
        return;
    g->part[g->n] = p;
    cli_oneline(why && why[0] ? why : "unreadable", strlen(why && why[0] ? why : "unreadable"),
                g->why[g->n], sizeof g->why[g->n]);
    g->n++;
}

int cli_gap_has(const cli_gaps *g, int p)
{
    for (int i = 0; g && i < g->n; i++)
        if (g->part[i] == p)
            return 1;
    return 0;
}

/*
 * cmd_purge.c — `lanework purge --tenant T --status S [--queue Q]`: every
 * ended job of one status deleted (delete.lua, which checks each job's
 * status and queue again as it deletes it), and the count printed.
 *
 * Failed jobs are found through the failed index. Succeeded, cancelled and
 * expired jobs have none (their records simply expire), so their keys are
 * found by SCAN of the partition's server: it walks every key there, a cost
 * that grows with the server's size, paid by an operator's command only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "names.h"
#include "script_args.h"
#include "script_replies.h"

static const char USAGE[] =
    "Usage: lanework purge --tenant T --status S [--queue Q]\n"
    "\n"
    "Deletes every job of tenant T that ended with status S (failed, succeeded,\n"
    "cancelled or expired), of queue Q only when given, as `lanework delete`\n"
    "does, and prints how many. Failed jobs are found through the failed index;\n"
    "the others by a SCAN of the tenant's server (it reads every key name\n"
    "there: on a big server that takes a while).\n"
    "\n"
    "Exit status: 0 done; 2 usage error; 3 Redis unreachable or refused (stderr\n"
    "says how many were deleted before).\n";

#define PURGE_CHUNK 500

/* delete.lua on ids[0..n) of pt, for status/queue; adds the deleted to
 * *deleted. 0 or an exit status (printed). */
static int purge_ids(cli *c, cli_tenant *pt, const char *status, const char *queue,
                     const char *const *ids, size_t n, long *deleted)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_delete_keys(&a, pt->prefix);
    lw_delete_argv_add(&a, &(lw_delete_argv){.prefix = pt->prefix,
                                             .events_cap = pt->set.events_max,
                                             .status = status,
                                             .queue = queue ? queue : "",
                                             .n = (int64_t)n});
    for (size_t i = 0; i < n; i++)
        lw_delete_job_argv_add(&a, &(lw_delete_job_argv){.id = ids[i]});
    redisReply *r = cli_change(c, pt, &lw_script_delete, LW_DELETE_NKEYS, &a, "purge");
    lw_argv_clear(&a);
    if (!r)
        return CLI_REDIS;
    lw_delete_reply got;
    int rc = 0;
    if (lw_delete_reply_read(r, &got, NULL, 0) != 0 || got.n_job != n) {
        rc = cli_redis_err(pt->conn, r, NULL);
    } else {
        for (size_t i = 0; i < n; i++) {
            lw_delete_job job;
            lw_delete_job_at(&got, i, &job);
            *deleted += !strcmp(job.status.s, "deleted");
        }
    }
    freeReplyObject(r);
    return rc;
}

/* The ids (strings) of array r's elements from `from`, each without the
 * first `strip` bytes, into ids[]; returns how many. */
static size_t ids_of(const redisReply *r, size_t from, size_t strip, const char **ids)
{
    size_t n = 0;
    for (size_t i = from; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i]->len > strip)
            ids[n++] = r->element[i]->str + strip;
    return n;
}

/* Failed jobs: the failed index, oldest first; the entries left (another
 * queue, records gone) are stepped over. */
static int purge_failed(cli *c, cli_tenant *pt, const char *queue, long *deleted)
{
    char key[CLI_KEY_MAX];
    lw_key(key, sizeof key, pt->prefix, "failed", NULL);
    const char *ids[PURGE_CHUNK];
    for (long skip = 0;;) {
        char from[32], to[32];
        snprintf(from, sizeof from, "%ld", skip);
        snprintf(to, sizeof to, "%ld", skip + PURGE_CHUNK - 1);
        const char *cmd[4] = {"ZRANGE", key, from, to};
        redisReply *r = cli_cmd(pt->conn, 4, cmd);
        if (!r)
            return CLI_REDIS;
        int bad = cli_not_array(pt->conn, r);
        if (bad)
            return bad;
        size_t n = ids_of(r, 0, 0, ids), total = r->elements;
        long before = *deleted;
        int rc = n ? purge_ids(c, pt, "failed", queue, ids, n, deleted) : 0;
        freeReplyObject(r);
        if (rc)
            return rc;
        skip += (long)n - (*deleted - before);
        if (total < PURGE_CHUNK)
            return 0;
    }
}

/* Other statuses: SCAN of pt's server for its job records. */
static int purge_scanned(cli *c, cli_tenant *pt, const char *status, const char *queue,
                         long *deleted)
{
    char pattern[CLI_KEY_MAX], cursor[64] = "0";
    lw_key(pattern, sizeof pattern, pt->prefix, "job:", "*");
    size_t strip = strlen(pattern) - 1;
    const char **ids = NULL;
    size_t cap = 0;
    do {
        const char *cmd[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        redisReply *r = cli_cmd(pt->conn, 6, cmd);
        if (!r)
            return CLI_REDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            int rc = cli_redis_err(pt->conn, r, NULL);
            freeReplyObject(r);
            free(ids);
            return rc;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        if (keys->elements > cap) {
            const char **n = realloc(ids, keys->elements * sizeof *n);
            if (!n) {
                freeReplyObject(r);
                free(ids);
                cli_err(c->cmd, "out of memory");
                return CLI_USAGE;
            }
            ids = n;
            cap = keys->elements;
        }
        size_t n = ids_of(keys, 0, strip, ids);
        int rc = 0;
        for (size_t at = 0; rc == 0 && at < n; at += PURGE_CHUNK)
            rc = purge_ids(c, pt, status, queue, ids + at,
                           n - at < PURGE_CHUNK ? n - at : PURGE_CHUNK, deleted);
        freeReplyObject(r);
        if (rc) {
            free(ids);
            return rc;
        }
    } while (strcmp(cursor, "0") != 0);
    free(ids);
    return 0;
}

int cmd_purge(cli *c, int argc, char **argv)
{
    const char *tenant = NULL, *status = NULL, *queue = NULL;
    const cli_opt opts[] = {{"--tenant", &tenant, NULL, NULL, NULL},
                            {"--status", &status, NULL, NULL, NULL},
                            {"--queue", &queue, NULL, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        return rc;
    if (!status) {
        cli_err(c->cmd, "--status is required (failed, succeeded, cancelled or expired)");
        return CLI_USAGE;
    }
    if (strcmp(status, "failed") && strcmp(status, "succeeded") && strcmp(status, "cancelled") &&
        strcmp(status, "expired")) {
        cli_err(c->cmd,
                "--status: \"%s\" is not an end a job can be purged in (failed, succeeded, "
                "cancelled or expired; waiting jobs: lanework delete)",
                cli_show(status));
        return CLI_USAGE;
    }
    if (queue && !lw_name_is_safe(queue)) {
        cli_err(c->cmd, "--queue: \"%s\" is not a safe name (letters, digits, - _ .)",
                cli_show(queue));
        return CLI_USAGE;
    }
    cli_tenant t;
    if ((rc = cli_tenant_open(c, tenant, NULL, 0, &t)) != 0 ||
        (rc = cli_bound_replies(t.conn)) != 0 || (rc = cli_partitions(c, &t)) != 0)
        return rc;
    long deleted = 0;
    for (int p = 0; rc == 0 && p < t.nparts; p++) {
        cli_tenant pt;
        if ((rc = cli_tenant_part(c, &t, p, &pt)) != 0 ||
            (rc = cli_connect(pt.conn, 0, NULL, 0)) != 0)
            break;
        rc = !strcmp(status, "failed") ? purge_failed(c, &pt, queue, &deleted)
                                       : purge_scanned(c, &pt, status, queue, &deleted);
    }
    if (rc) {
        cli_err(c->cmd, "stopped: %ld job(s) deleted before", deleted);
        return rc;
    }
    printf("%ld\n", deleted);
    return cli_flush(c);
}

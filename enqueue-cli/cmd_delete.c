/*
 * cmd_delete.c — `lanework delete --tenant T ID...` (delete.lua): jobs that
 * ended or still wait, gone with every trace. A running job is refused:
 * cancel it first.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "script_args.h"
#include "script_replies.h"

static const char USAGE[] =
    "Usage: lanework delete --tenant T ID...\n"
    "\n"
    "Deletes jobs that ended (succeeded, failed, cancelled, expired) or still\n"
    "wait (queued, scheduled): the record and its place in its lane, the\n"
    "schedule, the failed index and its unique key. The next job of its lane\n"
    "goes on. The running totals of `lanework stats` keep what happened; one\n"
    "job.deleted event each. Prints `deleted ID` per job deleted.\n"
    "\n"
    "Exit status: 0 all deleted; 1 a record is corrupt (`lanework fsck --repair`);\n"
    "2 usage error, or a job is running (cancel it first: `lanework cancel`);\n"
    "3 Redis unreachable or refused; 4 no such job. With several problems the\n"
    "status is that of the first, in argument order; every job that could be\n"
    "deleted is.\n";

/* Ids per delete.lua call: one round trip, and a bounded script run. */
#define DELETE_CHUNK 256

/* Deletes ids[0..n) of partition pt (cli_ids_fn). */
static int delete_part(cli *c, cli_tenant *pt, const char *const *ids, size_t n, void *ud)
{
    (void)ud;
    int worst = CLI_OK;
    for (size_t from = 0; from < n; from += DELETE_CHUNK) {
        size_t k = n - from < DELETE_CHUNK ? n - from : DELETE_CHUNK;
        lw_argv a;
        lw_argv_init(&a);
        lw_delete_keys(&a, pt->prefix);
        lw_delete_argv_add(&a, &(lw_delete_argv){.prefix = pt->prefix,
                                                 .events_cap = pt->set.events_max,
                                                 .status = "",
                                                 .queue = "",
                                                 .n = (int64_t)k});
        for (size_t i = 0; i < k; i++)
            lw_delete_job_argv_add(&a, &(lw_delete_job_argv){.id = ids[from + i]});
        redisReply *r = cli_change(c, pt, &lw_script_delete, LW_DELETE_NKEYS, &a, "delete");
        lw_argv_clear(&a);
        if (!r)
            return CLI_REDIS;
        lw_delete_reply got;
        if (lw_delete_reply_read(r, &got, NULL, 0) != 0 || got.n_job != k) {
            int rc = cli_redis_err(pt->conn, r, NULL);
            freeReplyObject(r);
            return rc;
        }
        char why[512];
        for (size_t i = 0; i < k; i++) {
            lw_delete_job job;
            lw_delete_job_at(&got, i, &job);
            int rc = CLI_OK;
            if (!strcmp(job.status.s, "deleted")) {
                printf("deleted %s\n", job.id.s);
            } else if (!strcmp(job.status.s, "active")) {
                cli_err(c->cmd, "job %s is running: cancel it first (lanework cancel)", job.id.s);
                rc = CLI_USAGE;
            } else if (!strcmp(job.status.s, "missing")) {
                cli_err(c->cmd, "no such job %s", job.id.s);
                rc = CLI_NOJOB;
            } else {
                cli_err(c->cmd, "job %s: %s", job.id.s,
                        cli_oneline(job.status.s, job.status.len, why, sizeof why));
                rc = CLI_JOB;
            }
            if (worst == CLI_OK)
                worst = rc;
        }
        freeReplyObject(r);
    }
    int rc = cli_flush(c);
    return rc ? rc : worst;
}

int cli_delete_jobs(cli *c, cli_tenant *t, const char *const *ids, size_t n)
{
    return cli_each_partition(c, t, ids, n, delete_part, NULL);
}

int cmd_delete(cli *c, int argc, char **argv)
{
    const char *tenant = NULL;
    const cli_opt opts[] = {{"--tenant", &tenant, NULL, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    cli_args args;
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_IDS, &args, &rc))
        return rc;
    cli_tenant t;
    if ((rc = cli_tenant_open(c, tenant, args.pos, args.npos, &t)) == 0 &&
        (rc = cli_bound_replies(t.conn)) == 0)
        rc = cli_delete_jobs(c, &t, args.pos, args.npos);
    cli_args_free(&args);
    return rc;
}

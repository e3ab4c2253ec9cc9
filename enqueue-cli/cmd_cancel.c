/* cmd_cancel.c — `lanework cancel --tenant T ID` (cancel.lua). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "redis_sync.h"
#include "script_args.h"
#include "script_replies.h"

static const char USAGE[] =
    "Usage: lanework cancel --tenant T ID\n"
    "\n"
    "Cancels job ID. A queued or scheduled job ends cancelled at once: prints\n"
    "`cancelled`. A running job is asked to stop (its worker stops the attempt\n"
    "and records it cancelled): prints `cancel requested`; `lanework wait` tells\n"
    "when it has ended.\n"
    "\n"
    "Exit status: 0 cancelled or requested; 1 the job had ended already (stderr\n"
    "names its status) or its record is corrupt; 2 usage error; 3 Redis\n"
    "unreachable or refused; 4 no such job.\n";

int cli_cancel_job(cli *c, cli_tenant *t, const char *id)
{
    int rc;
    /* cancel.lua answers "cancelled" both when it cancels the job and when
     * the job was cancelled before: ask first, so a second cancel is told
     * apart (exit 1, "already cancelled"). A cancel racing with ours between
     * the two calls is reported as ours, which is true enough. */
    char jk[CLI_KEY_MAX];
    lw_key(jk, sizeof jk, t->prefix, "job:", id);
    const char *hget[3] = {"HGET", jk, "status"};
    redisReply *pre = cli_cmd(t->conn, 3, hget);
    if (!pre)
        return CLI_REDIS;
    int before = cli_reply_is(pre, "cancelled");
    freeReplyObject(pre); /* an error (not a hash) is for cancel.lua to report */
    if (before) {
        cli_err(c->cmd, "job %s already cancelled", id);
        return CLI_JOB;
    }

    lw_argv a;
    lw_argv_init(&a);
    lw_cancel_keys(&a, t->prefix);
    lw_cancel_argv_add(&a, &(lw_cancel_argv){.prefix = t->prefix,
                                             .events_cap = t->set.events_max,
                                             .keep_failed_s = t->set.keep_failed_s,
                                             .id = id});
    char err[256];
    redisReply *r = cli_script(t->conn, &lw_script_cancel, LW_CANCEL_NKEYS, &a, err, sizeof err);
    lw_argv_clear(&a);
    if (!r)
        return cli_redis_err(t->conn, NULL, err);
    char line[600];
    if (r->type != REDIS_REPLY_ERROR && cli_confirm(c, t->conn, t->prefix, err, sizeof err) != 0) {
        snprintf(line, sizeof line, "cancel of job %s recorded on the primary, but %s", id, err);
        freeReplyObject(r);
        return cli_redis_err(t->conn, NULL, line);
    }
    lw_cancel_reply got;
    if (lw_cancel_reply_read(r, &got, err, sizeof err) != 0) {
        rc = cli_redis_err(t->conn, r, NULL);
    } else if (cli_reply_is(r, "cancelled")) {
        puts("cancelled");
        rc = cli_flush(c);
    } else if (cli_reply_is(r, "requested")) {
        puts("cancel requested");
        rc = cli_flush(c);
    } else if (cli_reply_is(r, "missing")) {
        cli_err(c->cmd, "no such job %s", id);
        rc = CLI_NOJOB;
    } else {
        char why[256];
        cli_oneline(got.status.s, got.status.len, why, sizeof why);
        if (strncmp(why, "corrupt", 7) == 0)
            cli_err(c->cmd, "job %s: %s", id, why);
        else
            cli_err(c->cmd, "job %s already %s", id, why);
        rc = CLI_JOB;
    }
    freeReplyObject(r);
    return rc;
}

int cmd_cancel(cli *c, int argc, char **argv)
{
    const char *id;
    cli_tenant t;
    int rc;
    if (!cli_one_job_open(c, argc, argv, USAGE, &id, &t, &rc))
        return rc;
    return cli_cancel_job(c, &t, id);
}

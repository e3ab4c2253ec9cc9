/*
 * cmd_pause.c — `lanework pause|resume --tenant T --queue Q` (pause.lua):
 * a queue stopped for the whole fleet, in Redis, until resumed.
 *
 * A partitioned tenant has one paused set per partition (claim.lua reads
 * its own slot): the script runs in each, partition 0 first. A failure
 * part-way leaves some partitions paused and says which; running the
 * command again finishes it (the script is idempotent).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "partition.h"
#include "script_args.h"
#include "script_replies.h"

static const char PAUSE_USAGE[] =
    "Usage: lanework pause --tenant T --queue Q\n"
    "\n"
    "Pauses queue Q of tenant T for every worker: nothing more is claimed from\n"
    "it until `lanework resume`; running jobs finish, enqueues are accepted and\n"
    "wait. The pause is kept in Redis: it holds across worker restarts. Shown by\n"
    "`lanework stats`.\n"
    "\n"
    "Exit status: 0 paused (stderr says when it was already); 2 usage error;\n"
    "3 Redis unreachable or refused.\n";

static const char RESUME_USAGE[] =
    "Usage: lanework resume --tenant T --queue Q\n"
    "\n"
    "Resumes queue Q of tenant T, paused by `lanework pause`: workers claim\n"
    "from it again at once.\n"
    "\n"
    "Exit status: 0 resumed (stderr says when it was not paused); 2 usage\n"
    "error; 3 Redis unreachable or refused.\n";

/* Runs pause.lua (pause: 1 or 0) in partition pt; 0 with *changed and
 * *nparts (the count in force, as partition 0 says) set, or an exit status
 * (printed). */
static int pause_part(cli *c, cli_tenant *pt, const char *queue, int pause, int *changed,
                      int *nparts)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_pause_keys(&a, pt->prefix);
    lw_pause_argv_add(&a, &(lw_pause_argv){.prefix = pt->prefix,
                                           .events_cap = pt->set.events_max,
                                           .queue = queue,
                                           .pause = pause});
    redisReply *r =
        cli_change(c, pt, &lw_script_pause, LW_PAUSE_NKEYS, &a, pause ? "pause" : "resume");
    lw_argv_clear(&a);
    if (!r)
        return CLI_REDIS;
    lw_pause_reply got;
    int rc = 0;
    if (lw_pause_reply_read(r, &got, NULL, 0) != 0) {
        rc = cli_redis_err(pt->conn, r, NULL);
    } else {
        *changed = got.changed == 1;
        *nparts =
            got.partitions >= 1 && got.partitions <= LW_PARTITIONS_MAX ? (int)got.partitions : 1;
    }
    freeReplyObject(r);
    return rc;
}

int cli_pause_queue_partial(cli *c, cli_tenant *t, const char *queue, int pause, int *any,
                            int *done, cli_gaps *g)
{
    int rc = cli_partitions(c, t);
    if (rc)
        return rc;
    *any = 0;
    *done = 0;
    for (int p = 0; p < t->nparts; p++) {
        cli_tenant pt;
        int changed = 0, nparts = 1;
        char why[256] = "";
        if (p == 0) {
            if ((rc = cli_tenant_part(c, t, 0, &pt)) != 0 ||
                (rc = pause_part(c, &pt, queue, pause, &changed, &nparts)) != 0)
                return rc; /* the count comes from it: nothing else is done */
            t->nparts = nparts;
        } else {
            rc = cli_part_open(c, t, p, &pt, why, sizeof why);
            if (rc == 0 && (rc = pause_part(c, &pt, queue, pause, &changed, &nparts)) != 0) {
                const lw_sconn *ctx = pt.conn->ctx;
                snprintf(why, sizeof why, "%s",
                         ctx && ctx->err && ctx->errstr[0] ? ctx->errstr
                         : cli_last_err()[0]               ? cli_last_err()
                                                           : "the server refused the change");
                if (ctx && ctx->err) {
                    pt.conn->part_failed = 1;
                    snprintf(pt.conn->part_why, sizeof pt.conn->part_why, "%s", why);
                }
            }
            if (rc == CLI_REDIS) {
                cli_gap_add(g, p, why);
                continue;
            }
            if (rc)
                return rc;
        }
        *any |= changed;
        (*done)++;
    }
    return 0;
}

int cli_pause_queue(cli *c, cli_tenant *t, const char *queue, int pause, int *any)
{
    int rc = cli_partitions(c, t);
    if (rc)
        return rc;
    int done = 0;
    *any = 0;
    /* Partition 0 first: its answer is the count to cover -- the one read
     * above may have changed since, but not after a pause there. */
    for (int p = 0; p < t->nparts; p++) {
        cli_tenant pt;
        int changed = 0, nparts = 1;
        if ((rc = cli_tenant_part(c, t, p, &pt)) != 0 ||
            (rc = pause_part(c, &pt, queue, pause, &changed, &nparts)) != 0)
            break;
        if (p == 0)
            t->nparts = nparts;
        *any |= changed;
        done++;
    }
    if (rc && done > 0)
        cli_err(c->cmd, "queue %s %s in %d of %d partitions only: run it again", queue,
                pause ? "paused" : "resumed", done, t->nparts);
    return rc;
}

static int pause_or_resume(cli *c, int argc, char **argv, int pause)
{
    const char *tenant = NULL, *queue = NULL;
    const cli_opt opts[] = {
        {"--tenant", &tenant, NULL, NULL, NULL},
        {"--queue", &queue, NULL, NULL, NULL},
        {NULL, NULL, NULL, NULL, NULL},
    };
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, pause ? PAUSE_USAGE : RESUME_USAGE, CLI_ARGS_NONE,
                        NULL, &rc))
        return rc;
    if (!tenant) {
        cli_err(c->cmd, "--tenant is required");
        return CLI_USAGE;
    }
    if (!queue) {
        cli_err(c->cmd, "--queue is required");
        return CLI_USAGE;
    }
    if (!lw_name_is_safe(queue)) {
        cli_err(c->cmd, "--queue: \"%s\" is not a safe name (letters, digits, - _ .)",
                cli_show(queue));
        return CLI_USAGE;
    }
    cli_tenant t;
    int any = 0;
    if ((rc = cli_tenant_open(c, tenant, NULL, 0, &t)) != 0 ||
        (rc = cli_bound_replies(t.conn)) != 0 ||
        (rc = cli_pause_queue(c, &t, queue, pause, &any)) != 0)
        return rc;
    if (!any)
        cli_err(c->cmd, "queue %s of tenant %s was %s", queue, tenant,
                pause ? "already paused" : "not paused");
    printf("%s %s\n", pause ? "paused" : "resumed", queue);
    return cli_flush(c);
}

int cmd_pause(cli *c, int argc, char **argv) { return pause_or_resume(c, argc, argv, 1); }

int cmd_resume(cli *c, int argc, char **argv) { return pause_or_resume(c, argc, argv, 0); }

/* cmd_status.c — `lanework status --tenant T ID`: the job as one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"

static const char USAGE[] =
    "Usage: lanework status --tenant T ID\n"
    "\n"
    "Prints job ID as one JSON object: id, tenant, kind, queue, lane, status,\n"
    "payload, attempt, attempts, timeout, enqueued_at, started_at, finished_at,\n"
    "result, error, worker.\n"
    "\n"
    "Exit status: 0 printed; 1 the record is corrupt (why on stderr); 2 usage\n"
    "error; 3 Redis unreachable or refused; 4 no such job (or its record expired).\n";

int cmd_status(cli *c, int argc, char **argv)
{
    const char *id;
    cli_tenant t;
    int rc;
    if (!cli_one_job_open(c, argc, argv, USAGE, &id, &t, &rc))
        return rc;
    char key[CLI_KEY_MAX];
    if (lw_key(key, sizeof key, t.prefix, "job:", id) != 0)
        return CLI_USAGE;
    const char *cmd[2] = {"HGETALL", key};
    redisReply *r = cli_cmd(t.conn, 2, cmd);
    if (!r)
        return CLI_REDIS;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
        cli_err(c->cmd, "job %s: corrupt record (not a hash)", id);
        rc = CLI_JOB;
    } else if (r->type != REDIS_REPLY_ARRAY) {
        rc = cli_redis_err(t.conn, r, NULL);
    } else if (r->elements == 0) {
        cli_err(c->cmd, "no such job %s", id);
        rc = CLI_NOJOB;
    } else {
        char *json = cli_job_json(t.name, r);
        if (json) {
            printf("%s\n", json);
            rc = cli_flush(c);
        } else {
            cli_err(c->cmd, "job %s: corrupt record (no id field)", id);
            rc = CLI_JOB;
        }
        free(json);
    }
    freeReplyObject(r);
    return rc;
}

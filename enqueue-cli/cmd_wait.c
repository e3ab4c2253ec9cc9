/*
 * cmd_wait.c — `lanework wait --tenant T ID... [--timeout S]`, and the
 * waiting of `enqueue --wait`.
 *
 * Not a busy poll: the last id of the tenant's event stream is read before
 * the statuses are checked, then XREAD BLOCK waits (at most CHECK_MS) for
 * events after it. Statuses are checked again when an event names a job still
 * awaited, or CHECK_MS after the last check. The stream is capped and only
 * cuts latency: correctness rests on the periodic check of the job records
 * themselves (one pipelined HMGET per job).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "timefmt.h"
#include "views.h"

#define CHECK_MS 1000

static const char USAGE[] =
    "Usage: lanework wait --tenant T ID... [--timeout S]\n"
    "\n"
    "Waits until every job ID has ended (succeeded, failed, cancelled or\n"
    "expired). Each job that ended otherwise than succeeded gets one stderr\n"
    "line naming it, its status and its error. Without --timeout it waits for\n"
    "ever; --timeout 0 checks once.\n"
    "\n"
    "Exit status: 0 every job succeeded; 1 some job ended failed, cancelled or\n"
    "expired; 2 usage error; 3 Redis unreachable or refused; 4 some job does not\n"
    "exist (checked first: waiting stops at once); 124 timed out.\n";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the statuses of the pending jobs, reports and drops the ended ones.
 * Returns 0 (with *worst raised to CLI_JOB when one ended badly), CLI_NOJOB
 * or CLI_REDIS. */
static int check(cli *c, cli_tenant *t, const char **pend, size_t *npend, int *worst)
{
    char key[CLI_KEY_MAX];
    for (size_t i = 0; i < *npend; i++) {
        lw_key(key, sizeof key, t->prefix, "job:", pend[i]);
        const char *argv[4] = {"HMGET", key, "status", "error"};
        if (cli_append(t->conn, 4, argv) != 0)
            return CLI_REDIS;
    }
    int rc = 0;
    size_t keep = 0;
    for (size_t i = 0; i < *npend; i++) {
        redisReply *r = cli_next_reply(t->conn);
        if (!r)
            return CLI_REDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (rc == 0)
                rc = cli_redis_err(t->conn, r, NULL);
            pend[keep++] = pend[i];
        } else if (r->element[0]->type != REDIS_REPLY_STRING) {
            cli_err(c->cmd, "no such job %s", pend[i]);
            if (rc == 0)
                rc = CLI_NOJOB;
        } else if (!lw_status_is_terminal(r->element[0]->str)) {
            pend[keep++] = pend[i];
        } else if (strcmp(r->element[0]->str, "succeeded") != 0) {
            char why[400];
            const redisReply *e = r->element[1];
            if (e->type == REDIS_REPLY_STRING)
                cli_oneline(e->str, e->len, why, sizeof why);
            else
                snprintf(why, sizeof why, "no error recorded");
            cli_err(c->cmd, "job %s ended %s: %s", pend[i], r->element[0]->str, why);
            *worst = CLI_JOB;
        }
        freeReplyObject(r);
    }
    *npend = keep;
    return rc;
}

/* Waits at most block_ms for events after *last. Returns 1 when an event
 * names a pending job, 0 when not (or none came), -1 after a Redis error. */
static int await_events(cli_tenant *t, const char *ev, char last[64], int64_t block_ms,
                        const char **pend, size_t npend)
{
    char block[24];
    snprintf(block, sizeof block, "%" PRId64, block_ms);
    const char *argv[8] = {"XREAD", "COUNT", "1000", "BLOCK", block, "STREAMS", ev, last};
    redisReply *r = cli_cmd(t->conn, 8, argv);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        cli_redis_err(t->conn, r, NULL);
        freeReplyObject(r);
        return -1;
    }
    int hit = 0;
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *st = r->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
            continue;
        const redisReply *entries = st->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(last, 64, "%s", e->element[0]->str);
            const redisReply *fv = e->element[1];
            for (size_t k = 0; fv->type == REDIS_REPLY_ARRAY && k + 1 < fv->elements; k += 2) {
                if (fv->element[k]->type != REDIS_REPLY_STRING ||
                    fv->element[k + 1]->type != REDIS_REPLY_STRING ||
                    strcmp(fv->element[k]->str, "job") != 0)
                    continue;
                const char *job = fv->element[k + 1]->str;
                if (bsearch(&job, pend, npend, sizeof *pend, cmp_str))
                    hit = 1;
            }
        }
    }
    freeReplyObject(r);
    return hit;
}

int cli_wait_jobs(cli *c, cli_tenant *t, const char *const *ids, size_t n, int64_t timeout_ms)
{
    if (cli_connect(t->conn, 0, NULL, 0) != 0)
        return CLI_REDIS;
    int64_t start = lw_mono_ms();
    int64_t deadline = timeout_ms >= 0 ? start + timeout_ms : -1;
    char ev[CLI_KEY_MAX], last[64] = "0-0";
    lw_key(ev, sizeof ev, t->prefix, "events", NULL);

    /* The stream position first: an event after it can only be newer than
     * the statuses read next. */
    const char *rev[6] = {"XREVRANGE", ev, "+", "-", "COUNT", "1"};
    redisReply *r = cli_cmd(t->conn, 6, rev);
    if (!r)
        return CLI_REDIS;
    if (r->type != REDIS_REPLY_ARRAY) {
        int rc = cli_redis_err(t->conn, r, NULL);
        freeReplyObject(r);
        return rc;
    }
    if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements > 0 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(last, sizeof last, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);

    const char **pend = malloc((n ? n : 1) * sizeof *pend);
    if (!pend) {
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    memcpy(pend, ids, n * sizeof *pend);
    qsort(pend, n, sizeof *pend, cmp_str);
    size_t npend = 0;
    for (size_t i = 0; i < n; i++)
        if (npend == 0 || strcmp(pend[npend - 1], pend[i]) != 0)
            pend[npend++] = pend[i];

    int worst = CLI_OK, rc;
    for (;;) {
        rc = check(c, t, pend, &npend, &worst);
        if (rc != 0 || npend == 0)
            break;
        int64_t last_check = lw_mono_ms();
        int hit = 0;
        while (!hit) {
            int64_t now = lw_mono_ms();
            if (deadline >= 0 && now >= deadline) {
                char list[512];
                size_t o = 0;
                for (size_t i = 0; i < npend && i < 5 && o < sizeof list; i++)
                    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? " " : "",
                                          pend[i]);
                cli_err(c->cmd, "timed out after %.3gs with %zu job(s) not ended: %s%s",
                        (double)timeout_ms / 1000.0, npend, list, npend > 5 ? " ..." : "");
                rc = CLI_TIMEOUT;
                goto out;
            }
            int64_t block = CHECK_MS - (now - last_check);
            if (deadline >= 0 && deadline - now < block)
                block = deadline - now;
            if (block < 1)
                break; /* time for the periodic check */
            hit = await_events(t, ev, last, block, pend, npend);
            if (hit < 0) {
                rc = CLI_REDIS;
                goto out;
            }
        }
    }
out:
    free(pend);
    return rc ? rc : worst;
}

int cmd_wait(cli *c, int argc, char **argv)
{
    const char *tenant = NULL, *timeout = NULL;
    const cli_opt opts[] = {{"--tenant", &tenant, NULL, NULL, NULL},
                            {"--timeout", &timeout, NULL, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    cli_args args;
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_IDS, &args, &rc))
        return rc;
    int64_t timeout_ms = -1;
    cli_tenant t;
    if (timeout && cli_seconds(c, "--timeout", timeout, 1, &timeout_ms))
        rc = CLI_USAGE;
    else if ((rc = cli_tenant_open(c, tenant, args.pos, args.npos, &t)) == 0)
        rc = cli_wait_jobs(c, &t, args.pos, args.npos, timeout_ms);
    cli_args_free(&args);
    return rc;
}

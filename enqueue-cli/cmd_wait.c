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
 *
 * An outage (reconnect.c) is waited out within the deadline; afterwards the
 * position and every status are read again, as at the start: the job may
 * have ended while the connection was down.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "redis_sync.h"
#include "timefmt.h"
#include "views.h"

#define CHECK_MS 1000
/* How far past the deadline a read may wait for its reply. */
#define DEADLINE_SLACK_MS 200

static const char USAGE[] =
    "Usage: lanework wait --tenant T ID... [--timeout S]\n"
    "\n"
    "Waits until every job ID has ended (succeeded, failed, cancelled or\n"
    "expired). Each job that ended otherwise than succeeded gets one stderr\n"
    "line naming it, its status and its error. Without --timeout it waits for\n"
    "ever; --timeout 0 checks once. A lost connection (Redis restarted, failed\n"
    "over, CLIENT KILL) is waited out: one warning line on stderr, reconnects\n"
    "with backoff (within --timeout), then every status is read again, so a job\n"
    "that ended meanwhile is seen. A refusal (NOPERM, WRONGPASS) is exit 3.\n"
    "\n"
    "Exit status: 0 every job succeeded; 1 some job ended failed, cancelled or\n"
    "expired; 2 usage error; 3 Redis unreachable or refused; 4 some job does not\n"
    "exist (checked first: waiting stops at once); 124 timed out.\n";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* What check() and await_events() return for an outage (cli_is_outage):
 * the caller reconnects and checks again. */
#define LOST (-100)

/* Checks the statuses of the pending jobs, reports and drops the ended ones.
 * Returns 0 (with *worst raised to CLI_JOB when one ended badly), CLI_NOJOB,
 * CLI_REDIS (printed), or LOST with why: then every job not seen ended is
 * still pending. */
static int check(cli *c, cli_tenant *t, const char **pend, size_t *npend, int *worst, char *why,
                 size_t whylen)
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
        void *rv = NULL;
        if (lw_sconn_get_reply(t->conn->ctx, (redisReply **)&rv) != 0)
            rv = NULL;
        redisReply *r = rv;
        if (cli_is_outage(r)) {
            cli_outage_why(t->conn, r, why, whylen);
            if (r)
                freeReplyObject(r);
            /* Not known yet: these stay awaited. */
            memmove(pend + keep, pend + i, (*npend - i) * sizeof *pend);
            *npend = keep + (*npend - i);
            return LOST;
        }
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
            char err[400];
            const redisReply *e = r->element[1];
            if (e->type == REDIS_REPLY_STRING)
                cli_oneline(e->str, e->len, err, sizeof err);
            else
                snprintf(err, sizeof err, "no error recorded");
            cli_err(c->cmd, "job %s ended %s: %s", pend[i], r->element[0]->str, err);
            *worst = CLI_JOB;
        }
        freeReplyObject(r);
    }
    *npend = keep;
    return rc;
}

/* Waits at most block_ms for events after *last. Returns 1 when an event
 * names a pending job, 0 when not (or none came), -1 after a refusal
 * (printed), LOST with why after an outage. */
static int await_events(cli_tenant *t, const char *ev, char last[64], int64_t block_ms,
                        const char **pend, size_t npend, char *why, size_t whylen)
{
    char block[24];
    snprintf(block, sizeof block, "%" PRId64, block_ms);
    const char *argv[8] = {"XREAD", "COUNT", "1000", "BLOCK", block, "STREAMS", ev, last};
    redisReply *r = lw_sconn_command(t->conn->ctx, 8, argv, NULL);
    if (cli_is_outage(r)) {
        cli_outage_why(t->conn, r, why, whylen);
        if (r)
            freeReplyObject(r);
        return LOST;
    }
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

/* Reads the id of the stream's newest event into last (kept when the stream
 * is empty). Returns 0, CLI_REDIS (printed) or LOST with why. */
static int stream_position(cli_tenant *t, const char *ev, char last[64], char *why, size_t whylen)
{
    const char *rev[6] = {"XREVRANGE", ev, "+", "-", "COUNT", "1"};
    redisReply *r = lw_sconn_command(t->conn->ctx, 6, rev, NULL);
    if (cli_is_outage(r)) {
        cli_outage_why(t->conn, r, why, whylen);
        if (r)
            freeReplyObject(r);
        return LOST;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        int rc = cli_redis_err(t->conn, r, NULL);
        freeReplyObject(r);
        return rc;
    }
    if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements > 0 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(last, 64, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    return 0;
}

static int timed_out(cli *c, int64_t timeout_ms, const char **pend, size_t npend)
{
    char list[512];
    size_t o = 0;
    for (size_t i = 0; i < npend && i < 5 && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? " " : "", pend[i]);
    cli_err(c->cmd, "timed out after %.3gs with %zu job(s) not ended: %s%s",
            (double)timeout_ms / 1000.0, npend, list, npend > 5 ? " ..." : "");
    return CLI_TIMEOUT;
}

/* A server silent past the longest block is as good as gone -- and past
 * the deadline, too late: each read may wait only until a little after it
 * (then the outage path says 124), whatever Redis does meanwhile. */
static int bound_replies(cli_conn *k, int64_t deadline)
{
    int64_t ms = CHECK_MS + CLI_CONNECT_TIMEOUT_MS;
    if (deadline >= 0 && deadline - lw_mono_ms() + DEADLINE_SLACK_MS < ms)
        ms = deadline - lw_mono_ms() + DEADLINE_SLACK_MS;
    if (ms < 1)
        ms = 1;
    return ms == k->reply_timeout_ms ? 0 : cli_set_reply_timeout(k, (int)ms);
}

int cli_wait_jobs(cli *c, cli_tenant *t, const char *const *ids, size_t n, int64_t timeout_ms)
{
    int64_t start = lw_mono_ms();
    int64_t deadline = timeout_ms >= 0 ? start + timeout_ms : -1;
    if (cli_connect_within(t->conn, deadline) != 0)
        return CLI_REDIS;
    if (bound_replies(t->conn, deadline) != 0)
        return CLI_REDIS;
    char ev[CLI_KEY_MAX], last[64] = "0-0", why[512];
    lw_key(ev, sizeof ev, t->prefix, "events", NULL);

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

    /* After an outage (rc LOST): reconnect within the deadline, then read
     * the position and every status again -- a job may have ended while the
     * connection was down, and its event may be gone with a restart. */
    cli_outage o = {0, 0};
    int worst = CLI_OK, rc, have_position = 0;
    for (;;) {
        /* The stream position first: an event after it can only be newer
         * than the statuses read next. */
        rc = bound_replies(t->conn, deadline) ? CLI_REDIS : 0;
        if (rc == 0 && !have_position)
            rc = stream_position(t, ev, last, why, sizeof why);
        if (rc == 0) {
            have_position = 1;
            rc = check(c, t, pend, &npend, &worst, why, sizeof why);
        }
        if (rc == 0 && npend > 0) {
            o.tries = o.warned = 0;
            int64_t last_check = lw_mono_ms();
            int hit = 0;
            while (!hit) {
                int64_t now = lw_mono_ms();
                if (deadline >= 0 && now >= deadline) {
                    rc = timed_out(c, timeout_ms, pend, npend);
                    goto out;
                }
                int64_t block = CHECK_MS - (now - last_check);
                if (deadline >= 0 && deadline - now < block)
                    block = deadline - now;
                if (block < 1)
                    break; /* time for the periodic check */
                if (bound_replies(t->conn, deadline) != 0) {
                    rc = CLI_REDIS;
                    break;
                }
                hit = await_events(t, ev, last, block, pend, npend, why, sizeof why);
                if (hit < 0) {
                    rc = hit == LOST ? LOST : CLI_REDIS;
                    break;
                }
            }
        }
        if (rc == LOST) {
            have_position = 0;
            rc = cli_reconnect(c, t->conn, why, deadline, &o);
            if (rc == CLI_TIMEOUT)
                rc = timed_out(c, timeout_ms, pend, npend);
            if (rc)
                goto out;
            continue;
        }
        if (rc != 0 || npend == 0)
            break;
    }
out:
    free(pend);
    return rc ? rc : worst;
}

/* cli_each_partition's step: waits for one partition's ids within what is
 * left of the deadline (ud: mono ms, -1: none). */
static int wait_part(cli *c, cli_tenant *pt, const char *const *ids, size_t n, void *ud)
{
    int64_t deadline = *(int64_t *)ud, left = -1;
    if (deadline >= 0) {
        left = deadline - lw_mono_ms();
        if (left < 0)
            left = 0;
    }
    return cli_wait_jobs(c, pt, ids, n, left);
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
    else if ((rc = cli_tenant_open(c, tenant, args.pos, args.npos, &t)) == 0) {
        int64_t deadline = timeout_ms < 0 ? -1 : lw_mono_ms() + timeout_ms;
        rc = cli_each_partition(c, &t, args.pos, args.npos, wait_part, &deadline);
    }
    cli_args_free(&args);
    return rc;
}

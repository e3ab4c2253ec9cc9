/*
 * reconnect.c — how the commands that watch for a long time (`events
 * --follow`, `wait`, `enqueue --wait`) live through a Redis outage.
 *
 * An outage is a connection that failed (EOF after a restart, a failover or
 * CLIENT KILL; a reset; a reply timeout) or a server that says it cannot
 * answer yet (LOADING after a restart, MASTERDOWN, ...). The command then
 * drops the connection and connects again, pausing between tries with
 * capped, jittered exponential backoff (many followers must not reconnect
 * in lockstep), bounded by the command's own deadline when it has one.
 * The callers keep their position (the last event id printed, the jobs
 * still awaited) and re-read what may have changed meanwhile.
 *
 * A refusal is not an outage: an error reply such as NOPERM, or a
 * reconnect answered WRONGPASS, ends the command at once with exit 3, as it
 * would have at the start. Looping on it would only hide the problem.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "cli.h"
#include "redis_sync.h"
#include "timefmt.h"

#define RETRY_BASE_MS 100
#define RETRY_CAP_MS 3000

int cli_is_outage(const redisReply *r)
{
    return !r || (r->type == REDIS_REPLY_ERROR && lw_redis_error_is_transient(r->str, r->len));
}

void cli_outage_why(const cli_conn *k, const redisReply *r, char *why, size_t whylen)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        cli_oneline(r->str, r->len, why, whylen);
    else
        snprintf(why, whylen, "%s",
                 k->ctx && k->ctx->errstr[0] ? k->ctx->errstr : "connection lost");
}

void cli_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ;
}

int cli_reconnect(cli *c, cli_conn *k, const char *why, int64_t deadline_ms, cli_outage *o)
{
    if (!o->warned) {
        /* A read that timed out says EAGAIN's text: say what it means. */
        if (why && strcmp(why, "Resource temporarily unavailable") == 0)
            why = "no reply in time (the server is stalled or the path to it is cut)";
        cli_err(c->cmd, "warning: redis %s: %s; reconnecting", k->url->redacted,
                cli_show(why && *why ? why : "connection lost"));
        o->warned = 1;
    }
    if (k->ctx)
        lw_sconn_free(k->ctx);
    k->ctx = NULL;
    k->scripts_loaded = 0; /* a restarted server has none cached */
    k->evalsha_only = 0;   /* nor, maybe, the library: try FCALL again */
    for (;;) {
        int64_t pause = lw_backoff_ms(RETRY_BASE_MS, ++o->tries, RETRY_CAP_MS, lw_random64());
        int64_t now = lw_mono_ms();
        if (deadline_ms >= 0 && now + pause >= deadline_ms) {
            cli_sleep_ms(deadline_ms - now);
            return CLI_TIMEOUT;
        }
        cli_sleep_ms(pause);
        int64_t tmo = CLI_CONNECT_TIMEOUT_MS;
        if (deadline_ms >= 0 && deadline_ms - lw_mono_ms() < tmo)
            tmo = deadline_ms - lw_mono_ms();
        if (tmo < 1)
            tmo = 1;
        char err[256];
        int refused = 0;
        k->ctx = lw_redis_connect_sync(k->url, k->slot, (int)tmo, &refused, err, sizeof err);
        if (k->ctx)
            return cli_set_reply_timeout(k, k->reply_timeout_ms);
        if (refused)
            return cli_redis_err(k, NULL, err);
    }
}

/*
 * redis_async.c — a Redis server on the libevent loop, as the worker needs it.
 *
 * Two connections per server: `cmd` for scripts and commands, `sub` for
 * pub/sub wake-ups. Each runs the same small state machine:
 *
 *   DOWN ──timer──► CONNECTING ──connected──► HANDSHAKE ──all ok──► READY
 *     ▲                  │                        │                   │
 *     └──────────────────┴──── failure / loss / transient error ◄─────┘
 *
 * Leaving any state for DOWN schedules the next attempt after a capped,
 * jittered exponential backoff, so a fleet does not reconnect in lock-step
 * after a Redis restart. Reaching READY does not reset the backoff: a server
 * that accepts the handshake and then refuses the work (LOADING, READONLY,
 * BUSY, MASTERDOWN right after each reconnect) would otherwise be hammered
 * at the base delay forever. A connection proves itself by staying READY for
 * PROVEN_MS; only then does its failure count go back to zero. A watchdog
 * kills a connection that makes no progress (connect hanging, or replies
 * outstanding with none arriving for the reply timeout) because the
 * transport (resp_async.h) has no timeouts of its own and a half-open TCP
 * connection would otherwise stall the claim loop forever.
 *
 * Two timeouts, because a silent connection means one of two things. Its
 * path may be dead (half-open TCP, a NAT or proxy that dropped it) while
 * the server answers others: then a new connection cures it, and soon
 * enough matters -- a renewal stuck there must be resent before the fence
 * freezes attempts. Or the server itself is stalled (stopped, a long
 * fork, a slow disk): then a new connection gets no answer either, and
 * resetting would only lose the replies of commands Redis will still run
 * (a claim's jobs, leased to nobody, would cost an attempt each). So after
 * the owner's reply timeout (the worker derives it from its lease) a
 * *probe* connection asks PING -- any reply, even NOAUTH, proves the
 * server answers -- and only then is the silent connection reset. Without
 * an answer it is left alone until SILENCE_CAP_MS, the old fixed limit.
 * The watchdog runs often enough to keep the reply timeout.
 *
 * The command connection's handshake asks ROLE: a replica refuses every
 * write (READONLY), so a link to one is kept DOWN, like a refused handshake,
 * until the server is a primary again (a failover moving back, or DNS
 * pointing elsewhere). Transient errors are logged once a minute per link
 * and error code (lw_log_gate), as is "connected to" after a failure.
 *
 * Every socket is close-on-exec from its creation (sock.h): a program a
 * tenant module starts with system() must not inherit the worker's
 * authenticated connections. rediss:// links build their TLS context
 * (tls.h) at the first connection attempt; a CA or key file that cannot be
 * read is a refusal like AUTH's (retried on the backoff, said once a
 * minute), so a certificate mounted late is picked up.
 *
 * Refusals (a Redis ACL user without some permission) are not transient and
 * must not turn into a reconnect loop that floods the log:
 *   - CONFIG GET maxmemory-policy refused: the link works, the policy is
 *     reported as unknown (lw_redis_maxmemory_policy_error).
 *   - ROLE refused (an ACL user without @admin): the link works, the
 *     replica check is skipped; READONLY replies still reset the
 *     connection, on the growing backoff.
 *   - FUNCTION LOAD refused (an ACL user without it, a Redis before 7): the
 *     link works, its scripts run by EVALSHA; said once per link at info.
 *     "Function not found" later (FUNCTION FLUSH) is transient: the link is
 *     rebuilt and its handshake loads the library again.
 *   - AUTH, SELECT, SCRIPT LOAD refused: the link cannot work; it retries on
 *     the capped backoff and the refusal is logged once a minute, not once
 *     a retry (lw_log_gate). A transient reply to the handshake (LOADING
 *     after a restart) is not a refusal: same retry, logged as transient.
 *   - SUBSCRIBE refused: the error reply no command waits for names no
 *     channel; the refused one is the first sent and not yet confirmed
 *     (replies come in order). It is logged once, left out of the next
 *     connections, and asked again only every SUBSCRIBE_RETRY_MS; the
 *     connection and its other channels stay. Wake-ups are an optimisation
 *     (the worker polls).
 *
 * Teardowns we start are deferred to a zero-delay event (conn_kill): they
 * complete the commands waiting with NULL, and the owner's reply callbacks
 * must not find the link half torn down under them.
 */
#include "redis_async.h"

#include <event2/event.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backoff.h"
#include "log.h"
#include "redis_errors.h"
#include "resp_async.h"
#include "discovery.h"
#include "timefmt.h"
#include "tls.h"

#define RECONNECT_BASE_MS 100
#define RECONNECT_CAP_MS 2000 /* workers holding leases must be back soon after Redis is */
#define CONNECT_TIMEOUT_MS 5000
#define SILENCE_CAP_MS 10000 /* a silent connection is reset even unprobed */
#define PROBE_VERDICT_MS 20  /* a reply Redis sent before the probe's PONG is read by then */
#define WATCHDOG_MAX_MS 1000
#define WATCHDOG_MIN_MS 50
#define REFUSAL_LOG_EVERY_MS 60000
#define PROVEN_MS 10000    /* READY this long: the failure count starts again from zero */
#define MAX_FAILURES 1000  /* far past the cap; keeps the counter from overflowing */
#define FCALL_MISSES_MAX 3 /* FCALLs in a row finding no function before EVALSHA for good */
#define SUBSCRIBE_RETRY_MS 300000

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_HANDSHAKE, CONN_READY } conn_state;
/* ROLE_DUR: with --min-replicas, the confirmations of changes (PUBLISH,
 * WAIT) go on a command connection of their own, so a WAIT that takes its
 * time never holds scripts, renewals and claims behind it. */
typedef enum { ROLE_CMD, ROLE_SUB, ROLE_DUR } conn_role;

typedef struct conn {
    lw_redis *r;
    conn_role role;
    conn_state state;
    lw_resp *ac;           /* owned; NULL when DOWN */
    lw_resp *disc;         /* sentinel links: the sentinel being asked, or NULL */
    size_t disc_tried;     /* sentinels asked in this attempt */
    size_t disc_start;     /* sentinel_first when this attempt began (cmd and sub share it) */
    size_t disc_index;     /* the sentinel being asked, or the one that named target */
    int via_sentinel;      /* this attempt's target was named by sentinel disc_index */
    lw_url *target;        /* sentinel links: the master they named; owned */
    char disc_why[256];    /* why the last sentinel did not help */
    unsigned attempts;     /* connection attempts, to try each address of a name in turn */
    int failures;          /* consecutive failed attempts, for the backoff */
    struct event *retry;   /* reconnect timer */
    struct event *killer;  /* deferred teardown */
    int64_t state_since;   /* mono ms when the state was entered */
    int64_t last_progress; /* mono ms of the last reply */
    size_t outstanding;    /* commands sent, reply not yet received */
    int handshake_left;    /* replies still expected by the handshake */
    int handshake_failed;
    char kill_why[128]; /* why we tore it down, for the line conn_lost writes */
    int kill_said;      /* ...and that reason was logged already */
} conn;

/* A channel of the pub/sub connection. */
typedef struct channel {
    char *name;
    int sent, acked;       /* SUBSCRIBE sent / confirmed on the current connection */
    int64_t refused_until; /* mono ms: refused by the server; not asked before then */
    int refusal_logged;
} channel;

struct lw_redis {
    struct event_base *base;
    lw_url *url;
    conn cmd, sub, dur;
    int has_dur; /* dur was started (lw_redis_set_min_replicas) */
    struct event *watchdog;
    int64_t watchdog_tick_ms, watchdog_last; /* its period; mono ms it last ran */
    int64_t reply_timeout_ms;
    lw_tls_ctx *tls;        /* rediss://: built at the first attempt; owned */
    uint64_t tls_stamp;     /* its certificate files when it was built (tls_files_stamp) */
    size_t sentinel_first;  /* the sentinel (or seed) asked first: the last that answered */
    int slot;               /* cluster links: the hash slot they serve; else -1 */
    lw_resp *probe;         /* a PING on a fresh connection, or NULL */
    int64_t probe_started;  /* mono ms */
    int64_t probe_answered; /* mono ms the probe got a reply, 0: not yet */
    struct event *probe_verdict;
    lw_redis_ready_fn on_ready;
    void *ready_ud;
    lw_redis_message_fn on_message;
    void *message_ud;
    lw_redis_subscribed_fn on_subscribed;
    void *subscribed_ud;
    channel *channels;
    size_t nchannels;
    uint64_t errors;
    int closing; /* lw_redis_free in progress: no logs, no reconnects */
    char policy[64];
    char policy_err[160];    /* why CONFIG GET maxmemory-policy failed, "" if it did not */
    int fcall;               /* the command connection's server has lw_library */
    int fcall_refusal_said;  /* that it has not was logged */
    int fcall_misses;        /* FCALLs in a row that found no function */
    char fload_refusal[160]; /* the handshake's FUNCTION LOAD refusal, "" if none */
    lw_log_gate refusal;     /* handshake refusals, shared by both connections */
    lw_log_gate transient;   /* transient error replies, by error code */
    lw_log_gate reconnected; /* "connected to" after a failure */
    int min_replicas;        /* lw_redis_set_min_replicas */
    int wait_ms;
    int unconfirmed;        /* inside a durable call's fn: its NULL is WAIT's shortfall */
    lw_log_gate durability; /* shortfalls and refused WAITs, once a minute */
    const char **scratch;   /* argv pointers for one command */
    size_t *scratch_len;
    size_t scratch_cap;
};

/* A command in flight: who to tell. Freed in its reply callback, which
 * the transport calls exactly once (with NULL when the connection goes). */
typedef struct call {
    conn *c;
    lw_redis_reply_fn fn;
    void *ud;
    int fcall; /* an FCALL: its reply counts for fcall_misses */
} call;

static void conn_start(conn *c);
static void conn_kill(conn *c, const char *why, int said);

static const char *role_name(const conn *c)
{
    return c->role == ROLE_CMD ? "commands" : c->role == ROLE_SUB ? "pub/sub" : "durable changes";
}

static void set_state(conn *c, conn_state s)
{
    c->state = s;
    c->state_since = lw_mono_ms();
}

/* Errors that say "not now" rather than "never": the command did not run
 * (or we cannot know) and the connection should be rebuilt — READONLY means
 * we talk to a replica after a failover and must find the new primary. */
static int transient_error(const char *s)
{
    /* MOVED, ASK: a cluster slot moved (or is moving) to another node; the
     * next connection asks the seeds where it is now. */
    static const char *const prefixes[] = {"LOADING",  "READONLY",    "MASTERDOWN", "BUSY",
                                           "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT",   "MOVED ",
                                           "ASK ",     NULL};
    for (int i = 0; prefixes[i]; i++)
        if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    /* A script on a node whose slot is migrating, touching a key already
     * moved: not run; the next connection asks the seeds again. */
    if (strstr(s, "Script attempted to access a non local key"))
        return 1;
    return lw_redis_no_function(s); /* the library is gone: the handshake loads it */
}

/* Logs a transient error reply (WARN) at most once a minute per error code
 * on this link: a replica refuses every script with READONLY, each naming its
 * script, and a burst of them is one condition. */
static void log_transient(lw_redis *r, const char *what, const char *err)
{
    char code[32];
    size_t n = strcspn(err, " ");
    snprintf(code, sizeof code, "%.*s", (int)(n < sizeof code ? n : sizeof code - 1), err);
    lw_log(lw_log_gate_level(&r->transient, code, LW_LOG_WARN, REFUSAL_LOG_EVERY_MS),
           "redis.transient", "%s: %s%s; retrying on a new connection", r->url->redacted, what,
           err);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_start(arg);
}

/* Schedules the next connection attempt of a DOWN connection. */
static void schedule_retry(conn *c)
{
    int64_t ms = lw_backoff_ms(RECONNECT_BASE_MS, c->failures + 1, RECONNECT_CAP_MS, lw_random64());
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (c->failures < MAX_FAILURES)
        c->failures++;
    evtimer_add(c->retry, &tv);
}

/* An error reply on the pub/sub connection no command waits for: a refused
 * SUBSCRIBE. Marks the refused channel (the first one sent and not
 * confirmed) and logs it once. Returns 1 when one was found. */
static int subscribe_refused(conn *c, const char *why)
{
    lw_redis *r = c->r;
    if (c->role != ROLE_SUB || strncmp(why, "NOPERM", 6) != 0)
        return 0;
    for (size_t i = 0; i < r->nchannels; i++) {
        channel *ch = &r->channels[i];
        if (!ch->sent || ch->acked)
            continue;
        ch->refused_until = lw_mono_ms() + SUBSCRIBE_RETRY_MS;
        /* Not sent any more: the next refusal is another channel's, and the
         * watchdog asks this one again on this very connection (it is kept
         * now; before, the reconnect cleared `sent`). */
        ch->sent = 0;
        lw_log(ch->refusal_logged ? LW_LOG_DEBUG : LW_LOG_ERROR, "redis.subscribe",
               "%s: SUBSCRIBE %s refused: %s; no wake-ups on that channel (its tenant is polled "
               "instead), asked again every %d s",
               r->url->redacted, ch->name, why, SUBSCRIBE_RETRY_MS / 1000);
        ch->refusal_logged = 1;
        return 1;
    }
    return 0;
}

/* The connection is gone (freed by the caller): back to DOWN. */
static void conn_lost(conn *c, const char *why)
{
    int was_ready = c->state == CONN_READY, said = 0;
    char killed[sizeof c->kill_why];
    if (c->kill_why[0]) {
        /* We closed it: the reason is ours. */
        snprintf(killed, sizeof killed, "%s", c->kill_why);
        why = killed;
        said = c->kill_said;
        c->kill_why[0] = '\0';
    }
    c->ac = NULL;
    c->outstanding = 0;
    set_state(c, CONN_DOWN);
    if (c->via_sentinel && !was_ready) {
        /* The master that sentinel named could not be used (unreachable,
         * a replica, refused): its view may be stale; the next attempt
         * asks the next sentinel first. */
        c->r->sentinel_first = (c->disc_index + 1) % c->r->url->nnodes;
    }
    c->via_sentinel = 0;
    if (c->r->closing)
        return;
    c->r->errors++;
    /* Messages published from now until the next confirmations are lost:
     * the owner stops counting on them (its idle polls go back to fast). */
    if (c->role == ROLE_SUB && c->r->on_subscribed)
        c->r->on_subscribed(c->r, NULL, c->r->subscribed_ud);
    if (said)
        lw_log(LW_LOG_DEBUG, "redis.down", "%s connection to %s reset: %s", role_name(c),
               c->r->url->redacted, why);
    else if (was_ready || c->failures == 0)
        lw_log(LW_LOG_WARN, "redis.down", "%s connection to %s lost: %s; reconnecting",
               role_name(c), c->r->url->redacted, why);
    else
        lw_log(LW_LOG_DEBUG, "redis.down", "%s connection to %s failed: %s", role_name(c),
               c->r->url->redacted, why);
    schedule_retry(c);
}

/* The transport's word: connected (the handshake starts) or gone. */
static void start_handshake(conn *c);
static void transport_event(lw_resp *ac, int up, const char *why, void *ud)
{
    conn *c = ud;
    if (up) {
        start_handshake(c);
        return;
    }
    c->ac = NULL;
    if (c->state == CONN_CONNECTING && strncmp(why, "TLS: ", 5) == 0) {
        /* A certificate that does not verify is a configuration matter,
         * like a refused AUTH: an error, said once a minute per link. */
        char text[320];
        snprintf(text, sizeof text, "%s: %s", c->r->url->redacted, why);
        lw_log(lw_log_gate_level(&c->r->refusal, text, LW_LOG_ERROR, REFUSAL_LOG_EVERY_MS),
               "redis.tls", "%s", text);
        snprintf(c->kill_why, sizeof c->kill_why, "%s", why);
        c->kill_said = 1;
    }
    lw_resp_free(ac); /* allowed here; the waiting commands had their NULL */
    conn_lost(c, why);
}

static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn *c = arg;
    lw_resp *ac = c->ac, *disc = c->disc;
    if (!ac && !disc)
        return;
    c->ac = c->disc = NULL;
    lw_resp_free(disc);
    lw_resp_free(ac); /* the waiting commands get NULL */
    if (disc)         /* a sentinel that stalls: the next attempt asks the next one */
        c->r->sentinel_first = (c->disc_index + 1) % c->r->url->nnodes;
    conn_lost(c, "closed");
}

/* Tears the connection down from anywhere, including its own callbacks.
 * `said`: `why` was logged already; the teardown itself is then debug. */
static void conn_kill(conn *c, const char *why, int said)
{
    if ((!c->ac && !c->disc) || event_pending(c->killer, EV_TIMEOUT, NULL))
        return;
    snprintf(c->kill_why, sizeof c->kill_why, "%s", why);
    c->kill_said = said;
    struct timeval zero = {0, 0};
    evtimer_add(c->killer, &zero);
}

static void became_ready(conn *c)
{
    lw_redis *r = c->r;
    set_state(c, CONN_READY);
    /* The handshake formatted every script and the library at once (a few
     * hundred KiB, each piece below malloc's mmap threshold): give those
     * pages back, or each worker keeps them resident for nothing. */
    malloc_trim(0);
    if (c->role == ROLE_CMD) {
        /* The handshake passed: the next refusal is news. */
        lw_log_gate_reset(&r->refusal);
        const char *text = "connected to";
        lw_log_level lvl = c->failures > 0 ? lw_log_gate_level(&r->reconnected, text, LW_LOG_WARN,
                                                               REFUSAL_LOG_EVERY_MS)
                                           : LW_LOG_INFO;
        lw_log(lvl, "redis.ready", "%s %s", text,
               c->target ? c->target->redacted : r->url->redacted);
        if (r->on_ready)
            r->on_ready(r, r->ready_ud);
    }
}

static void handshake_reply(lw_resp *ac, redisReply *reply, void *priv)
{
    conn *c = lw_resp_ud(ac);
    const char *what = priv;
    if (c->outstanding > 0)
        c->outstanding--;
    c->last_progress = lw_mono_ms();
    if (!reply)
        return; /* connection going away: conn_lost follows */
    if (strcmp(what, "FUNCTION LOAD") == 0 &&
        (reply->type != REDIS_REPLY_ERROR || !transient_error(reply->str))) {
        /* Not a reason to refuse the link: the probe after it says whether
         * the library is there (an operator may have loaded it), else
         * scripts run by EVALSHA. */
        c->r->fload_refusal[0] = '\0';
        if (!lw_redis_library_taken(reply->type == REDIS_REPLY_ERROR ? reply->str : NULL))
            snprintf(c->r->fload_refusal, sizeof c->r->fload_refusal, "%s", reply->str);
    } else if (strcmp(what, "FCALL probe") == 0 &&
               (reply->type != REDIS_REPLY_ERROR || !transient_error(reply->str) ||
                lw_redis_no_function(reply->str))) {
        lw_redis *r = c->r;
        int there =
            lw_redis_probe_says_loaded(reply->type == REDIS_REPLY_STRING, reply->str, reply->len);
        /* A library the probe finds but whose functions keep going missing
         * (flushed again and again, or names held by another library) would
         * rebuild the link on every call: past FCALL_MISSES_MAX, EVALSHA. */
        r->fcall = there && r->fcall_misses < FCALL_MISSES_MAX;
        if (!r->fcall && !r->fcall_refusal_said) {
            r->fcall_refusal_said = 1;
            if (there)
                lw_log(LW_LOG_WARN, "redis.handshake",
                       "%s: the lanework function library lost its functions %d times in a row: "
                       "scripts run by EVALSHA from now on",
                       r->url->redacted, r->fcall_misses);
            else
                lw_log(
                    LW_LOG_INFO, "redis.handshake",
                    "%s: no lanework function library (FUNCTION LOAD: %s; FCALL: %s): scripts run "
                    "by EVALSHA (more Redis CPU per call)",
                    r->url->redacted, r->fload_refusal[0] ? r->fload_refusal : "loaded",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "another library's answer");
        }
    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (strcmp(what, "CONFIG GET") == 0) {
            /* ACL users should not read the config (it holds secrets): not
             * a reason to refuse the link; the owner says it is unchecked. */
            c->r->policy[0] = '\0';
            snprintf(c->r->policy_err, sizeof c->r->policy_err, "%s", reply->str);
        } else if (strcmp(what, "ROLE") == 0) {
            /* ROLE is @admin: an ACL user is rightly refused it. The check is
             * skipped; READONLY replies still reset the connection. */
            lw_log(LW_LOG_DEBUG, "redis.handshake", "%s: ROLE refused (%s): primary not checked",
                   c->r->url->redacted, reply->str);
        } else if (transient_error(reply->str)) {
            /* LOADING after a restart, BUSY, MASTERDOWN: not a refusal,
             * just not yet. */
            if (!c->handshake_failed) {
                char prefix[48];
                snprintf(prefix, sizeof prefix, "%s: ", what);
                log_transient(c->r, prefix, reply->str);
            }
            c->handshake_failed = 1;
        } else if (!c->handshake_failed) {
            /* AUTH, SELECT, SCRIPT LOAD: the link cannot work without them.
             * Retried on the backoff; said once a minute, not every retry. */
            char text[256];
            c->handshake_failed = 1;
            snprintf(text, sizeof text, "%s to %s refused: %s", what, c->r->url->redacted,
                     reply->str);
            lw_log(lw_log_gate_level(&c->r->refusal, text, LW_LOG_ERROR, REFUSAL_LOG_EVERY_MS),
                   "redis.handshake", "%s", text);
        }
    } else if (strcmp(what, "CONFIG GET") == 0 && reply->type == REDIS_REPLY_ARRAY &&
               reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(c->r->policy, sizeof c->r->policy, "%s", reply->element[1]->str);
        c->r->policy_err[0] = '\0';
    } else if (strcmp(what, "ROLE") == 0 && reply->type == REDIS_REPLY_ARRAY &&
               reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_STRING &&
               strcmp(reply->element[0]->str, "master") != 0 && !c->handshake_failed) {
        /* A replica refuses every write: never use one. Waiting on the
         * backoff, said once a minute. */
        char text[256];
        c->handshake_failed = 1;
        snprintf(text, sizeof text, "%s is a replica (role %s): waiting for a primary",
                 c->r->url->redacted, reply->element[0]->str);
        lw_log(lw_log_gate_level(&c->r->refusal, text, LW_LOG_WARN, REFUSAL_LOG_EVERY_MS),
               "redis.replica", "%s", text);
    }
    if (--c->handshake_left > 0)
        return;
    if (c->handshake_failed) {
        c->handshake_failed = 0;
        conn_kill(c, "handshake refused", 1);
        return;
    }
    if (c->role == ROLE_SUB)
        c->outstanding = 0; /* subscriptions never "complete" */
    became_ready(c);
}

static channel *find_channel(lw_redis *r, const char *name)
{
    for (size_t i = 0; i < r->nchannels; i++)
        if (strcmp(r->channels[i].name, name) == 0)
            return &r->channels[i];
    return NULL;
}

/* A reply no command waits for, on the pub/sub connection: a push, or the
 * error refusing a SUBSCRIBE. */
static void message_cb(lw_resp *ac, redisReply *reply, void *ud)
{
    (void)ac;
    conn *c = ud;
    c->last_progress = lw_mono_ms();
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!subscribe_refused(c, reply->str))
            conn_kill(c, reply->str, 0);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    if (reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "subscribe") == 0) {
        /* Confirmed: a refusal that follows is not this channel's. */
        channel *ch = find_channel(c->r, reply->element[1]->str);
        if (ch) {
            ch->acked = 1;
            ch->refused_until = 0;
            ch->refusal_logged = 0;
            if (c->r->on_subscribed)
                c->r->on_subscribed(c->r, ch->name, c->r->subscribed_ud);
        }
        return;
    }
    if (strcmp(reply->element[0]->str, "message"))
        return;
    if (c->r->on_message)
        c->r->on_message(c->r, reply->element[1]->str, reply->element[2]->str,
                         reply->element[2]->len, c->r->message_ud);
}

/* Subscribes to ch on c's connection unless the server refused it lately. */
static void send_subscribe(conn *c, channel *ch)
{
    const char *argv[2] = {"SUBSCRIBE", ch->name};
    if (ch->sent || (ch->refused_until && lw_mono_ms() < ch->refused_until))
        return;
    if (lw_resp_send(c->ac, 2, argv, NULL, NULL, NULL) == 0)
        ch->sent = 1;
}

/* Sends AUTH, SELECT and, on the command connection, CONFIG GET
 * maxmemory-policy, ROLE, FUNCTION LOAD of the library and SCRIPT LOAD of
 * every script (what runs them if the library is refused), all pipelined. */
static void start_handshake(conn *c)
{
    static char s_auth[] = "AUTH", s_select[] = "SELECT", s_config[] = "CONFIG GET",
                s_role[] = "ROLE", s_load[] = "SCRIPT LOAD", s_ping[] = "PING",
                s_fload[] = "FUNCTION LOAD", s_probe[] = "FCALL probe";
    lw_redis *r = c->r;
    set_state(c, CONN_HANDSHAKE);
    c->handshake_left = 0;
    c->handshake_failed = 0;
    if (r->url->password) {
        const char *argv[3] = {"AUTH", r->url->user ? r->url->user : r->url->password,
                               r->url->password};
        int argc = r->url->user ? 3 : 2;
        lw_resp_send(c->ac, argc, argv, NULL, handshake_reply, s_auth);
        c->handshake_left++;
    }
    if (c->role != ROLE_SUB) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url->db);
        const char *sel[2] = {"SELECT", db};
        lw_resp_send(c->ac, 2, sel, NULL, handshake_reply, s_select);
        const char *cfg[3] = {"CONFIG", "GET", "maxmemory-policy"};
        lw_resp_send(c->ac, 3, cfg, NULL, handshake_reply, s_config);
        const char *role[1] = {"ROLE"};
        lw_resp_send(c->ac, 1, role, NULL, handshake_reply, s_role);
        c->handshake_left += 3;
        if (c->role == ROLE_CMD)
            r->fcall = 0; /* until its probe says */
        const char *fload[3] = {"FUNCTION", "LOAD", lw_library.text};
        size_t flens[3] = {8, 4, lw_library.len};
        lw_resp_send(c->ac, 3, fload, flens, handshake_reply, s_fload);
        const char *probe[3] = {"FCALL", lw_library.probe, "0"};
        lw_resp_send(c->ac, 3, probe, NULL, handshake_reply, s_probe);
        c->handshake_left += 2;
        for (const lw_script *const *s = lw_scripts_all; *s; s++) {
            const char *load[3] = {"SCRIPT", "LOAD", (*s)->body};
            size_t lens[3] = {6, 4, (*s)->len};
            lw_resp_send(c->ac, 3, load, lens, handshake_reply, s_load);
            c->handshake_left++;
        }
    } else {
        /* PING gives the pub/sub connection a reply to wait for, so an AUTH
         * failure is seen before SUBSCRIBE. */
        const char *ping[1] = {"PING"};
        lw_resp_send(c->ac, 1, ping, NULL, handshake_reply, s_ping);
        c->handshake_left++;
        for (size_t i = 0; i < r->nchannels; i++)
            r->channels[i].sent = r->channels[i].acked = 0;
        for (size_t i = 0; i < r->nchannels; i++)
            send_subscribe(c, &r->channels[i]);
    }
    c->outstanding += (size_t)c->handshake_left;
}

/* What the URL's certificate files are now (inode, size, mtime of each):
 * a change means they were replaced. */
static uint64_t tls_files_stamp(const lw_url *u)
{
    const char *files[3] = {u->tls_ca, u->tls_cert, u->tls_key};
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 3; i++) {
        struct stat st;
        uint64_t v[4] = {0, 0, 0, 0};
        if (files[i] && stat(files[i], &st) == 0) {
            v[0] = (uint64_t)st.st_ino;
            v[1] = (uint64_t)st.st_size;
            v[2] = (uint64_t)st.st_mtim.tv_sec;
            v[3] = (uint64_t)st.st_mtim.tv_nsec;
        }
        for (int k = 0; k < 4; k++)
            h = (h ^ v[k]) * 1099511628211ULL;
    }
    return h;
}

/* The link's TLS context, built at the first need, and again at a
 * connection attempt after its files changed: a certificate rotated on
 * disk (cert-manager, a renewed client certificate, a new CA) is used from
 * the next connection on, without a restart. Sessions hold their own
 * reference to the context they were made from, so the old one is freed at
 * once. A replacement that cannot be built (a file half written) keeps
 * the old context and is tried again at the next attempt. NULL with err
 * when there is no context and one cannot be built. */
static lw_tls_ctx *tls_context(lw_redis *r, char *err, size_t errlen)
{
    uint64_t stamp = tls_files_stamp(r->url);
    if (r->tls && stamp == r->tls_stamp)
        return r->tls;
    lw_tls_ctx *fresh = lw_tls_context_new(r->url, NULL, err, errlen);
    if (!fresh)
        return r->tls; /* the old one, if any: err says why not fresh */
    if (r->tls)
        lw_log(LW_LOG_INFO, "redis.tls", "%s: certificate files changed: new connections use them",
               r->url->redacted);
    lw_tls_context_free(r->tls);
    r->tls = fresh;
    r->tls_stamp = stamp;
    return r->tls;
}

/* Opens the connection proper, to u (the URL, or the master a sentinel
 * named). */
static void open_target(conn *c, const lw_url *u)
{
    char why[256];
    c->ac = lw_resp_open(c->r->base, u, c->r->tls, c->attempts++, c->role == ROLE_SUB,
                         transport_event, message_cb, c, why, sizeof why);
    if (!c->ac)
        conn_lost(c, why);
}

/* ---- Discovery: for a Sentinel URL, ask the sentinels in turn for the
 * master; for a Cluster URL, ask the seeds in turn which node serves the
 * link's slot; then connect to it (DESIGN.md section 11). Each connection
 * asks for itself at each attempt, so a failover or a slot moving is
 * followed by the next reconnect: READONLY from a demoted master, MOVED or
 * ASK from a node that no longer serves the slot, the connection lost with
 * a dead node, or the handshake's ROLE finding a replica all end in a new
 * attempt. ---- */

static void ask_sentinel(conn *c);

static int is_sentinel(const lw_redis *r) { return r->url->kind == LW_URL_SENTINEL; }

static void sentinel_failed(conn *c, const char *why)
{
    lw_resp *d = c->disc;
    c->disc = NULL;
    lw_resp_free(d);
    snprintf(c->disc_why, sizeof c->disc_why, "%s", why);
    c->disc_tried++; /* the next in turn: (disc_start + disc_tried) % n */
    ask_sentinel(c);
}

static void sentinel_addr_reply(lw_resp *d, redisReply *reply, void *priv)
{
    conn *c = priv;
    char host[256], why[200];
    int port = 0;
    (void)d;
    if (!reply || c->disc != d)
        return; /* the sentinel's connection went: its event says why */
    lw_redis *r = c->r;
    int bad = is_sentinel(r)
                  ? lw_sentinel_read_addr(reply, r->url->master_name, host, sizeof host, &port, why,
                                          sizeof why)
                  : lw_cluster_read_owner(reply, r->slot, r->url->nodes[c->disc_index].host, host,
                                          sizeof host, &port, why, sizeof why);
    if (bad) {
        sentinel_failed(c, why);
        return;
    }
    lw_url *mu = is_sentinel(r) ? lw_sentinel_master_url(r->url, host, port)
                                : lw_cluster_node_url(r->url, host, port);
    c->disc = NULL;
    lw_resp_free(d);
    if (!mu) {
        conn_lost(c, "out of memory");
        return;
    }
    lw_url_free(c->target);
    c->target = mu;
    c->r->sentinel_first = c->disc_index; /* the last that answered is asked first */
    c->via_sentinel = 1;
    open_target(c, mu);
}

static void sentinel_auth_reply(lw_resp *d, redisReply *reply, void *priv)
{
    conn *c = priv;
    char why[200];
    if (reply && reply->type == REDIS_REPLY_ERROR && c->disc == d) {
        snprintf(why, sizeof why, "AUTH: %.150s", reply->str);
        sentinel_failed(c, why);
    }
}

static void sentinel_event(lw_resp *d, int up, const char *why, void *ud)
{
    conn *c = ud;
    const lw_url *u = c->r->url;
    if (c->disc != d)
        return;
    if (!up) {
        sentinel_failed(c, why);
        return;
    }
    /* Sentinels have credentials of their own; cluster seeds are data
     * nodes. */
    const char *user = is_sentinel(c->r) ? u->sentinel_user : u->user;
    const char *password = is_sentinel(c->r) ? u->sentinel_password : u->password;
    if (password) {
        const char *auth[3] = {"AUTH", user ? user : password, password};
        lw_resp_send(d, user ? 3 : 2, auth, NULL, sentinel_auth_reply, c);
    }
    const char *ask_master[3] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", u->master_name};
    const char *ask_slots[2] = {"CLUSTER", "SLOTS"};
    int sent = is_sentinel(c->r) ? lw_resp_send(d, 3, ask_master, NULL, sentinel_addr_reply, c)
                                 : lw_resp_send(d, 2, ask_slots, NULL, sentinel_addr_reply, c);
    if (sent != 0)
        sentinel_failed(c, "out of memory");
}

static void ask_sentinel(conn *c)
{
    lw_redis *r = c->r;
    char why[256];
    while (c->disc_tried < r->url->nnodes) {
        size_t i = (c->disc_start + c->disc_tried) % r->url->nnodes;
        c->disc_index = i;
        lw_url *su = is_sentinel(r) ? lw_sentinel_url(r->url, i) : lw_cluster_seed_url(r->url, i);
        if (!su) {
            conn_lost(c, "out of memory");
            return;
        }
        c->disc = lw_resp_open(r->base, su, r->tls, 0, 0, sentinel_event, NULL, c, why, sizeof why);
        lw_url_free(su);
        if (c->disc)
            return;
        snprintf(c->disc_why, sizeof c->disc_why, "%s", why);
        c->disc_tried++;
    }
    char text[400];
    if (is_sentinel(r))
        snprintf(text, sizeof text, "no sentinel named master \"%s\" (last: %s)",
                 r->url->master_name, c->disc_why);
    else
        snprintf(text, sizeof text, "no seed named the node serving slot %d (last: %s)", r->slot,
                 c->disc_why);
    conn_lost(c, text);
}

static void conn_start(conn *c)
{
    lw_redis *r = c->r;
    char why[256];
    if (c->ac)
        return;
    set_state(c, CONN_CONNECTING);
    c->outstanding = 0;
    c->last_progress = lw_mono_ms();
    if (r->url->tls && !tls_context(r, why, sizeof why)) {
        /* A configuration mistake, not a network one: said like a refused
         * AUTH, once a minute, and tried again on the backoff. */
        lw_log(lw_log_gate_level(&r->refusal, why, LW_LOG_ERROR, REFUSAL_LOG_EVERY_MS), "redis.tls",
               "%s: %s", r->url->redacted, why);
        conn_lost(c, why);
        return;
    }
    c->via_sentinel = 0;
    if (r->url->kind == LW_URL_SENTINEL || r->url->kind == LW_URL_CLUSTER) {
        c->disc_tried = 0;
        c->disc_start = r->sentinel_first;
        ask_sentinel(c);
        return;
    }
    open_target(c, r->url);
}

/* ---- probing a silent command connection (see the top) ---- */

static void probe_stop(lw_redis *r)
{
    lw_resp *ac = r->probe;
    if (!ac)
        return;
    r->probe = NULL;
    lw_resp_free(ac); /* probe_reply gets NULL and ignores it */
}

static void probe_reply(lw_resp *ac, redisReply *reply, void *priv)
{
    (void)ac;
    lw_redis *r = priv;
    if (!reply)
        return;
    r->probe_answered = lw_mono_ms();
    struct timeval tv = {0, PROBE_VERDICT_MS * 1000};
    evtimer_add(r->probe_verdict, &tv);
    probe_stop(r);
}

static void probe_event(lw_resp *ac, int up, const char *why, void *ud)
{
    (void)why;
    lw_redis *r = ud;
    static const char *const ping[1] = {"PING"};
    if (up && lw_resp_send(ac, 1, (const char **)ping, NULL, probe_reply, r) == 0)
        return;
    probe_stop(r);
}

/* The server answered the probe: a command connection still silent since
 * before that answer is dead. */
static void probe_verdict_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    lw_redis *r = arg;
    conn *c = &r->cmd;
    if (c->state != CONN_READY || !c->outstanding || c->last_progress >= r->probe_answered)
        return;
    char why[96];
    snprintf(why, sizeof why, "no reply for %.1f s while a new connection got one",
             (double)(lw_mono_ms() - c->last_progress) / 1000.0);
    conn_kill(c, why, 0);
}

static void probe_start(lw_redis *r, int64_t now)
{
    char why[256];
    r->probe_started = now;
    const lw_url *u =
        r->url->kind == LW_URL_SENTINEL || r->url->kind == LW_URL_CLUSTER ? r->cmd.target : r->url;
    if ((r->url->tls && !r->tls) || !u)
        return; /* the command connection never got this far either */
    r->probe =
        lw_resp_open(r->base, u, r->tls, r->cmd.attempts, 0, probe_event, NULL, r, why, sizeof why);
}

/* From the watchdog: a probe per reply timeout while the command
 * connection is silent; an unanswered one is given up after as long. */
static void probe_watch(lw_redis *r, int64_t now)
{
    if (r->probe && now - r->probe_started > r->reply_timeout_ms)
        probe_stop(r);
    if (!r->probe && lw_redis_reply_wait_ms(r) > r->reply_timeout_ms &&
        now - r->probe_started >= r->reply_timeout_ms)
        probe_start(r, now);
}

/* Kills connections that stopped making progress. */
static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    lw_redis *r = arg;
    int64_t now = lw_mono_ms();
    /* Run late (the loop was busy, or the process stopped): replies may be
     * waiting in the socket behind this very timer. Judge them next round. */
    int late = now - r->watchdog_last > 2 * r->watchdog_tick_ms;
    r->watchdog_last = now;
    conn *conns[3] = {&r->cmd, &r->sub, &r->dur};
    for (int i = 0; i < 2 + r->has_dur; i++) {
        conn *c = conns[i];
        if (c->state == CONN_CONNECTING && now - c->state_since > CONNECT_TIMEOUT_MS)
            conn_kill(c, "connect timed out", 0);
        else if (!late && c->outstanding > 0 && c->state != CONN_DOWN &&
                 now - c->last_progress > SILENCE_CAP_MS) {
            char why[64];
            snprintf(why, sizeof why, "no reply for %.1f s",
                     (double)(now - c->last_progress) / 1000.0);
            conn_kill(c, why, 0);
        } else if (c->state == CONN_READY && c->failures > 0 && now - c->state_since >= PROVEN_MS)
            c->failures = 0; /* proved itself: the next loss starts from the base delay */
    }
    probe_watch(r, now);
    /* Channels refused a while ago: ask again (the ACL may have changed). */
    if (r->sub.state == CONN_READY && r->sub.ac)
        for (size_t i = 0; i < r->nchannels; i++)
            if (r->channels[i].refused_until && now >= r->channels[i].refused_until)
                send_subscribe(&r->sub, &r->channels[i]);
}

static int conn_init(lw_redis *r, conn *c, conn_role role)
{
    c->r = r;
    c->role = role;
    c->state = CONN_DOWN;
    c->retry = evtimer_new(r->base, retry_cb, c);
    c->killer = evtimer_new(r->base, kill_cb, c);
    return c->retry && c->killer ? 0 : -1;
}

lw_redis *lw_redis_new(struct event_base *base, const lw_url *url, int slot)
{
    lw_redis *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base = base;
    r->slot = slot;
    /* Our own copy of the URL: the caller's registry may be reloaded. */
    r->url = lw_url_dup(url);
    if (!r->url)
        goto fail;
    snprintf(r->policy, sizeof r->policy, "%s", "");
    if (conn_init(r, &r->cmd, ROLE_CMD) || conn_init(r, &r->sub, ROLE_SUB))
        goto fail;
    r->watchdog = event_new(base, -1, EV_PERSIST, watchdog_cb, r);
    r->probe_verdict = evtimer_new(base, probe_verdict_cb, r);
    if (!r->watchdog || !r->probe_verdict)
        goto fail;
    lw_redis_set_reply_timeout(r, SILENCE_CAP_MS);
    char warning[512];
    if (lw_tls_insecure_warning(r->url, warning, sizeof warning))
        lw_log(LW_LOG_WARN, "redis.tls", "%s", warning);
    conn_start(&r->cmd);
    conn_start(&r->sub);
    return r;
fail:
    lw_redis_free(r);
    return NULL;
}

static void conn_free(conn *c)
{
    if (c->ac) {
        lw_resp *ac = c->ac;
        c->ac = NULL;
        lw_resp_free(ac); /* the waiting commands get NULL */
    }
    lw_resp_free(c->disc);
    c->disc = NULL;
    lw_url_free(c->target);
    c->target = NULL;
    if (c->retry)
        event_free(c->retry);
    if (c->killer)
        event_free(c->killer);
    c->retry = c->killer = NULL;
}

void lw_redis_free(lw_redis *r)
{
    if (!r)
        return;
    /* No more callbacks into the owner once it frees us. */
    r->closing = 1;
    r->on_ready = NULL;
    r->on_message = NULL;
    probe_stop(r);
    conn_free(&r->cmd);
    conn_free(&r->sub);
    if (r->has_dur)
        conn_free(&r->dur);
    if (r->watchdog)
        event_free(r->watchdog);
    if (r->probe_verdict)
        event_free(r->probe_verdict);
    for (size_t i = 0; i < r->nchannels; i++)
        free(r->channels[i].name);
    free(r->channels);
    free(r->scratch);
    free(r->scratch_len);
    lw_tls_context_free(r->tls);
    lw_url_free(r->url);
    free(r);
}

void lw_redis_on_ready(lw_redis *r, lw_redis_ready_fn fn, void *ud)
{
    r->on_ready = fn;
    r->ready_ud = ud;
}

void lw_redis_on_message(lw_redis *r, lw_redis_message_fn fn, void *ud)
{
    r->on_message = fn;
    r->message_ud = ud;
}

void lw_redis_on_subscribed(lw_redis *r, lw_redis_subscribed_fn fn, void *ud)
{
    r->on_subscribed = fn;
    r->subscribed_ud = ud;
}

int lw_redis_subscribed(const lw_redis *r, const char *name)
{
    for (size_t i = 0; i < r->nchannels; i++)
        if (strcmp(r->channels[i].name, name) == 0)
            return r->sub.state == CONN_READY && r->channels[i].acked;
    return 0;
}

int lw_redis_subscribe(lw_redis *r, const char *name)
{
    if (find_channel(r, name))
        return 0;
    channel *grown = realloc(r->channels, (r->nchannels + 1) * sizeof *grown);
    if (!grown)
        return -1;
    r->channels = grown;
    channel *ch = &r->channels[r->nchannels];
    memset(ch, 0, sizeof *ch);
    if (!(ch->name = strdup(name)))
        return -1;
    r->nchannels++;
    /* Once the handshake has sent the list, a new channel is sent now
     * (after the others, so replies still come in the order sent). */
    if ((r->sub.state == CONN_HANDSHAKE || r->sub.state == CONN_READY) && r->sub.ac)
        send_subscribe(&r->sub, ch);
    return 0;
}

void lw_redis_set_reply_timeout(lw_redis *r, int64_t ms)
{
    if (ms > SILENCE_CAP_MS)
        ms = SILENCE_CAP_MS;
    r->reply_timeout_ms = ms;
    /* A quarter of the timeout: a connection is reset at most 25 % late. */
    int64_t tick = ms / 4;
    if (tick > WATCHDOG_MAX_MS)
        tick = WATCHDOG_MAX_MS;
    if (tick < WATCHDOG_MIN_MS)
        tick = WATCHDOG_MIN_MS;
    struct timeval tv = {(time_t)(tick / 1000), (suseconds_t)((tick % 1000) * 1000)};
    r->watchdog_tick_ms = tick;
    r->watchdog_last = lw_mono_ms();
    event_add(r->watchdog, &tv);
}

int64_t lw_redis_reply_wait_ms(const lw_redis *r)
{
    const conn *c = &r->cmd;
    if (c->state != CONN_READY || c->outstanding == 0)
        return 0;
    return lw_mono_ms() - c->last_progress;
}

int lw_redis_is_ready(const lw_redis *r) { return r->cmd.state == CONN_READY; }
const char *lw_redis_name(const lw_redis *r) { return r->url->redacted; }
uint64_t lw_redis_error_count(const lw_redis *r) { return r->errors; }
const char *lw_redis_maxmemory_policy(const lw_redis *r) { return r->policy; }
const char *lw_redis_maxmemory_policy_error(const lw_redis *r)
{
    return r->policy_err[0] ? r->policy_err : NULL;
}

static void call_reply(lw_resp *ac, redisReply *reply, void *priv)
{
    call *k = priv;
    conn *c = k->c;
    (void)ac;
    if (c->outstanding > 0)
        c->outstanding--;
    c->last_progress = lw_mono_ms();
    if (k->fcall && reply) /* NULL: the link went, nothing learnt */
        c->r->fcall_misses = reply->type == REDIS_REPLY_ERROR && lw_redis_no_function(reply->str)
                                 ? c->r->fcall_misses + 1
                                 : 0;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        c->r->errors++;
        if (transient_error(reply->str)) {
            log_transient(c->r, "", reply->str);
            conn_kill(c, reply->str, 1);
            reply = NULL;
        }
    }
    if (k->fn)
        k->fn(c->r, reply, k->ud);
    free(k);
}

static int grow_scratch(lw_redis *r, size_t n)
{
    if (n <= r->scratch_cap)
        return 0;
    size_t cap = n < 64 ? 64 : n * 2;
    const char **p = realloc(r->scratch, cap * sizeof *p);
    if (!p)
        return -1;
    r->scratch = p;
    size_t *l = realloc(r->scratch_len, cap * sizeof *l);
    if (!l)
        return -1;
    r->scratch_len = l;
    r->scratch_cap = cap;
    return 0;
}

/* Sends prefix[0..nprefix) followed by every entry of a. */
static int send_argv(lw_redis *r, conn *c, const char *const *prefix, const size_t *prefix_len,
                     size_t nprefix, lw_argv *a, int fcall, lw_redis_reply_fn fn, void *ud)
{
    const size_t *lens;
    const char **ptrs;
    if (c->state != CONN_READY || !c->ac)
        return -1;
    ptrs = lw_argv_ptrs(a, &lens);
    /* NULL only when an append failed (even the first: a command of no
     * arguments would trip hiredis' assert): send nothing. */
    if (!ptrs || nprefix + a->n == 0)
        return -1;
    if (grow_scratch(r, nprefix + a->n))
        return -1;
    for (size_t i = 0; i < nprefix; i++) {
        r->scratch[i] = prefix[i];
        r->scratch_len[i] = prefix_len[i];
    }
    for (size_t i = 0; i < a->n; i++) {
        r->scratch[nprefix + i] = ptrs[i];
        r->scratch_len[nprefix + i] = lens[i];
    }
    call *k = malloc(sizeof *k);
    if (!k)
        return -1;
    k->c = c;
    k->fn = fn;
    k->ud = ud;
    k->fcall = fcall;
    if (lw_resp_send(c->ac, (int)(nprefix + a->n), r->scratch, r->scratch_len, call_reply, k) !=
        0) {
        free(k);
        return -1;
    }
    c->outstanding++;
    if (c->outstanding == 1)
        c->last_progress = lw_mono_ms();
    return 0;
}

static int script_on(lw_redis *r, conn *c, const lw_script *s, int nkeys, lw_argv *a,
                     lw_redis_reply_fn fn, void *ud)
{
    char nk[16];
    int l = snprintf(nk, sizeof nk, "%d", nkeys);
    const char *prefix[3] = {r->fcall ? "FCALL" : "EVALSHA", r->fcall ? s->function : s->sha1, nk};
    size_t lens[3] = {strlen(prefix[0]), strlen(prefix[1]), (size_t)l};
    return send_argv(r, c, prefix, lens, 3, a, r->fcall, fn, ud);
}

int lw_redis_script(lw_redis *r, const lw_script *s, int nkeys, lw_argv *a, lw_redis_reply_fn fn,
                    void *ud)
{
    return script_on(r, &r->cmd, s, nkeys, a, fn, ud);
}

int lw_redis_command(lw_redis *r, lw_argv *a, lw_redis_reply_fn fn, void *ud)
{
    return send_argv(r, &r->cmd, NULL, NULL, 0, a, 0, fn, ud);
}

/* ---- durable calls (DESIGN.md section 11): the script on the command
 * connection, then, once it ran, PUBLISH + WAIT on the durable one ----
 *
 * The script goes where claims and renewals go, so it is applied at once
 * (a job's lease is no longer at stake once its outcome is on the primary).
 * Only the confirmation waits, on a connection of its own: WAITs of several
 * tenants queue there, each up to wait_ms when replicas lag, and nothing
 * else may queue behind them. WAIT counts what *its* connection wrote: the
 * PUBLISH, sent after the script's reply, moves that connection's offset
 * past the script's write (and every other before it). */

typedef struct durable {
    lw_redis_reply_fn fn;
    void *ud;
    redisReply *kept; /* the script's reply, owned, until WAIT answers */
    char *channel;    /* the PUBLISH's: the script's first key; owned */
} durable;

static void durable_free(durable *d)
{
    freeReplyObject(d->kept);
    free(d->channel);
    free(d);
}

/* A deep copy of a reply, freeable by freeReplyObject (hiredis 0.14 frees
 * with free()); NULL on OOM. */
static redisReply *reply_dup(const redisReply *src)
{
    redisReply *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->type = src->type;
    d->integer = src->integer;
    if (src->str) {
        d->len = src->len;
        if (!(d->str = malloc(src->len + 1))) {
            free(d);
            return NULL;
        }
        memcpy(d->str, src->str, src->len + 1);
    }
    if (src->type == REDIS_REPLY_ARRAY && src->elements) {
        if (!(d->element = calloc(src->elements, sizeof *d->element))) {
            freeReplyObject(d);
            return NULL;
        }
        d->elements = src->elements;
        for (size_t i = 0; i < src->elements; i++)
            if (!(d->element[i] = reply_dup(src->element[i]))) {
                freeReplyObject(d);
                return NULL;
            }
    }
    return d;
}

static void durable_answer_null(lw_redis *r, durable *d, int unconfirmed)
{
    r->unconfirmed = unconfirmed;
    d->fn(r, NULL, d->ud);
    r->unconfirmed = 0;
}

static void durable_wait_reply(lw_redis *r, redisReply *reply, void *ud);

/* Where the confirmation goes: the durable connection when it is up and
 * talks to the server the command connection does (after a failover the
 * two may briefly be on different ones, and a WAIT there would confirm
 * nothing of ours); else the command connection itself. */
static conn *confirm_conn(lw_redis *r)
{
    if (!r->has_dur || r->dur.state != CONN_READY)
        return &r->cmd;
    const lw_url *a = r->cmd.target, *b = r->dur.target;
    if (!a != !b || (a && (strcmp(a->host, b->host) != 0 || a->port != b->port)))
        return &r->cmd;
    return &r->dur;
}

static void durable_script_reply(lw_redis *r, redisReply *reply, void *ud)
{
    durable *d = ud;
    if (!reply) { /* the link went: may or may not have run */
        durable_answer_null(r, d, 0);
        durable_free(d);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) { /* refused: nothing to confirm */
        d->fn(r, reply, d->ud);
        durable_free(d);
        return;
    }
    if (!(d->kept = reply_dup(reply))) {
        durable_answer_null(r, d, 0);
        durable_free(d);
        return;
    }
    conn *c = confirm_conn(r);
    lw_argv w;
    lw_argv_init(&w);
    int sent = 1;
    if (d->channel) {
        lw_argv_adds(&w, "PUBLISH");
        lw_argv_adds(&w, d->channel);
        lw_argv_adds(&w, "");
        sent = send_argv(r, c, NULL, NULL, 0, &w, 0, NULL, NULL) == 0;
        lw_argv_reset(&w);
    }
    lw_argv_adds(&w, "WAIT");
    lw_argv_addi(&w, r->min_replicas);
    lw_argv_addi(&w, r->wait_ms);
    sent = sent && send_argv(r, c, NULL, NULL, 0, &w, 0, durable_wait_reply, d) == 0;
    lw_argv_clear(&w);
    if (!sent) { /* applied, not confirmed: sent again by the caller */
        durable_answer_null(r, d, 1);
        durable_free(d);
    }
}

static void durable_wait_reply(lw_redis *r, redisReply *reply, void *ud)
{
    durable *d = ud; /* the script ran: its reply is kept */
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer >= r->min_replicas) {
        d->fn(r, d->kept, d->ud);
        durable_free(d);
        return;
    }
    if (reply) {
        char text[256];
        int shortfall = reply->type == REDIS_REPLY_INTEGER;
        if (shortfall)
            snprintf(text, sizeof text,
                     "%s: %lld of %d replicas confirmed a change within %d ms: it is sent again",
                     r->url->redacted, reply->integer, r->min_replicas, r->wait_ms);
        else
            snprintf(text, sizeof text, "%s: WAIT refused (%s): no change can be confirmed",
                     r->url->redacted, reply->str ? reply->str : "?");
        lw_log(lw_log_gate_level(&r->durability, shortfall ? "shortfall" : "refused",
                                 shortfall ? LW_LOG_WARN : LW_LOG_ERROR, REFUSAL_LOG_EVERY_MS),
               "redis.durability", "%s", text);
    }
    /* 1: too few replicas, or the confirming connection went -- soon worth
     * another try; 2: WAIT itself refused (an ACL without +wait), a
     * configuration matter. */
    durable_answer_null(r, d, reply && reply->type == REDIS_REPLY_ERROR ? 2 : 1);
    durable_free(d);
}

void lw_redis_set_min_replicas(lw_redis *r, int n, int wait_ms)
{
    r->min_replicas = n;
    r->wait_ms = wait_ms;
    if (n > 0 && !r->has_dur && conn_init(r, &r->dur, ROLE_DUR) == 0) {
        r->has_dur = 1;
        conn_start(&r->dur);
    }
}

int lw_redis_unconfirmed(const lw_redis *r) { return r->unconfirmed; }

int lw_redis_script_durable(lw_redis *r, const lw_script *s, int nkeys, lw_argv *a,
                            lw_redis_reply_fn fn, void *ud)
{
    if (r->min_replicas <= 0)
        return lw_redis_script(r, s, nkeys, a, fn, ud);
    durable *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->fn = fn;
    d->ud = ud;
    /* A repeat that changes nothing (the first try's change is there)
     * writes nothing: the PUBLISH, replicated, is what moves the durable
     * connection's offset. Its channel is the script's first key (under the
     * tenant's prefix, as its ACL user's channels are); nobody listens. */
    const size_t *klens = NULL;
    const char **keys = lw_argv_ptrs(a, &klens);
    if (keys && nkeys > 0 && !(d->channel = strndup(keys[0], klens[0]))) {
        free(d);
        return -1;
    }
    if (lw_redis_script(r, s, nkeys, a, durable_script_reply, d) != 0) {
        durable_free(d);
        return -1;
    }
    return 0;
}

/*
 * redis_async.h — one Redis server as the worker sees it: a command
 * connection and a pub/sub connection on the libevent loop, reconnecting with
 * capped exponential backoff and jitter, forever.
 *
 * Readiness: after each (re)connection the handshake runs (AUTH, SELECT,
 * ROLE, SCRIPT LOAD of every script); only then is the link "ready" and the
 * on_ready callback fires. A server whose ROLE is not "master" never makes
 * the link ready: it is retried on the backoff until it is a primary. Commands are refused (return -1, callback not
 * called) while not ready, so callers keep their own state and resend after
 * on_ready. Transient server states (LOADING, READONLY after a failover,
 * MASTERDOWN, BUSY, TRYAGAIN, CLUSTERDOWN, NOSCRIPT) and connection loss complete the
 * pending commands with a NULL reply and restart the connection: a NULL reply
 * means "may or may not have run; retry when ready", which every lanework
 * script tolerates (DESIGN.md, "Idempotent retries").
 *
 * Callbacks run on the loop thread. Never free the lw_redis from inside one
 * of its callbacks; use lw_redis_free() from outside.
 */
#ifndef LW_REDIS_ASYNC_H
#define LW_REDIS_ASYNC_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "argv.h"
#include "scripts.h"
#include "url.h"

struct event_base;
typedef struct lw_redis lw_redis;

/* reply: borrowed, freed by hiredis after the callback; NULL when the command
 * was lost to a connection problem or a transient error (see above). */
typedef void (*lw_redis_reply_fn)(lw_redis *r, redisReply *reply, void *ud);
typedef void (*lw_redis_ready_fn)(lw_redis *r, void *ud);
/* A pub/sub message on a subscribed channel. Both strings borrowed. */
typedef void (*lw_redis_message_fn)(lw_redis *r, const char *channel, const char *message,
                                    size_t len, void *ud);

/* Creates the link and starts connecting. `url` is copied. For a Cluster
 * URL the link serves hash slot `slot` (slot.h): it connects to the node
 * serving it, and follows the slot when it moves; other URLs ignore it
 * (pass -1). Returns NULL on OOM. */
lw_redis *lw_redis_new(struct event_base *base, const lw_url *url, int slot);
/* Disconnects and frees, completing pending commands with NULL. */
void lw_redis_free(lw_redis *r);

/* Called after every successful handshake (and not on failures). */
void lw_redis_on_ready(lw_redis *r, lw_redis_ready_fn fn, void *ud);
/* Called for every message on a channel added with lw_redis_subscribe. */
void lw_redis_on_message(lw_redis *r, lw_redis_message_fn fn, void *ud);
/* Subscriptions coming and going: called with the channel once the server
 * confirmed its SUBSCRIBE (from then on no message on it is missed while the
 * connection lasts), and with NULL when the pub/sub connection was lost
 * (every channel is unconfirmed until it is confirmed again). */
typedef void (*lw_redis_subscribed_fn)(lw_redis *r, const char *channel, void *ud);
void lw_redis_on_subscribed(lw_redis *r, lw_redis_subscribed_fn fn, void *ud);
/* 1 when the server confirmed the channel on the pub/sub connection it has
 * now (see lw_redis_on_subscribed). */
int lw_redis_subscribed(const lw_redis *r, const char *channel);
/* Adds a channel to the subscriber connection (kept across reconnects). */
int lw_redis_subscribe(lw_redis *r, const char *channel);

/* A command connection with commands outstanding and no reply for `ms` is
 * probed: when a new connection gets an answer from the server, the silent
 * one is reset (its commands complete with NULL) and reconnected; when the
 * server answers nobody it is left alone (its replies will come) up to 10 s.
 * Default (and at most) 10 s. */
void lw_redis_set_reply_timeout(lw_redis *r, int64_t ms);
/* How long the ready command connection has waited for a reply to the
 * commands it has outstanding (ms since the last reply, or since the first
 * of them was sent); 0 when none is outstanding or it is not ready. */
int64_t lw_redis_reply_wait_ms(const lw_redis *r);

/* 1 when the command connection is connected and past its handshake (AUTH,
 * SELECT, ROLE says primary, scripts loaded): commands sent now go to a
 * server that takes writes. 0 while down, connecting or handshaking. */
int lw_redis_is_ready(const lw_redis *r);
/* The redacted URL, for messages. Borrowed. */
const char *lw_redis_name(const lw_redis *r);
/* Errors seen since start (connection failures, error replies). */
uint64_t lw_redis_error_count(const lw_redis *r);
/* The server's maxmemory-policy, read at each handshake; borrowed, "" until known. */
const char *lw_redis_maxmemory_policy(const lw_redis *r);
/* Why the last CONFIG GET maxmemory-policy failed (an ACL user without
 * config access, typically), or NULL when it did not. Borrowed. */
const char *lw_redis_maxmemory_policy_error(const lw_redis *r);

/* Sends `s` with the first nkeys entries of `a` as KEYS: by FCALL when the
 * handshake's FUNCTION LOAD left the server with the library, else by
 * EVALSHA (the handshake loaded every script too). A "Function not found"
 * or NOSCRIPT (FUNCTION FLUSH, SCRIPT FLUSH behind our back) is handled like
 * the transient errors above: NULL reply, reconnect, reload.
 * `a` is copied by hiredis; the caller may reuse it at once. fn gets the
 * reply borrowed (hiredis frees it after fn; read it with script_replies.h)
 * or NULL when the connection failed. Returns 0, or -1 when not ready (fn
 * is then not called). The blocking CLI's version is lw_redis_script_sync. */
int lw_redis_script(lw_redis *r, const lw_script *s, int nkeys, lw_argv *a, lw_redis_reply_fn fn,
                    void *ud);
/* Durability (CONTRACT section 12, --min-replicas): from now on
 * lw_redis_script_durable() confirms each script, once it ran, with PUBLISH
 * + WAIT n wait_ms on a connection of the link's own (a WAIT blocks its
 * connection). n 0 (the default): it is lw_redis_script(). */
void lw_redis_set_min_replicas(lw_redis *r, int n, int wait_ms);
/* lw_redis_script() for a state change someone is told about (an outcome,
 * a spool's job enqueued): fn gets the script's reply only once WAIT says
 * at least n replicas hold it, and NULL ("may or may not have run; retry")
 * when fewer did within wait_ms -- then lw_redis_unconfirmed() is 1 inside
 * fn. An error reply (the script changed nothing) comes at once. */
int lw_redis_script_durable(lw_redis *r, const lw_script *s, int nkeys, lw_argv *a,
                            lw_redis_reply_fn fn, void *ud);
/* Inside the fn of lw_redis_script_durable(), when its NULL is not the
 * link's: 1 when too few replicas confirmed in time (worth another try
 * soon), 2 when WAIT itself was refused (an ACL user without +wait: said at
 * error; a retry can only wait for the operator). 0 everywhere else. */
int lw_redis_unconfirmed(const lw_redis *r);

/* Sends a plain command. Same rules. */
int lw_redis_command(lw_redis *r, lw_argv *a, lw_redis_reply_fn fn, void *ud);

#endif

/*
 * resp_async.h — one Redis connection on the libevent loop: plain TCP, a
 * unix socket or TLS (rediss://), speaking RESP with hiredis' codec
 * (redisFormatCommandArgv, redisReader). It moves commands and replies and
 * nothing else: handshakes, reconnects and timeouts are redis_async.c's.
 *
 * Why not hiredis' own async context: hiredis 0.14 (Debian 12) has no TLS
 * and no way to put one under it (DESIGN.md section 11, "TLS").
 *
 * Lifecycle: lw_resp_open() starts connecting; the event callback fires
 * once with up = 1 when the connection (and its TLS handshake) is done, and
 * once with up = 0 when it failed or was lost -- after every command still
 * waiting got its reply callback with NULL. After up = 0 the connection is
 * dead (sends fail) until the owner frees it. lw_resp_free() may be called
 * from inside any callback of the connection; it completes what is still
 * waiting with NULL and calls no event callback.
 */
#ifndef LW_RESP_ASYNC_H
#define LW_RESP_ASYNC_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "tls.h"
#include "url.h"

struct event_base;
typedef struct lw_resp lw_resp;

/* The reply to one command: borrowed (freed after the callback), or NULL
 * when the connection went before it came. */
typedef void (*lw_resp_reply_fn)(lw_resp *c, redisReply *reply, void *priv);
/* A reply no command waits for: pub/sub pushes ("message", "subscribe")
 * on a connection in subscriber mode, or an error reply to a command sent
 * without a callback (a refused SUBSCRIBE). Borrowed. */
typedef void (*lw_resp_push_fn)(lw_resp *c, redisReply *reply, void *ud);
/* up 1: connected, commands may go; up 0: failed or lost, `why` one line
 * (borrowed). */
typedef void (*lw_resp_event_fn)(lw_resp *c, int up, const char *why, void *ud);

/* Starts connecting to u (copied as needed: the caller may free it), over
 * TLS with a session of `tls` when u->tls (tls borrowed; it must outlive
 * the connection). `attempt` picks which of a name's addresses (sock.h).
 * `subscriber`: replies that are pub/sub pushes go to push_fn, not to the
 * command queue. Returns the connection, or NULL with err when it could not
 * even start (the name does not resolve, no socket, OOM). */
lw_resp *lw_resp_open(struct event_base *base, const lw_url *u, lw_tls_ctx *tls, unsigned attempt,
                      int subscriber, lw_resp_event_fn event_fn, lw_resp_push_fn push_fn, void *ud,
                      char *err, size_t errlen);

/* Queues one command (argv[i] of lens[i] bytes; lens NULL: C strings).
 * fn gets its reply (exactly once, NULL if the connection goes first); fn
 * NULL: the command gets no reply entry (SUBSCRIBE in subscriber mode, whose
 * confirmations are pushes). Returns 0, or -1 when the connection is not
 * up or on OOM (fn is then not called). */
int lw_resp_send(lw_resp *c, int argc, const char **argv, const size_t *lens, lw_resp_reply_fn fn,
                 void *priv);

/* 1 once the up callback ran and until the connection failed. */
int lw_resp_is_up(const lw_resp *c);

/* The ud given to lw_resp_open. */
void *lw_resp_ud(const lw_resp *c);

/* Closes and frees c; commands still waiting get NULL. NULL is ignored. */
void lw_resp_free(lw_resp *c);

#endif

/*
 * redis_sync.h — blocking Redis access for the CLI: connect from a lw_url
 * (AUTH, SELECT), run scripts with FCALL or EVALSHA and pipeline them.
 */
#ifndef LW_REDIS_SYNC_H
#define LW_REDIS_SYNC_H

#include <hiredis/hiredis.h>

#include "argv.h"
#include "resp_sync.h"
#include "scripts.h"
#include "url.h"

/* Connects (TLS for rediss://), authenticates and selects the database.
 * Returns a connection the caller frees with lw_sconn_free(), or NULL with
 * "why" in err (no password) and, when `refused` is not NULL, *refused set
 * when a retry would fail the same way: the server answered the handshake
 * with an error (WRONGPASS, NOAUTH, NOPERM, a bad db), a TLS file of the URL
 * is unusable or the server's certificate did not verify; clear when it
 * could not be reached or was only busy (lw_redis_error_is_transient).
 * On a Cluster URL it connects to the master serving hash `slot` (asking
 * the seeds in turn: CLUSTER SLOTS), or to the first seed that answers for
 * slot -1; other URLs ignore `slot`. */
lw_sconn *lw_redis_connect_sync(const lw_url *u, int slot, int timeout_ms, int *refused, char *err,
                                size_t errlen);

/* 1 when the error reply s[0..len) says the server cannot answer now but
 * will (LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, maxclients
 * reached): worth retrying after a pause. Anything else (NOPERM, WRONGPASS,
 * other ERR ...) is a refusal. */
int lw_redis_error_is_transient(const char *s, size_t len);

/* Runs `s` with the first nkeys entries of `a` as KEYS and waits for its
 * reply (the blocking twin of redis_async.h's lw_redis_script; "_sync"
 * because both layers are linked into tests side by side). *evalsha_only is
 * the connection's: 0 (a fresh one) tries FCALL of lw_library first,
 * loading it when missing; a server that refuses FCALL or the library (or
 * has no function even after the load) sets it to 1, and from then on the
 * connection runs scripts by EVALSHA (SCRIPT LOAD on NOSCRIPT).
 * Returns the reply (caller frees with freeReplyObject; it may be an error
 * reply: read it with script_replies.h), or NULL with the connection error
 * in err. */
redisReply *lw_redis_script_sync(lw_sconn *c, int *evalsha_only, const lw_script *s, int nkeys,
                                 lw_argv *a, char *err, size_t errlen);

/* FUNCTION LOAD of lw_library; when refused, its probe tells whether it is
 * there all the same (loaded by an operator). Returns 1 when the server has
 * it now, 0 when not (run scripts by EVALSHA), -1 with err when the
 * connection failed or the server was only busy. */
int lw_redis_load_functions(lw_sconn *c, char *err, size_t errlen);

/* Makes sure the server has `s` cached (SCRIPT LOAD), for pipelined EVALSHA
 * through lw_redis_append_script(). Returns 0 or -1 with err. */
int lw_redis_load_script(lw_sconn *c, const lw_script *s, char *err, size_t errlen);
/* Queues FCALL (evalsha_only 0: after lw_redis_load_functions() said 1) or
 * EVALSHA without reading its reply. Returns 0 or -1 (OOM). */
int lw_redis_append_script(lw_sconn *c, int evalsha_only, const lw_script *s, int nkeys,
                           lw_argv *a);

/* Runs one command given as a lw_argv; same reply rules as lw_redis_script_sync. */
redisReply *lw_redis_argv(lw_sconn *c, lw_argv *a, char *err, size_t errlen);

#endif

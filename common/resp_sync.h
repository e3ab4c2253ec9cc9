/*
 * resp_sync.h — one blocking Redis connection for the CLI: plain TCP, a
 * unix socket or TLS (rediss://), speaking RESP with hiredis' codec. The
 * shape of hiredis' redisContext (err/errstr, append, get_reply), which
 * cannot carry TLS in hiredis 0.14 (DESIGN.md section 11, "TLS").
 *
 * Every wait (connect, TLS handshake, each write and read) is bounded by the
 * connection's timeout; 0 means none (a blocking XREAD BLOCK must not be cut
 * short). After any failure err is set, errstr says why in one line, and the
 * connection only fails from then on.
 */
#ifndef LW_RESP_SYNC_H
#define LW_RESP_SYNC_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "tls.h"
#include "url.h"

typedef struct lw_sconn {
    int err;          /* set after a failure: the connection is unusable */
    char errstr[256]; /* why, one line */
    int fd;
    lw_tls_ssl *ssl; /* rediss://: the session; else NULL */
    lw_tls_ctx *tls; /* owned: the context the session came from */
    redisReader *reader;
    char *out; /* commands appended, not written yet */
    size_t out_len, out_cap, out_sent;
    int timeout_ms;
} lw_sconn;

/* Connects to u within timeout_ms (TCP, and the TLS handshake for
 * rediss://: certificate checked unless insecure=1). Returns a connection
 * the caller frees with lw_sconn_free(), or NULL with one line in err;
 * *config_error (when not NULL) is set when the URL's own files (ca, cert,
 * key) could not be used or the certificate did not verify: a retry would
 * fail the same way. */
lw_sconn *lw_sconn_open(const lw_url *u, int timeout_ms, int *config_error, char *err,
                        size_t errlen);

/* The bound on each wait from now on; 0: none. */
void lw_sconn_set_timeout(lw_sconn *c, int timeout_ms);

/* Queues a command (lens NULL: C strings). Returns 0, or -1 (OOM; err set). */
int lw_sconn_append(lw_sconn *c, int argc, const char **argv, const size_t *lens);
/* Writes everything queued. Returns 0, or -1 with err. */
int lw_sconn_flush(lw_sconn *c);
/* Flushes, then reads the next reply into *reply (caller frees with
 * freeReplyObject). Returns 0, or -1 with err (*reply NULL). */
int lw_sconn_get_reply(lw_sconn *c, redisReply **reply);
/* append + get_reply: the reply, or NULL with err. */
redisReply *lw_sconn_command(lw_sconn *c, int argc, const char **argv, const size_t *lens);

/* Closes and frees. NULL is ignored. */
void lw_sconn_free(lw_sconn *c);

#endif

/*
 * tls.h — TLS for rediss:// connections, with OpenSSL (DESIGN.md section 11,
 * "TLS"): what both Redis layers share -- the context a URL asks for, the
 * session of one connection, and the one line that says why a handshake
 * failed. The transports themselves (resp_async.c on libevent's
 * bufferevent_openssl, resp_sync.c on a blocking socket) only move bytes.
 */
#ifndef LW_TLS_H
#define LW_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "url.h"

/* A client context for `u` (u->tls set): TLS 1.2 or later; the server's
 * certificate verified against u->tls_ca, else the system's store, unless
 * u->tls_insecure; the client certificate u->tls_cert / u->tls_key when
 * given. Returns a context the caller frees with SSL_CTX_free(), or NULL
 * with one line in err naming the file and why ("ca=/x: No such file or
 * directory"). *file_error, when not NULL, is set when a file named in the
 * URL could not be used (a configuration mistake), clear for OOM. */
SSL_CTX *lw_tls_context_new(const lw_url *u, int *file_error, char *err, size_t errlen);

/* A session on `ctx` for one connection to u: it sends u->tls_sni (else the
 * host, when it is a name) as the server name and, unless insecure, checks
 * that the certificate names u->tls_sni, else the host (a DNS name or an IP
 * address). Returns an SSL the caller frees with SSL_free() (or hands to a
 * bufferevent that frees it), or NULL with err. */
SSL *lw_tls_session_new(SSL_CTX *ctx, const lw_url *u, char *err, size_t errlen);

/* Why the handshake or an I/O of `ssl` failed, as one line in out: the
 * certificate check's verdict when it failed ("certificate verify failed:
 * unable to get local issuer certificate"), else OpenSSL error `e` (0: the
 * last one on the thread's queue; libevent keeps a bufferevent's errors on
 * its own: bufferevent_get_openssl_error), else `fallback`. Empties the
 * thread's error queue (a later failure must not report this one). */
void lw_tls_failure(SSL *ssl, unsigned long e, const char *fallback, char *out, size_t outlen);

/* The warning a worker or the CLI prints once at start for an insecure=1 URL
 * (redacted name borrowed), or NULL when u does not skip verification. */
const char *lw_tls_insecure_warning(const lw_url *u, char *buf, size_t buflen);

#endif

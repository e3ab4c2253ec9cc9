/*
 * tls.h — TLS for rediss:// connections (DESIGN.md section 11, "TLS"): what
 * both transports need -- the context a URL asks for, the session of one
 * connection, its I/O and the one line that says why a handshake failed.
 *
 * OpenSSL lives in a module of its own, lanework-tls.so (tls_openssl.c),
 * loaded by tls.c at the first TLS connection: a process that never speaks
 * TLS never maps libcrypto (whose load alone costs ~1.8 MiB of RSS, every
 * worker process, every CLI run). The types are opaque here: an lw_tls_ctx
 * is an SSL_CTX, an lw_tls_ssl an SSL.
 *
 * Every function but lw_tls_insecure_warning needs the module: the ones that
 * return a pointer return NULL with err ("TLS: cannot load
 * /usr/lib/lanework/lanework-tls.so: ...") when it cannot be loaded; the
 * others are only reached with an object that came from it.
 */
#ifndef LW_TLS_H
#define LW_TLS_H

#include <stddef.h>

#include "url.h"

struct bufferevent;
struct event_base;
typedef struct lw_tls_ctx lw_tls_ctx;
typedef struct lw_tls_ssl lw_tls_ssl;

/* A client context for `u` (u->tls set): TLS 1.2 or later; the server's
 * certificate verified against u->tls_ca, else the system's store, unless
 * u->tls_insecure; the client certificate u->tls_cert / u->tls_key when
 * given. Returns a context the caller frees with lw_tls_context_free(), or
 * NULL with one line in err naming the file and why ("TLS: ca=/x: No such
 * file or directory"). *file_error, when not NULL, is set when a file named
 * in the URL could not be used (a configuration mistake). */
lw_tls_ctx *lw_tls_context_new(const lw_url *u, int *file_error, char *err, size_t errlen);
void lw_tls_context_free(lw_tls_ctx *ctx); /* NULL is ignored */

/* A session on `ctx` for one connection to u: it sends u->tls_sni (else the
 * host, when it is a name) as the server name and, unless insecure, checks
 * that the certificate names u->tls_sni, else the host (a DNS name or an IP
 * address). Returns a session the caller frees with lw_tls_session_free()
 * (or hands to lw_tls_bufferevent), or NULL with err. */
lw_tls_ssl *lw_tls_session_new(lw_tls_ctx *ctx, const lw_url *u, char *err, size_t errlen);
void lw_tls_session_free(lw_tls_ssl *ssl); /* NULL is ignored */

/* Why the handshake or an I/O of `ssl` failed, as one line in out: the
 * certificate check's verdict when it failed ("TLS: certificate verify
 * failed: unable to get local issuer certificate"), else OpenSSL error `e`
 * (0: the last one on the thread's queue), else `fallback`. Empties the
 * thread's error queue. */
void lw_tls_failure(lw_tls_ssl *ssl, unsigned long e, const char *fallback, char *out,
                    size_t outlen);
/* 1 when the server's certificate did not verify. */
int lw_tls_verify_failed(lw_tls_ssl *ssl);

/* Asynchronous (resp_async.c): a bufferevent_openssl on connected socket fd
 * that runs the client handshake, reports BEV_EVENT_CONNECTED when it is
 * done, and owns fd and ssl from now on (closed and freed with it), even
 * when this fails (NULL). */
struct bufferevent *lw_tls_bufferevent(struct event_base *base, int fd, lw_tls_ssl *ssl);
/* The OpenSSL error the bufferevent kept (libevent keeps its own). */
unsigned long lw_tls_bufferevent_error(struct bufferevent *bev);

/* Blocking (resp_sync.c), on a non-blocking socket: each returns what
 * OpenSSL's call did (> 0: done / bytes), else lw_tls_want() says what to
 * wait for. */
enum { LW_TLS_WANT_READ = 1, LW_TLS_WANT_WRITE, LW_TLS_CLOSED, LW_TLS_SYSCALL, LW_TLS_FAILED };
int lw_tls_attach(lw_tls_ssl *ssl, int fd); /* 1, or 0 on failure */
int lw_tls_connect(lw_tls_ssl *ssl);
int lw_tls_read(lw_tls_ssl *ssl, void *buf, int n);
int lw_tls_write(lw_tls_ssl *ssl, const void *buf, int n);
int lw_tls_want(lw_tls_ssl *ssl, int rc);

/* The warning a worker or the CLI prints once at start for an insecure=1 URL
 * (redacted name borrowed), or NULL when u does not skip verification.
 * Needs no module. */
const char *lw_tls_insecure_warning(const lw_url *u, char *buf, size_t buflen);

/* The module's table of the functions above (tls_openssl.c exports it as
 * lw_tls_module_v1; tls.c looks it up). */
typedef struct lw_tls_module {
    int version; /* LW_TLS_MODULE_VERSION */
    lw_tls_ctx *(*context_new)(const lw_url *u, int *file_error, char *err, size_t errlen);
    void (*context_free)(lw_tls_ctx *ctx);
    lw_tls_ssl *(*session_new)(lw_tls_ctx *ctx, const lw_url *u, char *err, size_t errlen);
    void (*session_free)(lw_tls_ssl *ssl);
    void (*failure)(lw_tls_ssl *ssl, unsigned long e, const char *fallback, char *out,
                    size_t outlen);
    int (*verify_failed)(lw_tls_ssl *ssl);
    struct bufferevent *(*bufferevent)(struct event_base *base, int fd, lw_tls_ssl *ssl);
    unsigned long (*bufferevent_error)(struct bufferevent *bev);
    int (*attach)(lw_tls_ssl *ssl, int fd);
    int (*connect)(lw_tls_ssl *ssl);
    int (*read)(lw_tls_ssl *ssl, void *buf, int n);
    int (*write)(lw_tls_ssl *ssl, const void *buf, int n);
    int (*want)(lw_tls_ssl *ssl, int rc);
} lw_tls_module;
#define LW_TLS_MODULE_VERSION 1

#endif

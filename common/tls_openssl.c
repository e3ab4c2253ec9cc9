/*
 * tls_openssl.c — lanework-tls.so: TLS on OpenSSL for rediss:// (tls.h),
 * the only code that links OpenSSL; tls.c loads it at the first TLS
 * connection and reaches it through lw_tls_module_v1.
 *
 * Verification is on unless the URL says insecure=1, and it means two
 * checks: the chain ends at a trusted CA, and the certificate names the
 * server we meant (SAN, by OpenSSL's rules: a DNS name against a host name,
 * an IP address against an address). Without the second, any certificate
 * the CA ever signed -- another team's Redis, say -- would be accepted.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Why OpenSSL failed, emptying its error queue: the system's reason when
 * one of the errors is a system error (a missing file: "No such file or
 * directory", where OpenSSL's own last word is "system lib"), else the last
 * error's text. */
static const char *first_reason(char *buf, size_t n)
{
    unsigned long e, last = 0;
    int sys = 0;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == ERR_LIB_SYS && !sys)
            sys = ERR_GET_REASON(e);
        last = e;
    }
    const char *reason = last ? ERR_reason_error_string(last) : NULL;
    if (sys)
        snprintf(buf, n, "%s", strerror(sys));
    else if (reason)
        snprintf(buf, n, "%s", reason);
    else if (last)
        ERR_error_string_n(last, buf, n);
    else
        snprintf(buf, n, "%s", errno ? strerror(errno) : "unknown error");
    return buf;
}

/* Says which file of the URL failed, and why. Returns NULL. */
static SSL_CTX *file_failed(SSL_CTX *ctx, int *file_error, const char *param, const char *file,
                            char *err, size_t errlen)
{
    char why[256];
    snprintf(err, errlen, "TLS: %s=%s: %s", param, file, first_reason(why, sizeof why));
    if (file_error)
        *file_error = 1;
    SSL_CTX_free(ctx);
    return NULL;
}

static SSL_CTX *context_new(const lw_url *u, int *file_error, char *err, size_t errlen)
{
    char why[256];
    if (file_error)
        *file_error = 0;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", first_reason(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A Redis connection lives long; a session cache would only keep
     * tickets nobody resumes. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (u->tls_insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        errno = 0;
        if (u->tls_ca) {
            if (SSL_CTX_load_verify_locations(ctx, u->tls_ca, NULL) != 1)
                return file_failed(ctx, file_error, "ca", u->tls_ca, err, errlen);
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            snprintf(err, errlen, "TLS: the system's CA store: %s", first_reason(why, sizeof why));
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    if (u->tls_cert) {
        errno = 0;
        if (SSL_CTX_use_certificate_chain_file(ctx, u->tls_cert) != 1)
            return file_failed(ctx, file_error, "cert", u->tls_cert, err, errlen);
        errno = 0;
        if (SSL_CTX_use_PrivateKey_file(ctx, u->tls_key, SSL_FILETYPE_PEM) != 1)
            return file_failed(ctx, file_error, "key", u->tls_key, err, errlen);
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "TLS: key=%s is not the private key of cert=%s", u->tls_key,
                     u->tls_cert);
            if (file_error)
                *file_error = 1;
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

static int is_ip_address(const char *h)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static SSL *session_new(SSL_CTX *ctx, const lw_url *u, char *err, size_t errlen)
{
    char why[256];
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        snprintf(err, errlen, "TLS: %s", first_reason(why, sizeof why));
        return NULL;
    }
    const char *name = u->tls_sni ? u->tls_sni : u->host;
    int ip = is_ip_address(name);
    /* RFC 6066: no IP addresses in SNI. */
    int ok = ip || SSL_set_tlsext_host_name(ssl, name) == 1;
    if (ok && !u->tls_insecure) {
        X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(p, name) == 1
                : X509_VERIFY_PARAM_set1_host(p, name, 0) == 1;
    }
    if (!ok) {
        snprintf(err, errlen, "TLS: server name \"%s\": %s", name, first_reason(why, sizeof why));
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* The certificate check failed: verification was on (not insecure=1) and
 * its verdict is not "ok". */
static int verify_failed(SSL *ssl)
{
    return (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && SSL_get_verify_result(ssl) != X509_V_OK;
}

static void failure(SSL *ssl, unsigned long e, const char *fallback, char *out, size_t outlen)
{
    char why[256];
    /* With insecure=1 (SSL_VERIFY_NONE) OpenSSL still records the chain's
     * verdict; it is not why the connection failed. */
    long v = ssl && verify_failed(ssl) ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(out, outlen, "TLS: certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else if (e) {
        const char *reason = ERR_reason_error_string(e);
        if (reason)
            snprintf(why, sizeof why, "%s", reason);
        else
            ERR_error_string_n(e, why, sizeof why);
        snprintf(out, outlen, "TLS: %s", why);
        ERR_clear_error();
    } else if (ERR_peek_error()) {
        snprintf(out, outlen, "TLS: %s", first_reason(why, sizeof why));
    } else {
        snprintf(out, outlen, "TLS: %s", fallback);
    }
}

static struct bufferevent *tls_bufferevent(struct event_base *base, int fd, SSL *ssl)
{
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    /* Redis closes without close_notify: that is an end, not an attack. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static unsigned long bufferevent_error(struct bufferevent *bev)
{
    return bufferevent_get_openssl_error(bev);
}

static int attach(SSL *ssl, int fd) { return SSL_set_fd(ssl, fd) == 1; }
static int tls_connect(SSL *ssl) { return SSL_connect(ssl); }
static int tls_read(SSL *ssl, void *buf, int n) { return SSL_read(ssl, buf, n); }
static int tls_write(SSL *ssl, const void *buf, int n) { return SSL_write(ssl, buf, n); }

static int want(SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ: return LW_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return LW_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return LW_TLS_CLOSED;
    case SSL_ERROR_SYSCALL: return errno == 0 ? LW_TLS_CLOSED : LW_TLS_SYSCALL;
    default: return LW_TLS_FAILED;
    }
}

/* The table tls.c looks up: the same functions on the opaque types (an
 * lw_tls_ctx is an SSL_CTX, an lw_tls_ssl an SSL). */
#define CTX(p) ((SSL_CTX *)(void *)(p))
#define SSLP(p) ((SSL *)(void *)(p))
static lw_tls_ctx *m_context_new(const lw_url *u, int *file_error, char *err, size_t errlen)
{
    return (lw_tls_ctx *)(void *)context_new(u, file_error, err, errlen);
}
static void m_context_free(lw_tls_ctx *ctx) { SSL_CTX_free(CTX(ctx)); }
static lw_tls_ssl *m_session_new(lw_tls_ctx *ctx, const lw_url *u, char *err, size_t errlen)
{
    return (lw_tls_ssl *)(void *)session_new(CTX(ctx), u, err, errlen);
}
static void m_session_free(lw_tls_ssl *ssl) { SSL_free(SSLP(ssl)); }
static void m_failure(lw_tls_ssl *ssl, unsigned long e, const char *fallback, char *out,
                      size_t outlen)
{
    failure(SSLP(ssl), e, fallback, out, outlen);
}
static int m_verify_failed(lw_tls_ssl *ssl) { return verify_failed(SSLP(ssl)); }
static struct bufferevent *m_bufferevent(struct event_base *base, int fd, lw_tls_ssl *ssl)
{
    return tls_bufferevent(base, fd, SSLP(ssl));
}
static int m_attach(lw_tls_ssl *ssl, int fd) { return attach(SSLP(ssl), fd); }
static int m_connect(lw_tls_ssl *ssl) { return tls_connect(SSLP(ssl)); }
static int m_read(lw_tls_ssl *ssl, void *buf, int n) { return tls_read(SSLP(ssl), buf, n); }
static int m_write(lw_tls_ssl *ssl, const void *buf, int n) { return tls_write(SSLP(ssl), buf, n); }
static int m_want(lw_tls_ssl *ssl, int rc) { return want(SSLP(ssl), rc); }

extern const lw_tls_module lw_tls_module_v1;
const lw_tls_module lw_tls_module_v1 = {
    .version = LW_TLS_MODULE_VERSION,
    .context_new = m_context_new,
    .context_free = m_context_free,
    .session_new = m_session_new,
    .session_free = m_session_free,
    .failure = m_failure,
    .verify_failed = m_verify_failed,
    .bufferevent = m_bufferevent,
    .bufferevent_error = bufferevent_error,
    .attach = m_attach,
    .connect = m_connect,
    .read = m_read,
    .write = m_write,
    .want = m_want,
};

/*
 * tls.c — TLS contexts and sessions for rediss:// (tls.h).
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
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

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

SSL_CTX *lw_tls_context_new(const lw_url *u, int *file_error, char *err, size_t errlen)
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

SSL *lw_tls_session_new(SSL_CTX *ctx, const lw_url *u, char *err, size_t errlen)
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

void lw_tls_failure(SSL *ssl, unsigned long e, const char *fallback, char *out, size_t outlen)
{
    char why[256];
    /* With insecure=1 (SSL_VERIFY_NONE) OpenSSL still records the chain's
     * verdict; it is not why the connection failed. */
    long v = ssl && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) ? SSL_get_verify_result(ssl)
                                                                 : X509_V_OK;
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

const char *lw_tls_insecure_warning(const lw_url *u, char *buf, size_t buflen)
{
    if (!u->tls || !u->tls_insecure)
        return NULL;
    snprintf(buf, buflen,
             "%s: insecure=1: the server's certificate is not verified (anyone on the path can "
             "pose as this Redis)",
             u->redacted);
    return buf;
}

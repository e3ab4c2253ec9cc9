/*
 * resp_sync.c — a blocking RESP connection (resp_sync.h).
 *
 * The socket stays non-blocking and every wait is a poll(2) with what is
 * left of the timeout: one way to bound plain reads, TLS reads that need a
 * write (renegotiation) and the handshake alike.
 */
#include "resp_sync.h"

#include <errno.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sock.h"
#include "timefmt.h"
#include "tls.h"

__attribute__((format(printf, 2, 3))) static int failed(lw_sconn *c, const char *fmt, ...)
{
    if (!c->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
        va_end(ap);
        c->err = 1;
    }
    return -1;
}

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms > 0 ? lw_mono_ms() + timeout_ms : -1;
}

/* Waits until fd is ready for `events` or the deadline (-1: none) passes. */
static int wait_fd(lw_sconn *c, short events, int64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - lw_mono_ms();
            if (left <= 0)
                return failed(c, "timed out");
            ms = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = {c->fd, events, 0};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return failed(c, "poll: %s", strerror(errno));
    }
}

/* After an SSL call returned rc <= 0: wait for what it needs and return 0
 * to try again, or -1 with err. */
static int tls_retry(lw_sconn *c, int rc, int64_t deadline, const char *what)
{
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return wait_fd(c, POLLIN, deadline);
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_fd(c, POLLOUT, deadline);
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return failed(c, "Server closed the connection");
    char why[256];
    lw_tls_failure(c->ssl, 0, e == SSL_ERROR_SYSCALL ? strerror(errno) : what, why, sizeof why);
    return failed(c, "%s", why);
}

static int tls_handshake(lw_sconn *c, int64_t deadline)
{
    for (;;) {
        int rc = SSL_connect(c->ssl);
        if (rc == 1)
            return 0;
        if (tls_retry(c, rc, deadline, "handshake failed") != 0)
            return -1;
    }
}

lw_sconn *lw_sconn_open(const lw_url *u, int timeout_ms, int *config_error, char *err,
                        size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int file_error = 0;
    if (config_error)
        *config_error = 0;
    lw_sconn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->fd = -1;
    int64_t deadline = deadline_of(timeout_ms);
    if (!(c->reader = redisReaderCreate())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (u->tls && !(c->tls = lw_tls_context_new(u, &file_error, err, errlen))) {
        if (config_error)
            *config_error = file_error;
        goto fail;
    }
    if (u->tls && !(c->ssl = lw_tls_session_new(c->tls, u, err, errlen)))
        goto fail;
    if ((c->fd = lw_sock_open(u, 0, &addr, &addrlen, err, errlen)) < 0 ||
        lw_sock_connect(c->fd, &addr, addrlen, err, errlen) != 0)
        goto fail;
    if (wait_fd(c, POLLOUT, deadline) != 0 ||
        lw_sock_connect_result(c->fd, c->errstr, sizeof c->errstr) != 0) {
        snprintf(err, errlen, "%s", c->errstr);
        goto fail;
    }
    if (c->ssl) {
        SSL_set_fd(c->ssl, c->fd);
        if (tls_handshake(c, deadline) != 0) {
            snprintf(err, errlen, "%s", c->errstr);
            if (config_error && (SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER) &&
                SSL_get_verify_result(c->ssl) != X509_V_OK)
                *config_error = 1;
            goto fail;
        }
    }
    c->timeout_ms = timeout_ms;
    return c;
fail:
    lw_sconn_free(c);
    return NULL;
}

void lw_sconn_set_timeout(lw_sconn *c, int timeout_ms) { c->timeout_ms = timeout_ms; }

int lw_sconn_append(lw_sconn *c, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return failed(c, "out of memory");
    if (c->out_len + (size_t)len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + (size_t)len)
            cap *= 2;
        char *grown = realloc(c->out, cap);
        if (!grown) {
            free(cmd);
            return failed(c, "out of memory");
        }
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, cmd, (size_t)len);
    c->out_len += (size_t)len;
    free(cmd);
    return 0;
}

int lw_sconn_flush(lw_sconn *c)
{
    int64_t deadline = deadline_of(c->timeout_ms);
    if (c->err)
        return -1;
    while (c->out_sent < c->out_len) {
        size_t n = c->out_len - c->out_sent;
        if (c->ssl) {
            int rc = SSL_write(c->ssl, c->out + c->out_sent, n > (1 << 30) ? 1 << 30 : (int)n);
            if (rc > 0)
                c->out_sent += (size_t)rc;
            else if (tls_retry(c, rc, deadline, "write failed") != 0)
                return -1;
            continue;
        }
        ssize_t w = write(c->fd, c->out + c->out_sent, n);
        if (w > 0)
            c->out_sent += (size_t)w;
        else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c, POLLOUT, deadline) != 0)
                return -1;
        } else if (w < 0 && errno != EINTR)
            return failed(c, "%s", strerror(errno));
    }
    c->out_len = c->out_sent = 0;
    return 0;
}

/* Reads what the socket has (waiting for some) into the reader. */
static int fill(lw_sconn *c, int64_t deadline)
{
    char buf[16384];
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            int rc = SSL_read(c->ssl, buf, sizeof buf);
            if (rc <= 0) {
                if (tls_retry(c, rc, deadline, "read failed") != 0)
                    return -1;
                continue;
            }
            n = rc;
        } else {
            n = read(c->fd, buf, sizeof buf);
            if (n == 0)
                return failed(c, "Server closed the connection");
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (wait_fd(c, POLLIN, deadline) != 0)
                        return -1;
                } else if (errno != EINTR)
                    return failed(c, "%s", strerror(errno));
                continue;
            }
        }
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
            return failed(c, "out of memory");
        return 0;
    }
}

int lw_sconn_get_reply(lw_sconn *c, redisReply **reply)
{
    *reply = NULL;
    if (lw_sconn_flush(c) != 0)
        return -1;
    int64_t deadline = deadline_of(c->timeout_ms);
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK)
            return failed(c, "protocol error: %s", c->reader->errstr);
        if (r) {
            *reply = r;
            return 0;
        }
        if (fill(c, deadline) != 0)
            return -1;
    }
}

redisReply *lw_sconn_command(lw_sconn *c, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = NULL;
    if (c->err || lw_sconn_append(c, argc, argv, lens) != 0 || lw_sconn_get_reply(c, &r) != 0)
        return NULL;
    return r;
}

void lw_sconn_free(lw_sconn *c)
{
    if (!c)
        return;
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->tls)
        SSL_CTX_free(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c->out);
    free(c);
}

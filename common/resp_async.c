/*
 * resp_async.c — a RESP connection on libevent bufferevents (resp_async.h).
 *
 * Two phases. Connecting: our own non-blocking, close-on-exec socket
 * (sock.h; libevent's bufferevent_socket_connect would open one without
 * FD_CLOEXEC, and the worker forks) and one EV_WRITE event for connect(2)'s
 * outcome. Then the socket goes under a bufferevent: a plain one, or
 * bufferevent_openssl, which runs the TLS handshake and reports
 * BEV_EVENT_CONNECTED when it is done. Commands are encoded by hiredis'
 * redisFormatCommandArgv and handed to the output buffer by reference (no
 * copy of a FUNCTION LOAD body); replies are decoded by a redisReader and
 * matched to a FIFO of waiting callbacks, replies being in the order of
 * the commands.
 *
 * The owner may free the connection inside any of its callbacks: `depth`
 * counts the callbacks running, and the memory goes when the outermost one
 * returns.
 */
#include "resp_async.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sock.h"
#include "tls.h"

#define MAX_SINGLE_READ (64 * 1024) /* libevent's default is 4 KiB a callback */

typedef struct waiting {
    lw_resp_reply_fn fn;
    void *priv;
} waiting;

struct lw_resp {
    struct event_base *base;
    int fd;                   /* ours until the bufferevent takes it; -1 after */
    struct event *connect_ev; /* connect(2) in progress */
    lw_tls_ssl *ssl;          /* ours until the bufferevent takes it */
    struct bufferevent *bev;  /* owns fd and ssl once made */
    redisReader *reader;
    waiting *q; /* ring of commands waiting for their reply */
    size_t head, n, cap;
    int up, dead, subscriber;
    int depth; /* callbacks of ours running */
    int freed; /* lw_resp_free was called inside one of them */
    lw_resp_event_fn event_fn;
    lw_resp_push_fn push_fn;
    void *ud;
};

static void destroy(lw_resp *c)
{
    if (c->connect_ev)
        event_free(c->connect_ev);
    if (c->bev)
        bufferevent_free(c->bev); /* closes the fd, frees the SSL */
    else {
        lw_tls_session_free(c->ssl);
        if (c->fd >= 0)
            close(c->fd);
    }
    if (c->reader)
        redisReaderFree(c->reader);
    free(c->q);
    free(c);
}

/* Ends a callback section; returns 1 when the connection is gone (freed
 * inside it) and the caller must not touch it. */
static int leave(lw_resp *c)
{
    if (--c->depth == 0 && c->freed) {
        destroy(c);
        return 1;
    }
    return c->freed;
}

/* Every waiting command gets NULL, oldest first. */
static void complete_all(lw_resp *c)
{
    while (c->n) {
        waiting w = c->q[c->head];
        c->head = (c->head + 1) % c->cap;
        c->n--;
        w.fn(c, NULL, w.priv);
    }
}

/* The connection failed or was lost: waiting commands get NULL, then the
 * owner hears why. */
static void fail(lw_resp *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = 1;
    c->up = 0;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    c->depth++;
    complete_all(c);
    if (!c->freed && c->event_fn)
        c->event_fn(c, 0, why, c->ud);
    leave(c);
}

static int is_push(const redisReply *r)
{
    static const char *const kinds[] = {"message",    "pmessage",     "subscribe", "unsubscribe",
                                        "psubscribe", "punsubscribe", NULL};
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    for (int i = 0; kinds[i]; i++)
        if (strcmp(r->element[0]->str, kinds[i]) == 0)
            return 1;
    return 0;
}

/* Hands one reply to whoever waits for it; frees it. */
static void dispatch(lw_resp *c, redisReply *reply)
{
    if (c->subscriber && is_push(reply)) {
        if (c->push_fn)
            c->push_fn(c, reply, c->ud);
    } else if (c->n) {
        waiting w = c->q[c->head];
        c->head = (c->head + 1) % c->cap;
        c->n--;
        w.fn(c, reply, w.priv);
    } else if (c->push_fn) {
        c->push_fn(c, reply, c->ud);
    }
    freeReplyObject(reply);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    lw_resp *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(in, -1, NULL, v, 8);
        size_t fed = 0;
        for (int i = 0; i < nv && i < 8; i++) {
            if (redisReaderFeed(c->reader, v[i].iov_base, v[i].iov_len) != REDIS_OK) {
                fail(c, "out of memory");
                return;
            }
            fed += v[i].iov_len;
        }
        evbuffer_drain(in, fed);
    }
    c->depth++;
    while (!c->dead && !c->freed) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            char why[160];
            snprintf(why, sizeof why, "protocol error: %s", c->reader->errstr);
            fail(c, why);
            break;
        }
        if (!reply)
            break;
        dispatch(c, reply);
    }
    leave(c);
}

static void went_up(lw_resp *c)
{
    c->up = 1;
    c->depth++;
    if (c->event_fn)
        c->event_fn(c, 1, NULL, c->ud);
    leave(c);
}

static void bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
    lw_resp *c = arg;
    char why[256];
    if (what & BEV_EVENT_CONNECTED) {
        went_up(c); /* the TLS handshake is done */
        return;
    }
    if (what & BEV_EVENT_EOF) {
        fail(c, c->up ? "Server closed the connection" : "closed during the TLS handshake");
        return;
    }
    if (c->ssl) {
        unsigned long e = lw_tls_bufferevent_error(bev);
        int se = EVUTIL_SOCKET_ERROR();
        lw_tls_failure(c->ssl, e, se ? strerror(se) : "connection error", why, sizeof why);
    } else {
        int se = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "%s", se ? strerror(se) : "connection error");
    }
    fail(c, why);
}

/* connect(2) finished: wrap the socket in its bufferevent. */
static void connect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    lw_resp *c = arg;
    char why[256];
    event_free(c->connect_ev);
    c->connect_ev = NULL;
    if (lw_sock_connect_result(fd, why, sizeof why) != 0) {
        fail(c, why);
        return;
    }
    if (c->ssl) {
        c->bev = lw_tls_bufferevent(c->base, fd, c->ssl);
        if (!c->bev) /* fd and ssl went with it */
            c->fd = -1, c->ssl = NULL;
    } else {
        c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        fail(c, "out of memory");
        return;
    }
    c->fd = -1; /* the bufferevent's now, and c->ssl too (kept to read its verdict) */
    bufferevent_set_max_single_read(c->bev, MAX_SINGLE_READ);
    bufferevent_setcb(c->bev, read_cb, NULL, bev_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!c->ssl)
        went_up(c);
}

lw_resp *lw_resp_open(struct event_base *base, const lw_url *u, lw_tls_ctx *tls, unsigned attempt,
                      int subscriber, lw_resp_event_fn event_fn, lw_resp_push_fn push_fn, void *ud,
                      char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t addrlen;
    lw_resp *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    c->subscriber = subscriber;
    c->event_fn = event_fn;
    c->push_fn = push_fn;
    c->ud = ud;
    c->fd = -1;
    if (!(c->reader = redisReaderCreate())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (u->tls && !(c->ssl = lw_tls_session_new(tls, u, err, errlen)))
        goto fail;
    if ((c->fd = lw_sock_open(u, attempt, &addr, &addrlen, err, errlen)) < 0)
        goto fail;
    if (lw_sock_connect(c->fd, &addr, addrlen, err, errlen) != 0)
        goto fail;
    c->connect_ev = event_new(base, c->fd, EV_WRITE, connect_cb, c);
    if (!c->connect_ev || event_add(c->connect_ev, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return c;
fail:
    destroy(c);
    return NULL;
}

static void free_formatted(const void *data, size_t len, void *extra)
{
    (void)len, (void)extra;
    free((void *)data);
}

static int grow_queue(lw_resp *c)
{
    size_t cap = c->cap ? c->cap * 2 : 64;
    waiting *q = malloc(cap * sizeof *q);
    if (!q)
        return -1;
    for (size_t i = 0; i < c->n; i++)
        q[i] = c->q[(c->head + i) % c->cap];
    free(c->q);
    c->q = q;
    c->head = 0;
    c->cap = cap;
    return 0;
}

int lw_resp_send(lw_resp *c, int argc, const char **argv, const size_t *lens, lw_resp_reply_fn fn,
                 void *priv)
{
    char *cmd = NULL;
    if (!c->up || c->dead || c->freed)
        return -1;
    if (fn && c->n == c->cap && grow_queue(c) != 0)
        return -1;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return -1;
    if (evbuffer_add_reference(bufferevent_get_output(c->bev), cmd, (size_t)len, free_formatted,
                               NULL) != 0) {
        free(cmd);
        return -1;
    }
    if (fn) {
        c->q[(c->head + c->n) % c->cap] = (waiting){fn, priv};
        c->n++;
    }
    return 0;
}

int lw_resp_is_up(const lw_resp *c) { return c->up && !c->dead && !c->freed; }

void *lw_resp_ud(const lw_resp *c) { return c->ud; }

void lw_resp_free(lw_resp *c)
{
    if (!c || c->freed)
        return;
    c->freed = 1;
    c->up = 0;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    c->depth++;
    complete_all(c);
    leave(c);
}

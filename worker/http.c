/*
 * http.c — health and metrics endpoints.
 *
 * /healthz (readiness) answers 200 only when the loop is turning (this very
 * answer), the claim loop ran within the last 5 s (the 100 ms tick drives it
 * even when idle) and is not shutting down (quiet is healthy, and says
 * so; so is a paused queue, which is Redis's state), every Redis link is ready and
 * its replies are not overdue (half the lease-derived reply timeout), no
 * tenant's Redis refuses claims for being at maxmemory, and not every slot
 * is held by an abandoned thread handler; otherwise 503 with one line per
 * problem, so `curl` shows why.
 *
 * /livez (liveness) answers 200 while the loop turns and the claim loop ran
 * within 5 s, whatever Redis or draining say: those are states a restart
 * does not cure.
 *
 * A tiny HTTP/1.x responder on evconnlistener + bufferevent rather than
 * evhttp: libevent 2.1's evhttp has no connection cap and its timeouts are
 * per read, so idle or dribbling clients (slowloris) used to pile up until
 * the worker ran out of file descriptors and jobs could no longer start. Here
 * every connection lives at most HTTP_DEADLINE_MS from accept, sends a head
 * of at most HTTP_MAX_HEAD bytes, gets one response and is closed; at most
 * HTTP_MAX_CONNS are open, and a newcomer at the cap evicts the oldest, so a
 * probe still gets through while idle connections hold every slot.
 */
#include "http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lease.h"
#include "lease_rules.h"
#include "log.h"
#include "queue_stats.h"
#include "state.h"
#include "timefmt.h"

#define HTTP_MAX_CONNS 32
#define HTTP_MAX_HEAD 8192
#define HTTP_DEADLINE_MS 5000
#define HTTP_ACCEPT_PAUSE_MS 100
#define HTTP_LOG_EVERY_MS 60000

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define PROMETHEUS_TEXT "text/plain; version=0.0.4; charset=utf-8"

typedef struct http_conn {
    struct http_server *h;
    struct bufferevent *bev;
    struct event *deadline;
    size_t scanned;                /* head bytes already searched for its end */
    int responding;                /* the response is queued: only draining is left */
    struct http_conn *prev, *next; /* accept order: h->oldest first */
} http_conn;

struct http_server {
    worker *w;
    struct evconnlistener *listener;
    struct event *resume; /* re-enables accepting after a failure */
    http_conn *oldest, *newest;
    int nconns;
    lw_log_gate accept_gate;
};

/* ------------------------------------------------------------- pages -- */

/* Returns 1 when the claim loop turned lately, else adds a line to out. */
static int loop_turns(worker *w, struct evbuffer *out)
{
    if (lw_mono_ms() - w->last_pump_mono <= 5000)
        return 1;
    evbuffer_add_printf(out, "claim loop: stalled for %.1f s\n",
                        (double)(lw_mono_ms() - w->last_pump_mono) / 1000.0);
    return 0;
}

static int livez_body(worker *w, struct evbuffer *out)
{
    int ok = loop_turns(w, out);
    if (ok)
        evbuffer_add_printf(out, "ok\n");
    return ok;
}

static int abandoned_attempts(const worker *w)
{
    int n = 0;
    for (const attempt *a = w->running; a; a = a->next)
        n += (a->phase == PHASE_ABANDONED);
    return n;
}

/* Returns 1 when healthy; each problem adds one line to out. */
static int healthz_body(worker *w, struct evbuffer *out)
{
    int ok = loop_turns(w, out);
    /* Quiet (SIGTSTP) is an operator's choice, like a paused queue: said,
     * but healthy (CONTRACT section 13). A probe that failed it had a
     * quieted worker restarted or taken out of service. */
    if (w->state == W_QUIET) {
        evbuffer_add_printf(out, "claim loop: quiet (SIGTSTP): claiming nothing until restarted\n");
    } else if (w->state != W_RUNNING) {
        evbuffer_add_printf(out, "claim loop: not claiming (shutting down)\n");
        ok = 0;
    }
    /* A reply overdue by half the reply timeout: renewals are falling
     * behind what the fence allows, long before the link is reset. */
    int64_t overdue_ms = lease_rules_reply_timeout_ms(w->opt->lease_ms) / 2;
    for (rlink *l = w->links; l; l = l->next) {
        int64_t wait_ms = lw_redis_reply_wait_ms(l->r);
        if (!lw_redis_is_ready(l->r)) {
            evbuffer_add_printf(out, "redis %s: not ready\n", lw_redis_name(l->r));
            ok = 0;
        } else if (wait_ms > overdue_ms) {
            evbuffer_add_printf(out, "redis %s: no reply for %.1f s\n", lw_redis_name(l->r),
                                (double)wait_ms / 1000.0);
            ok = 0;
        }
    }
    /* Thread isolation: an abandoned handler keeps its thread and slot
     * until it returns. With every slot so held nothing can run. */
    int abandoned = abandoned_attempts(w);
    if (abandoned >= w->opt->concurrency) {
        evbuffer_add_printf(
            out, "slots: all %d held by abandoned handlers (they ignored their timeout)\n",
            abandoned);
        ok = 0;
    }
    /* Redis at maxmemory refuses claims (outcomes still go through): the
     * worker runs, but it can take no work. */
    for (tenant *t = w->tenants; t; t = t->next)
        if (t->oom) {
            evbuffer_add_printf(
                out, "redis %s: out of memory (maxmemory reached): tenant %s claims nothing\n",
                lw_redis_name(t->link->r), t->cfg->name);
            ok = 0;
        }
    if (ok)
        evbuffer_add_printf(out, "ok\n");
    return ok;
}

/* Returns 0, or -1 when out of memory. */
static int metrics_body(worker *w, struct evbuffer *out)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    queue_stats_scraped(w);
    int rc = metrics_render(&w->m, &buf, &len, &cap);
    rc |= queue_stats_render(w, &buf, &len, &cap);
    rc |= metrics_appendf(
        &buf, &len, &cap,
        "# HELP lanework_active_jobs Attempts running in this worker.\n"
        "# TYPE lanework_active_jobs gauge\n"
        "lanework_active_jobs %d\n"
        "# HELP lanework_abandoned_attempts Slots held by handlers abandoned after their timeout (thread isolation).\n"
        "# TYPE lanework_abandoned_attempts gauge\n"
        "lanework_abandoned_attempts %d\n"
        "# HELP lanework_redis_errors_total Redis connection failures and error replies.\n"
        "# TYPE lanework_redis_errors_total counter\n",
        w->nrunning, abandoned_attempts(w));
    for (rlink *l = w->links; l; l = l->next)
        rc |= metrics_appendf(&buf, &len, &cap, "lanework_redis_errors_total{redis=\"%s\"} %llu\n",
                              lw_redis_name(l->r), (unsigned long long)lw_redis_error_count(l->r));
    rc |= metrics_appendf(&buf, &len, &cap,
                          "# HELP lanework_redis_up 1 when the connection to this Redis is ready.\n"
                          "# TYPE lanework_redis_up gauge\n");
    for (rlink *l = w->links; l; l = l->next)
        rc |= metrics_appendf(&buf, &len, &cap, "lanework_redis_up{redis=\"%s\"} %d\n",
                              lw_redis_name(l->r), lw_redis_is_ready(l->r));
    if (!rc && evbuffer_add(out, buf, len))
        rc = -1;
    free(buf);
    return rc ? -1 : 0;
}

/* --------------------------------------------------------- connections -- */

/* The only place a connection ends, so nconns stays exact. With
 * BEV_OPT_CLOSE_ON_FREE this also closes the socket; libevent allows
 * freeing a bufferevent from its own callbacks as long as nothing touches
 * it afterwards, so every caller returns right after. */
static void conn_close(http_conn *c)
{
    struct http_server *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->oldest = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        h->newest = c->prev;
    h->nconns--;
    event_free(c->deadline);
    bufferevent_free(c->bev);
    free(c);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* Queues the whole response; the write callback closes once it is sent.
 * Takes the body's contents (it is left empty). */
static void conn_respond(http_conn *c, int status, const char *type, struct evbuffer *body,
                         int head_only)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: %s\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n"
                        "%s"
                        "\r\n",
                        status, reason_phrase(status), type, evbuffer_get_length(body),
                        status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (head_only)
        evbuffer_drain(body, evbuffer_get_length(body));
    else
        evbuffer_add_buffer(out, body);
    c->responding = 1;
    /* Keep reading (and discarding): a client still pushing an oversized
     * head may block on a full window and never read the answer. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
}

static void conn_respond_text(http_conn *c, int status, const char *text, int head_only)
{
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        conn_close(c);
        return;
    }
    evbuffer_add_printf(body, "%s\n", text);
    conn_respond(c, status, TEXT_PLAIN, body, head_only);
    evbuffer_free(body);
}

static void serve_page(http_conn *c, const char *path, int head_only)
{
    worker *w = c->h->w;
    int is_healthz = !strcmp(path, "/healthz"), is_livez = !strcmp(path, "/livez");
    if (!is_healthz && !is_livez && strcmp(path, "/metrics")) {
        conn_respond_text(c, 404, "try /healthz, /livez or /metrics", head_only);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        conn_respond_text(c, 500, "out of memory", head_only);
        return;
    }
    if (is_healthz || is_livez) {
        int ok = is_healthz ? healthz_body(w, body) : livez_body(w, body);
        conn_respond(c, ok ? 200 : 503, TEXT_PLAIN, body, head_only);
    } else if (metrics_body(w, body) == 0) {
        conn_respond(c, 200, PROMETHEUS_TEXT, body, head_only);
    } else {
        conn_respond_text(c, 500, "out of memory", head_only);
    }
    evbuffer_free(body);
}

/* Where the head ends (just past its empty line) within buf[0..len), or 0
 * when it has not ended yet. Bare "\n" line ends count too, as the HTTP
 * spec asks of a robust server. Searching resumes at *scanned, so a client
 * dribbling bytes costs linear time, not quadratic. */
static size_t head_end(const char *buf, size_t len, size_t *scanned)
{
    size_t i = *scanned;
    for (; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        size_t j = i + 1;
        if (j < len && buf[j] == '\r')
            j++;
        if (j < len && buf[j] == '\n')
            return j + 1;
        if (j >= len)
            break; /* may still become an empty line */
    }
    *scanned = i;
    return 0;
}

static int is_tchar(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Splits "METHOD SP TARGET SP HTTP/1.x" in place; 0, or -1 if malformed. */
static int parse_request_line(char *line, char **method, char **target)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        return -1;
    char *sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || sp2 == sp1 + 1 || sp1[1] != '/')
        return -1;
    const char *version = sp2 + 1;
    if (strncmp(version, "HTTP/1.", 7) || version[7] < '0' || version[7] > '9' || version[8])
        return -1;
    for (const char *p = line; p < sp1; p++)
        if (!is_tchar(*p))
            return -1;
    for (const char *p = sp1 + 1; p < sp2; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -1;
    *sp1 = *sp2 = '\0';
    *method = line;
    *target = sp1 + 1;
    return 0;
}

/* head: the request head, NUL-terminated, its end included. */
static void handle_request(http_conn *c, char *head)
{
    /* RFC 9112 2.2: ignore empty lines before the request line. */
    while (*head == '\r' || *head == '\n')
        head++;
    char *eol = strchr(head, '\n');
    if (!eol) {
        conn_respond_text(c, 400, "malformed request line", 0);
        return;
    }
    if (eol > head && eol[-1] == '\r')
        eol--;
    *eol = '\0';
    char *method, *target;
    if (parse_request_line(head, &method, &target)) {
        conn_respond_text(c, 400, "malformed request line", 0);
        return;
    }
    int head_only = !strcmp(method, "HEAD");
    if (!head_only && strcmp(method, "GET")) {
        conn_respond_text(c, 405, "only GET and HEAD", 0);
        return;
    }
    target[strcspn(target, "?#")] = '\0';
    serve_page(c, target, head_only);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    http_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    if (c->responding || !len) {
        evbuffer_drain(in, len);
        return;
    }
    /* The high watermark keeps len at most HTTP_MAX_HEAD + 1. */
    char *buf = (char *)evbuffer_pullup(in, (ev_ssize_t)len);
    if (!buf) {
        conn_close(c);
        return;
    }
    size_t end = head_end(buf, len, &c->scanned);
    if (!end || end > HTTP_MAX_HEAD) {
        if (len > HTTP_MAX_HEAD) {
            evbuffer_drain(in, len);
            conn_respond_text(c, 431, "request head larger than 8 KiB", 0);
        }
        return;
    }
    char head[HTTP_MAX_HEAD + 1];
    memcpy(head, buf, end);
    head[end] = '\0';
    evbuffer_drain(in, len); /* no bodies: whatever follows is ignored */
    handle_request(c, head);
}

/* Closing a socket with unread input makes the kernel send RST instead of
 * FIN, and an RST can destroy the response in the client's kernel before
 * the client has read it: drop what has already arrived (bounded, so a
 * flood cannot hold the loop). */
static void discard_pending_input(struct bufferevent *bev)
{
    char sink[4096];
    evutil_socket_t fd = bufferevent_getfd(bev);
    for (int i = 0; i < 16; i++)
        if (recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
            break;
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    http_conn *c = arg;
    if (!c->responding || evbuffer_get_length(bufferevent_get_output(bev)))
        return;
    discard_pending_input(bev);
    conn_close(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    http_conn *c = arg;
    (void)bev;
    /* A client that half-closes after its request still gets the answer. */
    if (c->responding && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR))
        return;
    conn_close(c);
}

/* The deadline bounds the whole exchange, however slowly bytes arrive. */
static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_close(arg);
}

static http_conn *conn_new(struct http_server *h, evutil_socket_t fd)
{
    struct event_base *base = h->w->base;
    http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->h = h;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->deadline = evtimer_new(base, conn_deadline_cb, c);
    struct timeval tv = {HTTP_DEADLINE_MS / 1000, (HTTP_DEADLINE_MS % 1000) * 1000};
    if (!c->bev || !c->deadline || evtimer_add(c->deadline, &tv)) {
        if (c->deadline)
            event_free(c->deadline);
        if (c->bev)
            bufferevent_free(c->bev);
        free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    /* One byte over the limit is enough to tell that the head is too big. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_MAX_HEAD + 1);
    bufferevent_enable(c->bev, EV_READ);
    return c;
}

/* ------------------------------------------------------------ listener -- */

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct http_server *h = arg;
    (void)lis;
    (void)sa;
    (void)socklen;
    /* The oldest is most likely an idle attacker's; a fresh probe wins. */
    if (h->nconns >= HTTP_MAX_CONNS)
        conn_close(h->oldest);
    http_conn *c = conn_new(h, fd);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->prev = h->newest;
    if (h->newest)
        h->newest->next = c;
    else
        h->oldest = c;
    h->newest = c;
    h->nconns++;
}

/* EMFILE and friends leave the listening socket readable: accepting again
 * at once would spin the loop, so pause and let descriptors come back. */
static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
    struct http_server *h = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval pause = {0, HTTP_ACCEPT_PAUSE_MS * 1000};
    evconnlistener_disable(lis);
    evtimer_add(h->resume, &pause);
    /* Gated on a fixed text: one line a minute whatever the errno. */
    lw_log(lw_log_gate_level(&h->accept_gate, "accept", LW_LOG_ERROR, HTTP_LOG_EVERY_MS),
           "http.accept", "--http: cannot accept connections: %s; pausing %d ms",
           evutil_socket_error_to_string(err), HTTP_ACCEPT_PAUSE_MS);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *h = arg;
    (void)fd;
    (void)what;
    evconnlistener_enable(h->listener);
}

/* Binds the first address host:port resolves to, as evhttp did: falling
 * back to another would hide "in use" when a second worker is started on
 * the same --http. NULL when it cannot. */
static struct evconnlistener *listen_on(struct http_server *h, const char *host, const char *port)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG | AI_NUMERICSERV;
    if (getaddrinfo(*host ? host : NULL, port, &hints, &ai))
        return NULL;
    struct evconnlistener *lis = evconnlistener_new_bind(
        h->w->base, accept_cb, h, LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE,
        -1, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    return lis;
}

struct http_server *http_start(worker *w, const char *hostport, char *err, size_t errlen)
{
    struct http_server *h = calloc(1, sizeof *h);
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    /* "[::1]:9090" */
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    h->w = w;
    if (!(h->resume = evtimer_new(w->base, resume_cb, h))) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(h->listener = listen_on(h, host, colon + 1))) {
        snprintf(err, errlen,
                 "--http %s: cannot listen there (in use, or not an address of this host)",
                 hostport);
        event_free(h->resume);
        free(h);
        return NULL;
    }
    evconnlistener_set_error_cb(h->listener, accept_error_cb);
    return h;
}

void http_free(struct http_server *h)
{
    if (!h)
        return;
    while (h->oldest)
        conn_close(h->oldest);
    evconnlistener_free(h->listener);
    event_free(h->resume);
    free(h);
}

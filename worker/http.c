/*
 * http.c — health and metrics endpoints.
 *
 * /healthz answers 200 only when the loop is turning (this very answer), the
 * claim loop ran within the last 5 s (the 100 ms tick drives it even when
 * idle) and is allowed to claim, and every Redis link is ready; otherwise
 * 503 with one line per problem, so `curl` shows why.
 */
#include "http.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"
#include "worker.h"

struct http_server {
    struct evhttp *http;
    worker *w;
};

static void healthz(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    struct evbuffer *out = evbuffer_new();
    int ok = 1;
    if (!out) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    if (lw_mono_ms() - w->last_pump_mono > 5000) {
        evbuffer_add_printf(out, "claim loop: stalled for %.1f s\n",
                            (double)(lw_mono_ms() - w->last_pump_mono) / 1000.0);
        ok = 0;
    }
    if (w->state != W_RUNNING) {
        evbuffer_add_printf(out, "claim loop: not claiming (%s)\n",
                            w->state == W_QUIET ? "quiet" : "shutting down");
        ok = 0;
    }
    for (rlink *l = w->links; l; l = l->next)
        if (!lw_redis_is_ready(l->r)) {
            evbuffer_add_printf(out, "redis %s: not ready\n", lw_redis_name(l->r));
            ok = 0;
        }
    for (tenant *t = w->tenants; t; t = t->next)
        if (t->oom) {
            evbuffer_add_printf(out, "redis %s: out of memory (maxmemory reached): tenant %s claims nothing\n",
                                lw_redis_name(t->link->r), t->cfg->name);
            ok = 0;
        }
    if (ok) evbuffer_add_printf(out, "ok\n");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", out);
    evbuffer_free(out);
}

static void metrics_page(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = metrics_render(&w->m, &buf, &len, &cap);
    rc |= metrics_appendf(&buf, &len, &cap,
                          "# HELP lanework_active_jobs Attempts running in this worker.\n"
                          "# TYPE lanework_active_jobs gauge\n"
                          "lanework_active_jobs %d\n"
                          "# HELP lanework_redis_errors_total Redis connection failures and error replies.\n"
                          "# TYPE lanework_redis_errors_total counter\n",
                          w->nrunning);
    for (rlink *l = w->links; l; l = l->next)
        rc |= metrics_appendf(&buf, &len, &cap, "lanework_redis_errors_total{redis=\"%s\"} %llu\n",
                              lw_redis_name(l->r), (unsigned long long)lw_redis_error_count(l->r));
    rc |= metrics_appendf(&buf, &len, &cap,
                          "# HELP lanework_redis_up 1 when the connection to this Redis is ready.\n"
                          "# TYPE lanework_redis_up gauge\n");
    for (rlink *l = w->links; l; l = l->next)
        rc |= metrics_appendf(&buf, &len, &cap, "lanework_redis_up{redis=\"%s\"} %d\n", lw_redis_name(l->r),
                              lw_redis_is_ready(l->r));
    if (rc) {
        free(buf);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        free(buf);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(out, buf, len);
    free(buf);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void not_found(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, 404, "try /healthz or /metrics");
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
    h->http = evhttp_new(w->base);
    if (!h->http) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(h->http, "/healthz", healthz, w);
    evhttp_set_cb(h->http, "/metrics", metrics_page, w);
    evhttp_set_gencb(h->http, not_found, w);
    if (evhttp_bind_socket(h->http, host, (ev_uint16_t)atoi(colon + 1)) != 0) {
        snprintf(err, errlen, "--http %s: cannot listen there (in use, or not an address of this host)", hostport);
        evhttp_free(h->http);
        free(h);
        return NULL;
    }
    return h;
}

void http_free(struct http_server *h)
{
    if (!h) return;
    evhttp_free(h->http);
    free(h);
}

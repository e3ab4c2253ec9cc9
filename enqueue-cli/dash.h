/*
 * dash.h — `lanework dashboard`: what its modules share.
 *
 * One process, one libevent loop, one evhttp server. Pages are rendered on
 * the loop from the CLI's synchronous Redis connections (cli.h), each read
 * a bounded range, each reply bounded in time (DASH_REPLY_MS), so a request
 * holds the loop for a few round trips at most. The modules:
 *   dash_server.c   flags, the listener, limits, authentication, routing
 *   dash_html.c     the output buffer, HTML/URL escaping, the page frame
 *   dash_pages.c    the read-only pages (overview, tenant, queue, lanes,
 *                   failed, job, workers)
 *   dash_actions.c  POST forms: CSRF check, retry/cancel/delete/pause/resume
 *                   through the CLI's own functions, 303 back
 *   dash_live.c     the live event page and its server-sent event streams
 *   dash_assets.c   the CSS and the live view's script, compiled in
 */
#ifndef LW_DASH_H
#define LW_DASH_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define DASH_DEFAULT_ADDR "127.0.0.1:7117"
/* Bound on one Redis reply while a page is rendered (the loop waits). */
#define DASH_REPLY_MS 3000
/* Rows of a page of jobs, events, lanes. */
#define DASH_PAGE_ROWS 50
/* Events of a job's timeline: the newest of the stream read, at most. */
#define DASH_TIMELINE_SCAN 2000
#define DASH_MAX_STREAMS 16

struct dash_stream;

typedef struct dash {
    cli *c;
    struct event_base *base;
    struct evhttp *http;
    int read_only;
    char *token; /* owned; NULL without --token-file */
    size_t token_len;
    char csrf[65];               /* hex: the CSRF token of this process (hidden field) */
    char session[65];            /* hex: the cookie a good login sets (with --token-file) */
    struct dash_stream *streams; /* live SSE streams (dash_live.c) */
    int nstreams;
    struct event *poll;      /* the streams' poll timer */
    struct dash_conn *conns; /* connections with a deadline (dash_server.c) */
    int nconns;
} dash;

/* ---- dash_html.c ---- */

/* Appends s as HTML text or attribute value: & < > " ' escaped, control
 * characters (but \n \t) dropped, invalid UTF-8 passed as is (it cannot
 * form markup). NULL appends nothing. */
void dash_text(struct evbuffer *b, const char *s);
void dash_textn(struct evbuffer *b, const char *s, size_t n);
/* Appends s percent-encoded for a URL path segment or query value
 * (everything but A-Z a-z 0-9 - _ . ~): safe in an attribute too. */
void dash_url(struct evbuffer *b, const char *s);
/* Appends trusted markup (a literal of ours). */
void dash_raw(struct evbuffer *b, const char *s);
/* printf of trusted markup with numbers: never pass user text through
 * %s (use dash_text). */
void dash_fmt(struct evbuffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A time in ms since the epoch as "YYYY-MM-DD HH:MM:SS UTC" ("-" for <= 0). */
void dash_time(struct evbuffer *b, long long ms);
/* An age in ms as 42s, 7m, 3h, 2d ("-" for < 0). */
void dash_age(struct evbuffer *b, long long ms);
/* The page frame: <!doctype>, <head> (title escaped), the navigation (the
 * tenant's links when tenant is not NULL), a flash message (escaped) when
 * not NULL, then the caller's body, then dash_page_end. */
void dash_page_begin(const dash *d, struct evbuffer *b, const char *title, const char *tenant,
                     const char *flash);
void dash_page_end(struct evbuffer *b);
/* A POST form with one button: action path (already encoded by the
 * caller: a literal plus dash_url pieces, given as the buffer `action`),
 * the CSRF field and a `back` field; nothing under --read-only. */
void dash_button(const dash *d, struct evbuffer *b, const char *action, const char *label,
                 const char *back, const char *cls);
/* Sends b (consumed) as an HTML page with status code; adds the headers
 * every answer has (no caching, no framing, a strict CSP). */
void dash_send_html(struct evhttp_request *req, int code, const char *reason, struct evbuffer *b);
/* A small HTML error page (what escaped). */
void dash_send_error(const dash *d, struct evhttp_request *req, int code, const char *reason,
                     const char *what);
/* The security headers of every answer. */
void dash_headers(struct evhttp_request *req, const char *content_type);

/* ---- dash_pages.c: GET handlers; parts are the decoded path segments ---- */

/* Before every request: connections that failed are dropped, so the next
 * use reconnects (a dashboard outlives Redis restarts). */
void dash_heal(dash *d);
/* The pages: each answers req itself (200, or an error page: 404 for an
 * unknown tenant, job or name, 502 when Redis failed). Names borrowed. */
void dash_page_overview(dash *d, struct evhttp_request *req);
void dash_page_workers(dash *d, struct evhttp_request *req);
void dash_page_tenant(dash *d, struct evhttp_request *req, const char *tenant);
void dash_page_queue(dash *d, struct evhttp_request *req, const char *tenant, const char *queue);
void dash_page_lanes(dash *d, struct evhttp_request *req, const char *tenant);
void dash_page_failed(dash *d, struct evhttp_request *req, const char *tenant);
void dash_page_job(dash *d, struct evhttp_request *req, const char *tenant, const char *id);
/* The query parameter `name` of req, decoded, into out (cut to fit);
 * returns 1 when present. */
int dash_query(struct evhttp_request *req, const char *name, char *out, size_t outlen);
/* Resolves tenant name for a page: 0 with *t set, or sends 404/502 and
 * returns -1. */
int dash_tenant(dash *d, struct evhttp_request *req, const char *name, cli_tenant *t);

/* ---- dash_actions.c ---- */

/* POST /login (the token form) and the action POSTs under /t/T/... */
void dash_post(dash *d, struct evhttp_request *req, char **parts, int nparts);
/* Constant-time comparison of a[0..alen) and b[0..blen): 1 when equal. */
int dash_equal(const char *a, size_t alen, const char *b, size_t blen);

/* ---- dash_live.c ---- */

/* The live event page of tenant (the newest DASH_PAGE_ROWS events). */
void dash_page_events(dash *d, struct evhttp_request *req, const char *tenant);
struct cJSON;
/* An event's row (its `lanework events` object o, borrowed) in a job's
 * timeline or the live table (with_job: a column linking its job). */
void dash_event_row(struct evbuffer *b, const char *tenant, const struct cJSON *o, int with_job);
/* Starts an event stream (text/event-stream) of tenant's events after
 * ?since= or Last-Event-ID (else from now), fed by the poll timer; 503
 * past DASH_MAX_STREAMS. The stream owns nothing of req: evhttp does. */
void dash_stream_start(dash *d, struct evhttp_request *req, const char *tenant);
/* Ends every stream (shutdown). */
void dash_streams_close(dash *d);

/* ---- dash_server.c ---- */

/* Exempts req's connection from the request deadline (an event stream
 * lives longer; DASH_MAX_STREAMS bounds them). */
void dash_conn_keep(dash *d, struct evhttp_request *req);

/* ---- dash_assets.c ---- */

extern const char dash_css[];
extern const char dash_live_js[];

#endif

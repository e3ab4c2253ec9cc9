/*
 * dash.h — `lanework dashboard`: what its modules share.
 *
 * One process, one libevent loop, one evhttp server. The loop accepts,
 * authenticates and routes; pages and actions run in DASH_THREADS threads
 * (dash_pool.c), each with its own synchronous Redis connections (cli.h),
 * each read a bounded range, each reply bounded in time (DASH_REPLY_MS),
 * and the loop sends their answers. A Redis that does not answer holds the
 * pages that need it, never the loop. The modules:
 *   dash_server.c   flags, the listener, limits, authentication, routing
 *   dash_pool.c     the page threads and their jobs; dash_reply
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
/* Bound on one connect (a try: a Cluster URL may try a seed, then the
 * master it names), so that a frozen master costs a page about one reply
 * bound, not the CLI's connect timeouts. */
#define DASH_CONNECT_MS (DASH_REPLY_MS / 2)
/* Rows of a page of jobs, events, lanes. */
#define DASH_PAGE_ROWS 50
/* Events of a job's timeline: the newest of the stream read, at most. */
#define DASH_TIMELINE_SCAN 2000
/* ... and as many as fit these bytes of event fields (events may carry
 * 64 KiB of data each: 2,000 of them were 120 MB for one page). */
#define DASH_TIMELINE_BYTES (4u << 20)
#define DASH_MAX_STREAMS 16
/* Page threads, and how long a thread leaves a Redis that failed alone
 * (cli_conn's breaker). */
#define DASH_THREADS 4
#define DASH_HOLD_MS 5000
/* Wrong tokens (a login, a Bearer header) allowed per window: past them,
 * 429 (a token of --token-file is not to be found by guessing fast). */
#define DASH_GUESSES 8
#define DASH_GUESS_WINDOW_MS 10000
/* Path segments a route has at most. */
#define DASH_MAX_PARTS 8

struct dash_stream;
struct dash_pool;
struct dash_job;

typedef struct dash {
    cli *c;
    struct event_base *base;
    struct evhttp *http;
    int read_only;
    char *token; /* owned; NULL without --token-file */
    size_t token_len;
    char csrf[65];               /* hex: the CSRF token of this process (hidden field) */
    char session[65];            /* hex: the cookie a good login sets (with --token-file) */
    unsigned char flash_key[16]; /* signs an action's message to its page (dash_flash_mac) */
    struct dash_stream *streams; /* live SSE streams (dash_live.c) */
    int nstreams;
    struct event *poll;      /* the streams' poll timer */
    struct dash_conn *conns; /* connections with a deadline (dash_server.c) */
    int nconns;
    int loopback;                   /* listens on loopback: Host is checked */
    int64_t guess_at[DASH_GUESSES]; /* the latest wrong tokens (lw_mono_ms) */
    int guess_next;
    struct dash_pool *pool; /* owned (dash_pool.c) */
    int polling;            /* a poll of the streams is running (dash_live.c) */
} dash;

/* ---- dash_pool.c ---- */

/* A job's function: `run` in a page thread with that thread's dash (its
 * own cli; never the loop's streams, connections or base); `done` on the
 * loop with the process's, after run. What run answered (dash_reply) is
 * sent after done; a job of a request without done must answer. */
typedef void (*dash_job_fn)(dash *d, struct dash_job *j);
/* Starts the page threads. Returns 0 or -1 (out of memory or threads). */
int dash_pool_start(dash *d);
/* Queues a job for req (NULL: none) with its path segments (taken on
 * success: the job frees them) and arg (the kind's own, see dash_job_arg).
 * Returns 0, or -1 when the queue is full or memory short: nothing taken,
 * nothing answered. On the loop only. */
int dash_pool_submit(dash *d, struct evhttp_request *req, char **parts, int nparts, dash_job_fn run,
                     dash_job_fn done, void *arg);
/* Stops the threads after the jobs they run; sends what finished, refuses
 * (503) what never ran. Before evhttp_free. */
void dash_pool_stop(dash *d);
void *dash_job_arg(const struct dash_job *j);
void dash_job_set_arg(struct dash_job *j, void *arg);
struct evhttp_request *dash_job_req(const struct dash_job *j);
/* The job's path segments (borrowed: the job's). */
char **dash_job_parts(struct dash_job *j, int *n);
/* The one way a page answers: on the loop, evhttp_send_reply; in a page
 * thread, recorded in its job (body's contents taken) for the loop to
 * send; only the first answer counts. body may be NULL. */
void dash_reply(struct evhttp_request *req, int code, const char *reason, struct evbuffer *body);

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
/* The one banner of a partial page: each partition of tenant (of nparts)
 * in g named with its prefix and why (escaped), as the CLI's
 * `tenant "T" partition P (PREFIX) unreadable: WHY` lines; `lacks` says
 * what the page leaves out. Nothing when g notes none. */
void dash_gaps_banner(const dash *d, struct evbuffer *b, const char *tenant, int nparts,
                      const cli_gaps *g, const char *lacks);
/* The same partitions as one line of text into out (a flash message, an
 * error page): "partition P (PREFIX): WHY; ...". */
void dash_gaps_text(const dash *d, const char *tenant, const cli_gaps *g, char *out, size_t outlen);

/* ---- dash_pages.c: GET handlers; parts are the decoded path segments ---- */

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
/* Opens partition p of t (opened) for a partial page, its replies bounded
 * by DASH_REPLY_MS: 0, or CLI_REDIS with p noted in g (not printed), or
 * CLI_USAGE (printed). */
int dash_part_open(dash *d, const cli_tenant *t, int p, cli_tenant *pt, cli_gaps *g);
/* A read of partition pt failed after it opened: noted in g with why, and
 * its connection is not tried again by this page. */
void dash_part_lost(cli_tenant *pt, cli_gaps *g);
/* The partition of t holding job id, as cli_job_partition finds it, but
 * past partitions that cannot be read (noted in g): 0 with *pt; CLI_NOJOB
 * when every partition was read and none holds it; CLI_REDIS when none
 * read holds it and some could not be read (g says which); CLI_USAGE. */
int dash_job_part(dash *d, cli_tenant *t, const char *id, cli_tenant *pt, cli_gaps *g);

/* ---- dash_actions.c ---- */

/* POST /login (the token form) and the action POSTs under /t/T/... */
void dash_post(dash *d, struct evhttp_request *req, char **parts, int nparts);
/* The signature of flash message msg (16 hex digits and a NUL into out):
 * a page shows ?msg= only with it, so a link cannot make the dashboard say
 * what it likes. */
void dash_flash_mac(const dash *d, const char *msg, char out[17]);
/* Constant-time comparison of a[0..alen) and b[0..blen): 1 when equal. */
int dash_equal(const char *a, size_t alen, const char *b, size_t blen);

/* ---- dash_live.c ---- */

/* The live event page of tenant (the newest DASH_PAGE_ROWS events). */
void dash_page_events(dash *d, struct evhttp_request *req, const char *tenant);
struct cJSON;
/* An event's row (its `lanework events` object o, borrowed) in a job's
 * timeline or the live table (with_job: a column linking its job). */
void dash_event_row(struct evbuffer *b, const char *tenant, const struct cJSON *o, int with_job);
/* Starts an event stream (text/event-stream) of the tenant parts[1]'s
 * events after ?since= or Last-Event-ID (else from now), fed by the poll
 * timer; 503 past DASH_MAX_STREAMS. Returns 1 when a job took parts (it
 * answers), 0 when answered here (parts still the caller's). The stream
 * owns nothing of req: evhttp does. On the loop. */
int dash_stream_start(dash *d, struct evhttp_request *req, char **parts, int nparts);
/* Ends every stream (shutdown: after dash_pool_stop). */
void dash_streams_close(dash *d);

/* ---- dash_server.c ---- */

/* The guesses of the token (on the loop): 0 when DASH_GUESSES wrong ones
 * came within DASH_GUESS_WINDOW_MS (answer 429); _failed counts one. */
int dash_guess_allowed(dash *d);
void dash_guess_failed(dash *d);

/* Exempts req's connection from the request deadline (an event stream
 * lives longer; DASH_MAX_STREAMS bounds them). */
void dash_conn_keep(dash *d, struct evhttp_request *req);

/* ---- dash_assets.c ---- */

extern const char dash_css[];
extern const char dash_live_js[];

#endif

/*
 * dash_live.c — a tenant's live events: the page (the newest events,
 * rendered on the server: it works without JavaScript) and its stream of
 * server-sent events (text/event-stream) that the page's small script
 * (dash_assets.c) appends to the table.
 *
 * A stream is fed by polling: every DASH_POLL_MS one timer queues a poll
 * (one at a time) that reads in a page thread, for each stream and each
 * partition of its tenant, XRANGE of the event stream after the last id
 * sent, DASH_POLL_COUNT entries at most -- a bounded read with a bounded
 * reply time (DASH_REPLY_MS), never a blocking XREAD; the loop then sends
 * what it read. A partition that fails is left
 * alone for DASH_POLL_BACKOFF_MS. Each SSE id is the last ids of every
 * partition, joined by ",", so a reconnecting EventSource (Last-Event-ID)
 * resumes where it was. A stream lives DASH_STREAM_S at most (the browser
 * reconnects), a ping comment keeps proxies from closing an idle one, and
 * a client that does not read is dropped once DASH_STREAM_BACKLOG bytes
 * wait for it.
 */
#include <cjson/cJSON.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "keys.h"
#include "names.h"
#include "partition.h"
#include "timefmt.h"

#define DASH_POLL_MS 500
#define DASH_POLL_COUNT "100"
#define DASH_POLL_BACKOFF_MS 5000
#define DASH_STREAM_S 600
#define DASH_PING_MS 15000
#define DASH_STREAM_WRITE_S 30
#define DASH_STREAM_BACKLOG (1024 * 1024)
#define ID_MAX 48

struct dash_stream {
    dash *d;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    char tenant[LW_NAME_MAX + 1];
    int nparts;
    char last[LW_PARTITIONS_MAX][ID_MAX];
    int64_t started, wrote;
    int64_t backoff_until[LW_PARTITIONS_MAX]; /* a partition that failed rests */
    struct evbuffer *out;                     /* owned: what a poll read, for the loop to send */
    int in_poll;                              /* in the running poll's set */
    int gone;                                 /* its client left during that poll */
    struct dash_stream *next;
};

/* 1 when s is a stream id "MS-SEQ" that fits. */
static int is_id(const char *s, size_t n)
{
    if (n == 0 || n >= ID_MAX)
        return 0;
    int dash_seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' && !dash_seen && i > 0 && i + 1 < n)
            dash_seen = 1;
        else if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return dash_seen;
}

/* Parses "ID0,ID1,..." (nparts ids) into last. Returns 0 or -1. */
static int parse_since(const char *s, int nparts, char (*last)[ID_MAX])
{
    for (int p = 0; p < nparts; p++) {
        size_t n = strcspn(s, ",");
        if (!is_id(s, n))
            return -1;
        memcpy(last[p], s, n);
        last[p][n] = '\0';
        s += n;
        if (p + 1 < nparts) {
            if (*s != ',')
                return -1;
            s++;
        }
    }
    return *s ? -1 : 0;
}

static void join_ids(struct evbuffer *b, char (*last)[ID_MAX], int nparts)
{
    for (int p = 0; p < nparts; p++) {
        if (p)
            dash_raw(b, ",");
        dash_raw(b, last[p]);
    }
}

void dash_event_row(struct evbuffer *b, const char *tenant, const cJSON *o, int with_job)
{
    const cJSON *f;
    dash_raw(b, "<tr><td>");
    f = cJSON_GetObjectItemCaseSensitive(o, "ts");
    dash_text(b, cJSON_IsString(f) ? f->valuestring : NULL);
    dash_raw(b, "</td><td>");
    f = cJSON_GetObjectItemCaseSensitive(o, "type");
    dash_text(b, cJSON_IsString(f) ? f->valuestring : NULL);
    dash_raw(b, "</td>");
    if (with_job) {
        dash_raw(b, "<td>");
        f = cJSON_GetObjectItemCaseSensitive(o, "job");
        if (cJSON_IsString(f)) {
            dash_raw(b, "<a class=\"id\" href=\"/t/");
            dash_url(b, tenant);
            dash_raw(b, "/job/");
            dash_url(b, f->valuestring);
            dash_raw(b, "\">");
            dash_text(b, f->valuestring);
            dash_raw(b, "</a>");
        }
        dash_raw(b, "</td>");
    }
    dash_raw(b, "<td class=\"n\">");
    f = cJSON_GetObjectItemCaseSensitive(o, "attempt");
    if (cJSON_IsNumber(f))
        dash_fmt(b, "%d", f->valueint);
    dash_raw(b, "</td><td>");
    f = cJSON_GetObjectItemCaseSensitive(o, "worker");
    dash_text(b, cJSON_IsString(f) ? f->valuestring : NULL);
    dash_raw(b, "</td><td class=\"data\">");
    f = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (f && !cJSON_IsNull(f)) {
        char *text = cJSON_PrintUnformatted(f);
        if (text && strlen(text) > 300) {
            size_t cut = 297; /* at a character's start: the page stays UTF-8 */
            while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
                cut--;
            strcpy(text + cut, "...");
        }
        dash_text(b, text);
        free(text);
    }
    dash_raw(b, "</td></tr>\n");
}

typedef struct ev_item {
    cJSON *o;
    long long ms;
} ev_item;

static int cmp_item(const void *a, const void *b)
{
    const ev_item *x = a, *y = b;
    return (x->ms < y->ms) - (x->ms > y->ms);
}

void dash_page_events(dash *d, struct evhttp_request *req, const char *tenant)
{
    cli_tenant t;
    if (dash_tenant(d, req, tenant, &t) != 0)
        return;
    char last[LW_PARTITIONS_MAX][ID_MAX];
    ev_item *items = calloc((size_t)t.nparts * DASH_PAGE_ROWS + 1, sizeof *items);
    size_t n = 0;
    int rc = items ? 0 : CLI_USAGE;
    cli_gaps g = {0};
    /* A partition that cannot be read is left out (named in the banner);
     * its stream starts from now (the page's time), not from its first
     * event, once it is back. */
    for (int p = 0; rc == 0 && p < t.nparts; p++) {
        cli_tenant pt;
        snprintf(last[p], ID_MAX, "%lld-0", (long long)lw_now_ms());
        if ((rc = dash_part_open(d, &t, p, &pt, &g)) == CLI_REDIS) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        char key[CLI_KEY_MAX], cnt[16];
        lw_key(key, sizeof key, pt.prefix, "events", NULL);
        snprintf(cnt, sizeof cnt, "%d", DASH_PAGE_ROWS);
        const char *xr[6] = {"XREVRANGE", key, "+", "-", "COUNT", cnt};
        redisReply *r = cli_cmd(pt.conn, 6, xr);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r) {
                cli_redis_err(pt.conn, r, NULL);
                freeReplyObject(r);
            }
            dash_part_lost(&pt, &g);
            continue;
        }
        snprintf(last[p], ID_MAX, "0-0");
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (!cli_is_entry(e))
                continue;
            if (i == 0 && e->element[0]->len < ID_MAX)
                snprintf(last[p], ID_MAX, "%s", e->element[0]->str);
            char *js = cli_event_json(e, t.nparts > 1 ? p : 0);
            cJSON *o = js ? cJSON_Parse(js) : NULL;
            free(js);
            if (o)
                items[n++] = (ev_item){o, strtoll(e->element[0]->str, NULL, 10)};
        }
        freeReplyObject(r);
    }
    if (rc || (t.nparts == 1 && g.n > 0)) {
        for (size_t i = 0; i < n; i++)
            cJSON_Delete(items[i].o);
        free(items);
        dash_send_error(d, req, 502, "Bad Gateway",
                        g.n > 0             ? g.why[0]
                        : cli_last_err()[0] ? cli_last_err()
                                            : "Redis did not answer");
        return;
    }
    qsort(items, n, sizeof *items, cmp_item);
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        for (size_t i = 0; i < n; i++)
            cJSON_Delete(items[i].o);
        free(items);
        dash_reply(req, 500, "Internal Server Error", NULL);
        return;
    }
    dash_page_begin(d, b, "Live events", tenant, NULL);
    dash_gaps_banner(d, b, tenant, t.nparts, &g,
                     "their events are not below (the stream reads them once they answer)");
    dash_raw(b, "<p class=\"note\">Newest first. New events appear as they happen (with "
                "JavaScript; without it, reload). <span id=\"live-state\"></span></p>\n"
                "<table class=\"events\" id=\"live\" data-tenant=\"");
    dash_text(b, tenant);
    dash_raw(b, "\" data-stream=\"/t/");
    dash_url(b, tenant);
    dash_raw(b, "/events/stream?since=");
    join_ids(b, last, t.nparts);
    dash_raw(b, "\"><thead><tr><th>When</th><th>Event</th><th>Job</th><th>Attempt</th>"
                "<th>Worker</th><th>Data</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < n && i < DASH_PAGE_ROWS; i++)
        dash_event_row(b, tenant, items[i].o, 1);
    dash_raw(b, "</tbody></table>\n<script src=\"/static/live.js\"></script>\n");
    dash_page_end(b);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(items[i].o);
    free(items);
    dash_send_html(req, 200, "OK", b);
}

/* ---- streams ---- */

/* A poll's streams, as they were when it was queued. */
typedef struct poll_set {
    int n;
    struct dash_stream *s[DASH_MAX_STREAMS];
} poll_set;

static void stream_free(struct dash_stream *s)
{
    if (s->out)
        evbuffer_free(s->out);
    free(s);
}

static void stream_unlink(struct dash_stream *s)
{
    dash *d = s->d;
    for (struct dash_stream **pp = &d->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            d->nstreams--;
            break;
        }
    if (d->nstreams == 0 && d->poll)
        event_del(d->poll);
}

/* The connection is being freed. When the client went away (EOF, a
 * timeout), evhttp 2.1 first detaches a request whose reply is unfinished
 * (its connection NULL) and leaves it to us: evhttp_send_reply_end then
 * frees it. Otherwise (an error, evhttp_free) the request is still the
 * connection's, and evhttp frees it after this callback. A stream a
 * running poll reads is freed when that poll is done (poll_done). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct dash_stream *s = arg;
    stream_unlink(s);
    if (!evhttp_request_get_connection(s->req))
        evhttp_send_reply_end(s->req);
    s->req = NULL;
    if (s->in_poll)
        s->gone = 1;
    else
        stream_free(s);
}

/* Ends stream s from our side (its lifetime, a backlog, shutdown); never
 * while a poll reads it. */
static void stream_end(struct dash_stream *s)
{
    evhttp_connection_set_closecb(s->evcon, NULL, NULL);
    stream_unlink(s);
    evhttp_send_reply_end(s->req);
    stream_free(s);
}

void dash_streams_close(dash *d)
{
    while (d->streams)
        stream_end(d->streams);
}

/* In a page thread: reads what came after s->last in every partition into
 * s->out, for poll_done to send. Touches nothing of the request. */
static void stream_read(dash *td, struct dash_stream *s, int64_t now)
{
    cli_tenant t;
    if (cli_tenant_get(td->c, s->tenant, &t) != 0)
        return;
    t.nparts = s->nparts;
    if (!s->out && !(s->out = evbuffer_new()))
        return;
    for (int p = 0; p < s->nparts; p++) {
        cli_tenant pt;
        if (now < s->backoff_until[p] || cli_tenant_part(td->c, &t, p, &pt) != 0)
            continue;
        char key[CLI_KEY_MAX], from[ID_MAX + 1];
        lw_key(key, sizeof key, pt.prefix, "events", NULL);
        snprintf(from, sizeof from, "(%s", s->last[p]);
        const char *xr[6] = {"XRANGE", key, from, "+", "COUNT", DASH_POLL_COUNT};
        redisReply *r = cli_connect(pt.conn, 1, NULL, 0) == 0 ? cli_cmd(pt.conn, 6, xr) : NULL;
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            s->backoff_until[p] = now + DASH_POLL_BACKOFF_MS;
            continue;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (!cli_is_entry(e) || e->element[0]->len >= ID_MAX)
                continue;
            snprintf(s->last[p], ID_MAX, "%s", e->element[0]->str);
            char *js = cli_event_json(e, s->nparts > 1 ? p : 0);
            if (!js)
                continue;
            dash_raw(s->out, "id: ");
            join_ids(s->out, s->last, s->nparts);
            dash_raw(s->out, "\ndata: ");
            dash_raw(s->out, js); /* compact JSON: one line */
            dash_raw(s->out, "\n\n");
            free(js);
        }
        freeReplyObject(r);
    }
    if (evbuffer_get_length(s->out) == 0 && now - s->wrote >= DASH_PING_MS)
        dash_raw(s->out, ": ping\n\n");
}

static void poll_run(dash *td, struct dash_job *j)
{
    poll_set *ps = dash_job_arg(j);
    int64_t now = lw_mono_ms();
    for (int i = 0; i < ps->n; i++)
        stream_read(td, ps->s[i], now);
}

/* On the loop: sends what the poll read, ends streams past their time or
 * with a client that does not read, frees those whose client left. */
static void poll_done(dash *d, struct dash_job *j)
{
    poll_set *ps = dash_job_arg(j);
    int64_t now = lw_mono_ms();
    d->polling = 0;
    for (int i = 0; i < ps->n; i++) {
        struct dash_stream *s = ps->s[i];
        s->in_poll = 0;
        if (s->gone) {
            stream_free(s);
            continue;
        }
        if (s->out && evbuffer_get_length(s->out) > 0) {
            s->wrote = now;
            evhttp_send_reply_chunk(s->req, s->out);
        }
        struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
        if (now - s->started >= (int64_t)DASH_STREAM_S * 1000 ||
            (bev && evbuffer_get_length(bufferevent_get_output(bev)) > DASH_STREAM_BACKLOG))
            stream_end(s);
    }
    free(ps);
}

/* The timer: one poll at a time, in a page thread. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dash *d = arg;
    if (d->polling || !d->streams)
        return;
    poll_set *ps = calloc(1, sizeof *ps);
    if (!ps)
        return;
    for (struct dash_stream *s = d->streams; s && ps->n < DASH_MAX_STREAMS; s = s->next) {
        s->in_poll = 1;
        ps->s[ps->n++] = s;
    }
    if (dash_pool_submit(d, NULL, NULL, 0, poll_run, poll_done, ps) != 0) {
        for (int i = 0; i < ps->n; i++)
            ps->s[i]->in_poll = 0;
        free(ps);
        return;
    }
    d->polling = 1;
}

/* In a page thread: the stream's tenant, partitions and where it starts;
 * NULL when answered (an unknown tenant, Redis down). */
static struct dash_stream *stream_prepare(dash *td, struct evhttp_request *req, const char *tenant)
{
    cli_tenant t;
    if (dash_tenant(td, req, tenant, &t) != 0)
        return NULL;
    struct dash_stream *s = calloc(1, sizeof *s);
    if (!s) {
        dash_reply(req, 500, "Internal Server Error", NULL);
        return NULL;
    }
    s->req = req;
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    s->nparts = t.nparts;
    char since[LW_PARTITIONS_MAX * ID_MAX + 1] = "";
    const char *lei = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
    int have = 0;
    if (lei && parse_since(lei, s->nparts, s->last) == 0)
        have = 1;
    else if (dash_query(req, "since", since, sizeof since) &&
             parse_since(since, s->nparts, s->last) == 0)
        have = 1;
    for (int p = 0; !have && p < s->nparts; p++) {
        /* From now on: the newest id of each partition. */
        cli_tenant pt;
        cli_gaps g = {0};
        /* Unreadable: from the present moment, not its whole stream. */
        snprintf(s->last[p], ID_MAX, "%lld-0", (long long)lw_now_ms());
        if (dash_part_open(td, &t, p, &pt, &g) != 0)
            continue;
        char key[CLI_KEY_MAX];
        lw_key(key, sizeof key, pt.prefix, "events", NULL);
        const char *xr[6] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
        redisReply *r = cli_cmd(pt.conn, 6, xr);
        if (r && r->type == REDIS_REPLY_ARRAY)
            snprintf(s->last[p], ID_MAX, "0-0");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && cli_is_entry(r->element[0]) &&
            r->element[0]->element[0]->len < ID_MAX)
            snprintf(s->last[p], ID_MAX, "%s", r->element[0]->element[0]->str);
        if (r)
            freeReplyObject(r);
    }
    return s;
}

static void start_run(dash *td, struct dash_job *j)
{
    int n;
    char **p = dash_job_parts(j, &n);
    dash_job_set_arg(j, stream_prepare(td, dash_job_req(j), p[1]));
}

/* On the loop: the prepared stream starts (its reply's head and a hello). */
static void start_done(dash *d, struct dash_job *j)
{
    struct dash_stream *s = dash_job_arg(j);
    if (!s)
        return; /* answered by stream_prepare */
    struct evhttp_request *req = s->req;
    s->d = d;
    s->evcon = evhttp_request_get_connection(req);
    if (!s->evcon) { /* the client left meanwhile */
        stream_free(s);
        evhttp_send_reply_end(req);
        return;
    }
    if (d->nstreams >= DASH_MAX_STREAMS) {
        stream_free(s);
        dash_send_error(d, req, 503, "Service Unavailable", "too many live event streams");
        return;
    }
    if (!d->poll && !(d->poll = event_new(d->base, -1, EV_PERSIST, on_poll, d))) {
        stream_free(s);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    dash_conn_keep(d, req);
    /* evhttp's I/O timeout is per read: a stream's client sends nothing
     * after its request, so that timeout would end every stream. No read
     * timeout then; a write timeout of its own (a client that stops
     * reading). */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    if (bev) {
        struct timeval wtv = {DASH_STREAM_WRITE_S, 0};
        bufferevent_set_timeouts(bev, NULL, &wtv);
    }
    dash_headers(req, "text/event-stream; charset=utf-8");
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(s->evcon, on_close, s);
    s->started = s->wrote = lw_mono_ms();
    s->next = d->streams;
    d->streams = s;
    if (d->nstreams++ == 0) {
        struct timeval tv = {0, DASH_POLL_MS * 1000};
        event_add(d->poll, &tv);
    }
    struct evbuffer *hello = evbuffer_new();
    if (hello) {
        dash_raw(hello, "retry: 2000\n: connected\n\n");
        evhttp_send_reply_chunk(req, hello);
        evbuffer_free(hello);
    }
}

int dash_stream_start(dash *d, struct evhttp_request *req, char **parts, int nparts)
{
    if (d->nstreams >= DASH_MAX_STREAMS) {
        dash_send_error(d, req, 503, "Service Unavailable", "too many live event streams");
        return 0;
    }
    if (dash_pool_submit(d, req, parts, nparts, start_run, start_done, NULL) == 0)
        return 1;
    dash_send_error(d, req, 503, "Service Unavailable", "the dashboard is busy: try again");
    return 0;
}

/*
 * dash_pages.c — the dashboard's read-only pages.
 *
 * Each reads bounded ranges only, so it stays fast on a tenant with
 * millions of jobs: the overview and a tenant's page read what `lanework
 * stats` reads (counters, ZCARDs, the head of each ready list); a queue's
 * jobs come from `lanework list`'s sources (cli_list_jobs, DASH_PAGE_ROWS
 * of them); lanes with work from the first DASH_PAGE_ROWS heads of each
 * ready list, lease set and the schedule, with each lane's LLEN; failed
 * jobs from a page of the failed index; a job's timeline from the newest
 * DASH_TIMELINE_SCAN entries of the event stream. A partitioned tenant is
 * read partition by partition, a job in the partition holding it
 * (cli_job_partition).
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash.h"
#include "keys.h"
#include "names.h"
#include "partition.h"
#include "timefmt.h"
#include "views.h"

/* Without a registry the overview finds tenants by SCAN (as stats does):
 * a cost proportional to the keys, so its answer is kept this long. */
#define DISCOVER_CACHE_MS 30000
/* A job's timeline reads the stream this many entries at a time. */
#define TIMELINE_PAGE "100"

/* Failed jobs reachable by ?page= on a partitioned tenant (each partition
 * is read up to the page's end and merged). */
#define FAILED_MERGE_MAX 10000

int dash_query(struct evhttp_request *req, const char *name, char *out, size_t outlen)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *q = u ? evhttp_uri_get_query(u) : NULL;
    struct evkeyvalq kv;
    memset(&kv, 0, sizeof kv);
    if (!q || evhttp_parse_query_str(q, &kv) != 0) {
        evhttp_clear_headers(&kv);
        return 0;
    }
    const char *v = evhttp_find_header(&kv, name);
    if (v)
        snprintf(out, outlen, "%s", v);
    evhttp_clear_headers(&kv);
    return v != NULL;
}

int dash_part_open(dash *d, const cli_tenant *t, int p, cli_tenant *pt, cli_gaps *g)
{
    char why[256];
    int rc = cli_part_open(d->c, t, p, pt, why, sizeof why);
    if (rc == CLI_REDIS)
        cli_gap_add(g, p, why);
    return rc;
}

void dash_part_lost(cli_tenant *pt, cli_gaps *g)
{
    char why[256];
    const lw_sconn *ctx = pt->conn->ctx;
    snprintf(why, sizeof why, "%s",
             ctx && ctx->err && ctx->errstr[0] ? ctx->errstr
             : cli_last_err()[0]               ? cli_last_err()
                                               : "the server refused a command");
    cli_gap_add(g, pt->part, why);
    if (ctx && ctx->err) {
        pt->conn->part_failed = 1;
        snprintf(pt->conn->part_why, sizeof pt->conn->part_why, "%s", why);
    }
}

/* Connection k failed in a read pipelined over several partitions: each
 * partition of parts[0..n) still ok[] on it is lost. */
static void conn_lost(cli_tenant *parts, int *ok, int n, const cli_conn *k, cli_gaps *g)
{
    for (int p = 0; p < n; p++)
        if (ok[p] && parts[p].conn == k) {
            dash_part_lost(&parts[p], g);
            ok[p] = 0;
        }
}

/* 1 when k can still be read (connected, no error). */
static int conn_ok(const cli_conn *k) { return k->ctx && !k->ctx->err; }

int dash_job_part(dash *d, cli_tenant *t, const char *id, cli_tenant *pt, cli_gaps *g)
{
    int rc = cli_partitions(d->c, t);
    if (rc)
        return rc;
    if (t->nparts == 1)
        return cli_tenant_part(d->c, t, 0, pt); /* the command says "no such job" */
    int own = lw_partition_of(id, t->nparts);
    for (int i = -1; i < t->nparts; i++) {
        int p = i < 0 ? own : i;
        if (i == own)
            continue;
        cli_tenant cand;
        if ((rc = dash_part_open(d, t, p, &cand, g)) == CLI_REDIS)
            continue;
        if (rc)
            return rc;
        char key[CLI_KEY_MAX];
        lw_key(key, sizeof key, cand.prefix, "job:", id);
        const char *ex[2] = {"EXISTS", key};
        redisReply *r = cli_cmd(cand.conn, 2, ex);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            if (r) {
                cli_redis_err(cand.conn, r, NULL);
                freeReplyObject(r);
            }
            dash_part_lost(&cand, g);
            continue;
        }
        long long got = r->integer;
        freeReplyObject(r);
        if (got > 0) {
            *pt = cand;
            return 0;
        }
    }
    if (g->n > 0)
        return CLI_REDIS;
    if ((rc = cli_tenant_part(d->c, t, own, pt)) != 0)
        return rc;
    return CLI_NOJOB;
}

/* A page of an unpartitioned tenant cannot be partial: its one keyspace
 * unreadable is 502, as before. Returns 1 when answered so. */
static int whole_or_502(dash *d, struct evhttp_request *req, const cli_tenant *t, const cli_gaps *g)
{
    if (t->nparts > 1 || g->n == 0)
        return 0;
    dash_send_error(d, req, 502, "Bad Gateway", g->why[0]);
    return 1;
}

static void send_redis_error(dash *d, struct evhttp_request *req, int rc)
{
    const char *why = cli_last_err()[0] ? cli_last_err() : "Redis did not answer";
    if (rc == CLI_USAGE)
        dash_send_error(d, req, 404, "Not Found", why);
    else
        dash_send_error(d, req, 502, "Bad Gateway", why);
}

int dash_tenant(dash *d, struct evhttp_request *req, const char *name, cli_tenant *t)
{
    if (!lw_name_is_safe(name)) {
        dash_send_error(d, req, 404, "Not Found", "not a tenant name");
        return -1;
    }
    int rc = cli_tenant_get(d->c, name, t);
    if (rc == 0)
        rc = cli_connect(t->conn, 0, NULL, 0);
    if (rc == 0)
        rc = cli_partitions(d->c, t);
    if (rc) {
        send_redis_error(d, req, rc);
        return -1;
    }
    return 0;
}

static struct evbuffer *new_buf(struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        dash_reply(req, 500, "Internal Server Error", NULL);
    return b;
}

/* The page's flash message: ?msg= set by an action's redirect, with its
 * signature (&ms=); NULL without one that matches. */
static const char *flash_of(const dash *d, struct evhttp_request *req, char *buf, size_t len)
{
    char mac[17], got[24];
    if (!dash_query(req, "msg", buf, len) || !dash_query(req, "ms", got, sizeof got))
        return NULL;
    dash_flash_mac(d, buf, mac);
    return dash_equal(got, strlen(got), mac, 16) ? buf : NULL;
}

/* The request's own path and query, to come back to after an action. */
static const char *self_uri(struct evhttp_request *req)
{
    const char *u = evhttp_request_get_uri(req);
    return u && u[0] == '/' ? u : "/";
}

/* A page's buffer with its frame begun (title, the tenant's links, the
 * flash), or NULL after answering 500 and deleting own (what the page was
 * to show: on success still the caller's). */
static struct evbuffer *page_open(const dash *d, struct evhttp_request *req, const char *title,
                                  const char *tenant, cJSON *own)
{
    struct evbuffer *b = new_buf(req);
    if (!b) {
        cJSON_Delete(own);
        return NULL;
    }
    char fl[1500];
    dash_page_begin(d, b, title, tenant, flash_of(d, req, fl, sizeof fl));
    return b;
}

static long long num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- overview and tenant pages: what `lanework stats` reads ---- */

/* The SCAN's answer, shared by the page threads (found_mu). */
static pthread_mutex_t found_mu = PTHREAD_MUTEX_INITIALIZER;
static char **found_names;
static size_t nfound;
static int64_t found_at = -1;

/* The tenants of the overview: the registry's, else a SCAN kept
 * DISCOVER_CACHE_MS. Owned by the caller (cli_list_free). */
static int tenants_of(dash *d, char ***names, size_t *n)
{
    if (d->c->reg)
        return cli_stats_tenants(d->c, names, n);
    int64_t now = lw_mono_ms();
    int rc = 0;
    pthread_mutex_lock(&found_mu);
    if (found_at < 0 || now - found_at > DISCOVER_CACHE_MS) {
        cli_list_free(found_names, nfound);
        found_names = NULL;
        nfound = 0;
        found_at = -1;
        rc = cli_stats_tenants(d->c, &found_names, &nfound);
        if (rc == 0)
            found_at = now;
    }
    *names = NULL;
    *n = 0;
    if (rc == 0 && nfound > 0) {
        *names = calloc(nfound, sizeof **names);
        for (size_t i = 0; *names && i < nfound; i++)
            if (((*names)[i] = strdup(found_names[i])))
                *n = i + 1;
            else
                break;
        if (!*names || *n < nfound) {
            cli_list_free(*names, *n);
            *names = NULL;
            *n = 0;
            cli_err("dashboard", "out of memory");
            rc = CLI_USAGE;
        }
    }
    pthread_mutex_unlock(&found_mu);
    return rc;
}

/* The rate column: jobs finished (succeeded, failed, cancelled, expired:
 * stats' running totals) per second between the two latest reads of the
 * queue by any page, at least RATE_MIN_MS apart (the counters are Redis's;
 * the samples this process's). Unknown ("-") until a second read. A table
 * of RATE_MAX queues at most: past that, no rate. */
#define RATE_MIN_MS 1000
#define RATE_MAX 4096

typedef struct rate_sample {
    char *key; /* owned: "TENANT/QUEUE" */
    long long total;
    int64_t at;  /* lw_mono_ms */
    double rate; /* per second; < 0: unknown */
} rate_sample;

/* Shared by the page threads (rates_mu). */
static pthread_mutex_t rates_mu = PTHREAD_MUTEX_INITIALIZER;
static rate_sample *rates;
static size_t nrates;

static double rate_locked(const char *tenant, const char *queue, long long total);

/* The rate of tenant's queue whose totals sum to total now. */
static double rate_of(const char *tenant, const char *queue, long long total)
{
    pthread_mutex_lock(&rates_mu);
    double r = rate_locked(tenant, queue, total);
    pthread_mutex_unlock(&rates_mu);
    return r;
}

static double rate_locked(const char *tenant, const char *queue, long long total)
{
    char key[2 * LW_NAME_MAX + 2];
    snprintf(key, sizeof key, "%s/%s", tenant, queue);
    int64_t now = lw_mono_ms();
    for (size_t i = 0; i < nrates; i++) {
        rate_sample *r = &rates[i];
        if (strcmp(r->key, key) != 0)
            continue;
        if (now - r->at >= RATE_MIN_MS) {
            r->rate = total >= r->total
                          ? (double)(total - r->total) * 1000.0 / (double)(now - r->at)
                          : -1; /* counters reset */
            r->total = total;
            r->at = now;
        }
        return r->rate;
    }
    if (nrates < RATE_MAX) {
        rate_sample *v = realloc(rates, (nrates + 1) * sizeof *v);
        char *k = v ? strdup(key) : NULL;
        if (v)
            rates = v;
        if (k)
            rates[nrates++] = (rate_sample){k, total, now, -1};
    }
    return -1;
}

static const char *const NOW_COLS[] = {"queued", "scheduled", "active"};
static const char *const TOTAL_COLS[] = {"succeeded", "failed",  "cancelled",
                                         "expired",   "retried", "lost"};

/* One table of a tenant's queues from stats' object t (its "queues"). */
static void queue_table(const dash *d, struct evbuffer *b, const char *tenant, const cJSON *t,
                        int buttons, const char *back)
{
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(t, "queues");
    dash_raw(
        b,
        "<table class=\"queues\"><thead><tr><th>Queue</th><th>Queued</th><th>Scheduled"
        "</th><th>Active</th><th>Oldest waiting</th><th>Rate</th><th>State</th><th>Succeeded</th>"
        "<th>Failed</th><th>Cancelled</th><th>Expired</th><th>Retried</th><th>Lost</th>");
    if (buttons && !d->read_only)
        dash_raw(b, "<th>Action</th>");
    dash_raw(b, "</tr></thead><tbody>\n");
    long long tot[3] = {0, 0, 0};
    const cJSON *q;
    cJSON_ArrayForEach(q, qs)
    {
        const char *name = q->string;
        int paused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "paused"));
        dash_raw(b, paused ? "<tr class=\"paused\"><td>" : "<tr><td>");
        dash_raw(b, "<a href=\"/t/");
        dash_url(b, tenant);
        dash_raw(b, "/q/");
        dash_url(b, name);
        dash_raw(b, "\">");
        dash_text(b, name);
        dash_raw(b, "</a></td>");
        for (size_t k = 0; k < 3; k++) {
            long long v = num(q, NOW_COLS[k]);
            tot[k] += v;
            dash_fmt(b, "<td class=\"n\">%lld</td>", v);
        }
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(q, "oldest_waiting_s");
        dash_raw(b, "<td class=\"n\">");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "oldest_unknown")))
            dash_raw(b, "?");
        else
            dash_age(b, cJSON_IsNumber(old) ? (long long)(old->valuedouble * 1000) : -1);
        double rate = rate_of(tenant, name,
                              num(q, "succeeded") + num(q, "failed") + num(q, "cancelled") +
                                  num(q, "expired"));
        dash_raw(b, "</td><td class=\"n\" title=\"jobs finished per second since the previous "
                    "load\">");
        if (rate < 0)
            dash_raw(b, "-");
        else
            dash_fmt(b, rate < 10 ? "%.1f/s" : "%.0f/s", rate);
        dash_raw(b, paused ? "</td><td><span class=\"badge paused\">paused</span></td>"
                           : "</td><td><span class=\"badge\">running</span></td>");
        for (size_t k = 0; k < sizeof TOTAL_COLS / sizeof *TOTAL_COLS; k++)
            dash_fmt(b, "<td class=\"n\">%lld</td>", num(q, TOTAL_COLS[k]));
        if (buttons && !d->read_only) {
            struct evbuffer *a = evbuffer_new();
            if (a) {
                dash_raw(a, "/t/");
                dash_url(a, tenant);
                dash_raw(a, "/q/");
                dash_url(a, name);
                dash_raw(a, paused ? "/resume" : "/pause");
                evbuffer_add(a, "", 1);
                dash_raw(b, "<td>");
                dash_button(d, b, (const char *)evbuffer_pullup(a, -1), paused ? "Resume" : "Pause",
                            back, paused ? "go" : "warn");
                dash_raw(b, "</td>");
                evbuffer_free(a);
            }
        }
        dash_raw(b, "</tr>\n");
    }
    dash_fmt(b,
             "</tbody><tfoot><tr><th>Total</th><th class=\"n\">%lld</th><th class=\"n\">%lld</th>"
             "<th class=\"n\">%lld</th><th colspan=\"10\"></th></tr></tfoot></table>\n",
             tot[0], tot[1], tot[2]);
}

static void tenant_notes(struct evbuffer *b, const char *tenant, const cJSON *t)
{
    dash_raw(b, "<p><a href=\"/t/");
    dash_url(b, tenant);
    dash_fmt(b, "/failed\">%lld failed job(s) kept</a>", num(t, "failed_kept"));
    const cJSON *un = cJSON_GetObjectItemCaseSensitive(t, "unreadable_partitions");
    if (cJSON_IsArray(un) && cJSON_GetArraySize(un) > 0) {
        dash_raw(
            b,
            " <span class=\"error\">partitions not read (Redis down, or it refused a read: the dashboard's stderr says why):");
        const cJSON *p;
        cJSON_ArrayForEach(p, un) dash_fmt(b, " %d", p->valueint);
        dash_raw(b, "</span>");
    }
    dash_raw(b, "</p>\n");
}

void dash_page_overview(dash *d, struct evhttp_request *req)
{
    char **names = NULL;
    size_t n = 0;
    int rc = tenants_of(d, &names, &n);
    cJSON *st = NULL;
    if (rc == 0)
        rc = cli_stats_json(d->c, (const char *const *)names, n, &st);
    cli_list_free(names, n);
    if (!st) {
        send_redis_error(d, req, rc);
        return;
    }
    struct evbuffer *b = page_open(d, req, "Overview", NULL, st);
    if (!b)
        return;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(st, "tenants"), *t;
    if (cJSON_GetArraySize(ts) == 0)
        dash_raw(b, "<p>No tenants yet.</p>");
    cJSON_ArrayForEach(t, ts)
    {
        dash_raw(b, "<section><h2><a href=\"/t/");
        dash_url(b, t->string);
        dash_raw(b, "\">");
        dash_text(b, t->string);
        dash_raw(b, "</a></h2>\n");
        queue_table(d, b, t->string, t, 0, "/");
        tenant_notes(b, t->string, t);
        dash_raw(b, "</section>\n");
    }
    dash_page_end(b);
    cJSON_Delete(st);
    dash_send_html(req, 200, "OK", b);
}

void dash_page_tenant(dash *d, struct evhttp_request *req, const char *tenant)
{
    cli_tenant t;
    if (dash_tenant(d, req, tenant, &t) != 0)
        return;
    cJSON *st = NULL;
    cli_gaps g = {0};
    int rc = cli_stats_json_gaps(d->c, &tenant, 1, &st, &g);
    if (!st || whole_or_502(d, req, &t, &g)) {
        cJSON_Delete(st);
        send_redis_error(d, req, rc ? rc : CLI_REDIS);
        return;
    }
    struct evbuffer *b = page_open(d, req, tenant, tenant, st);
    if (!b)
        return;
    dash_gaps_banner(d, b, tenant, t.nparts, &g, "the figures below leave them out");
    const cJSON *tj =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "tenants"), tenant);
    if (t.nparts > 1)
        dash_fmt(b, "<p>%d partitions.</p>", t.nparts);
    queue_table(d, b, tenant, tj, 1, self_uri(req));
    tenant_notes(b, tenant, tj);
    dash_page_end(b);
    cJSON_Delete(st);
    dash_send_html(req, 200, "OK", b);
}

/* ---- jobs tables ---- */

/* The `lanework status` object of HGETALL reply h, parsed; NULL when h is
 * no record. Caller frees. */
static cJSON *job_view(const char *tenant, const redisReply *h)
{
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements < 2)
        return NULL;
    size_t n = h->elements & ~(size_t)1;
    const char **fv = calloc(n, sizeof *fv);
    size_t *fl = calloc(n, sizeof *fl);
    cJSON *o = NULL;
    if (fv && fl) {
        for (size_t i = 0; i < n; i++) {
            fv[i] = h->element[i]->str ? h->element[i]->str : "";
            fl[i] = h->element[i]->str ? h->element[i]->len : 0;
        }
        char *json = lw_view_job(tenant, fv, fl, n);
        if (json)
            o = cJSON_Parse(json);
        free(json);
    }
    free(fv);
    free(fl);
    return o;
}

static void job_link(struct evbuffer *b, const char *tenant, const char *id)
{
    dash_raw(b, "<a class=\"id\" href=\"/t/");
    dash_url(b, tenant);
    dash_raw(b, "/job/");
    dash_url(b, id);
    dash_raw(b, "\">");
    dash_text(b, id);
    dash_raw(b, "</a>");
}

/* At most max bytes of s, escaped, "..." when cut (not inside a UTF-8
 * sequence). */
static void text_cut(struct evbuffer *b, const char *s, size_t max)
{
    if (!s)
        return;
    size_t n = strlen(s);
    if (n <= max) {
        dash_textn(b, s, n);
        return;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    dash_textn(b, s, max);
    dash_raw(b, "…");
}

/* The job's action path "/t/T/job/ID/WHAT" into a fresh buffer (NUL
 * ended; caller frees), NULL on OOM. */
static struct evbuffer *job_action(const char *tenant, const char *id, const char *what)
{
    struct evbuffer *a = evbuffer_new();
    if (!a)
        return NULL;
    dash_raw(a, "/t/");
    dash_url(a, tenant);
    dash_raw(a, "/job/");
    dash_url(a, id);
    dash_raw(a, "/");
    dash_raw(a, what);
    evbuffer_add(a, "", 1);
    return a;
}

static void job_button(const dash *d, struct evbuffer *b, const char *tenant, const char *id,
                       const char *what, const char *label, const char *back, const char *cls)
{
    struct evbuffer *a = job_action(tenant, id, what);
    if (!a)
        return;
    dash_button(d, b, (const char *)evbuffer_pullup(a, -1), label, back, cls);
    evbuffer_free(a);
}

static int is_retryable(const char *s)
{
    return s && (!strcmp(s, "failed") || !strcmp(s, "cancelled") || !strcmp(s, "expired"));
}

static int is_waiting(const char *s)
{
    return s && (!strcmp(s, "queued") || !strcmp(s, "scheduled"));
}

/* The buttons a job of status s gets. */
static void job_buttons(const dash *d, struct evbuffer *b, const char *tenant, const char *id,
                        const char *s, const char *back, const char *deleted_back)
{
    if (is_retryable(s))
        job_button(d, b, tenant, id, "retry", "Retry", back, "go");
    if (is_waiting(s) || (s && !strcmp(s, "active")))
        job_button(d, b, tenant, id, "cancel", "Cancel", back, "warn");
    if (!s || strcmp(s, "active"))
        job_button(d, b, tenant, id, "delete", "Delete", deleted_back, "danger");
}

static void jobs_head(const dash *d, struct evbuffer *b, int with_error)
{
    dash_raw(b, "<table class=\"jobs\"><thead><tr><th>Job</th><th>Kind</th><th>Queue</th>"
                "<th>Lane</th><th>Status</th><th>Attempt</th><th>Enqueued</th><th>Finished</th>");
    if (with_error)
        dash_raw(b, "<th>Error</th>");
    if (!d->read_only)
        dash_raw(b, "<th>Action</th>");
    dash_raw(b, "</tr></thead><tbody>\n");
}

static void job_row(const dash *d, struct evbuffer *b, const char *tenant, const cJSON *j,
                    int with_error, const char *back)
{
    const char *id = str(j, "id"), *status = str(j, "status");
    dash_raw(b, "<tr><td>");
    job_link(b, tenant, id ? id : "?");
    dash_raw(b, "</td><td>");
    dash_text(b, str(j, "kind"));
    dash_raw(b, "</td><td>");
    dash_text(b, str(j, "queue"));
    dash_raw(b, "</td><td>");
    dash_text(b, str(j, "lane"));
    dash_raw(b, "</td><td><span class=\"badge ");
    dash_text(b, status);
    dash_raw(b, "\">");
    dash_text(b, status);
    dash_fmt(b, "</span></td><td class=\"n\">%lld/%lld</td><td>", num(j, "attempt"),
             num(j, "attempts"));
    dash_text(b, str(j, "enqueued_at"));
    dash_raw(b, "</td><td>");
    dash_text(b, str(j, "finished_at"));
    dash_raw(b, "</td>");
    if (with_error) {
        dash_raw(b, "<td class=\"err\">");
        text_cut(b, str(j, "error"), 300);
        dash_raw(b, "</td>");
    }
    if (!d->read_only) {
        dash_raw(b, "<td>");
        if (id)
            job_buttons(d, b, tenant, id, status, back, back);
        dash_raw(b, "</td>");
    }
    dash_raw(b, "</tr>\n");
}

static const char *const STATUSES[] = {"queued", "scheduled", "active", "succeeded",
                                       "failed", "cancelled", "expired"};

void dash_page_queue(dash *d, struct evhttp_request *req, const char *tenant, const char *queue)
{
    cli_tenant t;
    if (!lw_name_is_safe(queue)) {
        dash_send_error(d, req, 404, "Not Found", "not a queue name");
        return;
    }
    if (dash_tenant(d, req, tenant, &t) != 0)
        return;
    char status[32] = "";
    dash_query(req, "status", status, sizeof status);
    const char *want = NULL;
    for (size_t i = 0; i < sizeof STATUSES / sizeof *STATUSES; i++)
        if (!strcmp(status, STATUSES[i]))
            want = STATUSES[i];
    cJSON *st = NULL;
    cli_gaps g = {0};
    int rc = cli_stats_json_gaps(d->c, &tenant, 1, &st, &g);
    char **jobs = NULL;
    size_t njobs = 0;
    if (st)
        rc = cli_list_jobs_partial(d->c, &t, want, queue, NULL, DASH_PAGE_ROWS, &jobs, &njobs, &g);
    if (!st || rc || whole_or_502(d, req, &t, &g)) {
        cJSON_Delete(st);
        cli_list_free(jobs, njobs);
        send_redis_error(d, req, rc ? rc : CLI_REDIS);
        return;
    }
    struct evbuffer *b = new_buf(req);
    if (!b) {
        cJSON_Delete(st);
        cli_list_free(jobs, njobs);
        return;
    }
    char fl[1500], title[600];
    snprintf(title, sizeof title, "Queue %s", queue);
    dash_page_begin(d, b, title, tenant, flash_of(d, req, fl, sizeof fl));
    dash_gaps_banner(d, b, tenant, t.nparts, &g, "the figures and jobs below leave them out");
    /* The queue's row of the stats, alone. */
    cJSON *tj =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "tenants"), tenant);
    cJSON *qs = cJSON_GetObjectItemCaseSensitive(tj, "queues"), *q;
    for (q = qs ? qs->child : NULL; q;) {
        cJSON *next = q->next;
        if (strcmp(q->string, queue) != 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(qs, q));
        q = next;
    }
    queue_table(d, b, tenant, tj, 1, self_uri(req));
    dash_raw(b, "<p class=\"filters\">Jobs: ");
    for (int i = -1; i < (int)(sizeof STATUSES / sizeof *STATUSES); i++) {
        const char *s = i < 0 ? NULL : STATUSES[i];
        int on = (s == want);
        dash_raw(b, on ? "<strong>" : "<a href=\"/t/");
        if (!on) {
            dash_url(b, tenant);
            dash_raw(b, "/q/");
            dash_url(b, queue);
            if (s) {
                dash_raw(b, "?status=");
                dash_raw(b, s);
            }
            dash_raw(b, "\">");
        }
        dash_raw(b, s ? s : "latest");
        dash_raw(b, on ? "</strong> " : "</a> ");
    }
    dash_raw(b, "</p>\n");
    if (njobs == 0) {
        dash_raw(b, "<p>No jobs found.</p>");
    } else {
        jobs_head(d, b, 1);
        for (size_t i = 0; i < njobs; i++) {
            cJSON *j = cJSON_Parse(jobs[i]);
            if (j)
                job_row(d, b, tenant, j, 1, self_uri(req));
            cJSON_Delete(j);
        }
        dash_raw(b, "</tbody></table>\n");
    }
    dash_fmt(b,
             "<p class=\"note\">The newest %d jobs by their latest change, from the sources "
             "of <code>lanework list</code>.</p>",
             DASH_PAGE_ROWS);
    dash_page_end(b);
    cJSON_Delete(st);
    cli_list_free(jobs, njobs);
    dash_send_html(req, 200, "OK", b);
}

/* ---- failed jobs ---- */

typedef struct failed_hit {
    char *id;
    double score;
    int part;
} failed_hit;

static int cmp_hit(const void *a, const void *b)
{
    const failed_hit *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

/* Reads ZREVRANGE failed [from, to] WITHSCORES of partition pt into hits. */
static int read_failed(cli_tenant *pt, int p, long from, long to, failed_hit **hits, size_t *n,
                       long long *total)
{
    char key[CLI_KEY_MAX], a[24], z[24];
    lw_key(key, sizeof key, pt->prefix, "failed", NULL);
    snprintf(a, sizeof a, "%ld", from);
    snprintf(z, sizeof z, "%ld", to);
    const char *zc[2] = {"ZCARD", key};
    const char *zr[5] = {"ZREVRANGE", key, a, z, "WITHSCORES"};
    if (cli_append(pt->conn, 2, zc) || cli_append(pt->conn, 5, zr))
        return CLI_REDIS;
    redisReply *c = cli_next_reply(pt->conn);
    redisReply *r = c ? cli_next_reply(pt->conn) : NULL;
    int rc = CLI_OK;
    if (!c || !r) {
        rc = CLI_REDIS;
    } else if (c->type != REDIS_REPLY_INTEGER || r->type != REDIS_REPLY_ARRAY) {
        rc = cli_redis_err(pt->conn, c->type != REDIS_REPLY_INTEGER ? c : r, NULL);
    } else {
        *total += c->integer;
        failed_hit *v = realloc(*hits, (*n + r->elements / 2 + 1) * sizeof *v);
        if (!v) {
            rc = CLI_USAGE;
        } else {
            *hits = v;
            for (size_t i = 0; i + 1 < r->elements; i += 2)
                v[(*n)++] = (failed_hit){cli_strdup(r->element[i]->str),
                                         strtod(r->element[i + 1]->str, NULL), p};
        }
    }
    if (c)
        freeReplyObject(c);
    if (r)
        freeReplyObject(r);
    return rc;
}

void dash_page_failed(dash *d, struct evhttp_request *req, const char *tenant)
{
    cli_tenant t;
    if (dash_tenant(d, req, tenant, &t) != 0)
        return;
    char pg[24] = "1";
    dash_query(req, "page", pg, sizeof pg);
    long page = strtol(pg, NULL, 10);
    if (page < 1)
        page = 1;
    if (page > 100000000L) /* far past any index; no overflow below */
        page = 100000000L;
    long from = (page - 1) * DASH_PAGE_ROWS, to = from + DASH_PAGE_ROWS - 1;
    if (t.nparts > 1 && to >= FAILED_MERGE_MAX) {
        page = FAILED_MERGE_MAX / DASH_PAGE_ROWS;
        from = (page - 1) * DASH_PAGE_ROWS;
        to = from + DASH_PAGE_ROWS - 1;
    }
    failed_hit *hits = NULL;
    size_t nh = 0;
    long long total = 0;
    int rc = 0;
    cli_tenant parts[LW_PARTITIONS_MAX];
    int ok[LW_PARTITIONS_MAX] = {0};
    cli_gaps g = {0};
    /* A partition that cannot be opened or read is left out whole (its
     * hits dropped), and named in the banner. */
    for (int p = 0; rc == 0 && p < t.nparts; p++) {
        if ((rc = dash_part_open(d, &t, p, &parts[p], &g)) == CLI_REDIS) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        size_t before = nh;
        long long sub = 0;
        rc = t.nparts > 1 ? read_failed(&parts[p], p, 0, to, &hits, &nh, &sub)
                          : read_failed(&parts[p], p, from, to, &hits, &nh, &sub);
        if (rc == CLI_REDIS) {
            for (size_t i = before; i < nh; i++)
                free(hits[i].id);
            nh = before;
            dash_part_lost(&parts[p], &g);
            rc = 0;
            continue;
        }
        total += sub;
        ok[p] = rc == 0;
    }
    size_t first = 0;
    if (rc == 0 && t.nparts > 1) {
        qsort(hits, nh, sizeof *hits, cmp_hit);
        first = (size_t)from < nh ? (size_t)from : nh;
    }
    size_t last = nh < first + DASH_PAGE_ROWS ? nh : first + DASH_PAGE_ROWS;
    cJSON **views = calloc(DASH_PAGE_ROWS + 1, sizeof *views);
    /* The records, pipelined per partition, then read in order; a
     * connection that fails meanwhile loses its partitions' rows (and no
     * reply is left waiting on a connection that still works). */
    char *sent = calloc(DASH_PAGE_ROWS + 1, 1);
    for (size_t i = first; rc == 0 && views && sent && i < last; i++) {
        cli_tenant *pt = &parts[hits[i].part];
        if (!ok[hits[i].part])
            continue;
        char key[CLI_KEY_MAX];
        lw_key(key, sizeof key, pt->prefix, "job:", hits[i].id);
        const char *hg[2] = {"HGETALL", key};
        if (cli_append(pt->conn, 2, hg) == 0)
            sent[i - first] = 1;
        else
            conn_lost(parts, ok, t.nparts, pt->conn, &g);
    }
    for (size_t i = first; rc == 0 && views && sent && i < last; i++) {
        cli_tenant *pt = &parts[hits[i].part];
        if (!sent[i - first] || !conn_ok(pt->conn))
            continue;
        redisReply *h = cli_next_reply(pt->conn);
        if (!h) {
            conn_lost(parts, ok, t.nparts, pt->conn, &g);
            continue;
        }
        views[i - first] = job_view(tenant, h);
        freeReplyObject(h);
    }
    if (rc == 0 && (!views || !sent))
        rc = CLI_USAGE;
    free(sent);
    if (rc == 0 && whole_or_502(d, req, &t, &g))
        rc = -1;
    struct evbuffer *b = rc ? NULL : new_buf(req);
    if (rc > 0)
        send_redis_error(d, req, rc);
    if (b) {
        char fl[1500];
        dash_page_begin(d, b, "Failed jobs", tenant, flash_of(d, req, fl, sizeof fl));
        dash_gaps_banner(d, b, tenant, t.nparts, &g, "their failed jobs are not below");
        dash_fmt(b, "<p>%lld failed job(s) kept, newest first. Page %ld.</p>\n", total, page);
        jobs_head(d, b, 1);
        for (size_t i = first; i < last; i++) {
            if (!ok[hits[i].part])
                continue; /* its partition failed after its index was read */
            if (views[i - first]) {
                job_row(d, b, tenant, views[i - first], 1, self_uri(req));
            } else {
                dash_raw(b, "<tr><td>");
                job_link(b, tenant, hits[i].id);
                dash_raw(b, "</td><td colspan=\"8\">record gone (expired)</td></tr>\n");
            }
        }
        dash_raw(b, "</tbody></table>\n<p class=\"pager\">");
        if (page > 1) {
            dash_raw(b, "<a rel=\"prev\" href=\"/t/");
            dash_url(b, tenant);
            dash_fmt(b, "/failed?page=%ld\">&larr; newer</a> ", page - 1);
        }
        if ((long long)(page * DASH_PAGE_ROWS) < total &&
            (t.nparts == 1 || page * DASH_PAGE_ROWS < FAILED_MERGE_MAX)) {
            dash_raw(b, "<a rel=\"next\" href=\"/t/");
            dash_url(b, tenant);
            dash_fmt(b, "/failed?page=%ld\">older &rarr;</a>", page + 1);
        }
        dash_raw(b, "</p>");
        dash_page_end(b);
        dash_send_html(req, 200, "OK", b);
    }
    for (size_t i = 0; views && i < DASH_PAGE_ROWS; i++)
        cJSON_Delete(views[i]);
    free(views);
    for (size_t i = 0; i < nh; i++)
        free(hits[i].id);
    free(hits);
}

/* ---- lanes with work ---- */

typedef struct lane_row {
    char *id; /* a head job (owned) */
    int part;
    char *lane, *queue, *status; /* owned, from its record */
    long long len;
} lane_row;

/* Appends the ids of reply r (an array of strings; scored when every
 * second one is a score) to rows. */
static void add_heads(const redisReply *r, int scored, int part, lane_row **rows, size_t *n,
                      size_t max)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && *n < max;
         i += scored ? 2 : 1) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        (*rows)[(*n)++] = (lane_row){.id = cli_strdup(r->element[i]->str), .part = part};
    }
}

void dash_page_lanes(dash *d, struct evhttp_request *req, const char *tenant)
{
    cli_tenant t;
    if (dash_tenant(d, req, tenant, &t) != 0)
        return;
    /* Heads gathered, at most: every source gives DASH_PAGE_ROWS. */
    size_t max = 2000, n = 0;
    lane_row *rows = calloc(max, sizeof *rows);
    cli_tenant parts[LW_PARTITIONS_MAX];
    int ok[LW_PARTITIONS_MAX] = {0};
    cli_gaps g = {0};
    int rc = rows ? 0 : CLI_USAGE;
    char cnt[24];
    snprintf(cnt, sizeof cnt, "%d", DASH_PAGE_ROWS - 1);
    /* A partition that cannot be opened or read is left out whole (its
     * heads dropped), and named in the banner. */
    for (int p = 0; rc == 0 && p < t.nparts; p++) {
        if ((rc = dash_part_open(d, &t, p, &parts[p], &g)) == CLI_REDIS) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        cli_tenant *pt = &parts[p];
        size_t before = n;
        char key[CLI_KEY_MAX];
        lw_key(key, sizeof key, pt->prefix, "queues", NULL);
        const char *sm[2] = {"SMEMBERS", key};
        redisReply *qs = cli_cmd(pt->conn, 2, sm);
        if (!qs || qs->type != REDIS_REPLY_ARRAY) {
            if (qs) {
                cli_redis_err(pt->conn, qs, NULL);
                freeReplyObject(qs);
            }
            dash_part_lost(pt, &g);
            continue;
        }
        size_t nq = qs->elements < 100 ? qs->elements : 100;
        for (size_t i = 0; rc == 0 && i < nq; i++) {
            char rk[CLI_KEY_MAX], ak[CLI_KEY_MAX];
            lw_key(rk, sizeof rk, pt->prefix, "ready:", qs->element[i]->str);
            lw_key(ak, sizeof ak, pt->prefix, "active:", qs->element[i]->str);
            const char *lr[4] = {"LRANGE", rk, "0", cnt};
            const char *zr[4] = {"ZRANGE", ak, "0", cnt};
            if (cli_append(pt->conn, 4, lr) || cli_append(pt->conn, 4, zr))
                rc = CLI_REDIS;
        }
        lw_key(key, sizeof key, pt->prefix, "schedule", NULL);
        const char *sr[4] = {"ZRANGE", key, "0", cnt};
        if (rc == 0 && cli_append(pt->conn, 4, sr))
            rc = CLI_REDIS;
        for (size_t i = 0; rc == 0 && i < 2 * nq + 1; i++) {
            redisReply *r = cli_next_reply(pt->conn);
            if (!r) {
                rc = CLI_REDIS;
                break;
            }
            add_heads(r, 0, p, &rows, &n, max);
            freeReplyObject(r);
        }
        freeReplyObject(qs);
        if (rc == CLI_REDIS) { /* the connection failed: nothing waits on it */
            for (size_t i = before; i < n; i++)
                free(rows[i].id);
            n = before;
            dash_part_lost(pt, &g);
            rc = 0;
            continue;
        }
        ok[p] = 1;
    }
    /* Each head's record (lane, queue, status), pipelined; then LLEN of
     * its lane. */
    /* A connection that fails in these pipelined passes loses its
     * partitions' rows; the others are read to the end (no reply is left
     * waiting on a connection that still works). */
    char *sent = n ? calloc(n, 1) : NULL;
    if (n && !sent)
        rc = CLI_USAGE;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t i = 0; i < n; i++) {
            cli_tenant *pt = &parts[rows[i].part];
            char key[CLI_KEY_MAX];
            sent[i] = 0;
            if (!ok[rows[i].part] || (pass == 1 && !rows[i].lane))
                continue;
            if (pass == 0) {
                lw_key(key, sizeof key, pt->prefix, "job:", rows[i].id);
                const char *hm[5] = {"HMGET", key, "lane", "queue", "status"};
                sent[i] = cli_append(pt->conn, 5, hm) == 0;
            } else {
                lw_key(key, sizeof key, pt->prefix, "lane:", rows[i].lane);
                const char *ll[2] = {"LLEN", key};
                sent[i] = cli_append(pt->conn, 2, ll) == 0;
            }
            if (!sent[i])
                conn_lost(parts, ok, t.nparts, pt->conn, &g);
        }
        for (size_t i = 0; i < n; i++) {
            if (!sent[i] || !conn_ok(parts[rows[i].part].conn))
                continue;
            redisReply *r = cli_next_reply(parts[rows[i].part].conn);
            if (!r) {
                conn_lost(parts, ok, t.nparts, parts[rows[i].part].conn, &g);
                continue;
            }
            if (pass == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                r->element[0]->type == REDIS_REPLY_STRING) {
                /* A lane met before (a head in two sources) is shown once. */
                int dup = 0;
                for (size_t k = 0; k < i && !dup; k++)
                    dup = rows[k].lane && rows[k].part == rows[i].part &&
                          !strcmp(rows[k].lane, r->element[0]->str);
                if (!dup) {
                    rows[i].lane = cli_strdup(r->element[0]->str);
                    rows[i].queue = cli_strdup(r->element[1]->str);
                    rows[i].status = cli_strdup(r->element[2]->str);
                }
            } else if (pass == 1 && r->type == REDIS_REPLY_INTEGER) {
                rows[i].len = r->integer;
            }
            freeReplyObject(r);
        }
    }
    free(sent);
    if (rc) {
        send_redis_error(d, req, rc);
    } else if (!whole_or_502(d, req, &t, &g)) {
        struct evbuffer *b = new_buf(req);
        if (b) {
            char fl[1500];
            dash_page_begin(d, b, "Lanes with work", tenant, flash_of(d, req, fl, sizeof fl));
            dash_gaps_banner(d, b, tenant, t.nparts, &g, "their lanes are not below");
            dash_raw(b, "<table class=\"lanes\"><thead><tr><th>Lane</th><th>Queue</th><th>Head "
                        "job</th><th>Head status</th><th>Jobs in lane</th></tr></thead><tbody>\n");
            size_t shown = 0;
            for (size_t i = 0; i < n; i++) {
                if (!rows[i].lane || !ok[rows[i].part])
                    continue;
                shown++;
                dash_raw(b, "<tr><td>");
                dash_text(b, rows[i].lane);
                dash_raw(b, "</td><td>");
                dash_text(b, rows[i].queue);
                dash_raw(b, "</td><td>");
                job_link(b, tenant, rows[i].id);
                dash_raw(b, "</td><td><span class=\"badge ");
                dash_text(b, rows[i].status);
                dash_raw(b, "\">");
                dash_text(b, rows[i].status);
                dash_fmt(b, "</span></td><td class=\"n\">%lld</td></tr>\n", rows[i].len);
            }
            dash_raw(b, "</tbody></table>\n");
            if (shown == 0)
                dash_raw(b, "<p>No lane has work.</p>");
            dash_fmt(b,
                     "<p class=\"note\">The heads of the first %d entries of each queue's "
                     "ready list and leases and of the schedule.</p>",
                     DASH_PAGE_ROWS);
            dash_page_end(b);
            dash_send_html(req, 200, "OK", b);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].lane);
        free(rows[i].queue);
        free(rows[i].status);
    }
    free(rows);
}

/* ---- a job ---- */

static void field_row(struct evbuffer *b, const char *name, const char *v)
{
    if (!v)
        return;
    dash_raw(b, "<tr><th>");
    dash_raw(b, name);
    dash_raw(b, "</th><td>");
    dash_text(b, v);
    dash_raw(b, "</td></tr>\n");
}

/* A JSON value shown pretty-printed in <pre>, escaped. */
static void json_block(struct evbuffer *b, const char *title, const cJSON *v)
{
    dash_raw(b, "<h2>");
    dash_raw(b, title);
    dash_raw(b, "</h2>");
    if (!v || cJSON_IsNull(v)) {
        dash_raw(b, "<p class=\"none\">none</p>\n");
        return;
    }
    /* cJSON indents with tabs and puts one after each colon (a tab inside
     * a string is written \t): two spaces and ": " read better. */
    char *text = cJSON_Print(v);
    dash_raw(b, "<pre class=\"json\">");
    for (char *p = text, *tab; p && *p; p = tab + 1) {
        tab = strchr(p, '\t');
        if (!tab) {
            dash_text(b, p);
            break;
        }
        dash_textn(b, p, (size_t)(tab - p));
        dash_raw(b, tab > text && tab[-1] == ':' ? " " : "  ");
    }
    if (!text)
        dash_raw(b, "?");
    dash_raw(b, "</pre>\n");
    free(text);
}

void dash_page_job(dash *d, struct evhttp_request *req, const char *tenant, const char *id)
{
    cli_tenant t, pt;
    if (!lw_name_is_safe(id)) {
        dash_send_error(d, req, 404, "Not Found", "not a job id");
        return;
    }
    if (dash_tenant(d, req, tenant, &t) != 0)
        return;
    cli_gaps g = {0};
    int rc = dash_job_part(d, &t, id, &pt, &g);
    if (rc == CLI_NOJOB) {
        dash_send_error(d, req, 404, "Not Found", "no such job (or its record expired)");
        return;
    }
    if (rc == CLI_REDIS && g.n > 0) {
        /* It may be in a partition that cannot be read: say which. */
        char gaps[1200], what[1400];
        dash_gaps_text(d, tenant, &g, gaps, sizeof gaps);
        snprintf(what, sizeof what,
                 "job %s is in none of the partitions read, and these could not be read: %s", id,
                 gaps);
        dash_send_error(d, req, 502, "Bad Gateway", what);
        return;
    }
    char key[CLI_KEY_MAX];
    lw_key(key, sizeof key, pt.prefix, "job:", id);
    const char *hg[2] = {"HGETALL", key};
    redisReply *h = rc ? NULL : cli_cmd(pt.conn, 2, hg);
    if (!h) {
        send_redis_error(d, req, rc ? rc : CLI_REDIS);
        return;
    }
    cJSON *j = job_view(tenant, h);
    freeReplyObject(h);
    if (!j) {
        dash_send_error(d, req, 404, "Not Found", "no such job (or its record expired)");
        return;
    }
    /* The timeline: the newest DASH_TIMELINE_SCAN events, this job's. */
    cJSON *events = cJSON_CreateArray();
    lw_key(key, sizeof key, pt.prefix, "events", NULL);
    char end[80] = "+";
    int scanned = 0, complete = 0;
    size_t bytes = 0;
    while (events && scanned < DASH_TIMELINE_SCAN && bytes < DASH_TIMELINE_BYTES) {
        const char *xr[6] = {"XREVRANGE", key, end, "-", "COUNT", TIMELINE_PAGE};
        redisReply *r = cli_cmd(pt.conn, 6, xr);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            break;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (!cli_is_entry(e))
                continue;
            const redisReply *f = e->element[1];
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k < f->elements; k++)
                bytes += f->element[k]->len;
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
                if (f->element[k]->str && !strcmp(f->element[k]->str, "job") &&
                    f->element[k + 1]->str && !strcmp(f->element[k + 1]->str, id)) {
                    char *js = cli_event_json(e, pt.part);
                    cJSON *o = js ? cJSON_Parse(js) : NULL;
                    free(js);
                    if (o)
                        cJSON_AddItemToArray(events, o);
                    break;
                }
            snprintf(end, sizeof end, "(%s", e->element[0]->str);
        }
        scanned += (int)r->elements;
        int short_page = r->elements < (size_t)atoi(TIMELINE_PAGE);
        freeReplyObject(r);
        if (short_page) {
            complete = 1;
            break;
        }
    }
    struct evbuffer *b = new_buf(req);
    if (!b) {
        cJSON_Delete(j);
        cJSON_Delete(events);
        return;
    }
    char fl[1500], title[600];
    snprintf(title, sizeof title, "Job %s", id);
    dash_page_begin(d, b, title, tenant, flash_of(d, req, fl, sizeof fl));
    const char *status = str(j, "status");
    dash_raw(b, "<div class=\"actions\">");
    struct evbuffer *back = evbuffer_new();
    if (back) {
        dash_raw(back, "/t/");
        dash_url(back, tenant);
        const char *q = str(j, "queue");
        if (q) {
            dash_raw(back, "/q/");
            dash_url(back, q);
        }
        evbuffer_add(back, "", 1);
        job_buttons(d, b, tenant, id, status, self_uri(req),
                    (const char *)evbuffer_pullup(back, -1));
        evbuffer_free(back);
    }
    dash_raw(b, "</div>\n<table class=\"record\">\n");
    static const char *const FIELDS[] = {
        "id",          "kind",   "queue",      "lane",   "status", "enqueued_at", "started_at",
        "finished_at", "run_at", "expires_at", "worker", "unique", "spool_dir"};
    for (size_t i = 0; i < sizeof FIELDS / sizeof *FIELDS; i++) {
        field_row(b, FIELDS[i], str(j, FIELDS[i]));
        if (!strcmp(FIELDS[i], "status"))
            dash_fmt(b,
                     "<tr><th>attempt</th><td>%lld of %lld</td></tr>\n<tr><th>timeout</th>"
                     "<td>%.3gs</td></tr>\n",
                     num(j, "attempt"), num(j, "attempts"),
                     cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "timeout"))
                         ? cJSON_GetObjectItemCaseSensitive(j, "timeout")->valuedouble
                         : 0.0);
    }
    dash_raw(b, "</table>\n");
    json_block(b, "Payload", cJSON_GetObjectItemCaseSensitive(j, "payload"));
    json_block(b, "Result", cJSON_GetObjectItemCaseSensitive(j, "result"));
    dash_raw(b, "<h2>Error</h2>");
    const char *err = str(j, "error");
    if (err) {
        dash_raw(b, "<pre class=\"error\">");
        dash_text(b, err);
        dash_raw(b, "</pre>\n");
    } else {
        dash_raw(b, "<p class=\"none\">none</p>\n");
    }
    dash_raw(b, "<h2>Events</h2>\n<table class=\"events\"><thead><tr><th>When</th><th>Event"
                "</th><th>Attempt</th><th>Worker</th><th>Data</th></tr></thead><tbody>\n");
    for (int i = cJSON_GetArraySize(events) - 1; i >= 0; i--)
        dash_event_row(b, tenant, cJSON_GetArrayItem(events, i), 0);
    dash_raw(b, "</tbody></table>\n");
    dash_fmt(b, "<p class=\"note\">%s the newest %d events of the tenant%s%s.</p>",
             complete ? "From all" : "From", scanned,
             t.nparts > 1 ? "'s partition holding the job" : "",
             !complete && bytes >= DASH_TIMELINE_BYTES ? " (as many as 4 MB of events hold)" : "");
    dash_page_end(b);
    cJSON_Delete(j);
    cJSON_Delete(events);
    dash_send_html(req, 200, "OK", b);
}

/* ---- workers ---- */

void dash_page_workers(dash *d, struct evhttp_request *req)
{
    cJSON *ws = NULL;
    long long more = 0;
    int rc = cli_workers_json(d->c, &ws, &more);
    if (rc) {
        send_redis_error(d, req, rc);
        return;
    }
    struct evbuffer *b = page_open(d, req, "Workers", NULL, ws);
    if (!b)
        return;
    dash_raw(b, "<table class=\"workers\"><thead><tr><th>Name</th><th>Host</th><th>PID</th>"
                "<th>State</th><th>Concurrency</th><th>Isolation</th><th>Active</th>"
                "<th>Processed</th><th>Seen</th><th>Tenants</th><th>Queues</th></tr></thead>"
                "<tbody>\n");
    const cJSON *w;
    int nw = 0;
    cJSON_ArrayForEach(w, ws)
    {
        nw++;
        const char *state = str(w, "state");
        dash_raw(b, "<tr><td>");
        dash_text(b, str(w, "name"));
        dash_raw(b, "</td><td>");
        dash_text(b, str(w, "host"));
        dash_fmt(b, "</td><td class=\"n\">%lld</td><td><span class=\"badge ", num(w, "pid"));
        dash_text(b, state);
        dash_raw(b, "\">");
        dash_text(b, state);
        dash_fmt(b, "</span></td><td class=\"n\">%lld</td><td>", num(w, "concurrency"));
        dash_text(b, str(w, "isolation"));
        dash_fmt(b, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">",
                 num(w, "active"), num(w, "processed"));
        const cJSON *seen = cJSON_GetObjectItemCaseSensitive(w, "seen_ago_s");
        dash_fmt(b, "%.1fs", cJSON_IsNumber(seen) ? seen->valuedouble : 0.0);
        dash_raw(b, "</td><td>");
        dash_text(b, str(w, "tenants"));
        dash_raw(b, "</td><td>");
        dash_text(b, str(w, "queues"));
        dash_raw(b, "</td></tr>\n");
    }
    dash_raw(b, "</tbody></table>\n");
    if (nw == 0)
        dash_raw(b, "<p>No workers.</p>");
    if (more > 0)
        dash_fmt(b,
                 "<p class=\"note\">%lld more entries of the workers directory are not shown "
                 "(the newest heartbeats are).</p>",
                 more);
    dash_page_end(b);
    cJSON_Delete(ws);
    dash_send_html(req, 200, "OK", b);
}

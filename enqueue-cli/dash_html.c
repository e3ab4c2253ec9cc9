/*
 * dash_html.c — the dashboard's output: HTML and URL escaping, the page
 * frame, the one-button POST forms, and the headers of every answer.
 *
 * Everything that comes from Redis or from a request (names, ids,
 * payloads, errors, event data) goes through dash_text or dash_url; only
 * our own literals go through dash_raw/dash_fmt. The Content-Security-
 * Policy allows scripts and styles from the dashboard's own paths only, so
 * even a mistake in escaping could not run an inline script.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dash.h"
#include "partition.h"

void dash_textn(struct evbuffer *b, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *rep = NULL;
        switch (ch) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        case '\n':
        case '\t': break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                rep = "";
        }
        if (!rep)
            continue;
        if (i > from)
            evbuffer_add(b, s + from, i - from);
        evbuffer_add(b, rep, strlen(rep));
        from = i + 1;
    }
    if (n > from)
        evbuffer_add(b, s + from, n - from);
}

void dash_text(struct evbuffer *b, const char *s)
{
    if (s)
        dash_textn(b, s, strlen(s));
}

void dash_url(struct evbuffer *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            evbuffer_add(b, s, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            evbuffer_add(b, e, 3);
        }
    }
}

void dash_raw(struct evbuffer *b, const char *s) { evbuffer_add(b, s, strlen(s)); }

void dash_fmt(struct evbuffer *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(b, fmt, ap);
    va_end(ap);
}

void dash_time(struct evbuffer *b, long long ms)
{
    if (ms <= 0) {
        dash_raw(b, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char out[64];
    if (!gmtime_r(&s, &tm) || !strftime(out, sizeof out, "%Y-%m-%d %H:%M:%S UTC", &tm)) {
        dash_raw(b, "-");
        return;
    }
    dash_raw(b, out);
}

void dash_age(struct evbuffer *b, long long ms)
{
    long long s = ms / 1000;
    if (ms < 0)
        dash_raw(b, "-");
    else if (s < 120)
        dash_fmt(b, "%llds", s);
    else if (s < 7200)
        dash_fmt(b, "%lldm", s / 60);
    else if (s < 172800)
        dash_fmt(b, "%lldh", s / 3600);
    else
        dash_fmt(b, "%lldd", s / 86400);
}

void dash_page_begin(const dash *d, struct evbuffer *b, const char *title, const char *tenant,
                     const char *flash)
{
    dash_raw(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<link rel=\"stylesheet\" href=\"/static/dash.css\"><title>");
    dash_text(b, title);
    dash_raw(b, " · lanework</title></head><body><header><nav><a class=\"brand\" "
                "href=\"/\">lanework</a> <a href=\"/\">Overview</a> <a "
                "href=\"/workers\">Workers</a>");
    if (tenant) {
        const char *links[][2] = {
            {"", "Queues"}, {"/lanes", "Lanes"}, {"/failed", "Failed"}, {"/events", "Live events"}};
        dash_raw(b, " <span class=\"sep\">|</span> <span class=\"tenant\">");
        dash_text(b, tenant);
        dash_raw(b, "</span>");
        for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
            dash_raw(b, " <a href=\"/t/");
            dash_url(b, tenant);
            dash_raw(b, links[i][0]);
            dash_raw(b, "\">");
            dash_raw(b, links[i][1]);
            dash_raw(b, "</a>");
        }
    }
    if (d->read_only)
        dash_raw(b, " <span class=\"ro\">read-only</span>");
    dash_raw(b, "</nav></header><main>\n");
    if (flash && *flash) {
        dash_raw(b, "<p class=\"flash\" role=\"status\">");
        dash_text(b, flash);
        dash_raw(b, "</p>\n");
    }
    dash_raw(b, "<h1>");
    dash_text(b, title);
    dash_raw(b, "</h1>\n");
}

void dash_page_end(struct evbuffer *b) { dash_raw(b, "</main></body></html>\n"); }

void dash_button(const dash *d, struct evbuffer *b, const char *action, const char *label,
                 const char *back, const char *cls)
{
    if (d->read_only)
        return;
    dash_raw(b, "<form class=\"inline\" method=\"post\" action=\"");
    dash_text(b, action);
    dash_raw(b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    dash_raw(b, d->csrf);
    dash_raw(b, "\"><input type=\"hidden\" name=\"back\" value=\"");
    dash_text(b, back);
    dash_raw(b, "\"><button type=\"submit\" class=\"");
    dash_raw(b, cls ? cls : "");
    dash_raw(b, "\">");
    dash_text(b, label);
    dash_raw(b, "</button></form>");
}

void dash_headers(struct evhttp_request *req, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "same-origin");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                      "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                      "base-uri 'none'");
}

void dash_send_html(struct evhttp_request *req, int code, const char *reason, struct evbuffer *b)
{
    dash_headers(req, "text/html; charset=utf-8");
    dash_reply(req, code, reason, b);
    evbuffer_free(b);
}

void dash_send_error(const dash *d, struct evhttp_request *req, int code, const char *reason,
                     const char *what)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        dash_reply(req, 500, "Internal Server Error", NULL);
        return;
    }
    char title[64];
    snprintf(title, sizeof title, "%d %s", code, reason);
    dash_page_begin(d, b, title, NULL, NULL);
    dash_raw(b, "<p class=\"error\">");
    dash_text(b, what);
    dash_raw(b, "</p><p><a href=\"/\">Overview</a></p>");
    dash_page_end(b);
    dash_send_html(req, code, reason, b);
}

void dash_gaps_banner(const dash *d, struct evbuffer *b, const char *tenant, int nparts,
                      const cli_gaps *g, const char *lacks)
{
    if (!g || g->n == 0)
        return;
    dash_fmt(b,
             "<div class=\"partial\" role=\"alert\"><p><strong>Partial answer:</strong> %d of "
             "%d partitions could not be read; ",
             g->n, nparts);
    dash_text(b, lacks);
    dash_raw(b, ".</p><ul>\n");
    for (int i = 0; i < g->n; i++) {
        char pre[CLI_PREFIX_MAX];
        if (lw_partition_prefix(pre, sizeof pre, d->c->cfg.ns, tenant, g->part[i]) != 0)
            snprintf(pre, sizeof pre, "?");
        dash_raw(b, "<li>tenant &quot;");
        dash_text(b, tenant);
        dash_fmt(b, "&quot; partition %d (", g->part[i]);
        dash_text(b, pre);
        dash_raw(b, ") unreadable: ");
        dash_text(b, g->why[i]);
        dash_raw(b, "</li>\n");
    }
    dash_raw(b, "</ul></div>\n");
}

void dash_gaps_text(const dash *d, const char *tenant, const cli_gaps *g, char *out, size_t outlen)
{
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; g && i < g->n && at + 1 < outlen; i++) {
        char pre[CLI_PREFIX_MAX];
        if (lw_partition_prefix(pre, sizeof pre, d->c->cfg.ns, tenant, g->part[i]) != 0)
            snprintf(pre, sizeof pre, "?");
        int w = snprintf(out + at, outlen - at, "%spartition %d (%s): %s", i ? "; " : "",
                         g->part[i], pre, g->why[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

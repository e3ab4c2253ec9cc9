/*
 * log.c — log lines on stderr (log.h).
 *
 * A line is built completely in memory and written with one write(2): lines
 * of threads and forked children sharing fd 2 never interleave (a pipe keeps
 * writes of up to PIPE_BUF bytes whole; a file opened O_APPEND keeps every
 * write whole). The level and format are atomics, so lw_log takes no lock.
 *
 * In text lines control characters of the message are escaped: a message
 * that carries a stderr tail must still be one line.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonx.h"
#include "timefmt.h"

static atomic_int log_level = LW_LOG_INFO;
static atomic_int log_json = 0;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void lw_log_setup(lw_log_level level, int json)
{
    atomic_store(&log_level, (int)level);
    atomic_store(&log_json, json != 0);
}

int lw_log_level_parse(const char *s, lw_log_level *out)
{
    for (int i = 0; s && i <= LW_LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (lw_log_level)i;
            return 0;
        }
    }
    return -1;
}

int lw_log_enabled(lw_log_level level) { return (int)level <= atomic_load(&log_level); }

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report it */
        p += w;
        n -= (size_t)w;
    }
}

/* Copies s with control characters escaped (\n, \t, \xHH) into a new
 * string; NULL on OOM. */
static char *escape_text(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p < 0x20 || *p == 0x7f) ? 4 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            *o++ = '\\';
            *o++ = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(o, 5, "\\x%02x", *p);
            o += 4;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

/* Formats fmt into a new string (NULL on OOM). */
__attribute__((format(printf, 1, 0))) static char *format_msg(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *msg = malloc((size_t)n + 1);
    if (msg)
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    return msg;
}

/* A growing string; `failed` once an allocation did not succeed. */
typedef struct strbuf {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Adds s as a JSON string (a quoted copy, invalid UTF-8 replaced). */
static void sb_json(strbuf *b, const char *s)
{
    char *q = lw_json_quote(s, strlen(s));
    if (!q) {
        b->failed = 1;
        return;
    }
    sb_str(b, q);
    free(q);
}

/* A text value that would not read back as one word is quoted. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return 1;
    return 0;
}

/* Adds s escaped (escape_text), in quotes (with \" and \\) when asked. */
static void sb_text(strbuf *b, const char *s, int quoted)
{
    char *e = escape_text(s);
    if (!e) {
        b->failed = 1;
        return;
    }
    if (quoted) {
        sb_add(b, "\"", 1);
        for (const char *p = e; *p; p++) {
            /* escape_text's own backslashes stay single: \n reads as \n. */
            if (*p == '"')
                sb_add(b, "\\", 1);
            sb_add(b, p, 1);
        }
        sb_add(b, "\"", 1);
    } else {
        sb_str(b, e);
    }
    free(e);
}

/* One field: ` key=value` in text, `"key":value,` in JSON. A string value
 * is `s`; NULL s means the number `num` is written instead. */
static void sb_field(strbuf *b, int json, const char *key, const char *s, const char *num)
{
    if (json) {
        sb_add(b, "\"", 1);
        sb_str(b, key);
        sb_add(b, "\":", 2);
        if (s)
            sb_json(b, s);
        else
            sb_str(b, num);
        sb_add(b, ",", 1);
    } else {
        sb_add(b, " ", 1);
        sb_str(b, key);
        sb_add(b, "=", 1);
        if (s)
            sb_text(b, s, needs_quotes(s));
        else
            sb_str(b, num);
    }
}

static void sb_facts(strbuf *b, int json, const lw_log_facts *f)
{
    char num[32];
    const struct {
        const char *key, *value;
    } strs[] = {{"job", f->job},
                {"tenant", f->tenant},
                {"kind", f->kind},
                {"queue", f->queue},
                {"lane", f->lane}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i].value)
            sb_field(b, json, strs[i].key, strs[i].value, NULL);
    if (f->attempt) {
        snprintf(num, sizeof num, "%d", f->attempt);
        sb_field(b, json, "attempt", NULL, num);
    }
    if (f->attempts) {
        snprintf(num, sizeof num, "%d", f->attempts);
        sb_field(b, json, "attempts", NULL, num);
    }
    if (f->worker)
        sb_field(b, json, "worker", f->worker, NULL);
    if (f->has_duration) {
        snprintf(num, sizeof num, "%.3f", f->duration_s);
        sb_field(b, json, "duration_s", NULL, num);
    }
}

/* Builds and writes one line; facts may be NULL. */
__attribute__((format(printf, 4, 0))) static void log_line(lw_log_level level, const char *event,
                                                           const lw_log_facts *facts,
                                                           const char *fmt, va_list ap)
{
    if (!lw_log_enabled(level))
        return;
    int lv = level < LW_LOG_ERROR ? LW_LOG_ERROR : level > LW_LOG_DEBUG ? LW_LOG_DEBUG : level;
    char ts[LW_RFC3339_LEN];
    lw_rfc3339(lw_now_ms(), ts);
    if (!event)
        event = "-";

    char *msg = format_msg(fmt, ap);
    strbuf line = {0};
    if (!msg) {
        line.failed = 1;
    } else if (atomic_load(&log_json)) {
        sb_str(&line, "{\"ts\":\"");
        sb_str(&line, ts);
        sb_str(&line, "\",\"level\":\"");
        sb_str(&line, level_names[lv]);
        sb_str(&line, "\",\"event\":");
        sb_json(&line, event);
        sb_add(&line, ",", 1);
        if (facts)
            sb_facts(&line, 1, facts);
        sb_str(&line, "\"msg\":");
        sb_json(&line, msg);
        sb_str(&line, "}\n");
    } else {
        char head[LW_RFC3339_LEN + 16];
        snprintf(head, sizeof head, "%s %-5s ", ts, level_names[lv]);
        sb_str(&line, head);
        sb_text(&line, event, 0);
        if (facts)
            sb_facts(&line, 0, facts);
        sb_add(&line, " ", 1);
        sb_text(&line, msg, 0);
        sb_add(&line, "\n", 1);
    }
    if (!line.failed) {
        write_all(line.p, line.len);
    } else {
        /* Out of memory: say so rather than drop the line silently. */
        char fallback[160];
        int m = snprintf(fallback, sizeof fallback,
                         "%s %-5s %s (out of memory formatting the message)\n", ts, level_names[lv],
                         event);
        if (m > 0)
            write_all(fallback, (size_t)m < sizeof fallback ? (size_t)m : sizeof fallback - 1);
    }
    free(line.p);
    free(msg);
}

void lw_log(lw_log_level level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, event, NULL, fmt, ap);
    va_end(ap);
}

void lw_log_about(lw_log_level level, const char *event, lw_log_facts facts, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, event, &facts, fmt, ap);
    va_end(ap);
}

lw_log_level lw_log_gate_level(lw_log_gate *g, const char *text, lw_log_level level,
                               int64_t every_ms)
{
    int64_t now = lw_mono_ms();
    /* Compared on the stored length: a longer text that only differs past
     * it is the same message for this purpose. */
    if (g->last[0] && strncmp(g->last, text, sizeof g->last - 1) == 0 && now - g->at_ms < every_ms)
        return LW_LOG_DEBUG;
    snprintf(g->last, sizeof g->last, "%s", text);
    g->at_ms = now;
    return level;
}

void lw_log_gate_reset(lw_log_gate *g)
{
    g->last[0] = '\0';
    g->at_ms = 0;
}

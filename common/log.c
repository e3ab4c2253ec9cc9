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

int lw_log_enabled(lw_log_level level)
{
    return (int)level <= atomic_load(&log_level);
}

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

void lw_log(lw_log_level level, const char *event, const char *fmt, ...)
{
    if (!lw_log_enabled(level))
        return;
    int lv = level < LW_LOG_ERROR ? LW_LOG_ERROR : level > LW_LOG_DEBUG ? LW_LOG_DEBUG : level;
    char ts[LW_RFC3339_LEN];
    lw_rfc3339(lw_now_ms(), ts);
    if (!event)
        event = "-";

    va_list ap;
    va_start(ap, fmt);
    char *msg = format_msg(fmt, ap);
    va_end(ap);

    char *a = NULL, *b = NULL, *line = NULL;
    int n = -1;
    if (msg && atomic_load(&log_json)) {
        a = lw_json_quote(event, strlen(event));
        b = lw_json_quote(msg, strlen(msg));
        if (a && b)
            n = asprintf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":%s,\"msg\":%s}\n", ts,
                         level_names[lv], a, b);
    } else if (msg) {
        a = escape_text(event);
        b = escape_text(msg);
        if (a && b)
            n = asprintf(&line, "%s %-5s %s %s\n", ts, level_names[lv], a, b);
    }
    if (n >= 0) {
        write_all(line, (size_t)n);
        free(line);
    } else {
        /* Out of memory: say so rather than drop the line silently. */
        char fallback[160];
        int m = snprintf(fallback, sizeof fallback, "%s %-5s %s (out of memory formatting the message)\n",
                         ts, level_names[lv], event);
        if (m > 0)
            write_all(fallback, (size_t)m < sizeof fallback ? (size_t)m : sizeof fallback - 1);
    }
    free(a);
    free(b);
    free(msg);
}

lw_log_level lw_log_gate_level(lw_log_gate *g, const char *text, lw_log_level level, int64_t every_ms)
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

/*
 * views.c — job records and events as users see them (views.h, CONTRACT
 * section 4).
 *
 * Records come from Redis, where anyone with access can write anything, so
 * every field is treated as untrusted text: JSON fields are embedded only
 * when they pass the strict validator (else they are shown as a JSON
 * string), numbers only when they parse, and strings go through
 * lw_json_quote, which also repairs invalid UTF-8. The output is therefore
 * valid JSON whatever the record holds.
 */
#include "views.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "timefmt.h"

/* A field value: text[0..len), or text == NULL when absent. */
typedef struct {
    const char *text;
    size_t len;
} field;

static field get(const char *const *fv, const size_t *fvlen, size_t nfv, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + 1 < nfv; i += 2) {
        if (fvlen[i] == n && memcmp(fv[i], name, n) == 0)
            return (field){fv[i + 1], fvlen[i + 1]};
    }
    return (field){NULL, 0};
}

/* The output object, written member by member to a memory stream. */
typedef struct {
    FILE *f;
    int first;
    int oom;
} out;

static void key(out *o, const char *name)
{
    fprintf(o->f, "%s\"%s\":", o->first ? "" : ",", name);
    o->first = 0;
}

static void put_null(out *o, const char *name)
{
    key(o, name);
    fputs("null", o->f);
}

static void put_str(out *o, const char *name, const char *s, size_t len)
{
    char *q = lw_json_quote(s, len);
    key(o, name);
    if (q)
        fputs(q, o->f);
    else
        o->oom = 1;
    free(q);
}

/* A string, or null when absent or (empty_null) empty. */
static void put_text(out *o, const char *name, field v, int empty_null)
{
    if (!v.text || (empty_null && v.len == 0))
        put_null(o, name);
    else
        put_str(o, name, v.text, v.len);
}

/* JSON text embedded as a value (compacted); anything else as a string;
 * absent (or empty when empty_null) as null. */
static void put_json(out *o, const char *name, field v, int empty_null)
{
    if (!v.text || (empty_null && v.len == 0)) {
        put_null(o, name);
    } else if (lw_json_valid(v.text, v.len)) {
        char *c = lw_json_compact(v.text, v.len);
        key(o, name);
        if (c)
            fputs(c, o->f);
        else
            o->oom = 1;
        free(c);
    } else {
        put_str(o, name, v.text, v.len);
    }
}

/* Parses a decimal integer field; 0 when it is one. */
static int int_of(field v, int64_t *out_v)
{
    char buf[32];
    if (!v.text || v.len == 0 || v.len >= sizeof buf)
        return -1;
    memcpy(buf, v.text, v.len);
    buf[v.len] = '\0';
    const char *p = buf[0] == '-' ? buf + 1 : buf;
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return -1;
    char *end;
    long long x = strtoll(buf, &end, 10);
    *out_v = x;
    return *end ? -1 : 0;
}

static void put_int(out *o, const char *name, field v)
{
    int64_t x;
    if (int_of(v, &x) != 0) {
        put_null(o, name);
        return;
    }
    key(o, name);
    fprintf(o->f, "%" PRId64, x);
}

/* Milliseconds since the epoch as RFC 3339; 0, absent or garbage as null
 * (0 is what a never-set time would read as). */
static void put_time(out *o, const char *name, field v)
{
    int64_t ms;
    if (int_of(v, &ms) != 0 || ms <= 0) {
        put_null(o, name);
        return;
    }
    char ts[LW_RFC3339_LEN];
    lw_rfc3339(ms, ts);
    key(o, name);
    fprintf(o->f, "\"%s\"", ts);
}

/* Milliseconds as a JSON number of seconds, exactly (180000 -> 180,
 * 1500 -> 1.5): decimal arithmetic, no binary float in between. */
static void put_seconds(out *o, const char *name, field v)
{
    int64_t ms;
    if (int_of(v, &ms) != 0 || ms < 0) {
        put_null(o, name);
        return;
    }
    key(o, name);
    fprintf(o->f, "%" PRId64, ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac) {
        char d[8];
        snprintf(d, sizeof d, "%03d", frac);
        size_t n = 3;
        while (d[n - 1] == '0')
            n--;
        fprintf(o->f, ".%.*s", (int)n, d);
    }
}

static int begin(out *o, char **buf, size_t *len)
{
    *buf = NULL;
    o->f = open_memstream(buf, len);
    o->first = 1;
    o->oom = 0;
    if (!o->f)
        return -1;
    fputc('{', o->f);
    return 0;
}

/* Closes the object; *buf is only final after fclose. */
static char *finish(out *o, char **buf)
{
    fputc('}', o->f);
    int bad = ferror(o->f) || o->oom;
    if (fclose(o->f) != 0 || bad) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

char *lw_view_job(const char *tenant, const char *const *fv, const size_t *fvlen, size_t nfv)
{
#define F(name) get(fv, fvlen, nfv, name)
    field id = F("id");
    if (!id.text)
        return NULL;
    out o;
    char *buf;
    size_t len;
    if (begin(&o, &buf, &len) != 0)
        return NULL;
    put_text(&o, "id", id, 0);
    put_text(&o, "tenant", (field){tenant, tenant ? strlen(tenant) : 0}, 0);
    put_text(&o, "kind", F("kind"), 0);
    put_text(&o, "queue", F("queue"), 0);
    put_text(&o, "lane", F("lane"), 0);
    put_text(&o, "status", F("status"), 0);
    put_json(&o, "payload", F("payload"), 0);
    put_int(&o, "attempt", F("attempt"));
    put_int(&o, "attempts", F("attempts"));
    put_seconds(&o, "timeout", F("timeout"));
    put_time(&o, "enqueued_at", F("enqueued"));
    put_time(&o, "started_at", F("started"));
    put_time(&o, "finished_at", F("finished"));
    /* An empty result is "no result", not the JSON string "". */
    put_json(&o, "result", F("result"), 1);
    put_text(&o, "error", F("error"), 1);
    put_text(&o, "worker", F("worker"), 1);
    put_time(&o, "run_at", F("run_at"));
    put_time(&o, "expires_at", F("expires"));
    put_text(&o, "unique", F("unique"), 1);
    put_text(&o, "spool_dir", F("spool"), 1);
#undef F
    return finish(&o, &buf);
}

char *lw_view_event(const char *entry_id, const char *const *fv, const size_t *fvlen, size_t nfv)
{
#define F(name) get(fv, fvlen, nfv, name)
    out o;
    char *buf;
    size_t len;
    if (begin(&o, &buf, &len) != 0)
        return NULL;
    size_t idlen = entry_id ? strlen(entry_id) : 0;
    put_text(&o, "id", (field){entry_id, idlen}, 0);
    put_text(&o, "type", F("type"), 0);
    put_text(&o, "job", F("job"), 0);
    put_text(&o, "kind", F("kind"), 0);
    put_text(&o, "lane", F("lane"), 0);
    put_int(&o, "attempt", F("attempt"));
    put_text(&o, "worker", F("worker"), 1);
    /* A stream entry id is "MS-SEQ": its first part is when Redis added it. */
    put_time(&o, "ts", (field){entry_id, entry_id ? strcspn(entry_id, "-") : 0});
    put_json(&o, "data", F("data"), 1);
#undef F
    return finish(&o, &buf);
}

int lw_status_is_terminal(const char *status)
{
    static const char *const terminal[] = {"succeeded", "failed", "cancelled", "expired"};
    for (size_t i = 0; status && i < sizeof terminal / sizeof terminal[0]; i++) {
        if (strcmp(status, terminal[i]) == 0)
            return 1;
    }
    return 0;
}

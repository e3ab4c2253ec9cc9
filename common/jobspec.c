/*
 * jobspec.c — jobs as enqueuers describe them (jobspec.h).
 *
 * The payload of a --batch line is kept as the exact text of its JSON value
 * (whitespace between tokens removed), not as cJSON would print it again:
 * cJSON holds numbers as doubles, and a payload such as {"user": 9007199254740993}
 * must reach the handler unchanged.
 */
#include "jobspec.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fail.h"
#include "ids.h"
#include "jsonx.h"
#include "names.h"

#define UNIQUE_MAX 200
/* Ten years: keeps every millisecond count far from overflow. */
#define MAX_SECONDS 315360000.0
#define SAFE_RULE "letters, digits, '-', '_', '.'; not starting with '.'; at most 200 bytes"
#define FIELDS                                                                                     \
    "tenant, kind, lane, queue, id, unique, payload, delay, attempts, timeout, expires, unique_for"

void lw_job_spec_init(lw_job_spec *s)
{
    memset(s, 0, sizeof *s);
    s->backoff_ms = -1;
}

void lw_job_spec_clear(lw_job_spec *s)
{
    free(s->tenant);
    free(s->kind);
    free(s->queue);
    free(s->lane);
    free(s->id);
    free(s->unique);
    free(s->payload);
    free(s->spool_dir);
    lw_job_spec_init(s);
}

void lw_job_spec_set_payload(lw_job_spec *s, char *payload)
{
    free(s->payload);
    s->payload = payload;
}

/* Refuses a field name, or a field other than the payload (kept as text,
 * not decoded), that holds U+0000 and so would be read cut short. */
static int refuse_nul(const char *line, size_t len, char *err, size_t errlen)
{
    size_t pos = 0;
    lw_json_member m;
    while (lw_json_next_member(line, len, &pos, &m) == 1) {
        int shown = (int)(m.klen > 64 ? 64 : m.klen);
        if (lw_json_nul_escape(m.key, m.klen))
            return lw_fail(err, errlen, "field name \"%.*s\" must not hold \\u0000", shown, m.key);
        if (!lw_json_key_is(&m, "payload") && lw_json_nul_escape(m.val, m.vlen))
            return lw_fail(err, errlen, "%.*s: must not hold \\u0000", shown, m.key);
    }
    return 0;
}

static int set_string(char **field, const cJSON *v, char *err, size_t errlen)
{
    if (!cJSON_IsString(v))
        return lw_fail(err, errlen, "%s: must be a string", v->string);
    char *copy = strdup(v->valuestring);
    if (!copy)
        return lw_fail(err, errlen, "out of memory");
    free(*field);
    *field = copy;
    return 0;
}

static int set_field(lw_job_spec *s, const cJSON *f, const char *line, size_t len, char *err,
                     size_t errlen)
{
    const char *k = f->string;
    char **str = strcmp(k, "tenant") == 0   ? &s->tenant
                 : strcmp(k, "kind") == 0   ? &s->kind
                 : strcmp(k, "lane") == 0   ? &s->lane
                 : strcmp(k, "queue") == 0  ? &s->queue
                 : strcmp(k, "id") == 0     ? &s->id
                 : strcmp(k, "unique") == 0 ? &s->unique
                                            : NULL;
    if (strcmp(k, "payload") == 0) {
        char *p = lw_json_member_text(line, len, "payload");
        if (!p)
            return lw_fail(err, errlen, "out of memory");
        lw_job_spec_set_payload(s, p);
        return 0;
    }
    if (!str && strcmp(k, "delay") && strcmp(k, "timeout") && strcmp(k, "expires") &&
        strcmp(k, "attempts") && strcmp(k, "unique_for"))
        return lw_fail(err, errlen, "unknown field \"%.64s\" (known: " FIELDS ")", k);
    if (cJSON_IsNull(f))
        return 0; /* written as null: not given, the default stays */
    if (str)
        return set_string(str, f, err, errlen);
    if (strcmp(k, "delay") == 0) {
        if (lw_json_seconds_ms(f, 0, MAX_SECONDS, &s->delay_ms))
            return lw_fail(err, errlen, "delay: must be a number of seconds >= 0");
    } else if (strcmp(k, "expires") == 0) {
        if (lw_json_seconds_ms(f, 0, MAX_SECONDS, &s->expires_ms))
            return lw_fail(err, errlen, "expires: must be a number of seconds >= 0");
    } else if (strcmp(k, "unique_for") == 0) {
        if (lw_json_seconds_ms(f, 0, MAX_SECONDS, &s->unique_for_ms))
            return lw_fail(err, errlen, "unique_for: must be a number of seconds >= 0");
    } else if (strcmp(k, "timeout") == 0) {
        if (lw_json_seconds_ms(f, 1, MAX_SECONDS, &s->timeout_ms))
            return lw_fail(err, errlen, "timeout: must be a number of seconds > 0");
    } else {
        double d = f->valuedouble;
        if (!cJSON_IsNumber(f) || !(d >= 1 && d <= INT_MAX) || (double)(int)d != d)
            return lw_fail(err, errlen, "attempts: must be an integer >= 1");
        s->attempts = (int)d;
    }
    return 0;
}

int lw_job_spec_from_json(lw_job_spec *s, const char *line, size_t len, char *err, size_t errlen)
{
    /* Before cJSON, whose nesting limit would read as a syntax error. */
    if (lw_json_check(line, len) == LW_JSON_TOO_DEEP)
        return lw_fail(err, errlen, "JSON nested deeper than %d levels", LW_JSON_MAX_DEPTH);
    const char *stop = line;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &stop, 0);
    int rc = -1;
    if (!root) {
        /* Valid text cJSON could not hold (but for a surrogate it refuses). */
        if (lw_json_valid(line, len) && !lw_json_unpaired_surrogate(line, len))
            return lw_fail(err, errlen, "out of memory");
        size_t off = stop >= line && stop <= line + len ? (size_t)(stop - line) : 0;
        return lw_fail(err, errlen, "malformed JSON at column %zu", off + 1);
    }
    /* cJSON is lenient ("01", "1."); the strict check also vouches for the
     * span walker that takes the payload text. */
    if (!lw_json_valid(line, len)) {
        lw_fail(err, errlen,
                "malformed JSON (strict JSON: no text after the object, numbers like "
                "0.5 not .5 or 01, UTF-8 only)");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        lw_fail(err, errlen, "a batch line must be a JSON object (one job)");
        goto out;
    }
    if (refuse_nul(line, len, err, errlen) != 0)
        goto out;
    for (const cJSON *f = root->child; f; f = f->next) {
        for (const cJSON *g = f->next; g; g = g->next) {
            if (strcmp(f->string, g->string) == 0) {
                lw_fail(err, errlen, "%.64s: given twice", f->string);
                goto out;
            }
        }
        if (set_field(s, f, line, len, err, errlen) != 0)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

static int check_name(const char *what, const char *v, int required, char *err, size_t errlen)
{
    if (!v)
        return required ? lw_fail(err, errlen, "%s: missing", what) : 0;
    if (!lw_name_is_safe(v))
        return lw_fail(err, errlen, "%s: \"%.64s\" is not a safe name (" SAFE_RULE ")", what, v);
    return 0;
}

int lw_job_spec_validate(const lw_job_spec *s, int64_t max_payload, char *err, size_t errlen)
{
    if (check_name("tenant", s->tenant, 1, err, errlen) ||
        check_name("kind", s->kind, 1, err, errlen) ||
        check_name("queue", s->queue, 0, err, errlen) ||
        check_name("lane", s->lane, 0, err, errlen) || check_name("id", s->id, 0, err, errlen))
        return -1;
    if (s->unique) {
        size_t n = strlen(s->unique);
        if (n == 0 || n > UNIQUE_MAX)
            return lw_fail(err, errlen, "unique: must be 1 to %d bytes", UNIQUE_MAX);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s->unique[i];
            if (c < 0x20 || c == 0x7f)
                return lw_fail(err, errlen, "unique: must not hold control characters");
        }
        /* A batch line can only hold UTF-8; the flag must not hold more
         * (status would show another key than the one stored). */
        if (!lw_utf8_valid(s->unique, n))
            return lw_fail(err, errlen, "unique: must be UTF-8 text");
    }
    if (s->payload) {
        size_t n = strlen(s->payload);
        /* max_payload <= 0: no limit (callers pass the configured one). */
        if (max_payload > 0 && n > (uint64_t)max_payload)
            return lw_fail(err, errlen,
                           "payload: %zu bytes is over the limit of %lld (--max-payload)", n,
                           (long long)max_payload);
        int jc = lw_json_check(s->payload, n);
        if (jc == LW_JSON_TOO_DEEP)
            return lw_fail(err, errlen, "payload: JSON nested deeper than %d levels",
                           LW_JSON_MAX_DEPTH);
        if (jc != LW_JSON_OK)
            return lw_fail(err, errlen, "payload: not valid JSON");
    }
    if (s->attempts < 0)
        return lw_fail(err, errlen, "attempts: must be an integer >= 1");
    if (s->timeout_ms < 0)
        return lw_fail(err, errlen, "timeout: must be a number of seconds > 0");
    if (s->backoff_ms < -1)
        return lw_fail(err, errlen, "backoff: must be a number of seconds >= 0");
    if (s->delay_ms < 0)
        return lw_fail(err, errlen, "delay: must be a number of seconds >= 0");
    if (s->expires_ms < 0)
        return lw_fail(err, errlen, "expires: must be a number of seconds >= 0");
    if (s->unique_for_ms < 0)
        return lw_fail(err, errlen, "unique_for: must be a number of seconds >= 0");
    if (s->unique_for_ms > 0 && !s->unique)
        return lw_fail(err, errlen, "unique_for: needs a unique key (unique) to hold");
    return 0;
}

static int default_str(char **field, const char *v)
{
    if (*field)
        return 0;
    *field = strdup(v);
    return *field ? 0 : -1;
}

int lw_job_spec_resolve(lw_job_spec *s, const lw_job_defaults *d)
{
    if (!s->id) {
        char id[LW_ID_LEN + 1];
        lw_id_new(id);
        if (default_str(&s->id, id) != 0)
            return -1;
    }
    if (default_str(&s->queue, "default") || default_str(&s->payload, "null") ||
        default_str(&s->lane, s->id))
        return -1;
    if (s->attempts <= 0)
        s->attempts = d ? d->attempts : LW_DEFAULT_ATTEMPTS;
    if (s->timeout_ms <= 0)
        s->timeout_ms = d ? d->timeout_ms : (int64_t)LW_DEFAULT_TIMEOUT_S * 1000;
    if (s->backoff_ms < 0)
        s->backoff_ms = d ? d->backoff_ms : LW_DEFAULT_BACKOFF_MS;
    return 0;
}

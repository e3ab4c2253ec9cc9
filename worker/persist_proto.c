/* persist_proto.c — building and parsing protocol lines (persist_proto.h). */
#include "persist_proto.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"

typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* ,"name":<s as a JSON string, or null> */
static void sb_field(strbuf *b, const char *name, const char *s)
{
    sb_str(b, ",\"");
    sb_str(b, name);
    sb_str(b, "\":");
    if (!s) {
        sb_str(b, "null");
        return;
    }
    char *q = lw_json_quote(s, strlen(s));
    if (!q) {
        b->oom = 1;
        return;
    }
    sb_str(b, q);
    free(q);
}

static char *sb_done(strbuf *b, size_t *len)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (len)
        *len = b->len;
    return b->s;
}

char *persist_job_line(const persist_job *j, size_t *len)
{
    strbuf b = {0};
    char num[128];
    sb_str(&b, "{\"type\":\"job\"");
    sb_field(&b, "id", j->id);
    sb_field(&b, "tenant", j->tenant);
    sb_field(&b, "kind", j->kind);
    sb_field(&b, "queue", j->queue);
    sb_field(&b, "lane", j->lane);
    if (j->timeout_ms % 1000 == 0)
        snprintf(num, sizeof num,
                 ",\"attempt\":%d,\"attempts\":%d,\"timeout\":%lld,\"payload\":", j->attempt,
                 j->attempts, (long long)(j->timeout_ms / 1000));
    else
        snprintf(num, sizeof num,
                 ",\"attempt\":%d,\"attempts\":%d,\"timeout\":%.3f,\"payload\":", j->attempt,
                 j->attempts, (double)j->timeout_ms / 1000.0);
    sb_str(&b, num);
    const char *payload = j->payload ? j->payload : "null";
    size_t plen = strlen(payload);
    if (memchr(payload, '\n', plen) || memchr(payload, '\r', plen)) {
        /* Raw newlines in JSON are whitespace between tokens (inside a
         * string they are escaped): compacting removes every one. */
        char *c = lw_json_valid(payload, plen) ? lw_json_compact(payload, plen) : NULL;
        sb_str(&b, c ? c : "null");
        free(c);
    } else {
        sb_add(&b, payload, plen);
    }
    sb_field(&b, "spool_dir", j->spool_dir);
    sb_str(&b, "}\n");
    return sb_done(&b, len);
}

char *persist_cancel_line(const char *id, size_t *len)
{
    strbuf b = {0};
    sb_str(&b, "{\"type\":\"cancel\"");
    sb_field(&b, "id", id);
    sb_str(&b, "}\n");
    return sb_done(&b, len);
}

/* One JSON string member's value, decoded; NULL when it is not a string
 * (or holds U+0000, which would cut it short). */
static char *member_string(const lw_json_member *m)
{
    if (lw_json_nul_escape(m->val, m->vlen))
        return NULL;
    cJSON *v = cJSON_ParseWithLength(m->val, m->vlen);
    char *s = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
    cJSON_Delete(v);
    return s;
}

void persist_msg_clear(persist_msg *m)
{
    free(m->event);
    free(m->data);
    free(m->result);
    free(m->error);
    memset(m, 0, sizeof *m);
}

int persist_parse_line(const char *line, size_t len, persist_msg *m, char *why, size_t whylen)
{
    memset(m, 0, sizeof *m);
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    size_t lead = 0;
    while (lead < len && (line[lead] == ' ' || line[lead] == '\t'))
        lead++;
    if (lead == len)
        return 1;
    int shown = len > 80 ? 80 : (int)len;
    if (!lw_json_valid(line, len)) {
        snprintf(
            why, whylen,
            "wrote a line that is not JSON on stdout (%.*s); stdout is the protocol, log to stderr",
            shown, line);
        return -1;
    }
    char *type = NULL;
    int have_result = 0, bad_retry = 0, r;
    m->retry = 1;
    size_t pos = 0;
    lw_json_member f;
    while ((r = lw_json_next_member(line, len, &pos, &f)) == 1) {
        if (!type && lw_json_key_is(&f, "type")) {
            type = member_string(&f);
        } else if (!m->event && lw_json_key_is(&f, "event")) {
            m->event = member_string(&f);
        } else if (!m->error && lw_json_key_is(&f, "error")) {
            if (!(m->error = member_string(&f)))
                m->error = lw_json_compact(f.val, f.vlen);
        } else if (!m->data && lw_json_key_is(&f, "data")) {
            m->data = lw_json_compact(f.val, f.vlen);
        } else if (!have_result && lw_json_key_is(&f, "result")) {
            have_result = 1;
            m->result = lw_json_compact(f.val, f.vlen);
        } else if (lw_json_key_is(&f, "retry")) {
            if (f.vlen == 4 && !memcmp(f.val, "true", 4))
                m->retry = 1;
            else if (f.vlen == 5 && !memcmp(f.val, "false", 5))
                m->retry = 0;
            else
                bad_retry = 1;
        }
    }
    int rc = -1;
    if (r < 0)
        snprintf(why, whylen, "wrote a JSON line that is not an object (%.*s)", shown, line);
    else if (!type)
        snprintf(why, whylen, "wrote a line without a string \"type\" (%.*s)", shown, line);
    else if (!strcmp(type, "event") && (!m->event || !m->event[0]))
        snprintf(why, whylen, "wrote an event line without an \"event\" name (%.*s)", shown, line);
    else if (!strcmp(type, "error") && bad_retry)
        snprintf(why, whylen, "wrote an error line whose \"retry\" is not true or false (%.*s)",
                 shown, line);
    else if (strcmp(type, "event") && strcmp(type, "result") && strcmp(type, "error"))
        snprintf(why, whylen,
                 "wrote a line of unknown type \"%.40s\" (known: event, result, error)", type);
    else
        rc = 0;
    if (rc == 0) {
        m->type = !strcmp(type, "event")    ? PERSIST_EVENT
                  : !strcmp(type, "result") ? PERSIST_RESULT
                                            : PERSIST_ERROR;
        if (m->data && !strcmp(m->data, "null")) {
            free(m->data);
            m->data = NULL;
        }
        if (m->type == PERSIST_RESULT && !m->result && !(m->result = strdup("null")))
            rc = -1;
        if (rc && whylen)
            snprintf(why, whylen, "the worker is out of memory");
    }
    free(type);
    if (rc)
        persist_msg_clear(m);
    return rc;
}

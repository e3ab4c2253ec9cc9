/*
 * jsonx.c — JSON helpers (jsonx.h).
 *
 * cJSON builds trees and is what the rest of the code reads JSON with, but
 * it is lenient ("01", "1.", "-.5" parse) and turns every number into a
 * double. Text that is stored and shown again (payloads, results, event
 * data) therefore goes through the strict validator and the span walker
 * here, which keep it byte for byte.
 */
#include "jsonx.h"
#include "seams.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH LW_JSON_MAX_DEPTH

/* Length (1..4) of the well-formed UTF-8 sequence at p[0..avail), or 0 for a
 * malformed one: overlong forms, surrogates and code points past U+10FFFF
 * are malformed (RFC 3629). */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return n;
}

int lw_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(p + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* --- strict validation ------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
    int depth;
    int too_deep; /* the scan stopped at MAX_DEPTH */
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int scan_string(scanner *s)
{
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (s->end - s->p < 2)
                return -1;
            c = s->p[1];
            if (c == 'u') {
                if (s->end - s->p < 6)
                    return -1;
                for (int i = 2; i < 6; i++) {
                    if (!is_hex(s->p[i]))
                        return -1;
                }
                s->p += 6;
            } else if (c && strchr("\"\\/bfnrt", c)) {
                s->p += 2;
            } else {
                return -1;
            }
            continue;
        }
        size_t n = utf8_len(s->p, (size_t)(s->end - s->p));
        if (!n)
            return -1;
        s->p += n;
    }
    return -1;
}

static int scan_digits(scanner *s)
{
    if (s->p >= s->end || !is_digit(*s->p))
        return -1;
    while (s->p < s->end && is_digit(*s->p))
        s->p++;
    return 0;
}

static int scan_number(scanner *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (scan_digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) != 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) != 0)
            return -1;
    }
    return 0;
}

static int scan_word(scanner *s, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(scanner *s);

/* An object or an array: `close` is its closing bracket. */
static int scan_container(scanner *s, unsigned char close)
{
    if (++s->depth > MAX_DEPTH) {
        s->too_deep = 1;
        return -1;
    }
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(s);
        if (close == '}') {
            if (s->p >= s->end || *s->p != '"' || scan_string(s) != 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            skip_ws(s);
        }
        if (scan_value(s) != 0)
            return -1;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == close) {
            s->p++;
            s->depth--;
            return 0;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
    }
}

static int scan_value(scanner *s)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{': return scan_container(s, '}');
    case '[': return scan_container(s, ']');
    case '"': return scan_string(s);
    case 't': return scan_word(s, "true");
    case 'f': return scan_word(s, "false");
    case 'n': return scan_word(s, "null");
    default:
        if (*s->p == '-' || is_digit(*s->p))
            return scan_number(s);
        return -1;
    }
}

int lw_json_check(const char *text, size_t len)
{
    if (!text)
        return LW_JSON_INVALID;
    scanner s = {(const unsigned char *)text, (const unsigned char *)text + len, 0, 0};
    skip_ws(&s);
    if (scan_value(&s) != 0)
        return s.too_deep ? LW_JSON_TOO_DEEP : LW_JSON_INVALID;
    skip_ws(&s);
    return s.p == s.end ? LW_JSON_OK : LW_JSON_INVALID;
}

int lw_json_valid(const char *text, size_t len) { return lw_json_check(text, len) == LW_JSON_OK; }

static int hex4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!is_hex(c))
            return -1;
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    *out = v;
    return 0;
}

int lw_json_unpaired_surrogate(const char *text, size_t len)
{
    /* In valid JSON every backslash opens an escape inside a string. */
    const char *p = text, *end = text + len;
    while (p < end) {
        if (*p != '\\') {
            p++;
            continue;
        }
        if (end - p < 2)
            return 0;
        if (p[1] != 'u') {
            p += 2;
            continue;
        }
        unsigned u, v;
        if (hex4(p + 2, end, &u) != 0)
            return 0; /* not valid JSON: not ours to say */
        p += 6;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return 1;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &v) != 0 ||
                v < 0xDC00 || v > 0xDFFF)
                return 1;
            p += 6;
        }
    }
    return 0;
}

/* --- quoting ----------------------------------------------------------- */

/* Writes the quoted form of s into out when out is not NULL; returns its
 * length either way, so one function both measures and writes. */
static size_t quote_into(char *out, const unsigned char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (out)                                                                                   \
            out[o] = (char)(c);                                                                    \
        o++;                                                                                       \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (esc) {
            PUT(esc[0]);
            PUT(esc[1]);
            i++;
        } else if (c < 0x20) {
            const char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            for (size_t k = 0; k < sizeof u; k++)
                PUT(u[k]);
            i++;
        } else {
            size_t n = utf8_len(s + i, len - i);
            if (!n) {
                const char *r = "\\ufffd";
                for (size_t k = 0; k < 6; k++)
                    PUT(r[k]);
                i++;
            } else {
                for (size_t k = 0; k < n; k++)
                    PUT(s[i + k]);
                i += n;
            }
        }
    }
    PUT('"');
#undef PUT
    return o;
}

char *lw_json_quote(const char *s, size_t len)
{
    if (!s)
        len = 0;
    size_t n = quote_into(NULL, (const unsigned char *)s, len);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    quote_into(out, (const unsigned char *)s, len);
    out[n] = '\0';
    return out;
}

/* --- files ------------------------------------------------------------- */

static ssize_t read_retry(int fd, void *buf, size_t n)
{
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static char *read_fail(char *buf, int e)
{
    free(buf);
    errno = e;
    return NULL;
}

char *lw_read_fd(int fd, size_t max_bytes, size_t *len_out)
{
    struct stat st;
    size_t cap = 4096, len = 0;
    if (max_bytes >= SIZE_MAX - 1)
        max_bytes = SIZE_MAX - 2;
    /* A regular file's size is known: one allocation, and a too large file
     * is refused before reading it. */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uintmax_t)st.st_size > max_bytes) {
            errno = EFBIG;
            return NULL;
        }
        cap = (size_t)st.st_size + 1;
    }
    if (cap > max_bytes + 1)
        cap = max_bytes + 1;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (len + 1 == cap) {
            /* Full (a pipe, or a file that grew while being read): at the
             * limit, one more byte tells a file of exactly max_bytes from a
             * larger one. */
            if (len >= max_bytes) {
                char probe;
                ssize_t r = read_retry(fd, &probe, 1);
                if (r == 0)
                    break;
                return read_fail(buf, r < 0 ? errno : EFBIG);
            }
            size_t ncap = cap <= (max_bytes + 1) / 2 ? cap * 2 : max_bytes + 1;
            char *nb = realloc(buf, ncap);
            if (!nb)
                return read_fail(buf, ENOMEM);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read_retry(fd, buf + len, cap - 1 - len);
        if (r < 0)
            return read_fail(buf, errno);
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

char *lw_read_file(const char *path, size_t max_bytes, size_t *len_out)
{
    /* O_NONBLOCK: a FIFO must not block the open (the worker would hang at
     * start, or in a reload, with its signals held); only regular files. */
    int fd = lw_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    char *buf = lw_read_fd(fd, max_bytes, len_out);
    int e = errno;
    close(fd);
    errno = e;
    return buf;
}

/* --- spans ------------------------------------------------------------- */

/* The walkers below trust that the text is valid JSON (checked before), but
 * never step past `end` whatever it holds. */
static const char *span_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *span_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

static const char *span_value(const char *p, const char *end)
{
    if (p < end && (*p == '{' || *p == '[')) {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = span_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    if (p < end && *p == '"')
        return span_string(p, end);
    while (p < end && !strchr(" \t\n\r,}]", *p))
        p++;
    return p;
}

char *lw_json_compact(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    const char *p = text, *end = text + len;
    size_t o = 0;
    while (p < end) {
        if (*p == '"') {
            const char *q = span_string(p, end);
            memcpy(out + o, p, (size_t)(q - p));
            o += (size_t)(q - p);
            p = q;
        } else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            p++;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

int lw_json_next_member(const char *text, size_t len, size_t *pos, lw_json_member *m)
{
    const char *end = text + len, *p = text + *pos;
    if (*pos == 0) {
        p = span_ws(p, end);
        if (p >= end || *p != '{')
            return -1;
        p++;
    }
    p = span_ws(p, end);
    if (p < end && *p == ',')
        p = span_ws(p + 1, end);
    if (p >= end || *p != '"') {
        *pos = len;
        return 0;
    }
    const char *kend = span_string(p, end);
    m->key = p + 1;
    m->klen = kend > p + 1 ? (size_t)(kend - p - 2) : 0;
    p = span_ws(kend, end);
    if (p < end && *p == ':')
        p++;
    p = span_ws(p, end);
    const char *vend = span_value(p, end);
    m->val = p;
    m->vlen = (size_t)(vend - p);
    *pos = (size_t)(vend - text);
    return 1;
}

int lw_json_key_is(const lw_json_member *m, const char *name)
{
    size_t n = strlen(name);
    if (!memchr(m->key, '\\', m->klen))
        return m->klen == n && memcmp(m->key, name, n) == 0;
    /* An escaped name ("st\u0061tus"): let cJSON decode the quoted span. */
    cJSON *k = cJSON_ParseWithLength(m->key - 1, m->klen + 2);
    int same = k && cJSON_IsString(k) && strcmp(k->valuestring, name) == 0;
    cJSON_Delete(k);
    return same;
}

const char *lw_json_nul_escape(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\\')
            continue;
        if (p[i + 1] == 'u' && n - i >= 6 && memcmp(p + i + 2, "0000", 4) == 0)
            return p + i;
        i++; /* the escaped character (perhaps a backslash) */
    }
    return NULL;
}

int lw_json_seconds_ms(const cJSON *v, int positive, double max_s, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= max_s) || (positive && !(d > 0)))
        return -1;
    double ms = d * 1000.0;
    int64_t i = (int64_t)ms;
    if ((double)i < ms)
        i++;
    *out = i;
    return 0;
}

char *lw_json_member_text(const char *text, size_t len, const char *name)
{
    size_t pos = 0;
    lw_json_member m;
    while (lw_json_next_member(text, len, &pos, &m) == 1) {
        if (lw_json_key_is(&m, name))
            return lw_json_compact(m.val, m.vlen);
    }
    return NULL;
}

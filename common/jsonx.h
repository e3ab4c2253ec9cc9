/* jsonx.h — small helpers over cJSON used in several places. */
#ifndef LW_JSONX_H
#define LW_JSONX_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* 1 when text[0..len) is exactly one valid JSON value (surrounding
 * whitespace allowed), by the letter of RFC 8259: UTF-8 only, no NUL byte,
 * strict number syntax (cJSON alone would take "01" or "1."), nesting at most
 * LW_JSON_MAX_DEPTH deep. Text that passes can be embedded verbatim in JSON
 * output. 0 otherwise (NULL text included); allocates nothing. */
int lw_json_valid(const char *text, size_t len);

/* The deepest nesting of arrays and objects lw_json_valid accepts (cJSON's
 * own CJSON_NESTING_LIMIT: deeper text would not parse there either). */
#define LW_JSON_MAX_DEPTH 1000

/* lw_json_valid with the reason: LW_JSON_OK, LW_JSON_TOO_DEEP (valid so far
 * but nested deeper than LW_JSON_MAX_DEPTH), or LW_JSON_INVALID (also for
 * NULL text). */
enum { LW_JSON_OK = 0, LW_JSON_INVALID = -1, LW_JSON_TOO_DEEP = -2 };
int lw_json_check(const char *text, size_t len);

/* 1 when text[0..len), valid JSON (lw_json_valid), has a \u escape of a
 * UTF-16 surrogate without its pair: RFC 8259's grammar allows it, cJSON
 * refuses the text. So a valid text cJSON did not parse ran out of memory
 * only when this says 0. */
int lw_json_unpaired_surrogate(const char *text, size_t len);

/* 1 when s[0..len) is well-formed UTF-8 (RFC 3629), else 0. */
int lw_utf8_valid(const char *s, size_t len);

/* Returns malloc'ed JSON text for the string s[0..len) (quoted, escaped), or
 * NULL on OOM. Bytes that are not UTF-8 become U+FFFD, so the result is
 * valid JSON whatever s holds (stderr tails, Redis values). */
char *lw_json_quote(const char *s, size_t len);

/* Reads a whole regular file into a malloc'ed NUL-terminated buffer the
 * caller frees; its length (without the NUL) in *len_out when not NULL.
 * Fails (NULL, errno set: EFBIG when it is larger than max_bytes, EINVAL
 * when it is not a regular file, without blocking on a FIFO; open's or
 * read's errno, ENOMEM). */
char *lw_read_file(const char *path, size_t max_bytes, size_t *len_out);
/* The same for an open descriptor, read from its current offset to its end
 * (borrowed: not closed here, its offset moved). Any kind of file; a pipe
 * is read until EOF. NULL with errno EFBIG past max_bytes, read's errno or
 * ENOMEM. */
char *lw_read_fd(int fd, size_t max_bytes, size_t *len_out);

/* Returns malloc'ed text[0..len) without the whitespace between tokens, or
 * NULL on OOM. `text` must be valid JSON (lw_json_valid). Unlike a round trip
 * through cJSON, strings and numbers are kept byte for byte (cJSON turns every
 * number into a double: 12345678901234567891 would change). */
char *lw_json_compact(const char *text, size_t len);

/* One member of a JSON object, as spans of the object's text (borrowed). */
typedef struct lw_json_member {
    const char *key; /* the name between its quotes, escapes not decoded */
    size_t klen;
    const char *val; /* the value's text */
    size_t vlen;
} lw_json_member;

/* Steps through the members of the JSON object text[0..len), which must be
 * valid JSON. *pos starts at 0 and is advanced. Returns 1 with *m set (spans
 * borrowed from `text`), 0 after the last member, -1 when the text is not an
 * object. Allocates nothing. */
int lw_json_next_member(const char *text, size_t len, size_t *pos, lw_json_member *m);
/* 1 when the member's name is `name` (escapes in the name decoded), else 0;
 * also 0 when decoding an escaped name runs out of memory. */
int lw_json_key_is(const lw_json_member *m, const char *name);

/* The value of member `name` of the JSON object text[0..len) (valid JSON),
 * compacted and byte for byte as written (lw_json_compact): malloc'ed, or
 * NULL when there is no such member or on OOM. For values lanework keeps as
 * text (payloads) rather than decoding them through cJSON. */
char *lw_json_member_text(const char *text, size_t len, const char *name);

/* Where the first \u0000 escape (U+0000) of the JSON text p[0..n) is, or
 * NULL. cJSON decodes it into a NUL byte, which ends the C string it hands
 * out: "acme\u0000x" would be read, checked and used as "acme", so parsers
 * refuse it in every name and field they decode. */
const char *lw_json_nul_escape(const char *p, size_t n);

/* A JSON number of seconds in [0, max_s] (fractions allowed; > 0 when
 * `positive`) as milliseconds, rounded up so that a small positive value
 * stays positive (0 means "not given"). 0 with *out set, or -1 (*out
 * untouched) when v is not such a number. */
int lw_json_seconds_ms(const struct cJSON *v, int positive, double max_s, int64_t *out);

#endif

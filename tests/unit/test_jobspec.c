/* test_jobspec.c — job specs: --batch lines, validation, defaults. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jsonx.h"
#include "jobspec.h"
#include "tutil.h"

static int from_line(lw_job_spec *s, const char *line, char *err, size_t errlen)
{
    return lw_job_spec_from_json(s, line, strlen(line), err, errlen);
}

/* A line that must be refused with exactly `want`. */
static void line_fails(const char *line, const char *want)
{
    lw_job_spec s;
    char err[512] = "";
    lw_job_spec_init(&s);
    ck_assert_msg(from_line(&s, line, err, sizeof err) == -1, "%s accepted", line);
    ck_assert_str_eq(err, want);
    lw_job_spec_clear(&s);
}

START_TEST(init_clear)
{
    lw_job_spec s;
    lw_job_spec_init(&s);
    ck_assert_ptr_null(s.tenant);
    ck_assert_ptr_null(s.payload);
    ck_assert_int_eq(s.attempts, 0);
    ck_assert_int_eq(s.timeout_ms, 0);
    ck_assert_int_eq(s.backoff_ms, -1);
    ck_assert_int_eq(s.delay_ms, 0);
    ck_assert_int_eq(s.expires_ms, 0);
    s.kind = strdup("k");
    lw_job_spec_set_payload(&s, strdup("[1]"));
    lw_job_spec_set_payload(&s, strdup("[2]")); /* frees the first */
    ck_assert_str_eq(s.payload, "[2]");
    lw_job_spec_clear(&s);
    ck_assert_ptr_null(s.kind);
    ck_assert_ptr_null(s.payload);
    ck_assert_int_eq(s.backoff_ms, -1);
}
END_TEST

START_TEST(batch_line_all_fields)
{
    lw_job_spec s;
    char err[512] = "";
    lw_job_spec_init(&s);
    const char *line =
        "{\"tenant\": \"acme\", \"kind\": \"thumb\", \"lane\": \"user-7\", \"queue\": \"chat\", "
        "\"id\": \"job-1\", \"unique\": \"upload 42\", \"payload\": { \"path\" : \"/a b\", "
        "\"n\" : [1, 2.50, 12345678901234567891] }, \"delay\": 1.5, \"timeout\": 0.0001, "
        "\"expires\": 60, \"attempts\": 4}";
    ck_assert_msg(from_line(&s, line, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(s.tenant, "acme");
    ck_assert_str_eq(s.kind, "thumb");
    ck_assert_str_eq(s.lane, "user-7");
    ck_assert_str_eq(s.queue, "chat");
    ck_assert_str_eq(s.id, "job-1");
    ck_assert_str_eq(s.unique, "upload 42");
    /* Unformatted, and the numbers exactly as written. */
    ck_assert_str_eq(s.payload, "{\"path\":\"/a b\",\"n\":[1,2.50,12345678901234567891]}");
    ck_assert_int_eq(s.delay_ms, 1500);
    ck_assert_int_eq(s.timeout_ms, 1); /* rounded up: a timeout never becomes 0 */
    ck_assert_int_eq(s.expires_ms, 60000);
    ck_assert_int_eq(s.attempts, 4);
    ck_assert_int_eq(s.backoff_ms, -1);
    ck_assert_ptr_null(s.spool_dir);
    lw_job_spec_clear(&s);
}
END_TEST

START_TEST(batch_line_keeps_given)
{
    lw_job_spec s;
    char err[512] = "";
    lw_job_spec_init(&s);
    s.tenant = strdup("from-flag");
    s.queue = strdup("q1");
    ck_assert_int_eq(
        from_line(&s, "{\"kind\": \"k\", \"queue\": null, \"payload\": null}", err, sizeof err), 0);
    ck_assert_str_eq(s.tenant, "from-flag");
    ck_assert_str_eq(s.queue, "q1"); /* null: not given */
    ck_assert_str_eq(s.kind, "k");
    ck_assert_str_eq(s.payload, "null");
    ck_assert_int_eq(
        from_line(&s, "{\"tenant\": \"other\", \"payload\": \"text\"}", err, sizeof err), 0);
    ck_assert_str_eq(s.tenant, "other");
    ck_assert_str_eq(s.payload, "\"text\"");
    lw_job_spec_clear(&s);
}
END_TEST

START_TEST(batch_line_errors)
{
    line_fails("", "malformed JSON at column 1");
    line_fails("{\"kind\": \"k\",}", "malformed JSON at column 14");
    line_fails("[1]", "a batch line must be a JSON object (one job)");
    /* Valid by RFC 8259's grammar, refused by cJSON: not "out of memory". */
    line_fails("{\"kind\": \"k\", \"payload\": \"\\ud800\"}", "malformed JSON at column 27");
    line_fails(
        "{\"kind\": \"k\", \"payload\": 01}",
        "malformed JSON (strict JSON: no text after the object, numbers like 0.5 not .5 or 01, "
        "UTF-8 only)");
    line_fails("{\"kind\": \"k\"} {}",
               "malformed JSON (strict JSON: no text after the object, numbers "
               "like 0.5 not .5 or 01, UTF-8 only)");
    line_fails(
        "{\"kind\": \"k\", \"paylod\": 1}",
        "unknown field \"paylod\" (known: tenant, kind, lane, queue, id, unique, payload, delay, "
        "attempts, timeout, expires, unique_for)");
    line_fails("{\"kind\": \"k\", \"kind\": \"j\"}", "kind: given twice");
    line_fails("{\"kind\": 5}", "kind: must be a string");
    line_fails("{\"lane\": [\"x\"]}", "lane: must be a string");
    line_fails("{\"delay\": -1}", "delay: must be a number of seconds >= 0");
    line_fails("{\"delay\": \"5\"}", "delay: must be a number of seconds >= 0");
    line_fails("{\"expires\": -0.5}", "expires: must be a number of seconds >= 0");
    line_fails("{\"timeout\": 0}", "timeout: must be a number of seconds > 0");
    line_fails("{\"timeout\": 1e12}", "timeout: must be a number of seconds > 0");
    line_fails("{\"attempts\": 0}", "attempts: must be an integer >= 1");
    line_fails("{\"attempts\": 1.5}", "attempts: must be an integer >= 1");
    line_fails("{\"attempts\": \"3\"}", "attempts: must be an integer >= 1");
}
END_TEST

static void valid_spec(lw_job_spec *s)
{
    lw_job_spec_init(s);
    s->tenant = strdup("acme");
    s->kind = strdup("thumb");
}

/* Sets one field of a valid spec through `mutate` and expects `want`. */
static void invalid(void (*mutate)(lw_job_spec *), int64_t max, const char *want)
{
    lw_job_spec s;
    char err[512] = "";
    valid_spec(&s);
    mutate(&s);
    ck_assert_int_eq(lw_job_spec_validate(&s, max, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
    lw_job_spec_clear(&s);
}

static void no_tenant(lw_job_spec *s)
{
    free(s->tenant);
    s->tenant = NULL;
}
static void no_kind(lw_job_spec *s)
{
    free(s->kind);
    s->kind = NULL;
}
static void bad_tenant(lw_job_spec *s)
{
    free(s->tenant);
    s->tenant = strdup("a:b");
}
static void bad_kind(lw_job_spec *s)
{
    free(s->kind);
    s->kind = strdup(".x");
}
static void bad_queue(lw_job_spec *s) { s->queue = strdup("q q"); }
static void bad_lane(lw_job_spec *s) { s->lane = strdup("l/1"); }
static void bad_id(lw_job_spec *s) { s->id = strdup("../../etc"); }
static void long_id(lw_job_spec *s)
{
    s->id = calloc(1, 202);
    memset(s->id, 'a', 201);
}
static void empty_unique(lw_job_spec *s) { s->unique = strdup(""); }
static void long_unique(lw_job_spec *s)
{
    s->unique = calloc(1, 202);
    memset(s->unique, 'u', 201);
}
static void ctl_unique(lw_job_spec *s) { s->unique = strdup("a\nb"); }
static void latin1_unique(lw_job_spec *s) { s->unique = strdup("k\xff\xfe"); }
static void lonely_unique_for(lw_job_spec *s) { s->unique_for_ms = 1000; }
static void big_payload(lw_job_spec *s)
{
    s->payload = malloc(2000001);
    memset(s->payload, ' ', 2000000);
    s->payload[0] = '1';
    s->payload[2000000] = '\0';
}
static void bad_payload(lw_job_spec *s) { s->payload = strdup("{\"a\":"); }
static void neg_attempts(lw_job_spec *s) { s->attempts = -1; }
static void neg_timeout(lw_job_spec *s) { s->timeout_ms = -5; }
static void neg_backoff(lw_job_spec *s) { s->backoff_ms = -2; }
static void neg_delay(lw_job_spec *s) { s->delay_ms = -1; }
static void neg_expires(lw_job_spec *s) { s->expires_ms = -1; }

#define SAFE                                                                                       \
    "is not a safe name (letters, digits, '-', '_', '.'; not starting with '.'; at most 200 bytes)"

START_TEST(validate_refuses)
{
    invalid(no_tenant, 100, "tenant: missing");
    invalid(no_kind, 100, "kind: missing");
    invalid(bad_tenant, 100, "tenant: \"a:b\" " SAFE);
    invalid(bad_kind, 100, "kind: \".x\" " SAFE);
    invalid(bad_queue, 100, "queue: \"q q\" " SAFE);
    invalid(bad_lane, 100, "lane: \"l/1\" " SAFE);
    invalid(bad_id, 100, "id: \"../../etc\" " SAFE);
    invalid(long_id, 100,
            "id: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" " SAFE);
    invalid(empty_unique, 100, "unique: must be 1 to 200 bytes");
    invalid(long_unique, 100, "unique: must be 1 to 200 bytes");
    invalid(ctl_unique, 100, "unique: must not hold control characters");
    invalid(latin1_unique, 100, "unique: must be UTF-8 text");
    invalid(lonely_unique_for, 100, "unique_for: needs a unique key (unique) to hold");
    invalid(big_payload, 1048576,
            "payload: 2000000 bytes is over the limit of 1048576 (--max-payload)");
    invalid(bad_payload, 100, "payload: not valid JSON");
    invalid(neg_attempts, 100, "attempts: must be an integer >= 1");
    invalid(neg_timeout, 100, "timeout: must be a number of seconds > 0");
    invalid(neg_backoff, 100, "backoff: must be a number of seconds >= 0");
    invalid(neg_delay, 100, "delay: must be a number of seconds >= 0");
    invalid(neg_expires, 100, "expires: must be a number of seconds >= 0");
}
END_TEST

START_TEST(validate_accepts)
{
    lw_job_spec s;
    char err[512] = "";
    valid_spec(&s);
    ck_assert_int_eq(lw_job_spec_validate(&s, 100, err, sizeof err), 0);
    s.payload = strdup(" {\"a\": [1, 2]} ");
    s.unique = strdup("upload/42 ü");
    s.id = calloc(1, 201);
    memset(s.id, 'a', 200); /* exactly LW_NAME_MAX */
    s.lane = strdup("L-1_x.y");
    ck_assert_int_eq(lw_job_spec_validate(&s, 15, err, sizeof err),
                     0); /* payload is exactly 15 bytes */
    ck_assert_int_eq(lw_job_spec_validate(&s, 14, err, sizeof err), -1);
    ck_assert_str_eq(err, "payload: 15 bytes is over the limit of 14 (--max-payload)");
    lw_job_spec_clear(&s);
}
END_TEST

START_TEST(resolve_builtin)
{
    lw_job_spec s;
    valid_spec(&s);
    ck_assert_int_eq(lw_job_spec_resolve(&s, NULL), 0);
    ck_assert_uint_eq(strlen(s.id), 24);
    ck_assert_uint_eq(strspn(s.id, "0123456789abcdef"), 24);
    ck_assert_str_eq(s.lane, s.id);
    ck_assert_str_eq(s.queue, "default");
    ck_assert_str_eq(s.payload, "null");
    ck_assert_int_eq(s.attempts, LW_DEFAULT_ATTEMPTS);
    ck_assert_int_eq(s.timeout_ms, LW_DEFAULT_TIMEOUT_S * 1000);
    ck_assert_int_eq(s.backoff_ms, LW_DEFAULT_BACKOFF_MS);
    lw_job_spec_clear(&s);
}
END_TEST

START_TEST(resolve_tenant_defaults)
{
    lw_job_defaults d = {.attempts = 7, .timeout_ms = 2500, .backoff_ms = 0};
    lw_job_spec s;
    valid_spec(&s);
    s.id = strdup("given");
    ck_assert_int_eq(lw_job_spec_resolve(&s, &d), 0);
    ck_assert_str_eq(s.id, "given");
    ck_assert_str_eq(s.lane, "given");
    ck_assert_int_eq(s.attempts, 7);
    ck_assert_int_eq(s.timeout_ms, 2500);
    ck_assert_int_eq(s.backoff_ms, 0);
    lw_job_spec_clear(&s);

    /* Values given by the job win over the tenant's. */
    valid_spec(&s);
    s.lane = strdup("lane-a");
    s.queue = strdup("q");
    s.payload = strdup("[1]");
    s.attempts = 1;
    s.timeout_ms = 10;
    s.backoff_ms = 0;
    ck_assert_int_eq(lw_job_spec_resolve(&s, &d), 0);
    ck_assert_str_eq(s.lane, "lane-a");
    ck_assert_str_eq(s.queue, "q");
    ck_assert_str_eq(s.payload, "[1]");
    ck_assert_int_eq(s.attempts, 1);
    ck_assert_int_eq(s.timeout_ms, 10);
    ck_assert_int_eq(s.backoff_ms, 0);
    lw_job_spec_clear(&s);
}
END_TEST

/* Found by tests/fuzz/fuzz_jobspec: cJSON decodes \u0000 into a NUL byte,
 * so "acme\u0000x" was taken (and checked) as tenant "acme", and two unique
 * keys differing after a \u0000 were the same key. The payload is kept as
 * text and may hold it. */
START_TEST(batch_line_refuses_nul)
{
    line_fails("{\"tenant\": \"acme\\u0000x\", \"kind\": \"k\"}", "tenant: must not hold \\u0000");
    line_fails("{\"kind\": \"k\", \"unique\": \"u\\u0000a\"}", "unique: must not hold \\u0000");
    line_fails("{\"kind\": \"k\", \"id\": \"job-1\\u0000/../x\"}", "id: must not hold \\u0000");
    line_fails("{\"kind\\u0000x\": \"k\"}", "field name \"kind\\u0000x\" must not hold \\u0000");

    lw_job_spec s;
    char err[256] = "";
    lw_job_spec_init(&s);
    /* An escaped backslash followed by "u0000" is not U+0000. */
    ck_assert_int_eq(
        from_line(&s, "{\"kind\": \"k\\\\u0000\", \"payload\": [\"a\\u0000b\"]}", err, sizeof err),
        0);
    ck_assert_str_eq(s.kind, "k\\u0000");
    ck_assert_str_eq(s.payload, "[\"a\\u0000b\"]");
    lw_job_spec_clear(&s);
}
END_TEST

/* Nesting past LW_JSON_MAX_DEPTH is named as such, not as "not valid JSON",
 * in a payload and in a batch line; exactly the limit is accepted. */
START_TEST(too_deep_is_named)
{
    size_t n = LW_JSON_MAX_DEPTH + 1;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    lw_job_spec s;
    char err[512] = "";
    lw_job_spec_init(&s);
    s.tenant = strdup("t");
    s.kind = strdup("k");
    lw_job_spec_set_payload(&s, strdup(deep));
    ck_assert_int_eq(lw_job_spec_validate(&s, 0, err, sizeof err), -1);
    ck_assert_str_eq(err, "payload: JSON nested deeper than 1000 levels");
    deep[2 * n - 1] = '\0'; /* 1000 deep: accepted */
    lw_job_spec_set_payload(&s, strdup(deep + 1));
    ck_assert_int_eq(lw_job_spec_validate(&s, 0, err, sizeof err), 0);
    lw_job_spec_clear(&s);
    deep[2 * n - 1] = ']';

    char *line = malloc(2 * n + 64);
    snprintf(line, 2 * n + 64, "{\"kind\":\"k\",\"payload\":%s}", deep);
    line_fails(line, "JSON nested deeper than 1000 levels");
    free(line);
    free(deep);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jobspec");
    TCase *tc = tcase_create("jobspec");
    tcase_add_test(tc, init_clear);
    tcase_add_test(tc, batch_line_all_fields);
    tcase_add_test(tc, batch_line_keeps_given);
    tcase_add_test(tc, batch_line_errors);
    tcase_add_test(tc, batch_line_refuses_nul);
    tcase_add_test(tc, validate_refuses);
    tcase_add_test(tc, validate_accepts);
    tcase_add_test(tc, resolve_builtin);
    tcase_add_test(tc, resolve_tenant_defaults);
    tcase_add_test(tc, too_deep_is_named);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

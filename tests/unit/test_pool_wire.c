/* test_pool_wire.c — the job frame a pool child reads (worker/pool_wire.c):
 * every field survives the trip, a spool dir that is absent stays absent,
 * and a body that is not such a job (fields missing, a number that is not
 * one) is refused rather than half read. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "pool_wire.h"
#include "tutil.h"

static attempt sample(void)
{
    attempt a;
    memset(&a, 0, sizeof a);
    a.serial = 1234567890123ULL;
    a.attempt = 2;
    a.attempts = 5;
    a.timeout_ms = 30000;
    a.backoff_ms = 250;
    a.max_payload = 1048576;
    a.id = "01abc";
    a.kind = "echo";
    a.tenant_name = "acme";
    a.lane = "L";
    a.queue = "default";
    a.spool_dir = NULL;
    a.payload = "{\"x\":[1,2],\"s\":\"a b\"}";
    return a;
}

/* The body of frame f (header checked), copied with room for the NUL. */
static char *body_of(const char *frame, size_t len, size_t *blen)
{
    lw_frame f;
    size_t over = 0;
    ck_assert_int_eq(lw_frame_next(frame, len, 1 << 24, &f, &over), (long)len);
    ck_assert_int_eq(f.type, 'J');
    char *b = malloc(f.len + 1);
    memcpy(b, f.body, f.len);
    *blen = f.len;
    return b;
}

START_TEST(round_trip)
{
    attempt a = sample();
    size_t len, blen;
    char *frame = pool_wire_job(&a, &len);
    ck_assert_ptr_nonnull(frame);
    char *body = body_of(frame, len, &blen);
    attempt b;
    memset(&b, 0, sizeof b);
    uint64_t serial = 0;
    ck_assert_int_eq(pool_wire_read_job(body, blen, &b, &serial), 0);
    ck_assert(serial == a.serial);
    ck_assert_int_eq(b.attempt, 2);
    ck_assert_int_eq(b.attempts, 5);
    ck_assert_int_eq(b.timeout_ms, 30000);
    ck_assert_int_eq(b.backoff_ms, 250);
    ck_assert_uint_eq(b.max_payload, 1048576);
    ck_assert_str_eq(b.id, "01abc");
    ck_assert_str_eq(b.kind, "echo");
    ck_assert_str_eq(b.tenant_name, "acme");
    ck_assert_str_eq(b.lane, "L");
    ck_assert_str_eq(b.queue, "default");
    ck_assert_ptr_null(b.spool_dir);
    ck_assert_str_eq(b.payload, a.payload);
    free(body);
    free(frame);
    /* A spooled job keeps its dir; an empty payload stays empty. */
    a.spool_dir = "/spool/01abc";
    a.payload = "";
    frame = pool_wire_job(&a, &len);
    body = body_of(frame, len, &blen);
    ck_assert_int_eq(pool_wire_read_job(body, blen, &b, &serial), 0);
    ck_assert_str_eq(b.spool_dir, "/spool/01abc");
    ck_assert_str_eq(b.payload, "");
    free(body);
    free(frame);
}
END_TEST

START_TEST(malformed_bodies_are_refused)
{
    attempt b;
    memset(&b, 0, sizeof b);
    uint64_t serial;
    char buf[256];
    /* Too few fields. */
    static const char few[] = "1\0"
                              "1\0"
                              "3\0"
                              "0\0"
                              "0\0"
                              "100\0"
                              "id\0"
                              "kind";
    memcpy(buf, few, sizeof few - 1);
    ck_assert_int_eq(pool_wire_read_job(buf, sizeof few - 1, &b, &serial), -1);
    /* A number that is not one. */
    static const char nan[] = "1\0"
                              "x\0"
                              "3\0"
                              "0\0"
                              "0\0"
                              "100\0"
                              "id\0"
                              "k\0"
                              "t\0"
                              "l\0"
                              "q\0"
                              "\0"
                              "{}";
    memcpy(buf, nan, sizeof nan - 1);
    ck_assert_int_eq(pool_wire_read_job(buf, sizeof nan - 1, &b, &serial), -1);
    /* Negative, and empty. */
    static const char neg[] = "1\0"
                              "-1\0"
                              "3\0"
                              "0\0"
                              "0\0"
                              "100\0"
                              "id\0"
                              "k\0"
                              "t\0"
                              "l\0"
                              "q\0"
                              "\0"
                              "{}";
    memcpy(buf, neg, sizeof neg - 1);
    ck_assert_int_eq(pool_wire_read_job(buf, sizeof neg - 1, &b, &serial), -1);
    ck_assert_int_eq(pool_wire_read_job(buf, 0, &b, &serial), -1);
    ck_assert_ptr_null(b.id); /* nothing half read */
    /* The smallest valid one. */
    static const char ok[] = "7\0"
                             "1\0"
                             "3\0"
                             "0\0"
                             "0\0"
                             "100\0"
                             "id\0"
                             "k\0"
                             "t\0"
                             "l\0"
                             "q\0"
                             "\0"
                             "{}";
    memcpy(buf, ok, sizeof ok - 1);
    ck_assert_int_eq(pool_wire_read_job(buf, sizeof ok - 1, &b, &serial), 0);
    ck_assert(serial == 7);
    ck_assert_str_eq(b.payload, "{}");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool_wire");
    TCase *tc = tcase_create("pool_wire");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, malformed_bodies_are_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

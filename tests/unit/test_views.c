/* test_views.c — what `lanework status` and `lanework events` print. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tutil.h"
#include "views.h"

/* Builds the view of a record given as a NULL-terminated field/value list. */
static char *job_view(const char *tenant, const char *const *pairs)
{
    size_t n = 0, lens[64];
    while (pairs[n])
        n++;
    ck_assert_uint_le(n, 64);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(pairs[i]);
    return lw_view_job(tenant, pairs, lens, n);
}

static char *event_view(const char *id, const char *const *pairs)
{
    size_t n = 0, lens[64];
    while (pairs[n])
        n++;
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(pairs[i]);
    return lw_view_event(id, pairs, lens, n);
}

START_TEST(job_every_field)
{
    const char *rec[] = {
        "id",       "j1",
        "kind",     "thumb",
        "queue",    "chat",
        "lane",     "user-7",
        "payload",  "{ \"path\" : \"/a b\", \"n\" : 12345678901234567891 }",
        "status",   "failed",
        "attempt",  "3",
        "attempts", "3",
        "timeout",  "180000",
        "backoff",  "1000",
        "enqueued", "1795338223308",
        "started",  "1795338224000",
        "finished", "1795338225001",
        "run_at",   "1795338223999",
        "expires",  "1795338283308",
        "result",   "[1, 2]",
        "error",    "exit 1: \"bad\"\n",
        "worker",   "w-1",
        "token",    "42",
        "unique",   "upload-42",
        "spool",    "/var/spool/j1",
        "cancel",   "1",
        NULL,
    };
    char *v = job_view("acme", rec);
    ck_assert_str_eq(
        v,
        "{\"id\":\"j1\",\"tenant\":\"acme\",\"kind\":\"thumb\",\"queue\":\"chat\",\"lane\":\"user-7\","
        "\"status\":\"failed\",\"payload\":{\"path\":\"/a b\",\"n\":12345678901234567891},"
        "\"attempt\":3,\"attempts\":3,\"timeout\":180,"
        "\"enqueued_at\":\"2026-11-22T09:03:43.308Z\",\"started_at\":\"2026-11-22T09:03:44.000Z\","
        "\"finished_at\":\"2026-11-22T09:03:45.001Z\",\"result\":[1,2],\"error\":\"exit 1: \\\"bad\\\"\\n\","
        "\"worker\":\"w-1\",\"run_at\":\"2026-11-22T09:03:43.999Z\",\"expires_at\":\"2026-11-22T09:04:43.308Z\","
        "\"unique\":\"upload-42\",\"spool_dir\":\"/var/spool/j1\"}");
    free(v);
}
END_TEST

START_TEST(job_missing_fields)
{
    const char *rec[] = {
        "id",       "j2",      "kind",     "k",      "queue",    "default",       "lane",
        "j2",       "payload", "not json", "status", "queued",   "attempt",       "0",
        "attempts", "3",       "timeout",  "1500",   "enqueued", "1795338223308", "worker",
        "",         "error",   "",         "unique", "",         "spool",         "",
        "result",   "",        NULL,
    };
    char *v = job_view("t", rec);
    ck_assert_str_eq(
        v,
        "{\"id\":\"j2\",\"tenant\":\"t\",\"kind\":\"k\",\"queue\":\"default\",\"lane\":\"j2\","
        "\"status\":\"queued\",\"payload\":\"not json\",\"attempt\":0,\"attempts\":3,\"timeout\":1.5,"
        "\"enqueued_at\":\"2026-11-22T09:03:43.308Z\",\"started_at\":null,\"finished_at\":null,"
        "\"result\":null,\"error\":null,\"worker\":null,\"run_at\":null,\"expires_at\":null,"
        "\"unique\":null,\"spool_dir\":null}");
    free(v);

    /* Only the id: everything else null. */
    const char *bare[] = {"id", "j3", NULL};
    v = job_view("t", bare);
    ck_assert_str_eq(
        v,
        "{\"id\":\"j3\",\"tenant\":\"t\",\"kind\":null,\"queue\":null,\"lane\":null,\"status\":null,"
        "\"payload\":null,\"attempt\":null,\"attempts\":null,\"timeout\":null,\"enqueued_at\":null,"
        "\"started_at\":null,\"finished_at\":null,\"result\":null,\"error\":null,\"worker\":null,"
        "\"run_at\":null,\"expires_at\":null,\"unique\":null,\"spool_dir\":null}");
    free(v);
}
END_TEST

START_TEST(job_odd_values)
{
    /* Corrupt numbers print as null, invalid JSON results as strings, bytes
     * that are not UTF-8 as U+FFFD: the output stays valid JSON. */
    const char *rec[] = {
        "id",       "j4", "attempt", "x1",   "attempts", "",        "timeout", "-5",
        "enqueued", "0",  "started", "soon", "result",   "{\"a\":", "error",   "bad \xff byte",
        "payload",  "01", NULL,
    };
    char *v = job_view("t", rec);
    ck_assert_str_eq(
        v,
        "{\"id\":\"j4\",\"tenant\":\"t\",\"kind\":null,\"queue\":null,\"lane\":null,\"status\":null,"
        "\"payload\":\"01\",\"attempt\":null,\"attempts\":null,\"timeout\":null,\"enqueued_at\":null,"
        "\"started_at\":null,\"finished_at\":null,\"result\":\"{\\\"a\\\":\",\"error\":\"bad \\ufffd byte\","
        "\"worker\":null,\"run_at\":null,\"expires_at\":null,\"unique\":null,\"spool_dir\":null}");
    free(v);
}
END_TEST

START_TEST(job_timeouts)
{
    static const char *const cases[][2] = {
        {"180000", "180"}, {"1500", "1.5"}, {"1", "0.001"},
        {"1010", "1.01"},  {"0", "0"},      {"999", "0.999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *rec[] = {"id", "j", "timeout", cases[i][0], NULL};
        char *v = job_view("t", rec);
        char want[64];
        snprintf(want, sizeof want, "\"timeout\":%s,", cases[i][1]);
        ck_assert_msg(strstr(v, want) != NULL, "%s -> %s", cases[i][0], v);
        free(v);
    }
}
END_TEST

START_TEST(job_without_id)
{
    const char *rec[] = {"kind", "k", "status", "queued", NULL};
    ck_assert_ptr_null(job_view("t", rec));
    const char *none[] = {NULL};
    ck_assert_ptr_null(job_view("t", none));
}
END_TEST

START_TEST(event_fields)
{
    const char *ev[] = {"type", "job.failed",       "job",     "j1", "kind",   "thumb",
                        "lane", "user-7",           "attempt", "2",  "worker", "w-1",
                        "data", "{\"lost\": true}", NULL};
    char *v = event_view("1795338223308-1", ev);
    ck_assert_str_eq(
        v, "{\"id\":\"1795338223308-1\",\"type\":\"job.failed\",\"job\":\"j1\",\"kind\":\"thumb\","
           "\"lane\":\"user-7\",\"attempt\":2,\"worker\":\"w-1\","
           "\"ts\":\"2026-11-22T09:03:43.308Z\",\"data\":{\"lost\":true}}");
    free(v);

    const char *ev2[] = {"type",    "job.queued", "job",    "j2", "kind", "k", "lane", "j2",
                         "attempt", "0",          "worker", "",   "data", "",  NULL};
    v = event_view("1700000000123-0", ev2);
    ck_assert_str_eq(
        v, "{\"id\":\"1700000000123-0\",\"type\":\"job.queued\",\"job\":\"j2\",\"kind\":\"k\","
           "\"lane\":\"j2\",\"attempt\":0,\"worker\":null,\"ts\":\"2023-11-14T22:13:20.123Z\","
           "\"data\":null}");
    free(v);

    const char *ev3[] = {"type", "step.created", "data", "not json", NULL};
    v = event_view("1-0", ev3);
    ck_assert_str_eq(
        v, "{\"id\":\"1-0\",\"type\":\"step.created\",\"job\":null,\"kind\":null,\"lane\":null,"
           "\"attempt\":null,\"worker\":null,\"ts\":\"1970-01-01T00:00:00.001Z\","
           "\"data\":\"not json\"}");
    free(v);

    const char *ev4[] = {NULL};
    v = event_view("garbage", ev4);
    ck_assert_str_eq(v,
                     "{\"id\":\"garbage\",\"type\":null,\"job\":null,\"kind\":null,\"lane\":null,"
                     "\"attempt\":null,\"worker\":null,\"ts\":null,\"data\":null}");
    free(v);
}
END_TEST

START_TEST(terminal)
{
    ck_assert_int_eq(lw_status_is_terminal("succeeded"), 1);
    ck_assert_int_eq(lw_status_is_terminal("failed"), 1);
    ck_assert_int_eq(lw_status_is_terminal("cancelled"), 1);
    ck_assert_int_eq(lw_status_is_terminal("expired"), 1);
    ck_assert_int_eq(lw_status_is_terminal("queued"), 0);
    ck_assert_int_eq(lw_status_is_terminal("scheduled"), 0);
    ck_assert_int_eq(lw_status_is_terminal("active"), 0);
    ck_assert_int_eq(lw_status_is_terminal(""), 0);
    ck_assert_int_eq(lw_status_is_terminal(NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("views");
    TCase *tc = tcase_create("views");
    tcase_add_test(tc, job_every_field);
    tcase_add_test(tc, job_missing_fields);
    tcase_add_test(tc, job_odd_values);
    tcase_add_test(tc, job_timeouts);
    tcase_add_test(tc, job_without_id);
    tcase_add_test(tc, event_fields);
    tcase_add_test(tc, terminal);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

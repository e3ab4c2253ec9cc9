/* test_metrics_series.c — the worker's counters and histograms (worker/metrics.c):
 * one series per (tenant, queue[, kind, outcome]) however many there are
 * (found through the hash tables), buckets cumulative at render, label
 * values escaped, and each family's HELP and TYPE once. No loop, no Redis. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tutil.h"

/* Lines of text starting with prefix (one pass: the sanitizers' strstr
 * measures the whole haystack at every call). */
static size_t count_of(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (const char *p = text; *p;) {
        n += strncmp(p, prefix, len) == 0;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

START_TEST(many_series_each_once)
{
    metrics m;
    memset(&m, 0, sizeof m);
    char t[32], q[32];
    /* 300 tenants x 5 queues, each attempt counted twice. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++)
            for (int j = 0; j < 5; j++) {
                snprintf(t, sizeof t, "t%04d", i);
                snprintf(q, sizeof q, "q%d", j);
                metrics_attempt(&m, t, q, "noop", "succeeded", 0.002);
                metrics_wait(&m, t, q, 0.2);
            }
    metrics_wait(&m, "t0007", "q3", 4000); /* past the last bucket: +Inf only */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(metrics_render(&m, &buf, &len, &cap), 0);
    ck_assert_uint_eq(count_of(buf, "lanework_jobs_total{"), 1500);
    ck_assert_uint_eq(count_of(buf, "lanework_attempt_duration_seconds_count{"), 1500);
    ck_assert_uint_eq(count_of(buf, "lanework_queue_wait_seconds_count{"), 1500);
    ck_assert_ptr_nonnull(strstr(
        buf,
        "lanework_jobs_total{tenant=\"t0123\",queue=\"q4\",kind=\"noop\",outcome=\"succeeded\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(
        buf,
        "lanework_attempt_duration_seconds_bucket{tenant=\"t0123\",queue=\"q4\",le=\"0.001\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(
        buf,
        "lanework_attempt_duration_seconds_bucket{tenant=\"t0123\",queue=\"q4\",le=\"0.005\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(
        buf, "lanework_queue_wait_seconds_bucket{tenant=\"t0007\",queue=\"q3\",le=\"3600\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(
        buf, "lanework_queue_wait_seconds_bucket{tenant=\"t0007\",queue=\"q3\",le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(
        strstr(buf, "lanework_queue_wait_seconds_count{tenant=\"t0007\",queue=\"q3\"} 3\n"));
    const char *fams[] = {"lanework_jobs_total", "lanework_attempt_duration_seconds",
                          "lanework_queue_wait_seconds"};
    for (size_t i = 0; i < sizeof fams / sizeof *fams; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", fams[i]);
        snprintf(type, sizeof type, "# TYPE %s ", fams[i]);
        ck_assert_uint_eq(count_of(buf, help), 1);
        ck_assert_uint_eq(count_of(buf, type), 1);
    }
    free(buf);
    metrics_clear(&m);
    ck_assert_ptr_null(m.jobs);
    ck_assert_ptr_null(m.waits);
}
END_TEST

START_TEST(labels_escaped)
{
    char out[64];
    ck_assert_str_eq(metrics_esc(out, sizeof out, "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    ck_assert_str_eq(metrics_esc(out, 6, "abcdefgh"), "abc");
    metrics m;
    memset(&m, 0, sizeof m);
    metrics_attempt(&m, "t\"1", "q\n", "k", "failed", 1);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(metrics_render(&m, &buf, &len, &cap), 0);
    ck_assert_ptr_nonnull(strstr(
        buf,
        "lanework_jobs_total{tenant=\"t\\\"1\",queue=\"q\\n\",kind=\"k\",outcome=\"failed\"} 1\n"));
    free(buf);
    metrics_clear(&m);
}
END_TEST

/* A kind is the job's, which the tenant writes: a million of them make
 * METRICS_MAX_KINDS series and one "_other", and a kind that is no safe
 * name (a quote, a newline, bytes that are not UTF-8, which Prometheus
 * refuses the whole page for) is counted as "_other" too. */
START_TEST(kinds_of_a_tenant_capped)
{
    metrics m;
    memset(&m, 0, sizeof m);
    char k[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof k, "k%06d", i);
        metrics_attempt(&m, "hostile", "default", k, "failed", 0.001);
    }
    metrics_attempt(&m, "hostile", "default", "k000003", "failed", 0.001);
    metrics_attempt(&m, "calm", "default", "noop", "succeeded", 0.001);
    metrics_attempt(&m, "calm", "default", "bad\xff\xfe", "failed", 0.001);
    metrics_attempt(&m, "calm", "default", "quote\"}\n# TYPE x counter", "failed", 0.001);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(metrics_render(&m, &buf, &len, &cap), 0);
    ck_assert_uint_eq(count_of(buf, "lanework_jobs_total{tenant=\"hostile\""),
                      METRICS_MAX_KINDS + 1);
    ck_assert_ptr_nonnull(strstr(buf, "lanework_jobs_total{tenant=\"hostile\",queue=\"default\","
                                      "kind=\"k000003\",outcome=\"failed\"} 2\n"));
    char other[256];
    snprintf(other, sizeof other,
             "lanework_jobs_total{tenant=\"hostile\",queue=\"default\",kind=\"_other\","
             "outcome=\"failed\"} %d\n",
             100000 - METRICS_MAX_KINDS);
    ck_assert_ptr_nonnull(strstr(buf, other));
    ck_assert_ptr_nonnull(strstr(buf, "lanework_jobs_total{tenant=\"calm\",queue=\"default\","
                                      "kind=\"_other\",outcome=\"failed\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(buf, "kind=\"noop\""));
    ck_assert_ptr_null(strstr(buf, "\xff"));
    ck_assert_ptr_null(strstr(buf, "quote"));
    free(buf);
    metrics_clear(&m);
    ck_assert_ptr_null(m.kinds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 60); /* the sanitized build scans the page slowly */
    tcase_add_test(tc, many_series_each_once);
    tcase_add_test(tc, labels_escaped);
    tcase_add_test(tc, kinds_of_a_tenant_capped);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

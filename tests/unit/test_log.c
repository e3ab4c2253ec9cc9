/* test_log.c — log lines: text and JSON formats, levels, one line each. */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tutil.h"

static char *dir;
static int saved_stderr = -1;

/* Sends fd 2 to a file for the test (each test runs in its own process). */
static void setup(void)
{
    dir = tu_tmpdir();
    char *p = tu_path(dir, "stderr");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    saved_stderr = dup(2);
    ck_assert_int_eq(dup2(fd, 2), 2);
    close(fd);
    free(p);
}

static void teardown(void)
{
    dup2(saved_stderr, 2);
    close(saved_stderr);
    tu_rmrf(dir);
    free(dir);
}

static char *captured(void) { return tu_read(dir, "stderr"); }

START_TEST(text_lines)
{
    lw_log_setup(LW_LOG_INFO, 0);
    lw_log(LW_LOG_INFO, "job.succeeded", "job=%s kind=%s", "abc", "exam");
    lw_log(LW_LOG_ERROR, "redis.error", "code %d", 7);
    lw_log(LW_LOG_WARN, "spool.skip", "tail:\nline2\tx\x01");
    lw_log(LW_LOG_DEBUG, "hidden", "not shown at info");
    char *out = captured();
    /* "2026-11-22T08:03:00.123Z info  EVENT message" */
    char *l1 = out, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    ck_assert_int_eq(l1[4], '-');
    ck_assert_int_eq(l1[10], 'T');
    ck_assert_int_eq(l1[19], '.');
    ck_assert_int_eq(l1[23], 'Z');
    ck_assert_int_eq(strncmp(l1 + 24, " info  job.succeeded job=abc kind=exam\n", 39), 0);
    ck_assert_int_eq(strncmp(l2 + 24, " error redis.error code 7\n", 26), 0);
    ck_assert_int_eq(strcmp(l3 + 24, " warn  spool.skip tail:\\nline2\\tx\\x01\n"), 0);
    free(out);
}
END_TEST

START_TEST(json_lines)
{
    lw_log_setup(LW_LOG_DEBUG, 1);
    lw_log(LW_LOG_DEBUG, "job.failed", "error=\"%s\"", "a\nb\\c");
    lw_log(LW_LOG_WARN, "w", "bad byte \xff");
    char *out = captured();
    char *nl = strchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(j->child->string, "ts");
    ck_assert_uint_eq(strlen(cJSON_GetObjectItem(j, "ts")->valuestring), 24);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, "debug");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "event")->valuestring, "job.failed");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring, "error=\"a\nb\\c\"");
    cJSON_Delete(j);
    ck_assert_int_eq(strncmp(out, "{\"ts\":\"", 7), 0);
    ck_assert_str_eq(
        out + 31,
        "\",\"level\":\"debug\",\"event\":\"job.failed\",\"msg\":\"error=\\\"a\\nb\\\\c\\\"\"}");
    ck_assert_ptr_nonnull(
        strstr(nl + 1, "\"level\":\"warn\",\"event\":\"w\",\"msg\":\"bad byte \\ufffd\"}\n"));
    free(out);
}
END_TEST

START_TEST(levels)
{
    lw_log_level l;
    ck_assert_int_eq(lw_log_level_parse("error", &l), 0);
    ck_assert_int_eq(l, LW_LOG_ERROR);
    ck_assert_int_eq(lw_log_level_parse("warn", &l), 0);
    ck_assert_int_eq(l, LW_LOG_WARN);
    ck_assert_int_eq(lw_log_level_parse("info", &l), 0);
    ck_assert_int_eq(l, LW_LOG_INFO);
    ck_assert_int_eq(lw_log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, LW_LOG_DEBUG);
    ck_assert_int_eq(lw_log_level_parse("verbose", &l), -1);
    ck_assert_int_eq(lw_log_level_parse("INFO", &l), -1);
    ck_assert_int_eq(lw_log_level_parse(NULL, &l), -1);

    lw_log_setup(LW_LOG_WARN, 0);
    ck_assert_int_eq(lw_log_enabled(LW_LOG_ERROR), 1);
    ck_assert_int_eq(lw_log_enabled(LW_LOG_WARN), 1);
    ck_assert_int_eq(lw_log_enabled(LW_LOG_INFO), 0);
    lw_log(LW_LOG_INFO, "x", "dropped");
    lw_log(LW_LOG_ERROR, "y", "kept");
    char *out = captured();
    ck_assert_ptr_null(strstr(out, "dropped"));
    ck_assert_str_eq(out + 24, " error y kept\n");
    free(out);
}
END_TEST

START_TEST(long_message)
{
    char *big = malloc(100001);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    lw_log_setup(LW_LOG_INFO, 0);
    lw_log(LW_LOG_INFO, "big", "%s", big);
    char *out = captured();
    ck_assert_uint_eq(strlen(out), 24 + 11 + 100000 + 1); /* " info  big " */
    ck_assert_int_eq(out[strlen(out) - 1], '\n');
    free(out);
    free(big);
}
END_TEST

START_TEST(text_facts)
{
    lw_log_setup(LW_LOG_INFO, 0);
    lw_log_facts f = {.job = "abc",
                      .tenant = "acme",
                      .kind = "exam",
                      .queue = "default",
                      .lane = "a b",
                      .worker = "w=1",
                      .attempt = 1,
                      .attempts = 3,
                      .has_duration = 1,
                      .duration_s = 2.0014};
    lw_log_about(LW_LOG_WARN, "job.done", f, "failed after %.1f s: %s", 2.0, "boom");
    /* Only the facts that are set; a reaper line knows job and tenant. */
    lw_log_about(LW_LOG_INFO, "job.lost", (lw_log_facts){.job = "x\ny", .tenant = "t\"1"},
                 "retrying");
    char *out = captured();
    char *l2 = strchr(out, '\n') + 1;
    ck_assert_int_eq(
        strncmp(out + 24,
                " warn  job.done job=abc tenant=acme kind=exam queue=default lane=\"a b\" attempt=1"
                " attempts=3 worker=\"w=1\" duration_s=2.001 failed after 2.0 s: boom\n",
                l2 - out - 24),
        0);
    ck_assert_str_eq(l2 + 24, " info  job.lost job=\"x\\ny\" tenant=\"t\\\"1\" retrying\n");
    free(out);
}
END_TEST

START_TEST(json_facts)
{
    lw_log_setup(LW_LOG_INFO, 1);
    lw_log_facts f = {.job = "abc",
                      .tenant = "acme",
                      .kind = "exam",
                      .queue = "default",
                      .lane = "L\"1",
                      .worker = "w1",
                      .attempt = 2,
                      .attempts = 3,
                      .has_duration = 1,
                      .duration_s = 0.25};
    lw_log_about(LW_LOG_WARN, "job.done", f, "retry after %.3f s: %s", 0.25, "boom");
    lw_log_about(LW_LOG_INFO, "job.lost", (lw_log_facts){.job = "j2", .tenant = "acme"},
                 "retrying");
    char *out = captured();
    char *nl = strchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    const char *strs[][2] = {{"event", "job.done"}, {"job", "abc"},
                             {"tenant", "acme"},    {"kind", "exam"},
                             {"queue", "default"},  {"lane", "L\"1"},
                             {"worker", "w1"},      {"msg", "retry after 0.250 s: boom"}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        cJSON *v = cJSON_GetObjectItem(j, strs[i][0]);
        ck_assert_msg(cJSON_IsString(v), "field %s", strs[i][0]);
        ck_assert_str_eq(v->valuestring, strs[i][1]);
    }
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "attempt")));
    ck_assert_int_eq(cJSON_GetObjectItem(j, "attempt")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "attempts")->valueint, 3);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "duration_s")));
    ck_assert_double_eq(cJSON_GetObjectItem(j, "duration_s")->valuedouble, 0.25);
    cJSON_Delete(j);
    /* Unset facts are absent, not empty. */
    j = cJSON_Parse(nl + 1);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "job")->valuestring, "j2");
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "kind"));
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "attempt"));
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "duration_s"));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring, "retrying");
    cJSON_Delete(j);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, text_lines);
    tcase_add_test(tc, json_lines);
    tcase_add_test(tc, levels);
    tcase_add_test(tc, long_message);
    tcase_add_test(tc, text_facts);
    tcase_add_test(tc, json_facts);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

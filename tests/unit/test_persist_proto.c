/* test_persist_proto.c — the persistent-handler protocol lines
 * (worker/persist_proto.c): the job line as the worker writes it, and every
 * kind of answer a handler process may write, good or hostile. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "persist_proto.h"
#include "tutil.h"

START_TEST(job_line)
{
    persist_job j = {.id = "j1",
                     .tenant = "acme",
                     .kind = "exam",
                     .queue = "default",
                     .lane = "L\"x",
                     .payload = "{\n  \"a\": [1, 2],\n  \"s\": \"x\\ny\"\n}",
                     .spool_dir = NULL,
                     .attempt = 2,
                     .attempts = 3,
                     .timeout_ms = 180000};
    size_t len;
    char *line = persist_job_line(&j, &len);
    ck_assert_ptr_nonnull(line);
    ck_assert_uint_eq(len, strlen(line));
    ck_assert_str_eq(line, "{\"type\":\"job\",\"id\":\"j1\",\"tenant\":\"acme\",\"kind\":\"exam\","
                           "\"queue\":\"default\","
                           "\"lane\":\"L\\\"x\",\"attempt\":2,\"attempts\":3,\"timeout\":180,"
                           "\"payload\":{\"a\":[1,2],\"s\":\"x\\ny\"},\"spool_dir\":null}\n");
    free(line);
    j.payload = "12345678901234567891"; /* kept byte for byte, not through a double */
    j.spool_dir = "/sp/j1";
    j.timeout_ms = 1500;
    line = persist_job_line(&j, NULL);
    ck_assert_ptr_nonnull(strstr(
        line, "\"timeout\":1.500,\"payload\":12345678901234567891,\"spool_dir\":\"/sp/j1\"}\n"));
    free(line);
    line = persist_cancel_line("j\"1", &len);
    ck_assert_str_eq(line, "{\"type\":\"cancel\",\"id\":\"j\\\"1\"}\n");
    free(line);
}
END_TEST

static int parse(const char *line, persist_msg *m, char *why)
{
    return persist_parse_line(line, strlen(line), m, why, 300);
}

START_TEST(answers)
{
    persist_msg m;
    char why[300] = "";
    ck_assert_int_eq(
        parse("{\"type\":\"event\",\"event\":\"step.created\",\"data\":{ \"n\" : 1 }}", &m, why),
        0);
    ck_assert_int_eq(m.type, PERSIST_EVENT);
    ck_assert_str_eq(m.event, "step.created");
    ck_assert_str_eq(m.data, "{\"n\":1}");
    persist_msg_clear(&m);
    ck_assert_int_eq(parse("{\"type\":\"event\",\"event\":\"x\",\"data\":null}", &m, why), 0);
    ck_assert_ptr_null(m.data);
    persist_msg_clear(&m);
    ck_assert_int_eq(parse("{\"result\":12345678901234567891,\"type\":\"result\"}\r", &m, why), 0);
    ck_assert_int_eq(m.type, PERSIST_RESULT);
    ck_assert_str_eq(m.result, "12345678901234567891");
    persist_msg_clear(&m);
    ck_assert_int_eq(parse("{\"type\":\"result\"}", &m, why), 0);
    ck_assert_str_eq(m.result, "null");
    persist_msg_clear(&m);
    ck_assert_int_eq(parse("{\"type\":\"error\",\"error\":\"bad \\u00e9\"}", &m, why), 0);
    ck_assert_int_eq(m.type, PERSIST_ERROR);
    ck_assert_str_eq(m.error, "bad \xc3\xa9");
    ck_assert_int_eq(m.retry, 1);
    persist_msg_clear(&m);
    ck_assert_int_eq(parse("{\"type\":\"error\",\"error\":{\"code\":3},\"retry\":false}", &m, why),
                     0);
    ck_assert_str_eq(m.error, "{\"code\":3}");
    ck_assert_int_eq(m.retry, 0);
    persist_msg_clear(&m);
    ck_assert_int_eq(parse("", &m, why), 1);
    ck_assert_int_eq(parse("  \t\r", &m, why), 1);
}
END_TEST

START_TEST(not_the_protocol)
{
    static const char *const bad[][2] = {
        {"hello",
         "wrote a line that is not JSON on stdout (hello); stdout is the protocol, log to stderr"},
        {"{\"type\":\"result\"",
         "wrote a line that is not JSON on stdout ({\"type\":\"result\"); stdout is the "
         "protocol, log to stderr"},
        {"[1,2]", "wrote a JSON line that is not an object ([1,2])"},
        {"{\"result\":1}", "wrote a line without a string \"type\" ({\"result\":1})"},
        {"{\"type\":5}", "wrote a line without a string \"type\" ({\"type\":5})"},
        {"{\"type\":\"progress\"}",
         "wrote a line of unknown type \"progress\" (known: event, result, error)"},
        {"{\"type\":\"event\",\"data\":1}",
         "wrote an event line without an \"event\" name ({\"type\":\"event\",\"data\":1})"},
        {"{\"type\":\"event\",\"event\":\"\"}",
         "wrote an event line without an \"event\" name ({\"type\":\"event\",\"event\":\"\"})"},
        {"{\"type\":\"error\",\"retry\":\"no\"}",
         "wrote an error line whose \"retry\" is not true or false "
         "({\"type\":\"error\",\"retry\":\"no\"})"},
        {"{\"type\":\"ev\\u0000ent\"}",
         "wrote a line without a string \"type\" ({\"type\":\"ev\\u0000ent\"})"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        persist_msg m;
        char why[300] = "";
        ck_assert_msg(parse(bad[i][0], &m, why) == -1, "%s parsed", bad[i][0]);
        ck_assert_str_eq(why, bad[i][1]);
    }
    /* a long line is quoted by its start only */
    char line[400];
    memset(line, 'z', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    persist_msg m;
    char why[300];
    ck_assert_int_eq(parse(line, &m, why), -1);
    ck_assert_uint_lt(strlen(why), 200);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("persist_proto");
    TCase *tc = tcase_create("persist_proto");
    tcase_add_test(tc, job_line);
    tcase_add_test(tc, answers);
    tcase_add_test(tc, not_the_protocol);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

/* test_verdict.c — what an ended attempt means for its job (worker/verdict.c):
 * every (stop reason, end) pair, the texts, the metric and the spool
 * status, without a worker, a loop or Redis. */
#include <check.h>
#include <string.h>

#include "tutil.h"
#include "verdict.h"

static verdict judge(stop_reason why, end_kind how, const char *text, int attempt, int attempts)
{
    static char buf[128];
    return attempt_verdict(why, how, text, attempt, attempts, 2500, buf, sizeof buf);
}

static void is(verdict v, verdict_kind kind, const char *word, const char *metric, const char *text,
               const char *spool)
{
    ck_assert_int_eq(v.kind, kind);
    if (word)
        ck_assert_str_eq(v.word, word);
    else
        ck_assert_ptr_null(v.word);
    ck_assert_str_eq(v.metric, metric);
    if (text)
        ck_assert_str_eq(v.text, text);
    if (spool)
        ck_assert_str_eq(v.spool_status, spool);
    else
        ck_assert_ptr_null(v.spool_status);
}

START_TEST(handler_words)
{
    is(judge(STOP_NONE, END_OK, "{\"n\":1}", 1, 3), VERDICT_OK, "ok", "succeeded", "{\"n\":1}",
       "done");
    is(judge(STOP_NONE, END_OK, NULL, 1, 3), VERDICT_OK, "ok", "succeeded", "null", "done");
    is(judge(STOP_NONE, END_RETRY, "boom", 1, 3), VERDICT_RETRY, "retry", "retried", "boom", NULL);
    is(judge(STOP_NONE, END_RETRY, NULL, 2, 3), VERDICT_RETRY, "retry", "retried",
       "handler returned LW_RETRY", NULL);
    /* The last attempt's retry fails the job: its file says failed. */
    is(judge(STOP_NONE, END_RETRY, "boom", 3, 3), VERDICT_RETRY, "retry", "retried", "boom",
       "failed");
    is(judge(STOP_NONE, END_FAIL, NULL, 1, 3), VERDICT_FAIL, "fail", "failed",
       "handler returned LW_FAIL", "failed");
}
END_TEST

START_TEST(stops)
{
    /* A lost lease overrides even a success: another attempt owns the job. */
    is(judge(STOP_LOST, END_OK, "x", 1, 3), VERDICT_DISCARD, NULL, "lost", NULL, NULL);
    is(judge(STOP_LOST, END_FAIL, "x", 3, 3), VERDICT_DISCARD, NULL, "lost", NULL, NULL);
    /* A success stands whatever stop was asked meanwhile. */
    is(judge(STOP_CANCEL, END_OK, "r", 1, 3), VERDICT_OK, "ok", "succeeded", "r", "done");
    is(judge(STOP_FENCE, END_OK, NULL, 1, 3), VERDICT_OK, "ok", "succeeded", "null", "done");
    is(judge(STOP_HANDBACK, END_RETRY, "sig", 3, 3), VERDICT_HANDBACK, "handback", "handed_back",
       "handed back at shutdown", NULL);
    is(judge(STOP_FENCE, END_RETRY, NULL, 1, 3), VERDICT_HANDBACK, "handback", "handed_back",
       "stopped: its lease could not be renewed (Redis unreachable); handed back", NULL);
    is(judge(STOP_RESOURCE, END_RETRY, "no fds", 1, 1), VERDICT_HANDBACK, "handback", "handed_back",
       "no fds", NULL);
    is(judge(STOP_RESOURCE, END_RETRY, NULL, 1, 1), VERDICT_HANDBACK, "handback", "handed_back",
       "the worker could not start it; handed back", NULL);
    is(judge(STOP_CANCEL, END_FAIL, "x", 1, 3), VERDICT_CANCELLED, "cancelled", "cancelled",
       "cancelled while running", "failed");
    is(judge(STOP_TIMEOUT, END_RETRY, "x", 1, 3), VERDICT_RETRY, "retry", "retried",
       "timed out after 2.5 s", NULL);
    is(judge(STOP_TIMEOUT, END_FAIL, "x", 2, 2), VERDICT_RETRY, "retry", "retried",
       "timed out after 2.5 s", "failed");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verdict");
    TCase *tc = tcase_create("verdict");
    tcase_add_test(tc, handler_words);
    tcase_add_test(tc, stops);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

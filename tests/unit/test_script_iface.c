/* test_script_iface.c — the builders and readers generated from the scripts'
 * interface blocks (script_args.h, script_replies.h): arguments land where
 * the block puts them, and a reply of the wrong shape is refused, never read
 * past. Replies are built by hand: no Redis. */
#include <check.h>
#include <string.h>

#include "script_args.h"
#include "script_replies.h"
#include "tutil.h"

/* A hand-made reply tree; nothing is freed (static storage per test). */
static redisReply str_(const char *s)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_STRING;
    r.str = (char *)s;
    r.len = strlen(s);
    return r;
}

static redisReply int_(long long v)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_INTEGER;
    r.integer = v;
    return r;
}

static redisReply arr_(redisReply **el, size_t n)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ARRAY;
    r.element = el;
    r.elements = n;
    return r;
}

/* One claim reply: one job, one unreadable record, due_in 250, more 1. */
typedef struct claim_fixture {
    redisReply job[LW_CLAIM_JOB_FIELDS], bad[2], due, more, gap, jobs, bads, top;
    redisReply *jobp[LW_CLAIM_JOB_FIELDS + 1], *badp[2], *topp[5];
} claim_fixture;

static void claim_fixture_init(claim_fixture *f, size_t njobfields)
{
    const char *v[LW_CLAIM_JOB_FIELDS] = {"j1", "7-123", "email", "default", "lane1", "{\"a\":1}",
                                          "3",  "5",     "30000", "1000",    "",      "1500"};
    for (size_t i = 0; i < LW_CLAIM_JOB_FIELDS; i++) {
        f->job[i] = str_(v[i]);
        f->jobp[i] = &f->job[i];
    }
    f->bad[0] = str_("j9");
    f->bad[1] = str_("corrupt: no queue");
    f->badp[0] = &f->bad[0];
    f->badp[1] = &f->bad[1];
    f->jobs = arr_(f->jobp, njobfields);
    f->bads = arr_(f->badp, 2);
    f->due = int_(250);
    f->more = int_(1);
    f->gap = int_(0);
    redisReply *top[5] = {&f->jobs, &f->bads, &f->due, &f->more, &f->gap};
    memcpy(f->topp, top, sizeof top);
    f->top = arr_(f->topp, 5);
}

START_TEST(claim_reads_named_fields)
{
    claim_fixture f;
    claim_fixture_init(&f, LW_CLAIM_JOB_FIELDS);
    lw_claim_reply got;
    char err[128] = "";
    ck_assert_int_eq(lw_claim_reply_read(&f.top, &got, err, sizeof err), 0);
    ck_assert_uint_eq(got.n_job, 1);
    ck_assert_uint_eq(got.n_corrupt, 1);
    ck_assert_int_eq(got.due_in, 250);
    ck_assert_int_eq(got.more, 1);
    ck_assert_int_eq(got.gap, 0);
    lw_claim_job j;
    lw_claim_job_at(&got, 0, &j);
    ck_assert_str_eq(j.id.s, "j1");
    ck_assert_str_eq(j.token.s, "7-123");
    ck_assert_str_eq(j.kind.s, "email");
    ck_assert_str_eq(j.queue.s, "default");
    ck_assert_str_eq(j.lane.s, "lane1");
    ck_assert_uint_eq(j.payload.len, 7);
    ck_assert_int_eq(j.attempt, 3);
    ck_assert_int_eq(j.attempts, 5);
    ck_assert_int_eq(j.timeout_ms, 30000);
    ck_assert_int_eq(j.backoff_ms, 1000);
    ck_assert_uint_eq(j.spool.len, 0);
    ck_assert_int_eq(j.wait_ms, 1500);
    lw_claim_corrupt c;
    lw_claim_corrupt_at(&got, 0, &c);
    ck_assert_str_eq(c.id.s, "j9");
    ck_assert_str_eq(c.reason.s, "corrupt: no queue");
}
END_TEST

START_TEST(claim_count_from_a_tampered_record_reads_as_digits)
{
    claim_fixture f;
    claim_fixture_init(&f, LW_CLAIM_JOB_FIELDS);
    f.job[8] = str_("12x"); /* timeout_ms as an edited record may hold it */
    f.job[9] = str_("");
    lw_claim_reply got;
    ck_assert_int_eq(lw_claim_reply_read(&f.top, &got, NULL, 0), 0);
    lw_claim_job j;
    lw_claim_job_at(&got, 0, &j);
    ck_assert_int_eq(j.timeout_ms, 12);
    ck_assert_int_eq(j.backoff_ms, 0);
}
END_TEST

START_TEST(claim_wrong_group_size_refused)
{
    claim_fixture f;
    claim_fixture_init(&f, LW_CLAIM_JOB_FIELDS - 1);
    lw_claim_reply got;
    char err[128] = "";
    ck_assert_int_eq(lw_claim_reply_read(&f.top, &got, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "jobs"));
    ck_assert_ptr_nonnull(strstr(err, "groups"));
}
END_TEST

START_TEST(claim_wrong_types_refused)
{
    claim_fixture f;
    claim_fixture_init(&f, LW_CLAIM_JOB_FIELDS);
    f.job[0] = int_(1); /* id must be a string */
    lw_claim_reply got;
    char err[128] = "";
    ck_assert_int_eq(lw_claim_reply_read(&f.top, &got, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "wrong type"));

    claim_fixture_init(&f, LW_CLAIM_JOB_FIELDS);
    f.due = str_("250"); /* due_in must be an integer */
    ck_assert_int_eq(lw_claim_reply_read(&f.top, &got, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "due_in"));

    claim_fixture_init(&f, LW_CLAIM_JOB_FIELDS);
    f.top.elements = 4; /* the top level has 5 entries */
    ck_assert_int_eq(lw_claim_reply_read(&f.top, &got, err, sizeof err), -1);

    claim_fixture_init(&f, LW_CLAIM_JOB_FIELDS);
    f.jobs = int_(0); /* a list that is not an array */
    ck_assert_int_eq(lw_claim_reply_read(&f.top, &got, err, sizeof err), -1);
    ck_assert_int_eq(lw_claim_reply_read(NULL, &got, err, sizeof err), -1);
}
END_TEST

START_TEST(error_reply_refused_with_its_text)
{
    redisReply e;
    memset(&e, 0, sizeof e);
    e.type = REDIS_REPLY_ERROR;
    e.str = (char *)"OOM command not allowed";
    e.len = strlen(e.str);
    lw_finish_reply got;
    char err[128] = "";
    ck_assert_int_eq(lw_finish_reply_read(&e, &got, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "OOM command not allowed"));
    ck_assert_ptr_nonnull(strstr(err, "finish.lua"));
}
END_TEST

START_TEST(flat_groups_and_scalars)
{
    /* enqueue: groups of (id, created, why) at the top level */
    redisReply el[6] = {str_("a"), int_(1), str_(""), str_("b"), int_(0), str_("exists queued")};
    redisReply *elp[6];
    for (int i = 0; i < 6; i++)
        elp[i] = &el[i];
    redisReply top = arr_(elp, 6);
    lw_enqueue_reply got;
    ck_assert_int_eq(lw_enqueue_reply_read(&top, &got, NULL, 0), 0);
    ck_assert_uint_eq(got.n_job, 2);
    lw_enqueue_job j;
    lw_enqueue_job_at(&got, 1, &j);
    ck_assert_str_eq(j.id.s, "b");
    ck_assert_int_eq(j.created, 0);
    ck_assert_str_eq(j.why.s, "exists queued");
    el[4] = str_("0"); /* created is an integer */
    ck_assert_int_eq(lw_enqueue_reply_read(&top, &got, NULL, 0), -1);
    el[4] = int_(0);
    top.elements = 5;
    ck_assert_int_eq(lw_enqueue_reply_read(&top, &got, NULL, 0), -1);

    /* renew: { statuses (integers), gap } */
    redisReply st[2] = {int_(1), str_("2")}, gap = int_(0);
    redisReply *stp[2] = {&st[0], &st[1]};
    redisReply sts = arr_(stp, 2);
    redisReply *rp[2] = {&sts, &gap};
    redisReply renew = arr_(rp, 2);
    lw_renew_reply rr;
    ck_assert_int_eq(lw_renew_reply_read(&renew, &rr, NULL, 0), -1);
    st[1] = int_(2);
    ck_assert_int_eq(lw_renew_reply_read(&renew, &rr, NULL, 0), 0);
    lw_renew_lease l;
    lw_renew_lease_at(&rr, 1, &l);
    ck_assert_int_eq(l.status, 2);

    /* cancel: one string */
    redisReply one = str_("requested");
    lw_cancel_reply cr;
    ck_assert_int_eq(lw_cancel_reply_read(&one, &cr, NULL, 0), 0);
    ck_assert_str_eq(cr.status.s, "requested");
    one = int_(1);
    ck_assert_int_eq(lw_cancel_reply_read(&one, &cr, NULL, 0), -1);
}
END_TEST

START_TEST(claim_builders_follow_the_block)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_claim_keys(&a, "lw:{t}:");
    lw_claim_queue_keys(&a, "lw:{t}:", "hi");
    lw_claim_queue_keys(&a, "lw:{t}:", "lo");
    ck_assert_uint_eq(a.n, (size_t)lw_claim_nkeys(2));
    lw_claim_argv_add(&a, &(lw_claim_argv){.prefix = "lw:{t}:",
                                           .events_cap = 100,
                                           .worker = "w1",
                                           .lease_ms = 30000,
                                           .want = 4,
                                           .keep_failed_s = 60,
                                           .nq = 2});
    lw_claim_queue_argv_add(&a, &(lw_claim_queue_argv){.name = "hi", .max_active = 0});
    lw_claim_queue_argv_add(&a, &(lw_claim_queue_argv){.name = "lo", .max_active = 3});
    const char **p = lw_argv_ptrs(&a, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p[0], "lw:{t}:events");
    ck_assert_str_eq(p[4], "lw:{t}:fence");
    ck_assert_str_eq(p[5], "lw:{t}:ready:hi");
    ck_assert_str_eq(p[6], "lw:{t}:active:hi");
    ck_assert_str_eq(p[8], "lw:{t}:active:lo");
    size_t k = (size_t)lw_claim_nkeys(2);
    ck_assert_str_eq(p[k + LW_CLAIM_ARGV_PREFIX], "lw:{t}:");
    ck_assert_str_eq(p[k + LW_CLAIM_ARGV_WORKER], "w1");
    ck_assert_str_eq(p[k + LW_CLAIM_ARGV_WANT], "4");
    ck_assert_str_eq(p[k + LW_CLAIM_ARGV_NQ], "2");
    ck_assert_str_eq(p[k + LW_CLAIM_NARGV + LW_CLAIM_QUEUE_NARGV + 1], "3");
    ck_assert_uint_eq(a.n, k + LW_CLAIM_NARGV + 2 * LW_CLAIM_QUEUE_NARGV);
    lw_argv_clear(&a);
}
END_TEST

START_TEST(finish_count_rewritten)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_finish_keys(&a, "p:");
    lw_finish_argv_add(&a, &(lw_finish_argv){.prefix = "p:", .n = 0});
    for (int i = 0; i < 12; i++)
        lw_finish_entry_argv_add(&a,
                                 &(lw_finish_entry_argv){.id = "j", .token = "t", .outcome = "ok"});
    lw_finish_argv_set_n(&a, 12);
    const char **p = lw_argv_ptrs(&a, NULL);
    ck_assert_str_eq(p[LW_FINISH_NKEYS + LW_FINISH_ARGV_N], "12");
    ck_assert_str_eq(p[LW_FINISH_NKEYS + LW_FINISH_ARGV_WORKER], ""); /* NULL string */
    ck_assert_str_eq(p[LW_FINISH_NKEYS + LW_FINISH_NARGV + 2], "ok");
    ck_assert_uint_eq(a.n, LW_FINISH_NKEYS + LW_FINISH_NARGV + 12 * LW_FINISH_ENTRY_NARGV);
    lw_argv_clear(&a);
}
END_TEST

START_TEST(addkey_has_no_length_limit)
{
    static char name[5000];
    memset(name, 'q', sizeof name - 1);
    lw_argv a;
    lw_argv_init(&a);
    lw_argv_addkey(&a, "lw:{t}:", "ready:", name);
    lw_argv_addkey(&a, "lw:{t}:", "events", NULL);
    const size_t *lens;
    const char **p = lw_argv_ptrs(&a, &lens);
    ck_assert_uint_eq(lens[0], 7 + 6 + sizeof name - 1);
    ck_assert_int_eq(strncmp(p[0], "lw:{t}:ready:qq", 15), 0);
    ck_assert_str_eq(p[1], "lw:{t}:events");
    lw_argv_clear(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("script_iface");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, claim_reads_named_fields);
    tcase_add_test(tc, claim_count_from_a_tampered_record_reads_as_digits);
    tcase_add_test(tc, claim_wrong_group_size_refused);
    tcase_add_test(tc, claim_wrong_types_refused);
    tcase_add_test(tc, error_reply_refused_with_its_text);
    tcase_add_test(tc, flat_groups_and_scalars);
    tcase_add_test(tc, claim_builders_follow_the_block);
    tcase_add_test(tc, finish_count_rewritten);
    tcase_add_test(tc, addkey_has_no_length_limit);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

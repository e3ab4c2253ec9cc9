/* test_fault.c — the fault seam itself (spec syntax, Nth and Nth-and-later,
 * errno), then SQLite's loop over the resources of common/: for N = 1, 2, ...
 * make the Nth call at a site fail, until the operation succeeds with no
 * fault hit. Each failing run must report the error, leave no temp file or
 * half job visible, and leak nothing (the ASan build checks at exit). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "jobspec.h"
#include "jsonx.h"
#include "registry.h"
#include "seams.h"
#include "spool.h"
#include "tutil.h"

/* An operation runs at most this often: far above any real count, so a
 * loop that never ends (a fault that is never hit) fails instead. */
#define MAX_N 2000

static char *dir;

static void setup(void) { dir = tu_tmpdir(); }

static void teardown(void)
{
    lw_fault_configure(NULL, NULL, 0);
    tu_rmrf(dir);
    free(dir);
    dir = NULL;
}

/* Sets exactly the Nth call at `site` to fail. Check itself (linked
 * statically, so wrapped too) allocates in every ck_assert: nothing calls
 * it between this and the disarm (lw_fault_configure(NULL)) after the
 * operation, except to report a failure. */
static void fail_nth(const char *site, int n)
{
    char spec[64], err[200] = "";
    snprintf(spec, sizeof spec, "%s:%d", site, n);
    if (lw_fault_configure(spec, err, sizeof err) != 0)
        ck_abort_msg("%s: %s", spec, err);
}

START_TEST(spec_syntax)
{
    char err[200];
    static const char *const good[] = {"",          "fork:1",
                                       "write:5+",  "fork:3,write:5+,alloc:7",
                                       "fsync:2-4", "open:1,fsync:2,rename:3,mkdir:4,pipe:5"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(lw_fault_configure(good[i], err, sizeof err) == 0, "%s: %s", good[i], err);
    static const struct {
        const char *spec, *want;
    } bad[] = {
        {"fork", "\"fork\": expected SITE:N, SITE:N+ or SITE:N-M"},
        {"fork:5-3", "\"fork:5-3\": in N-M, M must be a whole number >= N"},
        {"fork:5-", "\"fork:5-\": in N-M, M must be a whole number >= N"},
        {"fork:5-6+", "\"fork:5-6+\": in N-M, M must be a whole number >= N"},
        {"fork:", "\"fork:\": N missing"},
        {"fork:0", "\"fork:0\": N must be >= 1 (the first call is 1)"},
        {"fork:x", "\"fork:x\": N must be a whole number >= 1"},
        {"fork:1++", "\"fork:1++\": N must be a whole number >= 1"},
        {"fork:-1", "\"fork:-1\": N must be a whole number >= 1"},
        {"fork:99999999999999999999999",
         "\"fork:99999999999999999999999\": N must be a whole number >= 1"},
        {"spoon:1",
         "unknown site \"spoon\" (alloc, fork, open, write, fsync, rename, mkdir, pipe)"},
        {"fork:1,fork:2", "site fork given twice"},
        {"fork:1,", "empty entry after the last comma"},
        {",fork:1", "empty entry (entries are separated by one comma)"},
        {"fork:1,,open:1", "empty entry (entries are separated by one comma)"},
    };
    ck_assert_int_eq(lw_fault_configure("open:1", err, sizeof err), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(lw_fault_configure(bad[i].spec, err, sizeof err) == -1, "%s accepted",
                      bad[i].spec);
        ck_assert_str_eq(err, bad[i].want);
    }
    /* A refused spec leaves the rules as they were. */
    ck_assert_int_eq(lw_open("/", 0), -1);
    ck_assert_int_eq(errno, EMFILE);
}
END_TEST

START_TEST(nth_and_later)
{
    char err[200];
    int fds[2], rc[12], e[12];
    /* Results first, asserts once disarmed (fail_nth). */
    lw_fault_configure("fsync:2,pipe:3+", err, sizeof err);
    for (int i = 0; i < 3; i++) {
        rc[i] = lw_fsync(-1);
        e[i] = errno;
    }
    for (int i = 3; i < 8; i++) {
        fds[0] = fds[1] = -7;
        rc[i] = lw_pipe2(fds, 0);
        e[i] = errno;
        if (rc[i] == 0) {
            close(fds[0]);
            close(fds[1]);
        }
    }
    unsigned long injected = lw_fault_injected();
    lw_fault_configure(NULL, NULL, 0);
    ck_assert_int_eq(rc[0], -1);
    ck_assert_int_eq(e[0], EBADF); /* 1st: the real call */
    ck_assert_int_eq(e[1], EIO);   /* 2nd: injected */
    ck_assert_int_eq(e[2], EBADF); /* 3rd: real again */
    ck_assert_int_eq(rc[3], 0);
    ck_assert_int_eq(rc[4], 0);
    for (int i = 5; i < 8; i++) {
        ck_assert_int_eq(rc[i], -1);
        ck_assert_int_eq(e[i], EMFILE);
    }
    ck_assert_int_eq(fds[0], -7); /* nothing handed out */
    ck_assert_uint_eq(injected, 4);

    /* N-M: a shortage that passes -- the 2nd to the 3rd call fail. */
    lw_fault_configure("fsync:2-3", err, sizeof err);
    for (int i = 0; i < 5; i++) {
        rc[i] = lw_fsync(-1);
        e[i] = errno;
    }
    injected = lw_fault_injected();
    lw_fault_configure(NULL, NULL, 0);
    ck_assert_int_eq(e[0], EBADF);
    ck_assert_int_eq(e[1], EIO);
    ck_assert_int_eq(e[2], EIO);
    ck_assert_int_eq(e[3], EBADF);
    ck_assert_int_eq(e[4], EBADF);
    ck_assert_uint_eq(injected, 2);

    /* Each site's errno is the real failure's. */
    lw_fault_configure("fork:1,write:1,rename:1,mkdir:1", err, sizeof err);
    rc[0] = lw_fork();
    e[0] = errno;
    rc[1] = (int)lw_write(1, "x", 1);
    e[1] = errno;
    rc[2] = lw_renameat(-1, "a", -1, "b");
    e[2] = errno;
    rc[3] = lw_mkdirat(-1, "a", 0);
    e[3] = errno;
    lw_fault_configure("alloc:2", err, sizeof err);
    char *a = malloc(8), *b = strdup("x"), *c = malloc(8);
    lw_fault_configure(NULL, NULL, 0);
    int want[] = {EAGAIN, ENOSPC, EIO, ENOSPC};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(rc[i], -1);
        ck_assert_int_eq(e[i], want[i]);
    }
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(c);
    free(a);
    free(c);
    /* Disarmed: nothing counts, nothing fails. */
    ck_assert_int_eq(lw_fsync(-1), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_uint_eq(lw_fault_injected(), 0);
}
END_TEST

/* cJSON allocates in its own library: the hook table brings it here. */
START_TEST(cjson_allocations_fail_too)
{
    fail_nth("alloc", 1);
    char *none = lw_json_compact("{\"a\": [1, 2]}", 13);
    lw_fault_configure(NULL, NULL, 0);
    ck_assert_ptr_null(none);
    char *c = lw_json_compact("{\"a\": [1, 2]}", 13);
    ck_assert_str_eq(c, "{\"a\":[1,2]}");
    free(c);
}
END_TEST

static void spec_for(lw_job_spec *s, const char *id)
{
    lw_job_spec_init(s);
    s->id = strdup(id);
    s->lane = strdup("L");
    s->queue = strdup("Q");
    s->unique = strdup("u");
    s->payload = strdup("{\"n\": 1, \"s\": \"x\"}");
    s->attempts = 3;
    s->timeout_ms = 1500;
}

/* lw_spool_create with each site's Nth call failing: an error and an empty
 * spool (no .tmp- directory, no half job), or -- only when what failed is
 * the spool's sync after the rename -- the whole job. Then it succeeds. */
static void create_loop(const char *site)
{
    lw_job_spec s;
    spec_for(&s, "j1"); /* allocated before the rule: its strdups are not counted */
    char err[512], names[512];
    int n;
    for (n = 1; n <= MAX_N; n++) {
        fail_nth(site, n);
        err[0] = '\0';
        int rc = lw_spool_create(dir, &s, err, sizeof err);
        int hit = lw_fault_injected() > 0;
        lw_fault_configure(NULL, NULL, 0);
        tu_listing(dir, names, sizeof names);
        if (!hit) {
            ck_assert_msg(rc == 0, "%s:%d: no fault hit, yet %s", site, n, err);
            ck_assert_str_eq(names, "j1");
            break;
        }
        ck_assert_msg(rc == -1, "%s:%d: the fault was hit, yet the create succeeded", site, n);
        ck_assert_msg(err[0] != '\0', "%s:%d: no message", site, n);
        if (strcmp(names, "j1") == 0) {
            ck_assert_msg(strstr(err, "cannot sync the spool"), "%s:%d: job left after: %s", site,
                          n, err);
            lw_spool_job j;
            ck_assert_int_eq(lw_spool_read(dir, "j1", LW_SPOOL_FILE_MAX, &j, err, sizeof err), 0);
            ck_assert_str_eq(j.status, "queued");
            lw_spool_job_clear(&j);
            ck_assert_int_eq(lw_spool_remove(dir, "j1", err, sizeof err), 0);
        } else {
            ck_assert_msg(names[0] == '\0', "%s:%d: left behind: %s (%s)", site, n, names, err);
        }
    }
    ck_assert_int_le(n, MAX_N);
    ck_assert_int_gt(n, 1); /* the 1st call at least was hit: the loop tested something */
    lw_job_spec_clear(&s);
}

START_TEST(create_open) { create_loop("open"); }
END_TEST
START_TEST(create_write) { create_loop("write"); }
END_TEST
START_TEST(create_fsync) { create_loop("fsync"); }
END_TEST
START_TEST(create_rename) { create_loop("rename"); }
END_TEST
START_TEST(create_mkdir) { create_loop("mkdir"); }
END_TEST
START_TEST(create_alloc) { create_loop("alloc"); }
END_TEST

/* lw_spool_set_status with each site's Nth call failing: an error, job.json
 * exactly as before (or, when only the directory's sync failed, exactly as
 * after), and no .job.json.tmp.* left. */
static void set_status_loop(const char *site)
{
    static const char before[] =
        "{\"job_id\":\"j1\",\"status\":\"queued\",\"x\":12345678901234567891}\n";
    static const char after[] =
        "{\"job_id\":\"j1\",\"status\":\"failed\",\"x\":12345678901234567891,\"error\":\"boom\"}\n";
    tu_mkdir(dir, "j1");
    char *jd = tu_path(dir, "j1");
    char err[512], names[512];
    int n;
    for (n = 1; n <= MAX_N; n++) {
        tu_write(jd, "job.json", before);
        fail_nth(site, n);
        err[0] = '\0';
        int rc = lw_spool_set_status(jd, "failed", "boom", err, sizeof err);
        int e = errno, hit = lw_fault_injected() > 0;
        lw_fault_configure(NULL, NULL, 0);
        tu_listing(jd, names, sizeof names);
        ck_assert_msg(strcmp(names, "job.json") == 0, "%s:%d: left behind: %s (%s)", site, n, names,
                      err);
        char *text = tu_read(jd, "job.json");
        if (!hit) {
            ck_assert_msg(rc == 0, "%s:%d: no fault hit, yet %s", site, n, err);
            ck_assert_str_eq(text, after);
            free(text);
            break;
        }
        ck_assert_msg(rc == -1, "%s:%d: the fault was hit, yet the rewrite succeeded", site, n);
        ck_assert_msg(err[0] != '\0', "%s:%d: no message", site, n);
        ck_assert_int_ne(e, 0);
        if (strcmp(text, after) == 0)
            ck_assert_msg(strstr(err, "cannot sync the job directory"), "%s:%d: rewritten, yet: %s",
                          site, n, err);
        else
            ck_assert_msg(strcmp(text, before) == 0, "%s:%d: job.json torn: %s", site, n, text);
        free(text);
    }
    ck_assert_int_le(n, MAX_N);
    ck_assert_int_gt(n, 1); /* the 1st call at least was hit: the loop tested something */
    free(jd);
}

START_TEST(set_status_open) { set_status_loop("open"); }
END_TEST
START_TEST(set_status_write) { set_status_loop("write"); }
END_TEST
START_TEST(set_status_fsync) { set_status_loop("fsync"); }
END_TEST
START_TEST(set_status_rename) { set_status_loop("rename"); }
END_TEST
START_TEST(set_status_alloc) { set_status_loop("alloc"); }
END_TEST

static void scan_visit(void *ud, const char *spool, lw_spool_job *job) { (*(int *)ud)++; }

static void scan_bad(void *ud, const char *spool, const char *entry, const char *why)
{
    (*(int *)ud) += 1000;
}

/* Reading and scanning under open and alloc failures: an error or a job
 * reported bad (never a crash, never a job visited half-read). */
static void read_loop(const char *site)
{
    tu_mkdir(dir, "a");
    tu_mkdir(dir, "b");
    char *ja = tu_path(dir, "a"), *jb = tu_path(dir, "b");
    tu_write(ja, "job.json",
             "{\"job_id\":\"a\",\"status\":\"queued\",\"lane\":\"L\",\"payload\":[1]}");
    tu_write(jb, "job.json",
             "{\"job_id\":\"b\",\"status\":\"done\",\"error\":\"e\",\"unique\":\"u\"}");
    char err[512];
    int n;
    for (n = 1; n <= MAX_N; n++) {
        fail_nth(site, n);
        lw_spool_job j;
        int rc = lw_spool_read(dir, "a", LW_SPOOL_FILE_MAX, &j, err, sizeof err);
        int hit = lw_fault_injected() > 0;
        lw_fault_configure(NULL, NULL, 0);
        if (rc == 0) {
            ck_assert_str_eq(j.lane, "L");
            ck_assert_str_eq(j.payload, "[1]");
            lw_spool_job_clear(&j);
        } else {
            ck_assert_ptr_null(j.job_id);
        }
        fail_nth(site, n);
        int counts = 0;
        int visited =
            lw_spool_scan(dir, LW_SPOOL_FILE_MAX, scan_visit, scan_bad, &counts, err, sizeof err);
        hit = hit || lw_fault_injected() > 0;
        lw_fault_configure(NULL, NULL, 0);
        if (!hit) {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(visited, 2);
            ck_assert_int_eq(counts, 2);
            break;
        }
        ck_assert(visited == -1 || visited == counts % 1000);
    }
    ck_assert_int_le(n, MAX_N);
    ck_assert_int_gt(n, 1); /* the 1st call at least was hit: the loop tested something */
    free(ja);
    free(jb);
}

START_TEST(read_open) { read_loop("open"); }
END_TEST
START_TEST(read_alloc) { read_loop("alloc"); }
END_TEST

/* Parsers under allocation failure: NULL / -1 with a message, no leak. */
START_TEST(jobspec_alloc)
{
    static const char line[] =
        "{\"tenant\":\"t1\",\"kind\":\"k\",\"lane\":\"L\",\"queue\":\"q\",\"id\":\"i\","
        "\"unique\":\"u\",\"payload\":{\"a\":[1,2,{\"b\":null}]},\"delay\":1,"
        "\"attempts\":2,\"timeout\":3,\"expires\":4,\"unique_for\":5}";
    int n;
    for (n = 1; n <= MAX_N; n++) {
        lw_job_spec s;
        lw_job_spec_init(&s);
        char err[256] = "";
        fail_nth("alloc", n);
        int rc = lw_job_spec_from_json(&s, line, strlen(line), err, sizeof err);
        int hit = lw_fault_injected() > 0;
        lw_fault_configure(NULL, NULL, 0);
        if (!hit) {
            ck_assert_msg(rc == 0, "%s", err);
            ck_assert_str_eq(s.payload, "{\"a\":[1,2,{\"b\":null}]}");
            lw_job_spec_clear(&s);
            break;
        }
        ck_assert_msg(rc == -1 && err[0], "alloc:%d: rc %d, message \"%s\"", n, rc, err);
        ck_assert_msg(!strstr(err, "malformed"), "alloc:%d: out of memory called %s", n, err);
        lw_job_spec_clear(&s);
    }
    ck_assert_int_le(n, MAX_N);
    ck_assert_int_gt(n, 1); /* the 1st call at least was hit: the loop tested something */
}
END_TEST

START_TEST(registry_alloc)
{
    static const char text[] =
        "[{\"tenant\": \"acme\", \"module\": \"/m/example.so\", \"config\": {\"n\": [1, 2.5, true]},\n"
        "  \"exec\": {\"thumb\": [\"/bin/thumb\", \"--fast\"], \"noop\": [\"true\"]},\n"
        "  \"spools\": {\"upload\": \"/var/spool/up\"}, \"queues\": {\"default\": {}, \"chat\": {\"max_active\": 8}},\n"
        "  \"redis\": \"redis://:pw@shard-2:6379/0\", \"defaults\": {\"attempts\": 5, \"timeout\": 1.5}},\n"
        " {\"tenant\": \"beta\", \"module\": \"/m/beta.so\"}]";
    int n;
    for (n = 1; n <= MAX_N; n++) {
        char err[512] = "";
        fail_nth("alloc", n);
        lw_registry *r = lw_registry_parse(text, strlen(text), "r.json", 0, err, sizeof err);
        int hit = lw_fault_injected() > 0;
        lw_fault_configure(NULL, NULL, 0);
        if (!hit) {
            ck_assert_msg(r != NULL, "%s", err);
            ck_assert_uint_eq(r->ntenants, 2);
            lw_registry_free(r);
            break;
        }
        ck_assert_msg(r == NULL && err[0], "alloc:%d: %s, message \"%s\"", n, r ? "parsed" : "NULL",
                      err);
        ck_assert_msg(!strstr(err, "malformed"), "alloc:%d: out of memory called %s", n, err);
    }
    ck_assert_int_le(n, MAX_N);
    ck_assert_int_gt(n, 1); /* the 1st call at least was hit: the loop tested something */
}
END_TEST

/* Reading a file: open and alloc failures are errors with errno, no leak. */
START_TEST(read_file_faults)
{
    tu_write(dir, "f", "{\"big\": \"0123456789012345678901234567890123456789\"}");
    char *path = tu_path(dir, "f");
    static const char *const sites[] = {"open", "alloc"};
    for (size_t i = 0; i < 2; i++) {
        int n;
        for (n = 1; n <= MAX_N; n++) {
            fail_nth(sites[i], n);
            size_t len = 0;
            errno = 0;
            char *t = lw_read_file(path, 1 << 20, &len);
            int e = errno, hit = lw_fault_injected() > 0;
            lw_fault_configure(NULL, NULL, 0);
            if (!hit) {
                ck_assert_ptr_nonnull(t);
                free(t);
                break;
            }
            ck_assert_msg(t == NULL, "%s:%d: read despite the fault", sites[i], n);
            ck_assert_int_eq(e, strcmp(sites[i], "open") == 0 ? EMFILE : ENOMEM);
        }
        ck_assert_int_le(n, MAX_N);
        ck_assert_int_gt(n, 1);
        ck_assert_int_gt(n, 1); /* the 1st call at least was hit: the loop tested something */
    }
    free(path);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = tcase_create("seam");
    tcase_add_test(tc, spec_syntax);
    tcase_add_test(tc, nth_and_later);
    tcase_add_test(tc, cjson_allocations_fail_too);
    suite_add_tcase(s, tc);
    TCase *sp = tcase_create("spool");
    tcase_add_checked_fixture(sp, setup, teardown);
    tcase_set_timeout(sp, 30);
    tcase_add_test(sp, create_open);
    tcase_add_test(sp, create_write);
    tcase_add_test(sp, create_fsync);
    tcase_add_test(sp, create_rename);
    tcase_add_test(sp, create_mkdir);
    tcase_add_test(sp, create_alloc);
    tcase_add_test(sp, set_status_open);
    tcase_add_test(sp, set_status_write);
    tcase_add_test(sp, set_status_fsync);
    tcase_add_test(sp, set_status_rename);
    tcase_add_test(sp, set_status_alloc);
    tcase_add_test(sp, read_open);
    tcase_add_test(sp, read_alloc);
    suite_add_tcase(s, sp);
    TCase *pa = tcase_create("parsers");
    tcase_add_checked_fixture(pa, setup, teardown);
    tcase_set_timeout(pa, 30);
    tcase_add_test(pa, jobspec_alloc);
    tcase_add_test(pa, registry_alloc);
    tcase_add_test(pa, read_file_faults);
    suite_add_tcase(s, pa);
    return s;
}

int main(void) { return tu_run(suite()); }

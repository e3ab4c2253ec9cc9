/* test_spool.c — spool job directories: parsing, safe reading, atomic status
 * rewrites that keep unknown fields, atomic creation, and scans. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "tutil.h"

static char *dir; /* this test's temp dir */

static void setup(void) { dir = tu_tmpdir(); }

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
    dir = NULL;
}

/* Makes dir/id/job.json holding `text`. */
static void make_job(const char *id, const char *text)
{
    tu_mkdir(dir, id);
    char *jd = tu_path(dir, id);
    tu_write(jd, "job.json", text);
    free(jd);
}

static void parse_fails(const char *text, const char *expect_id, const char *want)
{
    lw_spool_job j;
    char err[256] = "";
    ck_assert_int_eq(lw_spool_job_parse(text, strlen(text), expect_id, &j, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(j.job_id);
}

START_TEST(parse_fields)
{
    lw_spool_job j;
    char err[256] = "";
    const char *min = "{\"job_id\": \"j1\", \"status\": \"queued\"}";
    ck_assert_int_eq(lw_spool_job_parse(min, strlen(min), "j1", &j, err, sizeof err), 0);
    ck_assert_str_eq(j.job_id, "j1");
    ck_assert_str_eq(j.status, "queued");
    ck_assert_ptr_null(j.lane);
    ck_assert_ptr_null(j.queue);
    ck_assert_ptr_null(j.payload);
    ck_assert_ptr_null(j.error);
    lw_spool_job_clear(&j);

    const char *full =
        "{\"job_id\": \"j2\", \"status\": \"failed\", \"lane\": \"L\", \"queue\": \"Q\",\n"
        " \"payload\": {\"big\": 12345678901234567891, \"s\": \"a b\"}, \"error\": \"boom\",\n"
        " \"owner\": \"someone\"}";
    ck_assert_int_eq(lw_spool_job_parse(full, strlen(full), NULL, &j, err, sizeof err), 0);
    ck_assert_str_eq(j.job_id, "j2");
    ck_assert_str_eq(j.status, "failed");
    ck_assert_str_eq(j.lane, "L");
    ck_assert_str_eq(j.queue, "Q");
    ck_assert_str_eq(j.payload, "{\"big\":12345678901234567891,\"s\":\"a b\"}");
    ck_assert_str_eq(j.error, "boom");
    lw_spool_job_clear(&j);
    ck_assert_ptr_null(j.status);
}
END_TEST

START_TEST(parse_errors)
{
    parse_fails("{\"status\": \"queued\"}", NULL, "job_id is missing");
    parse_fails("{\"job_id\": 7, \"status\": \"queued\"}", NULL, "job_id must be a string");
    parse_fails("{\"job_id\": \"j1\"}", "j1", "status is missing");
    parse_fails("{\"job_id\": \"j1\", \"status\": 1}", "j1", "status must be a string");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"exploded\"}", "j1",
                "unknown status \"exploded\" (queued, processing, done or failed)");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\"}", "j2",
                "job_id \"j1\" does not match the directory name \"j2\"");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\", \"lane\": 3}", NULL,
                "lane must be a string");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\", \"queue\": {}}", NULL,
                "queue must be a string");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\", \"error\": false}", NULL,
                "error must be a string");
    parse_fails("[\"j1\"]", NULL, "not a JSON object");
    /* Valid by RFC 8259's grammar, refused by cJSON: not "out of memory". */
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\", \"s\": \"\\udc00\"}", NULL,
                "malformed JSON at line 1");
    parse_fails("{\n\"job_id\": \"j1\",\n\"status\" 1}", NULL, "malformed JSON at line 3");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\", \"n\": 01}", NULL,
                "malformed JSON (not strict JSON: numbers like 01 or 1., or not UTF-8)");
}
END_TEST

/* Found by tests/fuzz/fuzz_spool: cJSON decodes \u0000 into a NUL byte, so
 * a status "done\u0000x" was read as "done" (the job would never run) and a
 * job_id "j1\u0000x" matched the directory j1. The payload and unknown
 * fields are kept as text and may hold it. */
START_TEST(parse_refuses_nul)
{
    parse_fails("{\"job_id\": \"j1\", \"status\": \"done\\u0000x\"}", "j1",
                "status must not hold \\u0000");
    parse_fails("{\"job_id\": \"j1\\u0000x\", \"status\": \"queued\"}", "j1",
                "job_id must not hold \\u0000");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\", \"lane\": \"\\u0000\"}", NULL,
                "lane must not hold \\u0000");
    parse_fails("{\"job_id\": \"j1\", \"status\": \"queued\", \"error\": \"a\\u0000\"}", NULL,
                "error must not hold \\u0000");
    parse_fails("{\"job_id\": \"j1\", \"st\\u0000\": 1, \"status\": \"queued\"}", NULL,
                "field name \"st\\u0000\" must not hold \\u0000");

    lw_spool_job j;
    char err[256] = "";
    const char *ok = "{\"job_id\": \"j1\", \"status\": \"queued\", \"payload\": \"a\\u0000b\", "
                     "\"note\": \"\\u0000\", \"lane\": \"x\\\\u0000\"}";
    ck_assert_int_eq(lw_spool_job_parse(ok, strlen(ok), "j1", &j, err, sizeof err), 0);
    ck_assert_str_eq(j.payload, "\"a\\u0000b\"");
    ck_assert_str_eq(j.lane, "x\\u0000");
    lw_spool_job_clear(&j);
}
END_TEST

START_TEST(read_ok)
{
    lw_spool_job j;
    char err[256] = "";
    make_job("j1", "{\"job_id\": \"j1\", \"status\": \"processing\", \"payload\": [1, 2]}\n");
    ck_assert_msg(lw_spool_read(dir, "j1", 4096, &j, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(j.status, "processing");
    ck_assert_str_eq(j.payload, "[1,2]");
    lw_spool_job_clear(&j);
}
END_TEST

static void read_fails(const char *id, size_t max, const char *want)
{
    lw_spool_job j;
    char err[256] = "";
    ck_assert_int_eq(lw_spool_read(dir, id, max, &j, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(j.job_id);
    /* ENOENT tells "not there (yet)" and EBADMSG "does not parse (may be
     * half-written)" -- the worker then watches for it -- from a bad entry
     * (logged). */
    int absent = !strcmp(want, "no such job directory") || !strcmp(want, "job.json is missing");
    int unparsable = !strncmp(want, "job.json: ", 10);
    ck_assert_int_eq(errno, absent ? ENOENT : unparsable ? EBADMSG : EINVAL);
}

START_TEST(read_refuses)
{
    make_job("real", "{\"job_id\": \"real\", \"status\": \"queued\"}");
    char *target = tu_path(dir, "real");
    char *link = tu_path(dir, "alias");
    ck_assert_int_eq(symlink(target, link), 0);
    read_fails("alias", 4096, "is a symlink (job directories must be real directories)");
    read_fails("../x", 4096, "unsafe name (letters, digits, '-', '_', '.'; not starting with '.')");
    read_fails(".real", 4096,
               "unsafe name (letters, digits, '-', '_', '.'; not starting with '.')");
    read_fails("", 4096, "unsafe name (letters, digits, '-', '_', '.'; not starting with '.')");
    read_fails("nope", 4096, "no such job directory");
    tu_write(dir, "plain", "x");
    read_fails("plain", 4096, "not a directory");
    tu_mkdir(dir, "empty");
    read_fails("empty", 4096, "job.json is missing");
    read_fails("real", 10, "job.json is larger than 10 bytes");

    /* job.json itself a symlink (to a valid job file elsewhere). */
    tu_mkdir(dir, "lj");
    char *src = tu_path(target, "job.json");
    char *lj = tu_path(dir, "lj/job.json");
    ck_assert_int_eq(symlink(src, lj), 0);
    read_fails("lj", 4096, "job.json is a symlink");
    tu_mkdir(dir, "dj");
    char *djdir = tu_path(dir, "dj");
    tu_mkdir(djdir, "job.json");
    read_fails("dj", 4096, "job.json is not a regular file");
    make_job("other", "{\"job_id\": \"real\", \"status\": \"queued\"}");
    read_fails("other", 4096,
               "job.json: job_id \"real\" does not match the directory name \"other\"");
    make_job("broken", "{\"job_id\": ");
    read_fails("broken", 4096, "job.json: malformed JSON at line 1");
    free(djdir);
    free(src);
    free(lj);
    free(target);
    free(link);
}
END_TEST

START_TEST(set_status_keeps_fields)
{
    char err[256] = "", names[256];
    make_job(
        "j1",
        "{\n  \"job_id\": \"j1\",\n  \"status\": \"queued\",\n  \"extra\": {\"n\": 12345678901234567891},\n"
        "  \"payload\": [1, 2],\n  \"error\": \"old\"\n}\n");
    char *jd = tu_path(dir, "j1");
    char *jf = tu_path(jd, "job.json");
    ck_assert_int_eq(chmod(jf, 0640), 0);
    struct stat before, after;
    ck_assert_int_eq(stat(jf, &before), 0);

    ck_assert_msg(lw_spool_set_status(jd, "failed", "boom\n\"quoted\"", err, sizeof err) == 0, "%s",
                  err);
    char *text = tu_read(jd, "job.json");
    ck_assert_str_eq(
        text, "{\"job_id\":\"j1\",\"status\":\"failed\",\"extra\":{\"n\": 12345678901234567891},"
              "\"payload\":[1, 2],\"error\":\"boom\\n\\\"quoted\\\"\"}\n");
    free(text);
    ck_assert_int_eq(stat(jf, &after), 0);
    ck_assert_int_ne(before.st_ino, after.st_ino); /* a new file renamed over the old one */
    ck_assert_int_eq(after.st_mode & 07777, 0640);
    tu_listing(jd, names, sizeof names);
    ck_assert_str_eq(names, "job.json"); /* no temp file left */

    /* error NULL removes it; a missing status is added. */
    ck_assert_int_eq(lw_spool_set_status(jd, "done", NULL, err, sizeof err), 0);
    text = tu_read(jd, "job.json");
    ck_assert_str_eq(
        text, "{\"job_id\":\"j1\",\"status\":\"done\",\"extra\":{\"n\": 12345678901234567891},"
              "\"payload\":[1, 2]}\n");
    free(text);
    free(jf);
    free(jd);

    make_job("j2", "{\"job_id\": \"j2\"}");
    jd = tu_path(dir, "j2");
    ck_assert_int_eq(lw_spool_set_status(jd, "processing", "e", err, sizeof err), 0);
    text = tu_read(jd, "job.json");
    ck_assert_str_eq(text, "{\"job_id\":\"j2\",\"status\":\"processing\",\"error\":\"e\"}\n");
    free(text);
    free(jd);
}
END_TEST

START_TEST(set_status_refuses)
{
    char err[256] = "";
    make_job("arr", "[1, 2]");
    char *jd = tu_path(dir, "arr");
    ck_assert_int_eq(lw_spool_set_status(jd, "done", NULL, err, sizeof err), -1);
    ck_assert_str_eq(err, "job.json is not a JSON object; not rewriting it");
    char *text = tu_read(jd, "job.json");
    ck_assert_str_eq(text, "[1, 2]"); /* untouched */
    free(text);
    free(jd);
    jd = tu_path(dir, "missing");
    ck_assert_int_eq(lw_spool_set_status(jd, "done", NULL, err, sizeof err), -1);
    ck_assert_str_eq(err, "cannot open the job directory: No such file or directory");
    free(jd);
    tu_mkdir(dir, "nofile");
    jd = tu_path(dir, "nofile");
    ck_assert_int_eq(lw_spool_set_status(jd, "done", NULL, err, sizeof err), -1);
    ck_assert_str_eq(err, "cannot open job.json: No such file or directory");
    free(jd);
}
END_TEST

START_TEST(create)
{
    char err[256] = "", names[256];
    lw_job_spec s;
    lw_job_spec_init(&s);
    s.id = strdup("job-1");
    s.lane = strdup("lane \"x\"");
    s.queue = strdup("q");
    s.payload = strdup("{ \"a\" : [1, 2] }");
    ck_assert_msg(lw_spool_create(dir, &s, err, sizeof err) == 0, "%s", err);
    char *jd = tu_path(dir, "job-1");
    char *text = tu_read(jd, "job.json");
    ck_assert_str_eq(
        text,
        "{\"job_id\":\"job-1\",\"status\":\"queued\",\"lane\":\"lane \\\"x\\\"\",\"queue\":\"q\","
        "\"payload\":{\"a\":[1,2]}}\n");
    free(text);
    tu_listing(dir, names, sizeof names);
    ck_assert_str_eq(names, "job-1"); /* the .tmp- directory was renamed */
    tu_listing(jd, names, sizeof names);
    ck_assert_str_eq(names, "job.json");

    lw_spool_job j;
    ck_assert_int_eq(lw_spool_read(dir, "job-1", 4096, &j, err, sizeof err), 0);
    ck_assert_str_eq(j.status, "queued");
    lw_spool_job_clear(&j);

    /* A second create of the same id fails and changes nothing. */
    errno = 0;
    ck_assert_int_eq(lw_spool_create(dir, &s, err, sizeof err), -1);
    ck_assert_int_eq(errno, EEXIST);
    char want[512];
    snprintf(want, sizeof want, "%s/job-1 exists already", dir);
    ck_assert_str_eq(err, want);
    tu_listing(dir, names, sizeof names);
    ck_assert_str_eq(names, "job-1");

    /* Minimal spec: no lane, no queue, no payload. */
    lw_job_spec_clear(&s);
    s.id = strdup("job-2");
    ck_assert_int_eq(lw_spool_create(dir, &s, err, sizeof err), 0);
    char *jd2 = tu_path(dir, "job-2");
    text = tu_read(jd2, "job.json");
    ck_assert_str_eq(text, "{\"job_id\":\"job-2\",\"status\":\"queued\",\"payload\":null}\n");
    free(text);
    free(jd2);

    free(s.id);
    s.id = strdup("../evil");
    ck_assert_int_eq(lw_spool_create(dir, &s, err, sizeof err), -1);
    ck_assert_str_eq(err, "job id \"../evil\" is not a safe name");
    free(s.id);
    s.id = strdup("job-3");
    s.payload = strdup("{bad");
    ck_assert_int_eq(lw_spool_create(dir, &s, err, sizeof err), -1);
    ck_assert_str_eq(err, "payload: not valid JSON");
    tu_listing(dir, names, sizeof names);
    ck_assert_str_eq(names, "job-1 job-2");
    lw_job_spec_clear(&s);
    free(jd);
}
END_TEST

typedef struct {
    char visited[512];
    char bad[2048];
} scan_log;

static void on_visit(void *ud, const char *spool, lw_spool_job *job)
{
    scan_log *l = ud;
    ck_assert_str_eq(spool, dir);
    size_t n = strlen(l->visited);
    snprintf(l->visited + n, sizeof l->visited - n, "%s=%s;", job->job_id, job->status);
}

static void on_bad(void *ud, const char *spool, const char *entry, const char *why)
{
    scan_log *l = ud;
    ck_assert_str_eq(spool, dir);
    size_t n = strlen(l->bad);
    snprintf(l->bad + n, sizeof l->bad - n, "%s: %s\n", entry, why);
}

START_TEST(scan)
{
    char err[256] = "";
    char *outside = tu_tmpdir();
    make_job("b-good", "{\"job_id\": \"b-good\", \"status\": \"done\"}");
    make_job("a-good", "{\"job_id\": \"a-good\", \"status\": \"queued\", \"lane\": \"x\"}");
    make_job(".tmp-c-1-2", "{\"job_id\": \"c\"}"); /* being created: skipped silently */
    make_job(".hidden", "{}");
    make_job("bad name", "{}");
    tu_write(dir, "afile", "x");
    tu_mkdir(dir, "nojson");
    make_job("malformed", "{\"job_id\": \"malformed\", ");
    make_job("mismatch", "{\"job_id\": \"other\", \"status\": \"queued\"}");
    make_job(
        "zbig",
        "{\"job_id\": \"zbig\", \"status\": \"queued\", \"payload\": \"................................\"}");
    char *good = tu_path(dir, "a-good");
    char *in = tu_path(dir, "link-in");
    char *out = tu_path(dir, "link-out");
    char *dangling = tu_path(dir, "link-none");
    ck_assert_int_eq(symlink(good, in), 0);
    ck_assert_int_eq(symlink(outside, out), 0);
    ck_assert_int_eq(symlink("/nonexistent/x", dangling), 0);

    scan_log l;
    memset(&l, 0, sizeof l);
    int n = lw_spool_scan(dir, 80, on_visit, on_bad, &l, err, sizeof err);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(l.visited, "a-good=queued;b-good=done;");
    char *real_out = realpath(outside, NULL);
    char want[2048];
    snprintf(want, sizeof want,
             ".hidden: unsafe name (letters, digits, '-', '_', '.'; not starting with '.')\n"
             "afile: not a directory\n"
             "bad name: unsafe name (letters, digits, '-', '_', '.'; not starting with '.')\n"
             "link-in: is a symlink (job directories must be real directories)\n"
             "link-none: is a symlink that leads nowhere\n"
             "link-out: is a symlink leading outside the spool (to %s)\n"
             "malformed: job.json: malformed JSON at line 1\n"
             "mismatch: job.json: job_id \"other\" does not match the directory name \"mismatch\"\n"
             "nojson: job.json is missing\n"
             "zbig: job.json is larger than 80 bytes\n",
             real_out);
    ck_assert_str_eq(l.bad, want);

    /* An unreadable spool is an error of the scan, not of an entry. */
    char *missing = tu_path(dir, "no-such-spool");
    ck_assert_int_eq(lw_spool_scan(missing, 80, on_visit, on_bad, &l, err, sizeof err), -1);
    ck_assert_str_eq(err, "cannot read the spool: No such file or directory");

    free(missing);
    free(real_out);
    free(good);
    free(in);
    free(out);
    free(dangling);
    tu_rmrf(outside);
    free(outside);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, parse_fields);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, parse_refuses_nul);
    tcase_add_test(tc, read_ok);
    tcase_add_test(tc, read_refuses);
    tcase_add_test(tc, set_status_keeps_fields);
    tcase_add_test(tc, set_status_refuses);
    tcase_add_test(tc, create);
    tcase_add_test(tc, scan);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

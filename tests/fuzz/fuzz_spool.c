/*
 * fuzz_spool.c — spool job.json content (common/spool.c):
 * lw_spool_job_parse on the text, then, for text it accepts, the file
 * paths that read and rewrite a real job.json: lw_spool_read and
 * lw_spool_set_status (which edits the text member by member with the span
 * walker of common/jsonx.c rather than printing a cJSON tree).
 *
 * The input is the job.json text. What must hold when it is accepted:
 *  - job_id and status are set and are what cJSON reads; lane, queue, error
 *    likewise when present; the payload is strict, compact JSON meaning the
 *    same as the file's member;
 *  - names and strings are taken whole: no member name, and none of job_id,
 *    status, lane, queue, error holds a \u0000 escape (cJSON would cut the
 *    C string short there: "done\u0000x" would read as "done");
 *  - with an expected id, the text is accepted exactly when its job_id is
 *    that id;
 *  - lw_spool_read of the same text as SPOOL/ID/job.json (ID its job_id,
 *    when that is a safe name) gives the same job, and refuses it when the
 *    size limit is one byte short;
 *  - after lw_spool_set_status the file is still a job that parses, with the
 *    new status and error and every other field unchanged; setting a status
 *    without an error removes the error.
 * The files live in a fresh directory under $TMPDIR (default /tmp) made and
 * removed by each run.
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "jsonx.h"
#include "names.h"
#include "spool.h"

#define ID "job-1"

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_opt(const cJSON *root, const char *name, const char *got)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v))
        FUZZ_CHECK(got == NULL);
    else
        FUZZ_CHECK(cJSON_IsString(v) && got && strcmp(got, v->valuestring) == 0);
}

/* No member name and none of the string fields holds U+0000. */
static void check_whole(const char *text, size_t len)
{
    static const char *const fields[] = {"job_id", "status", "lane", "queue", "error"};
    size_t pos = 0;
    lw_json_member m;
    while (lw_json_next_member(text, len, &pos, &m) == 1) {
        FUZZ_CHECK(fuzz_nul_escape(m.key, m.klen) == NULL);
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            if (lw_json_key_is(&m, fields[i]))
                FUZZ_CHECK(fuzz_nul_escape(m.val, m.vlen) == NULL);
        }
    }
}

static void check_job(const char *text, size_t len, const lw_spool_job *j)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    FUZZ_CHECK(root != NULL && cJSON_IsObject(root));
    FUZZ_CHECK(lw_json_valid(text, len));
    check_whole(text, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "job_id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
    FUZZ_CHECK(cJSON_IsString(id) && j->job_id && strcmp(j->job_id, id->valuestring) == 0);
    FUZZ_CHECK(cJSON_IsString(st) && j->status && strcmp(j->status, st->valuestring) == 0);
    check_opt(root, "lane", j->lane);
    check_opt(root, "queue", j->queue);
    check_opt(root, "error", j->error);
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(root, "payload");
    if (!pl) {
        FUZZ_CHECK(j->payload == NULL);
    } else {
        FUZZ_CHECK(j->payload != NULL);
        size_t n = strlen(j->payload);
        FUZZ_CHECK(lw_json_valid(j->payload, n));
        char *again = lw_json_compact(j->payload, n);
        FUZZ_CHECK(again != NULL && strcmp(again, j->payload) == 0);
        free(again);
        cJSON *p = cJSON_Parse(j->payload);
        FUZZ_CHECK(p != NULL && fuzz_same_json(p, pl));
        cJSON_Delete(p);
    }
    cJSON_Delete(root);
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    FUZZ_CHECK(close(fd) == 0);
}

/* Parses job_dir/job.json, which must be a job equal to `was` but for its
 * status and error. */
static void check_rewritten(const char *file, const lw_spool_job *was, const char *status,
                            const char *error)
{
    size_t len;
    char *text = lw_read_file(file, (size_t)1 << 24, &len);
    FUZZ_CHECK(text != NULL);
    lw_spool_job j;
    char err[512];
    if (lw_spool_job_parse(text, len, was->job_id, &j, err, sizeof err) != 0) {
        fprintf(stderr, "rewritten job.json does not parse: %s\n%s\n", err, text);
        FUZZ_CHECK(0);
    }
    check_job(text, len, &j);
    FUZZ_CHECK(strcmp(j.status, status) == 0);
    FUZZ_CHECK(same_str(j.error, error));
    FUZZ_CHECK(strcmp(j.job_id, was->job_id) == 0);
    FUZZ_CHECK(same_str(j.lane, was->lane));
    FUZZ_CHECK(same_str(j.queue, was->queue));
    FUZZ_CHECK(same_str(j.payload, was->payload));
    lw_spool_job_clear(&j);
    free(text);
}

/* Writes the text as SPOOL/ID/job.json (ID: the job's own id, a safe name),
 * reads it back through the spool, and rewrites its status twice. `job` is
 * the text as parsed in memory. */
static void file_round_trip(const uint8_t *data, size_t size, const lw_spool_job *job)
{
    const char *tmp = getenv("TMPDIR");
    char spool[PATH_MAX], jdir[PATH_MAX], file[PATH_MAX], err[512];
    int n = snprintf(spool, sizeof spool, "%s/lw-fuzz-spool-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof spool);
    FUZZ_CHECK(mkdtemp(spool) != NULL);
    n = snprintf(jdir, sizeof jdir, "%s/%s", spool, job->job_id);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof jdir);
    n = snprintf(file, sizeof file, "%s/job.json", jdir);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof file);
    FUZZ_CHECK(mkdir(jdir, 0700) == 0);
    write_file(file, data, size);

    lw_spool_job r;
    FUZZ_CHECK(lw_spool_read(spool, job->job_id, size, &r, err, sizeof err) == 0);
    FUZZ_CHECK(same_str(r.job_id, job->job_id) && same_str(r.status, job->status));
    FUZZ_CHECK(same_str(r.lane, job->lane) && same_str(r.queue, job->queue));
    FUZZ_CHECK(same_str(r.error, job->error) && same_str(r.payload, job->payload));
    lw_spool_job_clear(&r);
    if (size > 0)
        FUZZ_CHECK(lw_spool_read(spool, job->job_id, size - 1, &r, err, sizeof err) != 0);

    if (lw_spool_set_status(jdir, "failed", "boom: \"quoted\"\n\x01\xff", err, sizeof err) != 0) {
        fprintf(stderr, "set_status failed: %s\n", err);
        FUZZ_CHECK(0);
    }
    /* The error as JSON holds it: the byte that is not UTF-8 became U+FFFD. */
    check_rewritten(file, job, "failed", "boom: \"quoted\"\n\x01\xef\xbf\xbd");
    FUZZ_CHECK(lw_spool_set_status(jdir, "done", NULL, err, sizeof err) == 0);
    check_rewritten(file, job, "done", NULL);

    FUZZ_CHECK(unlink(file) == 0);
    FUZZ_CHECK(rmdir(jdir) == 0);
    FUZZ_CHECK(rmdir(spool) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *raw, size_t size)
{
    char *text = fuzz_exact(raw, size);
    const uint8_t *data = (const uint8_t *)text;
    lw_spool_job any, mine;
    char err[512];
    memset(err, 'x', sizeof err);

    int rc_any = lw_spool_job_parse(text, size, NULL, &any, err, sizeof err);
    if (rc_any == 0)
        check_job(text, size, &any);
    else
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');

    int rc_mine = lw_spool_job_parse(text, size, ID, &mine, err, sizeof err);
    /* With an expected id: accepted when accepted at all and the id is it. */
    FUZZ_CHECK((rc_mine == 0) == (rc_any == 0 && strcmp(any.job_id, ID) == 0));
    if (rc_mine == 0)
        check_job(text, size, &mine);
    if (rc_any == 0 && lw_name_is_safe(any.job_id))
        file_round_trip(data, size, &any);
    lw_spool_job_clear(&any);
    lw_spool_job_clear(&mine);
    free(text);
    return 0;
}

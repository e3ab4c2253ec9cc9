/*
 * spool.c — pending job directories (spool.h, CONTRACT section 8).
 *
 * Safety: a spool may be written by less trusted enqueuers, so nothing here
 * follows a symlink (O_NOFOLLOW on every open below the spool, lstat-style
 * checks first for precise messages) and every entry name must be safe.
 * Atomicity: job.json changes by temp file (named per call: writers may be
 * threads of one process) + fsync + rename + fsync of the directory; a new job directory is built under ".tmp-ID-PID-RAND" and
 * renamed into place, so a scanner sees a whole job or none.
 *
 * job.json is rewritten by editing its text, member by member, rather than
 * by printing a cJSON tree: fields this code does not know keep their exact
 * text (cJSON would turn large integers in a payload into doubles).
 */
#include "spool.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "fail.h"
#include "seams.h"
#include "jsonx.h"
#include "names.h"

#define JOB_FILE "job.json"
#define TMP_PREFIX ".tmp-"
/* lw_spool_set_status has no size argument; a job file this large is not
 * one this code wrote. */
#define SET_STATUS_MAX ((size_t)1 << 30)

void lw_spool_job_clear(lw_spool_job *j)
{
    free(j->job_id);
    free(j->status);
    free(j->lane);
    free(j->queue);
    free(j->payload);
    free(j->error);
    free(j->unique);
    memset(j, 0, sizeof *j);
}

/* --- parsing --------------------------------------------------------------- */

/* Copies optional string member `name` of obj into *out; null or absent
 * leaves it NULL. */
static int opt_string(const cJSON *obj, const char *name, char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return lw_fail(err, errlen, "%s must be a string", name);
    if (!(*out = strdup(v->valuestring)))
        return lw_fail(err, errlen, "out of memory");
    return 0;
}

/* Ten years, as for the CLI's flags: milliseconds never overflow. */
#define OPT_MAX_S 315360000.0

/* The job's own options (spool.h); absent or null: not given. */
static int opt_options(const cJSON *root, lw_spool_job *j, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        int positive;
    } secs[] = {{"timeout", 1}, {"delay", 0}, {"expires", 0}, {"unique_for", 0}};
    int64_t *dst[] = {&j->timeout_ms, &j->delay_ms, &j->expires_ms, &j->unique_for_ms};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, secs[i].name);
        if (v && !cJSON_IsNull(v) && lw_json_seconds_ms(v, secs[i].positive, OPT_MAX_S, dst[i]))
            return lw_fail(err, errlen, "%s must be a number of seconds %s", secs[i].name,
                           secs[i].positive ? "> 0" : ">= 0");
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "attempts");
    if (a && !cJSON_IsNull(a)) {
        double d = a->valuedouble;
        if (!cJSON_IsNumber(a) || !(d >= 1 && d <= INT_MAX) || (double)(int)d != d)
            return lw_fail(err, errlen, "attempts must be an integer >= 1");
        j->attempts = (int)d;
    }
    return opt_string(root, "unique", &j->unique, err, errlen);
}

/* Refuses a member name, or a value of the string fields read here, that
 * holds U+0000 and so would be read cut short. The payload and unknown
 * fields are kept as text, not decoded, and may hold it. */
static int refuse_nul(const char *text, size_t len, char *err, size_t errlen)
{
    static const char *const fields[] = {"job_id", "status", "lane", "queue", "error", "unique"};
    size_t pos = 0;
    lw_json_member m;
    while (lw_json_next_member(text, len, &pos, &m) == 1) {
        if (lw_json_nul_escape(m.key, m.klen))
            return lw_fail(err, errlen, "field name \"%.*s\" must not hold \\u0000",
                           (int)(m.klen > 64 ? 64 : m.klen), m.key);
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            if (lw_json_key_is(&m, fields[i]) && lw_json_nul_escape(m.val, m.vlen))
                return lw_fail(err, errlen, "%s must not hold \\u0000", fields[i]);
        }
    }
    return 0;
}

int lw_spool_job_parse(const char *text, size_t len, const char *expect_id, lw_spool_job *out,
                       char *err, size_t errlen)
{
    lw_spool_job j;
    memset(&j, 0, sizeof j);
    memset(out, 0, sizeof *out);
    const char *stop = text;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
    int rc = -1;
    int valid = lw_json_valid(text, len);
    /* Valid text cJSON could not hold (but for a surrogate it refuses). */
    if (!root && valid && !lw_json_unpaired_surrogate(text, len)) {
        lw_fail(err, errlen, "out of memory");
        goto out;
    }
    if (!root || !valid) {
        size_t off = root ? len : stop >= text && stop <= text + len ? (size_t)(stop - text) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off; i++)
            line += text[i] == '\n';
        if (root)
            lw_fail(err, errlen,
                    "malformed JSON (not strict JSON: numbers like 01 or 1., or not UTF-8)");
        else
            lw_fail(err, errlen, "malformed JSON at line %zu", line);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        lw_fail(err, errlen, "not a JSON object");
        goto out;
    }
    if (refuse_nul(text, len, err, errlen) != 0)
        goto out;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "job_id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (!id) {
        lw_fail(err, errlen, "job_id is missing");
        goto out;
    }
    if (!cJSON_IsString(id)) {
        lw_fail(err, errlen, "job_id must be a string");
        goto out;
    }
    if (expect_id && strcmp(id->valuestring, expect_id) != 0) {
        lw_fail(err, errlen, "job_id \"%.64s\" does not match the directory name \"%.64s\"",
                id->valuestring, expect_id);
        goto out;
    }
    if (!st) {
        lw_fail(err, errlen, "status is missing");
        goto out;
    }
    if (!cJSON_IsString(st)) {
        lw_fail(err, errlen, "status must be a string");
        goto out;
    }
    /* One place decides what a status means, so the scan and the attempt's
     * own re-read agree: anything else is a file we do not understand. */
    static const char *const known[] = {"queued", "processing", "done", "failed", NULL};
    size_t k = 0;
    while (known[k] && strcmp(known[k], st->valuestring) != 0)
        k++;
    if (!known[k]) {
        lw_fail(err, errlen, "unknown status \"%.40s\" (queued, processing, done or failed)",
                st->valuestring);
        goto out;
    }
    if (!(j.job_id = strdup(id->valuestring)) || !(j.status = strdup(st->valuestring))) {
        lw_fail(err, errlen, "out of memory");
        goto out;
    }
    if (opt_string(root, "lane", &j.lane, err, errlen) ||
        opt_string(root, "queue", &j.queue, err, errlen) ||
        opt_string(root, "error", &j.error, err, errlen) || opt_options(root, &j, err, errlen))
        goto out;
    if (cJSON_GetObjectItemCaseSensitive(root, "payload") &&
        !(j.payload = lw_json_member_text(text, len, "payload"))) {
        lw_fail(err, errlen, "out of memory");
        goto out;
    }
    *out = j;
    memset(&j, 0, sizeof j);
    rc = 0;
out:
    lw_spool_job_clear(&j);
    cJSON_Delete(root);
    return rc;
}

/* --- reading ---------------------------------------------------------------- */

/* Opens directory `name` below dirfd without following a symlink. */
static int open_dir_at(int dirfd, const char *name)
{
    return lw_openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Why entry `id` of the spool open as dfd is not a job directory, or NULL
 * when it is one. */
static const char *entry_problem(int dfd, const char *id, char *buf, size_t buflen)
{
    struct stat st;
    if (fstatat(dfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? "no such job directory" : strerror(errno);
    if (S_ISLNK(st.st_mode)) {
        snprintf(buf, buflen, "is a symlink (job directories must be real directories)");
        return buf;
    }
    if (!S_ISDIR(st.st_mode))
        return "not a directory";
    return NULL;
}

/* Reads and parses SPOOL/ID/job.json, the spool being open as dfd. */
static int read_at(int dfd, const char *id, size_t max_bytes, lw_spool_job *out, char *err,
                   size_t errlen)
{
    char buf[128];
    struct stat st;
    memset(out, 0, sizeof *out);
    if (!lw_name_is_safe(id))
        return lw_fail(err, errlen,
                       "unsafe name (letters, digits, '-', '_', '.'; not starting with '.')");
    errno = 0; /* set only by a failed fstatat */
    const char *why = entry_problem(dfd, id, buf, sizeof buf);
    int absent = why && errno == ENOENT;
    if (why) {
        lw_fail(err, errlen, "%s", why);
        errno = absent ? ENOENT : EINVAL;
        return -1;
    }
    int jd = open_dir_at(dfd, id);
    if (jd < 0)
        return lw_fail(err, errlen, "cannot open the job directory: %s", strerror(errno));
    int fd = -1, rc = -1, unparsable = 0;
    char *text = NULL;
    size_t len = 0;
    if (fstatat(jd, JOB_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        absent = errno == ENOENT;
        lw_fail(err, errlen, JOB_FILE " %s", absent ? "is missing" : strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
        lw_fail(err, errlen, JOB_FILE " is a symlink");
    } else if (!S_ISREG(st.st_mode)) {
        lw_fail(err, errlen, JOB_FILE " is not a regular file");
    } else if ((fd = lw_openat(jd, JOB_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
        lw_fail(err, errlen, "cannot open " JOB_FILE ": %s", strerror(errno));
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        lw_fail(err, errlen, JOB_FILE " is not a regular file");
    } else if (!(text = lw_read_fd(fd, max_bytes, &len))) {
        if (errno == EFBIG)
            lw_fail(err, errlen, JOB_FILE " is larger than %zu bytes", max_bytes);
        else
            lw_fail(err, errlen, "cannot read " JOB_FILE ": %s", strerror(errno));
    } else {
        char why2[512];
        rc = lw_spool_job_parse(text, len, id, out, why2, sizeof why2);
        if (rc) {
            lw_fail(err, errlen, JOB_FILE ": %s", why2);
            unparsable = 1;
        }
    }
    free(text);
    if (fd >= 0)
        close(fd);
    close(jd);
    errno = rc == 0 ? 0 : absent ? ENOENT : unparsable ? EBADMSG : EINVAL;
    return rc;
}

int lw_spool_read(const char *spool, const char *id, size_t max_bytes, lw_spool_job *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    int dfd = lw_open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return lw_fail(err, errlen, "cannot open the spool %s: %s", spool, strerror(errno));
    int rc = read_at(dfd, id, max_bytes, out, err, errlen);
    int e = errno;
    close(dfd);
    errno = e;
    return rc;
}

/* --- writing ---------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = lw_write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes `text` to file `name` in directory jd and fsyncs it; `excl`: the
 * file must not exist yet; `mode` (when nonzero) its permissions. Returns 0
 * or -1 with errno. */
static int write_file_at(int jd, const char *name, const char *text, size_t len, mode_t mode,
                         int excl)
{
    int fd = lw_openat(
        jd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0666);
    if (fd < 0)
        return -1;
    int rc = 0;
    if (mode && fchmod(fd, mode) != 0)
        rc = -1;
    if (rc == 0 && (write_all(fd, text, len) != 0 || lw_fsync(fd) != 0))
        rc = -1;
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    errno = e;
    return rc;
}

/* Writes one member: its name as given (raw, escapes kept) and its value's
 * JSON text. */
static void put_member(FILE *f, int *first, const char *name, size_t nlen, const char *val,
                       size_t vlen)
{
    if (!*first)
        fputc(',', f);
    *first = 0;
    fputc('"', f);
    fwrite(name, 1, nlen, f);
    fputs("\":", f);
    fwrite(val, 1, vlen, f);
}

/* The job.json text `text` (a valid JSON object) with "status" and "error"
 * set to the quoted qstatus / qerror (error removed when NULL) and every
 * other member kept as written. NULL on OOM. */
static char *edit_job(const char *text, size_t len, const char *qstatus, const char *qerror,
                      size_t *out_len)
{
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    if (!f)
        return NULL;
    int first = 1, have_status = 0, have_error = 0;
    size_t pos = 0;
    lw_json_member m;
    fputc('{', f);
    while (lw_json_next_member(text, len, &pos, &m) == 1) {
        if (lw_json_key_is(&m, "status")) {
            if (!have_status++)
                put_member(f, &first, "status", 6, qstatus, strlen(qstatus));
        } else if (lw_json_key_is(&m, "error")) {
            if (qerror && !have_error++)
                put_member(f, &first, "error", 5, qerror, strlen(qerror));
        } else {
            put_member(f, &first, m.key, m.klen, m.val, m.vlen);
        }
    }
    if (!have_status)
        put_member(f, &first, "status", 6, qstatus, strlen(qstatus));
    if (qerror && !have_error)
        put_member(f, &first, "error", 5, qerror, strlen(qerror));
    fputs("}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    *out_len = blen;
    return buf;
}

int lw_spool_set_status(const char *job_dir, const char *status, const char *error, char *err,
                        size_t errlen)
{
    int e = EINVAL; /* the errno of a failed write, rename or sync */
    int jd = lw_open(job_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (jd < 0)
        return lw_fail(err, errlen, "cannot open the job directory: %s", strerror(errno));
    int fd = lw_openat(jd, JOB_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    char *text = NULL, *out = NULL, *qs = NULL, *qe = NULL;
    char tmp[64];
    size_t len = 0, olen = 0;
    struct stat st;
    int rc = -1;
    /* Unique per call, not only per process: the worker writes from
     * several I/O threads. */
    static atomic_uint seq;
    snprintf(tmp, sizeof tmp, ".%s.tmp.%ld.%u", JOB_FILE, (long)getpid(),
             atomic_fetch_add(&seq, 1));
    if (fd < 0) {
        lw_fail(err, errlen, "cannot open " JOB_FILE ": %s", strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        lw_fail(err, errlen, JOB_FILE " is not a regular file");
        goto out;
    }
    if (!(text = lw_read_fd(fd, SET_STATUS_MAX, &len))) {
        lw_fail(err, errlen, "cannot read " JOB_FILE ": %s", strerror(errno));
        goto out;
    }
    const char *p = text;
    while (p < text + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (!lw_json_valid(text, len) || p == text + len || *p != '{') {
        lw_fail(err, errlen, JOB_FILE " is not a JSON object; not rewriting it");
        goto out;
    }
    qs = lw_json_quote(status, strlen(status));
    qe = error ? lw_json_quote(error, strlen(error)) : NULL;
    if (!qs || (error && !qe) || !(out = edit_job(text, len, qs, qe, &olen))) {
        lw_fail(err, errlen, "out of memory");
        goto out;
    }
    if (write_file_at(jd, tmp, out, olen, st.st_mode & 07777, 0) != 0) {
        e = errno;
        lw_fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        unlinkat(jd, tmp, 0);
        goto out;
    }
    if (lw_renameat(jd, tmp, jd, JOB_FILE) != 0) {
        e = errno;
        lw_fail(err, errlen, "cannot rename %s to " JOB_FILE ": %s", tmp, strerror(errno));
        unlinkat(jd, tmp, 0);
        goto out;
    }
    /* The rename is durable only once the directory is. */
    if (lw_fsync(jd) != 0) {
        e = errno;
        lw_fail(err, errlen, "cannot sync the job directory: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(text);
    free(out);
    free(qs);
    free(qe);
    if (fd >= 0)
        close(fd);
    close(jd);
    errno = rc ? e : 0;
    return rc;
}

/* The job.json text of a new job, with every option of `s` that is set;
 * NULL on OOM. */
static char *new_job_text(const lw_job_spec *s, const char *payload, size_t *len)
{
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    if (!f)
        return NULL;
    char *qid = lw_json_quote(s->id, strlen(s->id));
    char *ql = s->lane ? lw_json_quote(s->lane, strlen(s->lane)) : NULL;
    char *qq = s->queue ? lw_json_quote(s->queue, strlen(s->queue)) : NULL;
    char *qu = s->unique ? lw_json_quote(s->unique, strlen(s->unique)) : NULL;
    int ok = qid && (!s->lane || ql) && (!s->queue || qq) && (!s->unique || qu);
    if (ok) {
        fprintf(f, "{\"job_id\":%s,\"status\":\"queued\"", qid);
        if (ql)
            fprintf(f, ",\"lane\":%s", ql);
        if (qq)
            fprintf(f, ",\"queue\":%s", qq);
        if (s->attempts > 0)
            fprintf(f, ",\"attempts\":%d", s->attempts);
        const struct {
            const char *name;
            int64_t ms;
        } secs[] = {{"timeout", s->timeout_ms},
                    {"delay", s->delay_ms},
                    {"expires", s->expires_ms},
                    {"unique_for", s->unique_for_ms}};
        for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++)
            if (secs[i].ms > 0)
                fprintf(f, ",\"%s\":%lld.%03lld", secs[i].name, (long long)(secs[i].ms / 1000),
                        (long long)(secs[i].ms % 1000));
        if (qu)
            fprintf(f, ",\"unique\":%s", qu);
        fprintf(f, ",\"payload\":%s}\n", payload);
    }
    free(qid);
    free(ql);
    free(qq);
    free(qu);
    ok = ok && !ferror(f);
    if (fclose(f) != 0 || !ok) {
        free(buf);
        return NULL;
    }
    *len = blen;
    return buf;
}

/* rename(2) that never replaces: plain rename puts a directory over an
 * existing empty one. Filesystems without RENAME_NOREPLACE fall back to a
 * plain rename after the caller's existence check. */
static int rename_noreplace(int dfd, const char *from, const char *to)
{
    if (lw_renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    return lw_renameat(dfd, from, dfd, to);
}

int lw_spool_create(const char *spool, const lw_job_spec *s, char *err, size_t errlen)
{
    if (!s->id || !lw_name_is_safe(s->id)) {
        errno = EINVAL;
        return lw_fail(err, errlen, "job id \"%.64s\" is not a safe name", s->id ? s->id : "");
    }
    const char *payload = s->payload ? s->payload : "null";
    if (!lw_json_valid(payload, strlen(payload))) {
        errno = EINVAL;
        return lw_fail(err, errlen, "payload: not valid JSON");
    }
    char *compact = lw_json_compact(payload, strlen(payload));
    size_t len = 0;
    char *text = compact ? new_job_text(s, compact, &len) : NULL;
    free(compact);
    if (!text) {
        errno = ENOMEM;
        return lw_fail(err, errlen, "out of memory");
    }

    int rc = -1, e = 0, jd = -1;
    char tmp[LW_NAME_MAX + 64];
    struct stat st;
    int dfd = lw_open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        e = errno;
        lw_fail(err, errlen, "cannot open the spool %s: %s", spool, strerror(e));
        free(text);
        errno = e;
        return -1;
    }
    if (fstatat(dfd, s->id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        e = EEXIST;
        lw_fail(err, errlen, "%s/%s exists already", spool, s->id);
        goto out;
    }
    snprintf(tmp, sizeof tmp, TMP_PREFIX "%s-%ld-%08" PRIx32, s->id, (long)getpid(),
             (uint32_t)lw_random64());
    if (lw_mkdirat(dfd, tmp, 0777) != 0) {
        e = errno;
        lw_fail(err, errlen, "cannot create %s/%s: %s", spool, tmp, strerror(e));
        goto out;
    }
    if ((jd = open_dir_at(dfd, tmp)) < 0 || write_file_at(jd, JOB_FILE, text, len, 0, 1) != 0 ||
        lw_fsync(jd) != 0) {
        e = errno;
        lw_fail(err, errlen, "cannot write %s/%s/" JOB_FILE ": %s", spool, tmp, strerror(e));
        goto cleanup;
    }
    if (rename_noreplace(dfd, tmp, s->id) != 0) {
        e = errno == ENOTEMPTY ? EEXIST : errno;
        if (e == EEXIST)
            lw_fail(err, errlen, "%s/%s exists already", spool, s->id);
        else
            lw_fail(err, errlen, "cannot rename %s to %s in %s: %s", tmp, s->id, spool,
                    strerror(e));
        goto cleanup;
    }
    if (lw_fsync(dfd) != 0) {
        e = errno;
        lw_fail(err, errlen, "cannot sync the spool %s: %s", spool, strerror(e));
        goto out;
    }
    rc = 0;
    goto out;
cleanup:
    if (jd >= 0)
        unlinkat(jd, JOB_FILE, 0);
    unlinkat(dfd, tmp, AT_REMOVEDIR);
out:
    if (jd >= 0)
        close(jd);
    close(dfd);
    free(text);
    errno = e;
    return rc;
}

int lw_spool_remove(const char *spool, const char *id, char *err, size_t errlen)
{
    if (!lw_name_is_safe(id))
        return lw_fail(err, errlen, "job id \"%.64s\" is not a safe name", id);
    int dfd = lw_open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return lw_fail(err, errlen, "cannot open the spool %s: %s", spool, strerror(errno));
    int rc = 0, jd = open_dir_at(dfd, id);
    /* job.json last written by rename: a stray .job.json.tmp.PID may be
     * there too, which then keeps the directory (and says so). */
    if (jd < 0 || unlinkat(jd, JOB_FILE, 0) != 0 || unlinkat(dfd, id, AT_REMOVEDIR) != 0 ||
        lw_fsync(dfd) != 0)
        rc = lw_fail(err, errlen, "cannot remove %s/%s: %s", spool, id, strerror(errno));
    if (jd >= 0)
        close(jd);
    close(dfd);
    return rc;
}

/* --- scanning --------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The entry names of the spool open as dfd, sorted bytewise, without "."
 * and ".." and without directories still being created (".tmp-"). */
static int list_entries(int dfd, char ***out, size_t *count)
{
    /* Close-on-exec: a worker forks exec handlers while a scan runs. */
    int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
            strncmp(nm, TMP_PREFIX, sizeof TMP_PREFIX - 1) == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                goto oom;
            names = nn;
        }
        if (!(names[n] = strdup(nm)))
            goto oom;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    *out = names;
    *count = n;
    return 0;
oom:
    free_names(names, n);
    closedir(d);
    errno = ENOMEM;
    return -1;
}

/* Why symlink `name` in the spool is refused: where it leads decides the
 * wording (one leaving the spool may be an attempt to read other files). */
static void symlink_why(const char *spool, const char *real_spool, const char *name, char *why,
                        size_t whylen)
{
    size_t n = strlen(spool) + strlen(name) + 2;
    char *path = malloc(n);
    char *target = NULL;
    if (path) {
        snprintf(path, n, "%s/%s", spool, name);
        target = realpath(path, NULL);
    }
    size_t rl = real_spool ? strlen(real_spool) : 0;
    if (!target)
        snprintf(why, whylen, "is a symlink that leads nowhere");
    else if (!real_spool || strncmp(target, real_spool, rl) != 0 || target[rl] != '/')
        snprintf(why, whylen, "is a symlink leading outside the spool (to %.300s)", target);
    else
        snprintf(why, whylen, "is a symlink (job directories must be real directories)");
    free(path);
    free(target);
}

int lw_spool_scan(const char *spool, size_t max_bytes, lw_spool_visit_fn visit, lw_spool_bad_fn bad,
                  void *ud, char *err, size_t errlen)
{
    int dfd = lw_open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return lw_fail(err, errlen, "cannot read the spool: %s", strerror(errno));
    char **names = NULL;
    size_t n = 0;
    if (list_entries(dfd, &names, &n) != 0) {
        int e = errno;
        close(dfd);
        return lw_fail(err, errlen, "cannot read the spool: %s", strerror(e));
    }
    char *real_spool = realpath(spool, NULL);
    int visited = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = names[i];
        char why[512];
        struct stat st;
        lw_spool_job job;
        if (!lw_name_is_safe(nm)) {
            snprintf(why, sizeof why,
                     "unsafe name (letters, digits, '-', '_', '.'; not starting with '.')");
        } else if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* removed since the listing: nothing left to do */
            snprintf(why, sizeof why, "%s", strerror(errno));
        } else if (S_ISLNK(st.st_mode)) {
            symlink_why(spool, real_spool, nm, why, sizeof why);
        } else if (read_at(dfd, nm, max_bytes, &job, why, sizeof why) == 0) {
            /* The job is the visitor's to read (or to take fields from,
             * setting them NULL) until it returns; it is freed here. */
            if (visit)
                visit(ud, spool, &job);
            lw_spool_job_clear(&job);
            if (visited < INT_MAX)
                visited++;
            continue;
        }
        if (bad)
            bad(ud, spool, nm, why);
    }
    free(real_spool);
    free_names(names, n);
    close(dfd);
    return visited;
}

/*
 * example.c — the example tenant module: one handler per job kind of a small
 * school platform (the same kinds as the Python/RQ system lanework replaces).
 *
 *   upload          spooled: checksums the files of the job's own directory
 *   exam            scores answers against a key, pass mark from the config
 *   profile_update  validates the fields of a profile change
 *   chat            a tiny agent run in the chat session's lane, with
 *                   step.created / tool.invoked / tool.succeeded events
 *   flaky           fails on purpose until an attempt number: shows retries
 *
 * Threading: with `--isolation thread` many threads call handle() at once
 * with the same `state`. The state is written only by init and fini and is
 * read-only in between; every handler keeps its data on its own stack or
 * heap. There is no other mutable global.
 *
 * Outcome conventions followed by every handler:
 *   - bad input (malformed payload, unknown field, ...) is LW_FAIL: another
 *     attempt would fail the same way;
 *   - a resource problem that may pass (I/O error, out of memory) is
 *     LW_RETRY;
 *   - every failure sets an error naming what and why.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* openat, fstatat, strdup, nanosleep, ... */
#endif

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lanework/module.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#define EX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define EX_PRINTF(f, a)
#endif

/* Limits that keep one job's work and result bounded. */
#define GREETING_MAX 1024       /* bytes of config.greeting */
#define MESSAGE_MAX 16384       /* bytes of a chat message */
#define THINK_MS_MAX 60000      /* a chat step thinks at most a minute */
#define UPLOAD_FILES_MAX 100000 /* upper bound of config.upload_max_files */
#define PROFILE_FIELDS_MAX 64   /* entries of config.profile_fields */
#define FIELD_VALUE_MAX 1024    /* bytes of one profile field value */
#define USER_MAX 128            /* bytes of a user or student name */
#define ERR_MAX 512             /* bytes of an error message */

/* Per-tenant state, made by ex_init from the tenant's "config" and read-only
 * until ex_fini frees it. */
typedef struct ex_state {
    char *tenant;          /* for messages */
    char *greeting;        /* chat replies start with it */
    double pass_mark;      /* exam: percent needed to pass, 0..100 */
    long think_ms;         /* chat: default pause per step */
    long upload_max_files; /* upload: more files than this fails the job */
    char **profile_fields; /* profile_update: allowed field names, NULL-ended */
} ex_state;

static const char *const DEFAULT_PROFILE_FIELDS[] = {
    "display_name", "email", "bio", "locale", "timezone", NULL,
};

/* --- small helpers ------------------------------------------------------ */

/* Sets the job's error to the formatted message and returns `status`. */
EX_PRINTF(3, 4)
static lw_status job_error(lw_job *job, lw_status status, const char *fmt, ...)
{
    char msg[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lw_job_set_error(job, msg);
    return status;
}

/* Text of errno value `e`, thread-safe (strerror is not). Returns a pointer
 * into `buf` or to a static string. */
static const char *errtext(int e, char *buf, size_t n)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, n);
#else
    if (strerror_r(e, buf, n) != 0)
        snprintf(buf, n, "error %d", e);
    return buf;
#endif
}

/* Prints `value` as the job's result and frees it. Returns LW_OK, or
 * LW_RETRY when printing ran out of memory. */
static lw_status set_result(lw_job *job, cJSON *value)
{
    char *text = value ? cJSON_PrintUnformatted(value) : NULL;
    cJSON_Delete(value);
    if (!text)
        return job_error(job, LW_RETRY, "out of memory building the result");
    lw_job_set_result(job, text);
    cJSON_free(text);
    return LW_OK;
}

/* Appends handler event `type` with data `value` (freed here; NULL: no
 * data). Returns 0, or -1 when the data could not be built. */
static int emit(lw_job *job, const char *type, cJSON *value)
{
    char *text = NULL;
    if (value) {
        text = cJSON_PrintUnformatted(value);
        cJSON_Delete(value);
        if (!text)
            return -1;
    }
    lw_job_event(job, type, text);
    cJSON_free(text);
    return 0;
}

/* Parses the job's payload. Returns the JSON value (caller frees with
 * cJSON_Delete), or NULL after setting the job's error; the handler then
 * returns LW_RETRY. lanework refuses a payload that is not JSON at enqueue,
 * so a parse failure here is out of memory (cJSON cannot tell us) or a
 * nesting deeper than cJSON's limit: retrying is right for the first, and
 * bounded by the job's attempts for the second. */
static cJSON *parse_payload(lw_job *job)
{
    const char *text = lw_job_payload(job);
    cJSON *p = text ? cJSON_Parse(text) : NULL;
    if (!p)
        lw_job_set_error(job,
                         "cannot parse the payload (not JSON, nested too deep, or out of memory)");
    return p;
}

/* The object member `name` of `obj`, or NULL (also when obj is no object). */
static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
}

/* Nonzero when `v` is a JSON number that is a whole number in [lo, hi]. */
static int whole_in(const cJSON *v, double lo, double hi)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    return d >= lo && d <= hi && d == (double)(long long)d;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps `ms` milliseconds in slices of at most 5 ms, polling
 * lw_job_cancelled() between slices. Returns 0, or -1 once the job was asked
 * to stop (cancel, timeout or hand-back). */
static int think(const lw_job *job, long ms)
{
    long long deadline = mono_ms() + ms;
    for (;;) {
        if (lw_job_cancelled(job))
            return -1;
        long long left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        long slice = left < 5 ? (long)left : 5;
        struct timespec ts = {0, slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

/* --- init / fini -------------------------------------------------------- */

static void free_state(ex_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->profile_fields && s->profile_fields[i]; i++)
        free(s->profile_fields[i]);
    free(s->profile_fields);
    free(s->greeting);
    free(s->tenant);
    free(s);
}

/* Copies the NULL-terminated `names` into s->profile_fields. */
static int set_profile_fields(ex_state *s, const char *const *names, size_t n)
{
    s->profile_fields = calloc(n + 1, sizeof *s->profile_fields);
    if (!s->profile_fields)
        return -2;
    for (size_t i = 0; i < n; i++)
        if (!(s->profile_fields[i] = strdup(names[i])))
            return -2;
    return 0;
}

/* The module has no channel for an init error other than its return value,
 * so it says why on stderr, where the worker's own log lines go too. */
EX_PRINTF(2, 3)
static int config_error(const char *tenant, const char *fmt, ...)
{
    char msg[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "example module: tenant %s: config: %s\n", tenant, msg);
    return -1;
}

/* Reads config.profile_fields (an array of field names) into s. Returns 0,
 * -1 on a bad value (said on stderr), -2 out of memory. */
static int load_profile_fields(ex_state *s, const cJSON *v)
{
    if (!v)
        return set_profile_fields(s, DEFAULT_PROFILE_FIELDS, 5);
    int n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || n < 1 || n > PROFILE_FIELDS_MAX)
        return config_error(s->tenant, "profile_fields must be an array of 1 to %d field names",
                            PROFILE_FIELDS_MAX);
    const char *names[PROFILE_FIELDS_MAX + 1];
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it) || !*it->valuestring)
            return config_error(s->tenant, "profile_fields[%zu] must be a non-empty string", i);
        names[i++] = it->valuestring;
    }
    names[i] = NULL;
    return set_profile_fields(s, names, i);
}

/*
 * Builds the tenant's state from its config object; every member is
 * optional:
 *   greeting         string, the start of every chat reply ("Hello, ")
 *   exam_pass_mark   percent of correct answers needed to pass (60)
 *   chat_think_ms    default pause per chat step in ms (5)
 *   upload_max_files more files than this in a job directory fail it (1000)
 *   profile_fields   field names profile_update accepts
 * Unknown members are ignored. Returns 0, or -1 (reason on stderr).
 */
static int ex_init(void **out, const char *tenant, const char *config_json)
{
    ex_state *s = calloc(1, sizeof *s);
    cJSON *cfg = NULL;
    const cJSON *v;
    if (!s || !(s->tenant = strdup(tenant ? tenant : "?")))
        goto oom;
    s->pass_mark = 60;
    s->think_ms = 5;
    s->upload_max_files = 1000;

    cfg = cJSON_Parse(config_json ? config_json : "null");
    if (!cfg) {
        config_error(s->tenant, "not valid JSON");
        goto fail;
    }
    if (!cJSON_IsNull(cfg) && !cJSON_IsObject(cfg)) {
        config_error(s->tenant, "must be an object or null");
        goto fail;
    }

    v = member(cfg, "greeting");
    if (v && (!cJSON_IsString(v) || strlen(v->valuestring) > GREETING_MAX)) {
        config_error(s->tenant, "greeting must be a string of at most %d bytes", GREETING_MAX);
        goto fail;
    }
    if (!(s->greeting = strdup(v ? v->valuestring : "Hello, ")))
        goto oom;

    v = member(cfg, "exam_pass_mark");
    if (v) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 100)) {
            config_error(s->tenant, "exam_pass_mark must be a number from 0 to 100 (percent)");
            goto fail;
        }
        s->pass_mark = v->valuedouble;
    }

    v = member(cfg, "chat_think_ms");
    if (v) {
        if (!whole_in(v, 0, THINK_MS_MAX)) {
            config_error(s->tenant, "chat_think_ms must be a whole number from 0 to %d",
                         THINK_MS_MAX);
            goto fail;
        }
        s->think_ms = (long)v->valuedouble;
    }

    v = member(cfg, "upload_max_files");
    if (v) {
        if (!whole_in(v, 1, UPLOAD_FILES_MAX)) {
            config_error(s->tenant, "upload_max_files must be a whole number from 1 to %d",
                         UPLOAD_FILES_MAX);
            goto fail;
        }
        s->upload_max_files = (long)v->valuedouble;
    }

    switch (load_profile_fields(s, member(cfg, "profile_fields"))) {
    case 0: break;
    case -1: goto fail; /* config_error said why */
    default: goto oom;
    }

    cJSON_Delete(cfg);
    *out = s;
    return 0;
oom:
    config_error(tenant ? tenant : "?", "out of memory");
fail:
    cJSON_Delete(cfg);
    free_state(s);
    return -1;
}

static void ex_fini(void *state) { free_state(state); }

/* --- upload ------------------------------------------------------------- */

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the regular files in open directory `dir`, other than
 * job.json and hidden files (the worker's temporary files start with '.'),
 * sorted. Symlinks and subdirectories are not followed. On success stores a
 * malloc'd array of malloc'd names in *names (caller frees both) and the
 * count in *n and returns 0; returns -1 with errno set (E2BIG: more than
 * `max` files). */
static int list_files(DIR *dir, long max, char ***names, size_t *n)
{
    char **v = NULL;
    size_t len = 0, cap = 0;
    int dfd = dirfd(dir);
    struct dirent *de;
    for (errno = 0; (de = readdir(dir)) != NULL; errno = 0) {
        struct stat st;
        if (de->d_name[0] == '.' || strcmp(de->d_name, "job.json") == 0)
            continue;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* removed meanwhile */
            goto fail;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if ((long)len >= max) {
            errno = E2BIG;
            goto fail;
        }
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(v, ncap * sizeof *grown);
            if (!grown)
                goto fail;
            v = grown;
            cap = ncap;
        }
        if (!(v[len] = strdup(de->d_name)))
            goto fail;
        len++;
    }
    if (errno != 0)
        goto fail;
    if (len > 1)
        qsort(v, len, sizeof *v, by_name);
    *names = v;
    *n = len;
    return 0;
fail : {
    int e = errno;
    for (size_t i = 0; i < len; i++)
        free(v[i]);
    free(v);
    errno = e;
    return -1;
}
}

/* Reads file `name` of directory `dfd` to its end: its size in *bytes and
 * its FNV-1a 64 hash in *hash. Polls lw_job_cancelled() between reads.
 * Returns 0; 1 when the job was asked to stop; -1 with errno set. */
static int checksum_file(const lw_job *job, int dfd, const char *name, unsigned char *buf,
                         size_t buflen, uint64_t *bytes, uint64_t *hash)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    uint64_t h = FNV64_OFFSET, total = 0;
    for (;;) {
        if (lw_job_cancelled(job)) {
            close(fd);
            return 1;
        }
        ssize_t got = read(fd, buf, buflen);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (got == 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            h ^= buf[i];
            h *= FNV64_PRIME;
        }
        total += (uint64_t)got;
    }
    close(fd);
    *bytes = total;
    *hash = h;
    return 0;
}

/* Builds {"files":[{"name","bytes","fnv1a"}...],"total_bytes":N} for the
 * `n` files `names` of directory `dir`. Returns the status; on LW_OK the
 * result is set. */
static lw_status checksum_files(lw_job *job, const char *dir, char **names, size_t n)
{
    char eb[128];
    size_t buflen = 64 * 1024;
    unsigned char *buf = malloc(buflen);
    cJSON *result = cJSON_CreateObject();
    cJSON *files = cJSON_AddArrayToObject(result, "files");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t total = 0;
    lw_status st = LW_OK;

    if (!buf || !files) {
        st = job_error(job, LW_RETRY, "out of memory");
        goto done;
    }
    if (dfd < 0) {
        st = job_error(job, errno == ENOENT ? LW_FAIL : LW_RETRY, "cannot open %s: %s", dir,
                       errtext(errno, eb, sizeof eb));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = 0, hash = 0;
        int rc = checksum_file(job, dfd, names[i], buf, buflen, &bytes, &hash);
        if (rc == 1) {
            st = job_error(job, LW_FAIL, "cancelled");
            goto done;
        }
        if (rc < 0) {
            /* A file that vanished or turned into a symlink since the
             * listing is the uploader's doing: fail. Anything else (EIO,
             * EMFILE, ...) may pass: retry. */
            int e = errno;
            st = job_error(job, (e == ENOENT || e == ELOOP) ? LW_FAIL : LW_RETRY,
                           "cannot read %s/%s: %s", dir, names[i], errtext(e, eb, sizeof eb));
            goto done;
        }
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash);
        cJSON *f = cJSON_CreateObject();
        if (!f || !cJSON_AddItemToArray(files, f) ||
            !cJSON_AddStringToObject(f, "name", names[i]) ||
            !cJSON_AddNumberToObject(f, "bytes", (double)bytes) ||
            !cJSON_AddStringToObject(f, "fnv1a", hex)) {
            st = job_error(job, LW_RETRY, "out of memory");
            goto done;
        }
        total += bytes;
    }
    if (!cJSON_AddNumberToObject(result, "total_bytes", (double)total)) {
        st = job_error(job, LW_RETRY, "out of memory");
        goto done;
    }
    st = set_result(job, result);
    result = NULL;
done:
    if (dfd >= 0)
        close(dfd);
    cJSON_Delete(result);
    free(buf);
    return st;
}

/*
 * upload: the job directory SPOOL/ID is the unit of work (the uploader wrote
 * the files, then job.json). Checksums every regular file in it other than
 * job.json. Optional payload {"files": ["a.csv", ...]}: those files must all
 * be there. No file, a missing expected file or too many files: LW_FAIL.
 */
static lw_status do_upload(const ex_state *s, lw_job *job)
{
    const char *dir = lw_job_spool_dir(job);
    char eb[128];
    if (!dir)
        return job_error(
            job, LW_FAIL,
            "upload jobs must come from a spool: enqueue with `lanework enqueue --spool DIR` "
            "or put the directory in the tenant's spool");

    cJSON *payload = parse_payload(job);
    if (!payload)
        return LW_RETRY;
    const cJSON *expect = member(payload, "files");
    if (expect && !cJSON_IsArray(expect)) {
        cJSON_Delete(payload);
        return job_error(job, LW_FAIL, "payload.files must be an array of file names");
    }

    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        cJSON_Delete(payload);
        return job_error(job, e == ENOENT || e == ENOTDIR ? LW_FAIL : LW_RETRY,
                         "cannot open job directory %s: %s", dir, errtext(e, eb, sizeof eb));
    }
    char **names = NULL;
    size_t n = 0;
    int rc = list_files(d, s->upload_max_files, &names, &n);
    int e = errno;
    closedir(d);
    lw_status st;
    if (rc != 0) {
        if (e == E2BIG)
            st = job_error(job, LW_FAIL,
                           "job directory %s holds more than %ld files (config.upload_max_files)",
                           dir, s->upload_max_files);
        else
            st = job_error(job, LW_RETRY, "cannot list job directory %s: %s", dir,
                           errtext(e, eb, sizeof eb));
        cJSON_Delete(payload);
        return st;
    }

    st = LW_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, expect)
    {
        if (!cJSON_IsString(it)) {
            st = job_error(job, LW_FAIL, "payload.files must be an array of file names");
            break;
        }
        char *key = it->valuestring;
        if (n == 0 || !bsearch(&key, names, n, sizeof *names, by_name)) {
            st = job_error(job, LW_FAIL, "expected file \"%.200s\" is not in %s", it->valuestring,
                           dir);
            break;
        }
    }
    if (st == LW_OK && n == 0)
        st = job_error(job, LW_FAIL, "no uploaded files in %s", dir);
    if (st == LW_OK)
        st = checksum_files(job, dir, names, n);

    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    cJSON_Delete(payload);
    return st;
}

/* --- exam --------------------------------------------------------------- */

/* Nonzero when `v` is a string of 1 to `max` bytes. */
static int short_string(const cJSON *v, size_t max)
{
    return cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= max;
}

/* Nonzero when `v` is an array whose items are all strings (or null, when
 * `nulls`). */
static int string_array(const cJSON *v, int nulls)
{
    const cJSON *it;
    if (!cJSON_IsArray(v))
        return 0;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it) && !(nulls && cJSON_IsNull(it)))
            return 0;
    }
    return 1;
}

/*
 * exam: {"student": S, "answers": [...], "key": [...]} ->
 * {"student": S, "score": N, "of": M, "percent": P, "passed": bool}.
 * Answers compare case-insensitively; a missing (null or absent) answer
 * counts as wrong. More answers than questions is a malformed payload.
 */
static lw_status do_exam(const ex_state *s, lw_job *job)
{
    cJSON *p = parse_payload(job);
    if (!p)
        return LW_RETRY;
    const cJSON *student = member(p, "student"), *answers = member(p, "answers"),
                *key = member(p, "key");
    lw_status st;
    if (!short_string(student, USER_MAX))
        st = job_error(job, LW_FAIL,
                       "payload.student must be a non-empty string of at most %d bytes", USER_MAX);
    else if (!string_array(key, 0) || cJSON_GetArraySize(key) == 0)
        st = job_error(job, LW_FAIL, "payload.key must be a non-empty array of strings");
    else if (!string_array(answers, 1))
        st = job_error(job, LW_FAIL,
                       "payload.answers must be an array of strings (null: not answered)");
    else if (cJSON_GetArraySize(answers) > cJSON_GetArraySize(key))
        st = job_error(job, LW_FAIL, "payload.answers has %d answers for %d questions",
                       cJSON_GetArraySize(answers), cJSON_GetArraySize(key));
    else {
        int score = 0, of = cJSON_GetArraySize(key);
        const cJSON *a = answers->child;
        for (const cJSON *k = key->child; k && a; k = k->next, a = a->next)
            if (cJSON_IsString(a) && strcasecmp(a->valuestring, k->valuestring) == 0)
                score++;
        double percent = 100.0 * score / of;
        cJSON *r = cJSON_CreateObject();
        if (!r || !cJSON_AddStringToObject(r, "student", student->valuestring) ||
            !cJSON_AddNumberToObject(r, "score", score) || !cJSON_AddNumberToObject(r, "of", of) ||
            !cJSON_AddNumberToObject(r, "percent", (double)(long long)(percent * 10 + 0.5) / 10) ||
            !cJSON_AddBoolToObject(r, "passed", percent >= s->pass_mark)) {
            cJSON_Delete(r);
            st = job_error(job, LW_RETRY, "out of memory");
        } else {
            st = set_result(job, r);
        }
    }
    cJSON_Delete(p);
    return st;
}

/* --- profile_update ----------------------------------------------------- */

static int allowed_field(const ex_state *s, const char *name)
{
    for (size_t i = 0; s->profile_fields[i]; i++)
        if (strcmp(s->profile_fields[i], name) == 0)
            return 1;
    return 0;
}

/* Nonzero when `user` is a safe user name: letters, digits, '-', '_', '.',
 * '@'. */
static int valid_user(const char *user)
{
    for (const char *c = user; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.' || *c == '@'))
            return 0;
    return *user != '\0';
}

/* Checks the value of one profile field. Returns NULL when fine, else why
 * not (a static string). */
static const char *check_field(const char *name, const cJSON *v)
{
    if (cJSON_IsNull(v))
        return NULL; /* null clears the field */
    if (!cJSON_IsString(v))
        return "must be a string or null";
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n > FIELD_VALUE_MAX)
        return "is too long";
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t')
            return "holds a control character";
    if (strcmp(name, "email") == 0) {
        const char *at = strchr(s, '@');
        if (!at || at == s || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.') ||
            strpbrk(s, " \t\n"))
            return "is not an email address";
    } else if (strcmp(name, "locale") == 0) {
        /* "en", "pt-BR", "zh_Hant": 2-3 letters, optional region/script. */
        size_t i = 0;
        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            i++;
        if (i < 2 || i > 3)
            return "is not a locale such as en or pt-BR";
        if (i < n && s[i] != '-' && s[i] != '_')
            return "is not a locale such as en or pt-BR";
        if (n - i > 9)
            return "is not a locale such as en or pt-BR";
    } else if (strcmp(name, "display_name") == 0) {
        if (n == 0)
            return "must not be empty";
        if (n > 100)
            return "is longer than 100 bytes";
    }
    return NULL;
}

/*
 * profile_update: {"user": U, "fields": {NAME: VALUE, ...}} ->
 * {"user": U, "updated": [NAME, ...]}. Every name must be in the tenant's
 * profile_fields and every value pass its check; otherwise nothing is
 * updated and the job fails (a partial profile change is worse than none).
 */
static lw_status do_profile_update(const ex_state *s, lw_job *job)
{
    cJSON *p = parse_payload(job);
    if (!p)
        return LW_RETRY;
    const cJSON *user = member(p, "user"), *fields = member(p, "fields"), *f;
    lw_status st = LW_OK;
    if (!short_string(user, USER_MAX) || !valid_user(user->valuestring))
        st = job_error(
            job, LW_FAIL,
            "payload.user must be a user name (letters, digits, '-', '_', '.', '@'; at most %d bytes)",
            USER_MAX);
    else if (!cJSON_IsObject(fields) || !fields->child)
        st = job_error(job, LW_FAIL, "payload.fields must be a non-empty object of field: value");
    else {
        cJSON_ArrayForEach(f, fields)
        {
            const char *why = NULL;
            if (!allowed_field(s, f->string)) {
                st = job_error(job, LW_FAIL,
                               "field \"%.100s\" cannot be updated (not in config.profile_fields)",
                               f->string);
                break;
            }
            for (const cJSON *g = fields->child; g != f; g = g->next)
                if (strcmp(g->string, f->string) == 0)
                    why = "is given twice";
            if (why || (why = check_field(f->string, f)) != NULL) {
                st = job_error(job, LW_FAIL, "field %s %s", f->string, why);
                break;
            }
        }
    }
    if (st == LW_OK) {
        cJSON *r = cJSON_CreateObject(), *updated = NULL;
        int ok = r && cJSON_AddStringToObject(r, "user", user->valuestring) &&
                 (updated = cJSON_AddArrayToObject(r, "updated")) != NULL;
        cJSON_ArrayForEach(f, fields)
        {
            cJSON *name = ok ? cJSON_CreateString(f->string) : NULL;
            if (!name || !cJSON_AddItemToArray(updated, name)) {
                cJSON_Delete(name);
                ok = 0;
                break;
            }
        }
        if (!ok) {
            cJSON_Delete(r);
            st = job_error(job, LW_RETRY, "out of memory");
        } else {
            st = set_result(job, r);
        }
    }
    cJSON_Delete(p);
    return st;
}

/* --- chat --------------------------------------------------------------- */

/* The data of one chat event: {"step": 1, "session": LANE, k: v}. NULL on
 * out of memory. */
static cJSON *chat_data(const char *session, const char *k, const char *v)
{
    cJSON *d = cJSON_CreateObject();
    if (!d || !cJSON_AddNumberToObject(d, "step", 1) ||
        !cJSON_AddStringToObject(d, "session", session) || !cJSON_AddStringToObject(d, k, v)) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

/*
 * chat: {"message": M, "think_ms": T} in the lane of the chat session, so
 * one session's messages are answered one at a time and in order. Emits
 * step.created, tool.invoked, tool.succeeded (the "echo" tool), pausing
 * think_ms (default config.chat_think_ms) before each and stopping early
 * when the job is cancelled. Result {"reply": greeting + M, "session": lane}.
 */
static lw_status do_chat(const ex_state *s, lw_job *job)
{
    /* Each step: think, check for a stop request, then say what happened. */
    static const struct {
        const char *type, *key; /* event type; the data member holding the message */
        int tool;               /* the data names the tool */
    } steps[] = {
        {"step.created", "message", 0},
        {"tool.invoked", "input", 1},
        {"tool.succeeded", "output", 1},
    };
    cJSON *p = parse_payload(job), *r = NULL;
    if (!p)
        return LW_RETRY;
    const cJSON *msg = member(p, "message"), *tm = member(p, "think_ms");
    const char *session = lw_job_lane(job) ? lw_job_lane(job) : lw_job_id(job);
    long think_ms = s->think_ms;
    lw_status st = LW_RETRY;
    char *reply = NULL;
    size_t glen, mlen;

    if (!cJSON_IsString(msg) || strlen(msg->valuestring) > MESSAGE_MAX) {
        st = job_error(job, LW_FAIL, "payload.message must be a string of at most %d bytes",
                       MESSAGE_MAX);
        goto done;
    }
    if (tm) {
        if (!whole_in(tm, 0, THINK_MS_MAX)) {
            st = job_error(job, LW_FAIL, "payload.think_ms must be a whole number from 0 to %d",
                           THINK_MS_MAX);
            goto done;
        }
        think_ms = (long)tm->valuedouble;
    }

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (think(job, think_ms) != 0) {
            st = job_error(job, LW_FAIL, "cancelled");
            goto done;
        }
        cJSON *d = chat_data(session, steps[i].key, msg->valuestring);
        if (d && steps[i].tool && !cJSON_AddStringToObject(d, "tool", "echo")) {
            cJSON_Delete(d);
            d = NULL;
        }
        if (!d || emit(job, steps[i].type, d) != 0)
            goto oom;
    }

    glen = strlen(s->greeting);
    mlen = strlen(msg->valuestring);
    if (!(reply = malloc(glen + mlen + 1)))
        goto oom;
    memcpy(reply, s->greeting, glen);
    memcpy(reply + glen, msg->valuestring, mlen + 1);
    if (!(r = cJSON_CreateObject()) || !cJSON_AddStringToObject(r, "reply", reply) ||
        !cJSON_AddStringToObject(r, "session", session))
        goto oom;
    st = set_result(job, r);
    r = NULL;
    goto done;
oom:
    st = job_error(job, LW_RETRY, "out of memory");
done:
    cJSON_Delete(r);
    free(reply);
    cJSON_Delete(p);
    return st;
}

/* --- flaky -------------------------------------------------------------- */

/*
 * flaky: {"succeed_on": N} (default 2). Attempts before N return LW_RETRY,
 * attempt N and later succeed with {"attempt": A}. With attempts=3 and
 * succeed_on=4 the job ends failed: retries run out.
 */
static lw_status do_flaky(const ex_state *s, lw_job *job)
{
    (void)s;
    cJSON *p = parse_payload(job);
    if (!p)
        return LW_RETRY;
    const cJSON *v = member(p, "succeed_on");
    int succeed_on = 2, attempt = lw_job_attempt(job);
    lw_status st;
    if (v && !whole_in(v, 1, INT_MAX)) {
        st = job_error(job, LW_FAIL, "payload.succeed_on must be a whole number of at least 1");
    } else {
        if (v)
            succeed_on = (int)v->valuedouble;
        if (attempt < succeed_on) {
            st = job_error(job, LW_RETRY,
                           "flaky: attempt %d fails on purpose (succeeds on attempt %d)", attempt,
                           succeed_on);
        } else {
            cJSON *r = cJSON_CreateObject();
            if (!r || !cJSON_AddNumberToObject(r, "attempt", attempt)) {
                cJSON_Delete(r);
                st = job_error(job, LW_RETRY, "out of memory");
            } else {
                st = set_result(job, r);
            }
        }
    }
    cJSON_Delete(p);
    return st;
}

/* --- the module --------------------------------------------------------- */

static const struct {
    const char *kind;
    lw_status (*run)(const ex_state *s, lw_job *job);
} HANDLERS[] = {
    {"upload", do_upload}, {"exam", do_exam},   {"profile_update", do_profile_update},
    {"chat", do_chat},     {"flaky", do_flaky},
};

/* Must list the same kinds as HANDLERS. */
static const char *const KINDS[] = {"upload", "exam", "profile_update", "chat", "flaky", NULL};

static lw_status ex_handle(void *state, lw_job *job)
{
    const char *kind = lw_job_kind(job);
    for (size_t i = 0; kind && i < sizeof HANDLERS / sizeof HANDLERS[0]; i++)
        if (strcmp(HANDLERS[i].kind, kind) == 0)
            return HANDLERS[i].run(state, job);
    return job_error(job, LW_FAIL, "example module: no handler for kind %s",
                     kind ? kind : "(null)");
}

static const lw_module MODULE = {
    .abi = LW_MODULE_ABI,
    .name = "example",
    .init = ex_init,
    .fini = ex_fini,
    .handle = ex_handle,
    .kinds = KINDS,
};

/* The entry point the worker looks up with dlsym(LW_MODULE_ENTRY). Declared
 * here first: module.h names only its type. */
const lw_module *lanework_module(void);

const lw_module *lanework_module(void) { return &MODULE; }

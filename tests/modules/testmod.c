/*
 * testmod.c — the tenant module the integration tests drive. Each kind does
 * one observable thing; payloads are JSON objects with optional fields.
 * config: record_file, lifecycle_file (INIT/FINI lines), tag, refuse_init,
 * init_sleep_ms (a slow init: a worker still starting up), init_ignore (an
 * array of signal numbers init sets to SIG_IGN: module code that changes
 * the worker's dispositions).
 *
 * Times written to record_file are CLOCK_MONOTONIC (ms, or us for STAMP):
 * on Linux that clock is system-wide, so lines of different processes
 * compare with each other and with Python's time.monotonic(), and they do
 * not move when a test skews the wall clock of a worker (clockskew.so).
 * Every line is one write(2) to a file opened O_APPEND: lines never
 * interleave.
 *
 *   noop          succeed
 *   echo          succeed with the payload as result
 *   record        append "START <ms> <id> <lane> <pid>" and "END ..." lines to
 *                 config.record_file around a sleep of payload.ms (default 0):
 *                 tests rebuild order and overlap from the handlers' own clocks;
 *                 a stopped run writes "STOP ..." instead of "END" and fails
 *   ticker        like record, with "TICK <ms> <id> <lane> <pid>" lines every
 *                 payload.every_ms (default 20) in between, for payload.ms
 *                 (default 1000) in all: the last TICK says until when the
 *                 attempt was alive (a frozen or killed process stops ticking)
 *   sleep         sleep payload.ms, polling lw_job_cancelled(); if stopped,
 *                 LW_FAIL "stopped"
 *   sleep_hard    sleep payload.ms ignoring every stop request
 *   crash         SIGSEGV
 *   fail          LW_FAIL with payload.error (default "failed on purpose")
 *   retry         LW_RETRY until attempt >= payload.succeed_on (default 2)
 *   events        step.created, tool.invoked, tool.succeeded, then succeed
 *   whoami        succeed with {"tenant": T, "tag": config.tag}
 *   kill_worker   SIGKILL the worker process itself (fork: the parent;
 *                 thread: this process): a poison job
 *   stamp         append "STAMP <now_us> <t_us> <id>" to config.record_file
 *                 (now_us: CLOCK_MONOTONIC in us; t_us: payload.t, the
 *                 enqueuer's CLOCK_MONOTONIC in us, 0 when absent); succeed.
 *                 For tests/bench/latency.py
 *   big_result    succeed with a result that is a JSON string of
 *                 payload.bytes (default 1048576) 'x' characters (the JSON
 *                 text is 2 bytes longer: the quotes)
 *   big_event     lw_job_event "step.created" whose data is such a JSON
 *                 string of payload.bytes (default 1048576) 'x', then succeed
 *   system        system(payload.cmd): succeed when it returned 0, else
 *                 LW_FAIL "system() returned R (errno E: text)" (-1 with
 *                 ECHILD: something else reaped the shell)
 *   escape        fork a grandchild that calls setsid(), writes its pid to
 *                 payload.pidfile (a temp file renamed into place) and
 *                 sleeps payload.ms (default 30000); the handler waits (at
 *                 most 5 s) until the pidfile exists, sleeps payload.hold_ms
 *                 (default 0) and succeeds: an escapee the worker must kill
 *   fds           system("ls -l /proc/$$/fd > OUT 2>&1"), OUT = payload.out,
 *                 and succeed with OUT's text as a JSON string: the fds a
 *                 program started by a module inherits
 *   self_check    succeed with {"fds": [[N, "target"], ...] (the handler's own
 *                 fds above 2, from /proc/self/fd), "shared_anon": true when
 *                 a shared anonymous mapping is in /proc/self/maps, "own_group":
 *                 true when the process leads its process group, "tty": true
 *                 when it has a controlling terminal (/dev/tty opens),
 *                 "home": $HOME, "handled": [the signals whose disposition is
 *                 not SIG_DFL]}
 *   many_events   lw_job_event "step.created" payload.count times (default
 *                 2000), each with payload.bytes (default 10) of data
 *   pid           succeed with {"pid": getpid(), "served": N, "init_pid": P,
 *                 "tenant": T (the tenant its init was for)}:
 *                 N counts the attempts this process's module state handled
 *                 (1 in fork isolation; it grows in a pool child), P is the
 *                 process init ran in (the worker, or the pool child)
 *   setsid_wait   fork a child that calls setsid() and _exit(7); wait
 *                 payload.ms (default 600) before waitpid(): LW_FAIL when
 *                 waitpid does not return that child with status 7 (something
 *                 else reaped it)
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lanework/module.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct state {
    char record_file[1024];
    char lifecycle_file[1024]; /* "INIT tenant pid" / "FINI tenant pid" lines */
    char tenant[128];
    char tag[128];    /* config.tag, returned by kind whoami */
    pid_t worker_pid; /* the process init ran in: the worker, or a pool child */
    long served;      /* attempts kind pid handled with this state */
} state;

static void lifecycle(const state *s, const char *what)
{
    if (!s->lifecycle_file[0])
        return;
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s %ld\n", what, s->tenant, (long)getpid());
    int fd = open(s->lifecycle_file, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0)
        return;
    (void)!write(fd, line, (size_t)n);
    close(fd);
}

static int tm_init(void **out, const char *tenant, const char *config_json)
{
    (void)tenant;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->worker_pid = getpid();
    cJSON *cfg = cJSON_Parse(config_json);
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(cfg, "record_file");
    if (cJSON_IsString(rf))
        snprintf(s->record_file, sizeof s->record_file, "%s", rf->valuestring);
    const cJSON *lf = cJSON_GetObjectItemCaseSensitive(cfg, "lifecycle_file");
    if (cJSON_IsString(lf))
        snprintf(s->lifecycle_file, sizeof s->lifecycle_file, "%s", lf->valuestring);
    const cJSON *tag = cJSON_GetObjectItemCaseSensitive(cfg, "tag");
    if (cJSON_IsString(tag))
        snprintf(s->tag, sizeof s->tag, "%s", tag->valuestring);
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    int refuse = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "refuse_init"));
    const cJSON *slow = cJSON_GetObjectItemCaseSensitive(cfg, "init_sleep_ms");
    long slow_ms = cJSON_IsNumber(slow) ? (long)slow->valuedouble : 0;
    const cJSON *ign;
    cJSON_ArrayForEach(ign, cJSON_GetObjectItemCaseSensitive(cfg, "init_ignore"))
    {
        if (cJSON_IsNumber(ign))
            signal((int)ign->valuedouble, SIG_IGN);
    }
    cJSON_Delete(cfg);
    if (slow_ms > 0) {
        struct timespec ts = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    if (refuse) {
        free(s);
        return -1;
    }
    lifecycle(s, "INIT");
    *out = s;
    return 0;
}

static void tm_fini(void *st)
{
    lifecycle(st, "FINI");
    free(st);
}

/* CLOCK_MONOTONIC: system-wide on Linux, immune to wall-clock changes. */
static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long now_ms(void) { return now_us() / 1000; }

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static double num(const cJSON *p, const char *name, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *p, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* payload.NAME of kind KIND, a path; NULL (and the job's error set) when
 * it is missing. */
static const char *path_arg(lw_job *job, const cJSON *p, const char *kind, const char *name)
{
    const char *v = str(p, name);
    if (!v) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: payload.%s (a path) is required", kind, name);
        lw_job_set_error(job, msg);
    }
    return v;
}

/* Appends one line with one write(2) of a file opened O_APPEND: lines of
 * concurrent attempts never interleave. */
static void append_line(const char *path, const char *line, int n)
{
    if (!path[0] || n <= 0)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!write(fd, line, (size_t)n);
    close(fd);
}

static void record(const state *s, const char *what, lw_job *job)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s %lld %s %s %ld\n", what, now_ms(), lw_job_id(job),
                     lw_job_lane(job), (long)getpid());
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    append_line(s->record_file, line, n);
}

/* The last line of a recorded run: STOP and LW_FAIL "stopped" when it was
 * cancelled (chaos tests tell interrupted runs apart), else END. */
static lw_status record_end(const state *s, lw_job *job)
{
    if (!lw_job_cancelled(job)) {
        record(s, "END", job);
        return LW_OK;
    }
    record(s, "STOP", job);
    lw_job_set_error(job, "stopped");
    return LW_FAIL;
}

/* A JSON string of n 'x' characters (n + 2 bytes with its quotes); NULL on
 * OOM. */
static char *x_string(long n)
{
    if (n < 0)
        n = 0;
    char *out = malloc((size_t)n + 3);
    if (!out)
        return NULL;
    out[0] = '"';
    memset(out + 1, 'x', (size_t)n);
    out[n + 1] = '"';
    out[n + 2] = '\0';
    return out;
}

/* Sets error "system() returned R (errno E: text)" unless r is 0. */
static lw_status system_outcome(lw_job *job, int r, int e)
{
    if (r == 0)
        return LW_OK;
    char msg[256];
    snprintf(msg, sizeof msg, "system() returned %d (errno %d: %s)", r, e, strerror(e));
    lw_job_set_error(job, msg);
    return LW_FAIL;
}

/* The decimal digits of v into out (async-signal-safe, for a forked child of
 * a possibly threaded process); returns the length. */
static size_t fmt_long(char *out, long v)
{
    char tmp[24];
    size_t n = 0, k = 0;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u && n < sizeof tmp);
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    out[k++] = '\n';
    return k;
}

/* Kind escape: see the header. Only async-signal-safe calls after fork. */
static lw_status escape(lw_job *job, const cJSON *p)
{
    const char *pidfile = path_arg(job, p, "escape", "pidfile");
    if (!pidfile)
        return LW_FAIL;
    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", pidfile) >= (int)sizeof tmp) {
        lw_job_set_error(job, "escape: payload.pidfile is too long");
        return LW_FAIL;
    }
    long ms = (long)num(p, "ms", 30000);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    pid_t pid = fork();
    if (pid < 0) {
        lw_job_set_error(job, "escape: fork failed");
        return LW_FAIL;
    }
    if (pid == 0) {
        setsid();
        char line[32];
        size_t n = fmt_long(line, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            (void)!write(fd, line, n);
            close(fd);
            rename(tmp, pidfile);
        }
        while (nanosleep(&ts, &ts) != 0) {
        }
        _exit(0);
    }
    /* Until the pidfile is there (at most 5 s), so a test reading it after
     * the job succeeded finds it. */
    for (int i = 0; i < 5000 && access(pidfile, F_OK) != 0; i++)
        sleep_ms(1);
    long hold = (long)num(p, "hold_ms", 0);
    if (hold > 0)
        sleep_ms(hold);
    return LW_OK;
}

/* Kind self_check: see the header. */
static lw_status self_check(lw_job *job)
{
    char out[8192];
    size_t n = 0;
    n += (size_t)snprintf(out + n, sizeof out - n, "{\"fds\":[");
    DIR *d = opendir("/proc/self/fd");
    int first = 1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd <= 2 || fd == dirfd(d))
            continue;
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t l = readlink(path, target, sizeof target - 1);
        target[l > 0 ? l : 0] = '\0';
        for (char *c = target; *c; c++)
            if (*c == '"' || *c == '\\')
                *c = '_';
        if (n < sizeof out - 400)
            n += (size_t)snprintf(out + n, sizeof out - n, "%s[%d,\"%s\"]", first ? "" : ",", fd,
                                  target);
        first = 0;
    }
    if (d)
        closedir(d);
    int shared_anon = 0;
    FILE *m = fopen("/proc/self/maps", "r");
    char line[512];
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, " rw-s ") && (strstr(line, "/dev/zero") || strstr(line, "[anon_shmem]")))
            shared_anon = 1;
    if (m)
        fclose(m);
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (tty >= 0)
        close(tty);
    const char *home = getenv("HOME");
    n += (size_t)snprintf(
        out + n, sizeof out - n,
        "],\"shared_anon\":%s,\"own_group\":%s,\"tty\":%s,\"home\":\"%s\",\"handled\":[",
        shared_anon ? "true" : "false", getpgrp() == getpid() ? "true" : "false",
        tty >= 0 ? "true" : "false", home ? home : "");
    first = 1;
    for (int sig = 1; sig < NSIG && n < sizeof out - 16; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 &&
            ((sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL)) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%d", first ? "" : ",", sig);
            first = 0;
        }
    }
    snprintf(out + n, sizeof out - n, "]}");
    lw_job_set_result(job, out);
    return LW_OK;
}

/* Kind fds: see the header. */
static lw_status fds(lw_job *job, const cJSON *p)
{
    const char *out = path_arg(job, p, "fds", "out");
    if (!out)
        return LW_FAIL;
    /* OUT in single quotes, each ' written as '\'' */
    size_t len = strlen(out);
    char *cmd = malloc(len * 4 + 64);
    if (!cmd) {
        lw_job_set_error(job, "fds: out of memory");
        return LW_FAIL;
    }
    char *c = cmd + sprintf(cmd, "ls -l /proc/$$/fd > '");
    for (const char *q = out; *q; q++) {
        if (*q == '\'') {
            memcpy(c, "'\\''", 4);
            c += 4;
        } else {
            *c++ = *q;
        }
    }
    strcpy(c, "' 2>&1");
    errno = 0;
    int r = system(cmd);
    int e = errno;
    free(cmd);
    lw_status rc = system_outcome(job, r, e);
    if (rc != LW_OK)
        return rc;
    FILE *f = fopen(out, "rb");
    if (!f) {
        lw_job_set_error(job, "fds: cannot read payload.out");
        return LW_FAIL;
    }
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *text = cJSON_CreateString(buf);
    char *json = text ? cJSON_PrintUnformatted(text) : NULL;
    cJSON_Delete(text);
    if (!json) {
        lw_job_set_error(job, "fds: out of memory");
        return LW_FAIL;
    }
    lw_job_set_result(job, json);
    free(json);
    return LW_OK;
}

static lw_status tm_handle(void *st, lw_job *job)
{
    state *s = st;
    const char *kind = lw_job_kind(job);
    cJSON *p = cJSON_Parse(lw_job_payload(job));
    lw_status rc = LW_OK;

    if (!strcmp(kind, "noop")) {
    } else if (!strcmp(kind, "echo")) {
        lw_job_set_result(job, lw_job_payload(job));
    } else if (!strcmp(kind, "record")) {
        /* Stops when asked (hand-back, timeout, cancel) and says so with
         * STOP instead of END: chaos tests tell interrupted runs apart. */
        record(s, "START", job);
        long left = (long)num(p, "ms", 0);
        while (left > 0 && !lw_job_cancelled(job)) {
            sleep_ms(left < 10 ? left : 10);
            left -= 10;
        }
        rc = record_end(s, job);
    } else if (!strcmp(kind, "ticker")) {
        record(s, "START", job);
        long long every = (long long)num(p, "every_ms", 20);
        if (every < 1)
            every = 1;
        long long t0 = now_ms(), end = t0 + (long long)num(p, "ms", 1000), next = t0 + every;
        while (!lw_job_cancelled(job)) {
            long long t = now_ms();
            if (t >= end)
                break;
            if (t >= next) {
                record(s, "TICK", job);
                next += every;
                if (next <= t)
                    next = t + every; /* fell behind (frozen): no burst */
                continue;
            }
            long long d = (next < end ? next : end) - t;
            sleep_ms(d < 10 ? (long)d : 10);
        }
        rc = record_end(s, job);
    } else if (!strcmp(kind, "stamp")) {
        char line[256];
        int n = snprintf(line, sizeof line, "STAMP %lld %lld %s\n", now_us(),
                         (long long)num(p, "t", 0), lw_job_id(job));
        if (n >= (int)sizeof line)
            n = (int)sizeof line - 1;
        append_line(s->record_file, line, n);
    } else if (!strcmp(kind, "big_result") || !strcmp(kind, "big_event")) {
        char *data = x_string((long)num(p, "bytes", 1048576));
        if (!data) {
            lw_job_set_error(job, "testmod: out of memory");
            rc = LW_FAIL;
        } else if (!strcmp(kind, "big_result")) {
            lw_job_set_result(job, data);
        } else {
            lw_job_event(job, "step.created", data);
        }
        free(data);
    } else if (!strcmp(kind, "system")) {
        const char *cmd = str(p, "cmd");
        if (!cmd) {
            lw_job_set_error(job, "system: payload.cmd (a string) is required");
            rc = LW_FAIL;
        } else {
            errno = 0;
            int r = system(cmd);
            rc = system_outcome(job, r, errno);
        }
    } else if (!strcmp(kind, "escape")) {
        rc = escape(job, p);
    } else if (!strcmp(kind, "fds")) {
        rc = fds(job, p);
    } else if (!strcmp(kind, "self_check")) {
        rc = self_check(job);
    } else if (!strcmp(kind, "many_events")) {
        long count = (long)num(p, "count", 2000), bytes = (long)num(p, "bytes", 10);
        char *data = malloc((size_t)bytes + 3);
        if (!data) {
            lw_job_set_error(job, "many_events: out of memory");
            rc = LW_FAIL;
        } else {
            data[0] = '"';
            memset(data + 1, 'x', (size_t)bytes);
            data[bytes + 1] = '"';
            data[bytes + 2] = '\0';
            for (long i = 0; i < count; i++)
                lw_job_event(job, "step.created", data);
            free(data);
        }
    } else if (!strcmp(kind, "pid")) {
        char r[256];
        snprintf(r, sizeof r, "{\"pid\":%ld,\"served\":%ld,\"init_pid\":%ld,\"tenant\":\"%s\"}",
                 (long)getpid(), ++s->served, (long)s->worker_pid, s->tenant);
        lw_job_set_result(job, r);
    } else if (!strcmp(kind, "setsid_wait")) {
        pid_t child = fork();
        if (child == 0) {
            setsid();
            _exit(7);
        }
        sleep_ms((long)num(p, "ms", 600));
        int wst = 0;
        pid_t got = child > 0 ? waitpid(child, &wst, 0) : -1;
        if (got != child || !WIFEXITED(wst) || WEXITSTATUS(wst) != 7) {
            char e[160];
            snprintf(e, sizeof e, "waitpid returned %d (errno %d: %s), status %d", (int)got, errno,
                     strerror(errno), wst);
            lw_job_set_error(job, e);
            rc = LW_FAIL;
        }
    } else if (!strcmp(kind, "sleep")) {
        long left = (long)num(p, "ms", 1000);
        while (left > 0 && !lw_job_cancelled(job)) {
            sleep_ms(left < 10 ? left : 10);
            left -= 10;
        }
        if (lw_job_cancelled(job)) {
            lw_job_set_error(job, "stopped");
            rc = LW_FAIL;
        }
    } else if (!strcmp(kind, "sleep_hard")) {
        long left = (long)num(p, "ms", 1000);
        while (left > 0) {
            sleep_ms(left < 50 ? left : 50);
            left -= 50;
        }
    } else if (!strcmp(kind, "crash")) {
        raise(SIGSEGV);
    } else if (!strcmp(kind, "fail")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(p, "error");
        lw_job_set_error(job, cJSON_IsString(e) ? e->valuestring : "failed on purpose");
        rc = LW_FAIL;
    } else if (!strcmp(kind, "retry")) {
        if (lw_job_attempt(job) < (int)num(p, "succeed_on", 2)) {
            lw_job_set_error(job, "not yet");
            rc = LW_RETRY;
        } else {
            char r[64];
            snprintf(r, sizeof r, "{\"attempt\":%d}", lw_job_attempt(job));
            lw_job_set_result(job, r);
        }
    } else if (!strcmp(kind, "events")) {
        lw_job_event(job, "step.created", "{\"step\":1}");
        lw_job_event(job, "tool.invoked", "{\"tool\":\"echo\"}");
        lw_job_event(job, "tool.succeeded", "{\"tool\":\"echo\",\"ok\":true}");
        lw_job_set_result(job, "{\"steps\":1}");
    } else if (!strcmp(kind, "whoami")) {
        char r[512];
        snprintf(r, sizeof r, "{\"tenant\":\"%s\",\"tag\":\"%s\"}", s->tenant, s->tag);
        lw_job_set_result(job, r);
    } else if (!strcmp(kind, "kill_worker")) {
        kill(s->worker_pid, SIGKILL);
        sleep_ms(10000);
    } else {
        lw_job_set_error(job, "testmod: unknown kind");
        rc = LW_FAIL;
    }
    cJSON_Delete(p);
    return rc;
}

static const char *const kinds[] = {
    "noop",       "echo",        "record",      "sleep",  "sleep_hard",  "crash",
    "fail",       "retry",       "events",      "whoami", "kill_worker", "ticker",
    "stamp",      "big_result",  "big_event",   "system", "escape",      "fds",
    "self_check", "many_events", "setsid_wait", "pid",    NULL,
};

static const lw_module module = {
    LW_MODULE_ABI, "testmod", tm_init, tm_fini, tm_handle, kinds,
};

const lw_module *lanework_module(void);
const lw_module *lanework_module(void) { return &module; }

/*
 * testmod.c — the tenant module the integration tests drive. Each kind does
 * one observable thing; payloads are JSON objects with optional fields.
 * config: record_file, lifecycle_file (INIT/FINI lines), tag, refuse_init.
 *
 *   noop          succeed
 *   echo          succeed with the payload as result
 *   record        append "START <ms> <id> <lane> <pid>" and "END ..." lines to
 *                 config.record_file around a sleep of payload.ms (default 0):
 *                 tests rebuild order and overlap from the handlers' own clocks;
 *                 a stopped run writes "STOP ..." instead of "END" and fails
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
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <lanework/module.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct state {
    char record_file[1024];
    char lifecycle_file[1024]; /* "INIT tenant pid" / "FINI tenant pid" lines */
    char tenant[128];
    char tag[128];             /* config.tag, returned by kind whoami */
    pid_t worker_pid; /* init runs in the worker process itself */
} state;

static void lifecycle(const state *s, const char *what)
{
    if (!s->lifecycle_file[0]) return;
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s %ld\n", what, s->tenant, (long)getpid());
    int fd = open(s->lifecycle_file, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return;
    (void)!write(fd, line, (size_t)n);
    close(fd);
}

static int tm_init(void **out, const char *tenant, const char *config_json)
{
    (void)tenant;
    state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->worker_pid = getpid();
    cJSON *cfg = cJSON_Parse(config_json);
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(cfg, "record_file");
    if (cJSON_IsString(rf)) snprintf(s->record_file, sizeof s->record_file, "%s", rf->valuestring);
    const cJSON *lf = cJSON_GetObjectItemCaseSensitive(cfg, "lifecycle_file");
    if (cJSON_IsString(lf)) snprintf(s->lifecycle_file, sizeof s->lifecycle_file, "%s", lf->valuestring);
    const cJSON *tag = cJSON_GetObjectItemCaseSensitive(cfg, "tag");
    if (cJSON_IsString(tag)) snprintf(s->tag, sizeof s->tag, "%s", tag->valuestring);
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    int refuse = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "refuse_init"));
    cJSON_Delete(cfg);
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

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

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

static void record(const state *s, const char *what, lw_job *job)
{
    if (!s->record_file[0]) return;
    char line[512];
    int n = snprintf(line, sizeof line, "%s %lld %s %s %ld\n", what, now_ms(), lw_job_id(job),
                     lw_job_lane(job), (long)getpid());
    int fd = open(s->record_file, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return;
    /* One write of a short line with O_APPEND: lines never interleave. */
    (void)!write(fd, line, (size_t)n);
    close(fd);
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
        if (lw_job_cancelled(job)) {
            record(s, "STOP", job);
            lw_job_set_error(job, "stopped");
            rc = LW_FAIL;
        } else {
            record(s, "END", job);
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

static const char *const kinds[] = {"noop", "echo", "record", "sleep", "sleep_hard", "crash",
                                    "fail", "retry", "events", "whoami", "kill_worker", NULL};

static const lw_module module = {
    LW_MODULE_ABI, "testmod", tm_init, tm_fini, tm_handle, kinds,
};

const lw_module *lanework_module(void);
const lw_module *lanework_module(void) { return &module; }

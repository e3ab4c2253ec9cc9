/*
 * run_exec.c — exec handlers (CONTRACT section 7): the registry's command
 * runs once per attempt, in its own process group, with the payload on stdin
 * and LANEWORK_* in its environment.
 *
 *   exit 0    succeeded; stdout, when it is JSON, is the result
 *   exit 65   failed now (EX_DATAERR), no retry
 *   otherwise failed attempt (the tail of stderr is the error), retried
 *
 * The payload goes in through a memfd rather than a pipe: the worker then
 * holds no write end that a sibling child could inherit and keep open, and
 * the command can read its stdin at its own pace.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_exec.h"

#include "child.h"
#include "exec_util.h"
#include "jsonx.h"
#include "outcome.h"
#include "seams.h"
#include "sigfork.h"
#include "tenants.h"

#define STDERR_TAIL 2000
#define EX_DATAERR_CODE 65
/* After the command exits, how long its stdout/stderr may stay open (held
 * by a background grandchild) before we stop waiting for them. */
#define PIPE_LINGER_MS 1000

typedef struct exec_state {
    fdreader out, err;
    struct event *linger; /* the command exited but its output is still open */
    int pipe_open;        /* stdout or stderr is not at EOF yet */
} exec_state;

static void maybe_complete(attempt *a);

/* The command's environment: the tenant's base (exec_util.h) and the job's
 * LANEWORK_* variables. Caller frees with exec_free_env; NULL on OOM. */
static char **build_env(const attempt *a)
{
    size_t k;
    char **env = exec_env_base(a->tenant, 6, &k);
    if (!env)
        return NULL;
    char buf[64];
    const char *names[] = {"LANEWORK_JOB_ID", "LANEWORK_TENANT",  "LANEWORK_KIND",
                           "LANEWORK_LANE",   "LANEWORK_ATTEMPT", "LANEWORK_SPOOL_DIR"};
    snprintf(buf, sizeof buf, "%d", a->attempt);
    const char *values[] = {a->id, a->tenant_name, a->kind, a->lane, buf, a->spool_dir};
    for (size_t i = 0; i < 6; i++)
        if (values[i] && exec_env_add(env, &k, names[i], values[i])) {
            exec_free_env(env);
            return NULL;
        }
    return env;
}

static int payload_fd(const attempt *a)
{
    int fd = memfd_create("lanework-payload", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(a->payload), off = 0;
    while (off < len) {
        ssize_t w = write(fd, a->payload + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void on_eof(fdreader *r, void *ud)
{
    (void)r;
    attempt *a = ud;
    exec_state *es = a->runner_state;
    es->pipe_open = es->out.fd >= 0 || es->err.fd >= 0;
    maybe_complete(a);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    attempt *a = arg;
    exec_state *es = a->runner_state;
    /* Something the command left behind still holds its output: stop
     * waiting and stop it. */
    if (es->out.ev)
        event_del(es->out.ev);
    if (es->err.ev)
        event_del(es->err.ev);
    if (es->out.fd >= 0)
        close(es->out.fd);
    if (es->err.fd >= 0)
        close(es->err.fd);
    es->out.fd = es->err.fd = -1;
    /* No kill here: the group was killed when its leader exited (child.c),
     * and what still holds the pipes left it; the sweep deals with that. */
    es->pipe_open = 0;
    maybe_complete(a);
}

static void maybe_complete(attempt *a)
{
    exec_state *es = a->runner_state;
    if (!es || !a->reaped)
        return;
    if (es->pipe_open) {
        if (!es->linger) {
            es->linger = evtimer_new(a->tenant->w->base, linger_cb, a);
            struct timeval tv = {PIPE_LINGER_MS / 1000, (PIPE_LINGER_MS % 1000) * 1000};
            if (es->linger)
                evtimer_add(es->linger, &tv);
        }
        return;
    }
    int st = a->exit_status;
    end_kind how;
    char why[STDERR_TAIL + 160];
    const char *text;
    const char *tail = es->err.buf && es->err.len ? es->err.buf : NULL;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && es->out.truncated) {
        /* stdout is the result channel, bounded like every result. */
        how = END_FAIL;
        snprintf(
            why, sizeof why,
            "result too large: stdout is more than --max-payload (%zu bytes); a result is JSON of at most that size (log to stderr)",
            a->max_payload);
        text = why;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        how = END_OK;
        /* stdout is the result when it is JSON, else there is none. */
        if (es->out.buf && lw_json_valid(es->out.buf, es->out.len))
            lw_job_set_result(a, es->out.buf);
        text = a->result;
    } else {
        how = WIFEXITED(st) && WEXITSTATUS(st) == EX_DATAERR_CODE ? END_FAIL : END_RETRY;
        char status[64];
        if (WIFSIGNALED(st))
            snprintf(status, sizeof status, "killed by signal %d (%s)", WTERMSIG(st),
                     strsignal(WTERMSIG(st)));
        else
            snprintf(status, sizeof status, "exit status %d", WEXITSTATUS(st));
        if (tail) {
            /* Trim the trailing newline: the error is one message. */
            size_t l = strlen(tail);
            while (l > 0 && (tail[l - 1] == '\n' || tail[l - 1] == '\r'))
                l--;
            snprintf(why, sizeof why, "%s: %.*s", status, (int)l, tail);
        } else {
            snprintf(why, sizeof why, "%s", status);
        }
        text = why;
    }
    if (es->linger)
        event_free(es->linger);
    fdreader_close(&es->out);
    fdreader_close(&es->err);
    a->runner_state = NULL;
    free(es);
    outcome_finished(a, how, text);
}

static void reaped(attempt *a) { maybe_complete(a); }

static void release(attempt *a)
{
    exec_state *es = a->runner_state;
    if (!es)
        return;
    if (es->linger)
        event_free(es->linger);
    fdreader_close(&es->out);
    fdreader_close(&es->err);
    free(es);
    a->runner_state = NULL;
}

/* The text of errno values execve() commonly fails with: strerror() is not
 * async-signal-safe, and the child of a threaded worker may call nothing
 * else between fork and exec. */
static const char *exec_errno_text(int e)
{
    switch (e) {
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case ENOEXEC: return "Exec format error";
    case ENOTDIR: return "Not a directory";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case ETXTBSY: return "Text file busy";
    case ENOMEM: return "Cannot allocate memory";
    case E2BIG: return "Argument list too long";
    case EPERM: return "Operation not permitted";
    case EISDIR: return "Is a directory";
    default: return NULL;
    }
}

/* Writes "errno N" without stdio (async-signal-safe). */
static void write_errno(int fd, int e)
{
    char num[24];
    size_t n = 0;
    unsigned v = (unsigned)(e < 0 ? -e : e);
    do {
        num[sizeof num - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof num);
    (void)!write(fd, "errno ", 6);
    (void)!write(fd, num + sizeof num - n, n);
}

static int start(attempt *a)
{
    const lw_exec_handler *ex = lw_tenant_exec(a->tenant->cfg, a->kind);
    int in = -1, out[2] = {-1, -1}, err[2] = {-1, -1};
    char **env = NULL, *prog = NULL;
    exec_state *es = calloc(1, sizeof *es);
    if (!es)
        return -1;
    es->out.fd = es->err.fd = -1;
    if ((in = payload_fd(a)) < 0 || lw_pipe2(out, O_CLOEXEC) < 0 || lw_pipe2(err, O_CLOEXEC) < 0 ||
        !(env = build_env(a)) || !(prog = exec_resolve_program(ex->argv[0])))
        goto fail;
    pid_t parent = getpid();
    pid_t pid = child_fork_attempt(a->tenant->w);
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        /* Signals stay blocked (sigfork) until the worker's handlers are
         * gone: a stop signal landing now must not reach them. */
        sigfork_reset_signals();
        dup2(in, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        /* The command gets stdin/stdout/stderr and nothing else of ours
         * (Redis sockets, other attempts' pipes). */
        close_range(3, ~0U, 0);
        if (child_drop_privileges(a->tenant) != 0) {
            const char msg[] = "cannot switch to the tenant's user: ";
            (void)!write(2, msg, sizeof msg - 1);
            write_errno(2, errno);
            _exit(127);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* after the uid change, which clears it */
        if (getppid() != parent)
            _exit(127);
        sigfork_unblock_signals();
        execve(prog, ex->argv, env);
        int e = errno;
        const char msg[] = "cannot execute the handler command: ";
        (void)!write(2, msg, sizeof msg - 1);
        (void)!write(2, prog, strlen(prog));
        (void)!write(2, ": ", 2);
        const char *text = exec_errno_text(e);
        if (text)
            (void)!write(2, text, strlen(text));
        else
            write_errno(2, e);
        _exit(127);
    }
    close(in);
    close(out[1]);
    close(err[1]);
    exec_free_env(env);
    free(prog);
    a->pid = pid;
    a->runner_state = es;
    es->pipe_open = 1;
    es->out.limit = a->max_payload; /* more than that is marked truncated: too large */
    es->err.keep = STDERR_TAIL;
    es->out.on_eof = es->err.on_eof = on_eof;
    struct event_base *base = a->tenant->w->base;
    if (fdreader_start(&es->out, base, out[0], a))
        close(out[0]);
    if (fdreader_start(&es->err, base, err[0], a))
        close(err[0]);
    return 0;
fail:
    if (in >= 0)
        close(in);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    exec_free_env(env);
    free(prog);
    free(es);
    return -1;
}

static int handles(const attempt *a) { return lw_tenant_exec(a->tenant->cfg, a->kind) != NULL; }

const runner run_exec_runner = {
    .name = "exec",
    .handles = handles,
    .start = start,
    .stop = child_stop,
    .grace_over = child_kill,
    .reaped = reaped,
    .release = release,
};

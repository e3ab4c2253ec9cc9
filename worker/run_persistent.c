/*
 * run_persistent.c — persistent exec handlers (CONTRACT section 11).
 *
 * A process per (tenant, kind), started on demand, serves attempts one at a
 * time: the worker writes one "job" line on its stdin, the process answers
 * on stdout with "event" lines and then one "result" or "error" line.
 * Idle processes are kept for the next attempt of their kind; there are at
 * most --concurrency of them that take work (one per slot).
 *
 * While a process serves an attempt, a->pid is its pid (it leads its own
 * group), so the fence freezes it, child_stop stops it and dispatch_reap
 * reaps it exactly as an exec handler's process. An idle process belongs to
 * no attempt: nothing freezes it, and this file reaps it itself (its stdout
 * ends when it dies).
 *
 * Whatever the process does, the attempt ends: an answer ends it at once;
 * anything else (a line that is not the protocol, a line too long, closing
 * stdout, dying) kills the process group, and the attempt fails when
 * dispatch_reap has collected the leader; a process that says nothing is
 * ended by the attempt's timeout (TERM, KILL after the grace). The process
 * is never reused after any of these.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_persistent.h"

#include "attempt.h"
#include "child.h"
#include "exec_util.h"
#include "fence.h"
#include "outcome.h"
#include "persist_proto.h"
#include "sigfork.h"
#include "tenants.h"
#include "timefmt.h"

/* A line may carry a result of --max-payload bytes plus its envelope. */
#define LINE_SLACK (64 * 1024)
/* stderr: lines are cut at this length; at most ERR_BURST lines per
 * ERR_WINDOW_MS are logged, the rest counted and reported once. */
#define ERR_LINE_MAX 1000
#define ERR_BURST 50
#define ERR_WINDOW_MS 10000
#define TICK_MS 250
/* An attempt that answers this close to its freeze point retires its
 * process (answered()). */
#define FREEZE_MARGIN_MS 200
/* Exit status of a handler that does not speak the worker's
 * LANEWORK_PROTOCOL (EX_CONFIG): not retried, another attempt would meet
 * the same handler. */
#define EX_PROTOCOL 78
#define PROTOCOL_VERSION "1"

typedef struct pproc {
    struct pproc *next;
    tenant *t;                 /* holds a reference */
    char *kind;                /* owned: of the latest attempt (logs) */
    const lw_exec_handler *ex; /* borrowed from `reg`: its command */
    regref *reg;               /* holds a reference: the registry ex points into (a
                                  reload that keeps t frees t's old one) */
    int max_jobs, idle_exit;   /* the entry's, when it was started */
    pid_t pid;                 /* 0 once reaped */
    int in_fd, out_fd, err_fd;
    struct event *wev, *oev, *eev;
    char *wbuf; /* owned: what is still to be written to stdin */
    size_t wlen, woff;
    char *obuf; /* owned: stdout not yet parsed (no newline yet) */
    size_t olen, ocap;
    char ebuf[ERR_LINE_MAX + 1]; /* the stderr line being read */
    size_t elen;
    int ecut;                /* the current stderr line was cut */
    attempt *a;              /* the attempt it serves; NULL: idle */
    int jobs;                /* attempts answered */
    int64_t idle_since;      /* mono ms */
    int retiring;            /* being stopped; takes no more work */
    int64_t kill_at;         /* retiring: SIGKILL then, 0: sent */
    int64_t killed_at;       /* retiring: when SIGKILL was sent */
    int cancel_sent, termed; /* this attempt: a cancel line / SIGTERM was sent */
    int reaping;             /* reaped() is reading what it left: reaped() frees it */
    int eof_killed;          /* stdout ended mid-attempt and we killed it */
    char why[600];           /* the attempt fails with this once reaped; "": none */
    int64_t err_window;      /* stderr bound */
    int err_lines;
    long err_dropped;
    char last_err[ERR_LINE_MAX + 1]; /* the last stderr line, for errors */
} pproc;

static struct {
    worker *w;
    pproc *list;
    int live; /* processes not retiring */
    struct event *tick;
} P;

static void proc_free(pproc *p);
static void proc_retire(pproc *p, const char *why);
static void proc_reap_idle(pproc *p);

static lw_log_facts proc_facts(const pproc *p)
{
    if (p->a)
        return attempt_facts(p->a, 1);
    return (lw_log_facts){.tenant = p->t->cfg->name, .kind = p->kind, .worker = p->t->w->opt->name};
}

/* ---- starting a process ---- */

/* The process's environment, built before the fork (the child of a
 * threaded worker may only call async-signal-safe functions): the worker's
 * own without LANEWORK_* (its Redis URL is not the handler's business),
 * LANEWORK_TENANT and LANEWORK_PROTOCOL; per-job values travel in the job
 * line. Caller frees with exec_free_env. */
static char **build_env(const tenant *t)
{
    size_t k;
    char **env = exec_env_base(t, 2, &k);
    if (env && (exec_env_add(env, &k, "LANEWORK_TENANT", t->cfg->name) ||
                exec_env_add(env, &k, "LANEWORK_PROTOCOL", PROTOCOL_VERSION))) {
        exec_free_env(env);
        return NULL;
    }
    return env;
}

static void child_write(const char *s) { (void)!write(2, s, strlen(s)); }

static void on_out(evutil_socket_t fd, short what, void *arg);
static void on_err(evutil_socket_t fd, short what, void *arg);
static void tick_cb(evutil_socket_t fd, short what, void *arg);

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A new process for a's tenant and kind, or NULL with errno set. */
static pproc *proc_spawn(attempt *a, const lw_exec_handler *ex)
{
    tenant *t = tenant_lead(a->tenant); /* one set of processes per tenant, not per partition */
    worker *w = t->w;
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    char **env = NULL, *prog = NULL;
    pproc *p = calloc(1, sizeof *p);
    if (!p || !(p->kind = strdup(a->kind)) || pipe2(in, O_CLOEXEC) < 0 ||
        pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || !(env = build_env(t)) ||
        !(prog = exec_resolve_program(ex->argv[0])))
        goto fail;
    if (set_nonblock(in[1]) || set_nonblock(out[0]) || set_nonblock(err[0]))
        goto fail;
    p->oev = event_new(w->base, out[0], EV_READ | EV_PERSIST, on_out, p);
    p->eev = event_new(w->base, err[0], EV_READ | EV_PERSIST, on_err, p);
    if (!p->oev || !p->eev) {
        errno = ENOMEM;
        goto fail;
    }
    if (!P.tick && !(P.tick = event_new(w->base, -1, EV_PERSIST, tick_cb, NULL))) {
        errno = ENOMEM;
        goto fail;
    }
    pid_t parent = getpid();
    pid_t pid = child_fork_attempt(w);
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        sigfork_reset_signals();
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close_range(3, ~0U, 0);
        if (child_drop_privileges(t) != 0) {
            child_write("lanework: cannot switch to the tenant's user\n");
            _exit(127);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* after the uid change, which clears it */
        if (getppid() != parent)
            _exit(127);
        sigfork_unblock_signals();
        execve(prog, ex->argv, env);
        int e = errno; /* strerror is not async-signal-safe */
        child_write("lanework: cannot execute the handler command: ");
        child_write(prog);
        child_write(e == ENOENT   ? ": No such file or directory\n"
                    : e == EACCES ? ": Permission denied\n"
                                  : ": exec failed\n");
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    exec_free_env(env);
    free(prog);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = err[0];
    p->t = t;
    tenant_ref(t);
    p->ex = ex;
    p->reg = t->reg;
    p->reg->refs++;
    p->max_jobs = ex->max_jobs;
    p->idle_exit = ex->idle_exit;
    event_add(p->oev, NULL);
    event_add(p->eev, NULL);
    p->next = P.list;
    P.list = p;
    P.live++;
    if (!event_pending(P.tick, EV_TIMEOUT, NULL)) {
        struct timeval tv = {0, TICK_MS * 1000};
        event_add(P.tick, &tv);
    }
    lw_log_about(LW_LOG_DEBUG, "handler.started", attempt_facts(a, 0),
                 "persistent handler process %d started", (int)pid);
    return p;
fail:;
    int e = errno;
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    if (p) {
        if (p->oev)
            event_free(p->oev);
        if (p->eev)
            event_free(p->eev);
        free(p->kind);
        free(p);
    }
    exec_free_env(env);
    free(prog);
    errno = e;
    return NULL;
}

/* ---- writing to its stdin ---- */

static void on_writable(evutil_socket_t fd, short what, void *arg);

/* Writes what is pending; the rest waits for the pipe to drain. A process
 * that does not read its stdin is the attempt's timeout's to end. */
static void flush_input(pproc *p)
{
    while (p->in_fd >= 0 && p->woff < p->wlen) {
        ssize_t n = write(p->in_fd, p->wbuf + p->woff, p->wlen - p->woff);
        if (n > 0) {
            p->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!p->wev)
                p->wev = event_new(P.w->base, p->in_fd, EV_WRITE, on_writable, p);
            if (p->wev)
                event_add(p->wev, NULL);
            return;
        }
        /* EPIPE: it closed its stdin, or died; its stdout will tell. */
        p->wlen = p->woff = 0;
        return;
    }
    p->wlen = p->woff = 0;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    flush_input(arg);
}

/* Appends s[0..len) to what goes to the process's stdin. */
static int queue_input(pproc *p, const char *s, size_t len)
{
    if (p->woff == p->wlen)
        p->woff = p->wlen = 0;
    char *grown = realloc(p->wbuf, p->wlen + len + 1);
    if (!grown)
        return -1;
    p->wbuf = grown;
    memcpy(p->wbuf + p->wlen, s, len);
    p->wlen += len;
    return 0;
}

/* The job line of CONTRACT section 11 (persist_proto.h) to its stdin. */
static int send_job(pproc *p, const attempt *a)
{
    persist_job j = {.id = a->id,
                     .tenant = a->tenant_name,
                     .kind = a->kind,
                     .queue = a->queue,
                     .lane = a->lane,
                     .payload = a->payload,
                     .spool_dir = a->spool_dir,
                     .attempt = a->attempt,
                     .attempts = a->attempts,
                     .timeout_ms = a->timeout_ms};
    size_t len;
    char *line = persist_job_line(&j, &len);
    int rc = line ? queue_input(p, line, len) : -1;
    free(line);
    if (rc == 0)
        flush_input(p);
    return rc;
}

/* ---- ending an attempt ---- */

/* The process is no longer trusted with this attempt: its group is killed
 * and the attempt fails with `why` once dispatch_reap has collected it. */
static void broken(pproc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void broken(pproc *p, const char *fmt, ...)
{
    if (!p->a || p->why[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    lw_log_about(
        LW_LOG_ERROR, "handler.protocol", attempt_facts(p->a, 1),
        "persistent handler process %d: %s; failing this attempt and replacing the process",
        (int)p->pid, p->why);
    child_signal(p->a, SIGKILL);
}

/* The process answered: the attempt ends now and the process, if it is
 * still fit, waits for the next one. */
static void answered(pproc *p, end_kind how, const char *text)
{
    attempt *a = p->a;
    worker *w = a->tenant->w;
    /* Frozen at the fence after it wrote its answer, or so close to its
     * freeze point that the keeper may freeze it in the instant before the
     * slot forgets it (fence_check races fence_clear): not reused, so an
     * idle process is never a stopped one and needs no SIGCONT. */
    int frozen = a->slot >= 0 && w->fence &&
                 (fence_frozen(w->fence, a->slot) ||
                  lw_mono_ms() + FREEZE_MARGIN_MS >= attempt_freeze_at(a));
    p->a = NULL;
    p->jobs++;
    p->idle_since = lw_mono_ms();
    a->runner_state = NULL;
    outcome_finished(a, how, text);
    if (p->reaping)
        return; /* it answered, then died: reaped() frees it */
    if (frozen || p->termed)
        proc_retire(p, frozen ? "its lease went unproven (fence) during its attempt"
                              : "it was stopped during its attempt");
    else if (p->t->retired)
        proc_retire(p, "its tenant was changed or removed by a reload");
    else if (p->max_jobs > 0 && p->jobs >= p->max_jobs)
        proc_retire(p, "it served max_jobs attempts");
}

/* A line of the protocol from the process serving p->a. */
static void handle_line(pproc *p, const char *line, size_t len)
{
    persist_msg m;
    char why[300];
    int rc = persist_parse_line(line, len, &m, why, sizeof why);
    if (rc == 1)
        return; /* blank lines are harmless */
    if (!p->a) {
        if (rc == 0)
            persist_msg_clear(&m);
        if (p->retiring)
            return;
        lw_log_about(LW_LOG_ERROR, "handler.protocol", proc_facts(p),
                     "persistent handler process %d wrote to stdout while it had no job (%.80s); "
                     "replacing it",
                     (int)p->pid, line);
        proc_retire(p, NULL);
        return;
    }
    if (p->why[0]) { /* already failing */
        if (rc == 0)
            persist_msg_clear(&m);
        return;
    }
    if (rc < 0) {
        broken(p, "%s", why);
        return;
    }
    attempt *a = p->a;
    switch (m.type) {
    case PERSIST_EVENT: lw_job_event(a, m.event, m.data); break;
    case PERSIST_RESULT:
        lw_job_set_result(a, m.result);
        answered(p, a->oversize ? END_FAIL : END_OK, a->oversize ? a->error : a->result);
        break;
    case PERSIST_ERROR:
        lw_job_set_error(a, m.error ? m.error : "the handler reported an error without text");
        answered(p, m.retry ? END_RETRY : END_FAIL, a->error);
        break;
    }
    persist_msg_clear(&m);
}

/* Parses the complete lines read so far. */
static void parse_lines(pproc *p)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(p->obuf + start, '\n', p->olen - start);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (p->obuf + start));
        *nl = '\0';
        handle_line(p, p->obuf + start, len);
        start += len + 1;
    }
    if (start) {
        memmove(p->obuf, p->obuf + start, p->olen - start);
        p->olen -= start;
    }
    if (p->olen == 0 && p->ocap > 4 * 65536) {
        /* A big answer is over: an idle process keeps no large buffer. */
        free(p->obuf);
        p->obuf = NULL;
        p->ocap = 0;
    }
    size_t limit = P.w->opt->common.max_payload + LINE_SLACK;
    if (p->olen > limit) {
        if (p->a) {
            broken(p, "wrote a line longer than --max-payload (%zu bytes) allows",
                   (size_t)P.w->opt->common.max_payload);
        } else if (!p->retiring) {
            lw_log_about(LW_LOG_ERROR, "handler.protocol", proc_facts(p),
                         "persistent handler process %d wrote an overlong line while it had no "
                         "job; replacing it",
                         (int)p->pid);
            proc_retire(p, NULL);
        }
        p->olen = 0;
    }
}

/* stdout ended: the process closed it, or died. */
static void out_eof(pproc *p)
{
    event_del(p->oev);
    close(p->out_fd);
    p->out_fd = -1;
    if (p->reaping)
        return;
    if (!p->a) {
        proc_reap_idle(p);
        return;
    }
    /* Serving an attempt: dispatch_reap collects it. One that closed its
     * stdout but lives on could only hang the slot: kill it. */
    if (p->pid && !child_exited(p->pid) && !p->why[0]) {
        /* Perhaps only because it is exiting: reaped() tells which from
         * the exit status. */
        p->eof_killed = 1;
        child_signal(p->a, SIGKILL);
    }
}

/* Reads stdout; `p` may be freed when this returns. */
static int read_out(pproc *p, size_t budget)
{
    /* At most `budget` bytes a call: a process flooding its stdout must
     * not keep the loop from everything else (EV_PERSIST calls again). */
    size_t took = 0;
    while (took < budget) {
        if (p->ocap - p->olen < 16384) {
            size_t cap = p->ocap ? p->ocap * 2 : 65536;
            char *grown = realloc(p->obuf, cap);
            if (!grown) {
                if (p->a)
                    broken(p, "the worker is out of memory reading its stdout");
                else
                    proc_retire(p, "the worker is out of memory reading its stdout");
                p->olen = 0;
                return 0;
            }
            p->obuf = grown;
            p->ocap = cap;
        }
        ssize_t n = read(p->out_fd, p->obuf + p->olen, p->ocap - p->olen - 1);
        if (n > 0) {
            took += (size_t)n;
            p->olen += (size_t)n;
            parse_lines(p);
            if (p->out_fd < 0)
                return 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        out_eof(p);
        return 1;
    }
    return 0;
}

static void on_out(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    read_out(arg, 256 * 1024);
}

/* ---- stderr: to the worker's log, bounded ---- */

static void err_line(pproc *p)
{
    p->ebuf[p->elen] = '\0';
    while (p->elen > 0 && (p->ebuf[p->elen - 1] == '\r'))
        p->ebuf[--p->elen] = '\0';
    memcpy(p->last_err, p->ebuf, p->elen + 1);
    int64_t now = lw_mono_ms();
    if (now - p->err_window >= ERR_WINDOW_MS) {
        if (p->err_dropped)
            lw_log_about(
                LW_LOG_WARN, "handler.stderr", proc_facts(p),
                "persistent handler process %d: %ld stderr lines not logged (more than %d in %d s)",
                (int)p->pid, p->err_dropped, ERR_BURST, ERR_WINDOW_MS / 1000);
        p->err_window = now;
        p->err_lines = 0;
        p->err_dropped = 0;
    }
    if (p->err_lines++ < ERR_BURST) {
        lw_log_about(LW_LOG_INFO, "handler.stderr", proc_facts(p), "handler %d stderr: %s%s",
                     (int)p->pid, p->ebuf, p->ecut ? " [line cut]" : "");
    } else {
        if (!p->err_dropped++)
            lw_log_about(LW_LOG_WARN, "handler.stderr", proc_facts(p),
                         "persistent handler process %d writes more than %d stderr lines in "
                         "%d s; not logging the rest of them",
                         (int)p->pid, ERR_BURST, ERR_WINDOW_MS / 1000);
    }
    p->elen = 0;
    p->ecut = 0;
}

static void read_err(pproc *p)
{
    char chunk[8192];
    for (int round = 0; round < 8; round++) { /* 64 KiB a call, as read_out */
        ssize_t n = read(p->err_fd, chunk, sizeof chunk);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++) {
                if (chunk[i] == '\n') {
                    err_line(p);
                } else if (p->elen < ERR_LINE_MAX) {
                    p->ebuf[p->elen++] = chunk[i];
                } else {
                    p->ecut = 1;
                }
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (p->elen)
            err_line(p);
        event_del(p->eev);
        close(p->err_fd);
        p->err_fd = -1;
        return;
    }
}

static void on_err(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    read_err(arg);
}

/* ---- the life of a process ---- */

static void proc_unlink(pproc *p)
{
    for (pproc **pp = &P.list; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (!p->retiring)
        P.live--;
}

static void proc_free(pproc *p)
{
    proc_unlink(p);
    if (p->wev)
        event_free(p->wev);
    if (p->oev)
        event_free(p->oev);
    if (p->eev)
        event_free(p->eev);
    if (p->in_fd >= 0)
        close(p->in_fd);
    if (p->out_fd >= 0)
        close(p->out_fd);
    if (p->err_fd >= 0)
        close(p->err_fd);
    free(p->wbuf);
    free(p->obuf);
    free(p->kind);
    regref_unref(p->reg);
    tenant_unref(p->t);
    free(p);
    if (!P.list && P.tick)
        event_del(P.tick);
}

/* Stops an idle process: stdin closed (a handler's read loop ends), its
 * group gets SIGTERM, SIGKILL after the grace (tick_cb); it is reaped
 * when its stdout ends. */
static void proc_retire(pproc *p, const char *why)
{
    if (p->retiring)
        return;
    p->retiring = 1;
    P.live--;
    if (why)
        lw_log_about(LW_LOG_INFO, "handler.stopping", proc_facts(p),
                     "stopping persistent handler process %d after %d attempts: %s", (int)p->pid,
                     p->jobs, why);
    if (p->in_fd >= 0)
        close(p->in_fd);
    p->in_fd = -1;
    if (p->wev)
        event_del(p->wev);
    p->kill_at = lw_mono_ms() + KILL_GRACE_MS;
    if (p->pid) {
        kill(-p->pid, SIGTERM);
        kill(-p->pid, SIGCONT);
    }
}

/* An idle process whose stdout ended: whatever is left of its group goes,
 * then the leader is reaped (the orphan sweep may have reaped it already:
 * ECHILD). */
static void proc_reap_idle(pproc *p)
{
    int status = 0;
    if (p->pid > 0) {
        kill(-p->pid, SIGKILL);
        pid_t r;
        while ((r = waitpid(p->pid, &status, 0)) < 0 && errno == EINTR) {
        }
        if (!p->retiring && r == p->pid) {
            char how[96];
            if (WIFSIGNALED(status))
                snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(status),
                         strsignal(WTERMSIG(status)));
            else
                snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
            lw_log_about(LW_LOG_WARN, "handler.exited", proc_facts(p),
                         "persistent handler process %d ended between attempts (%s)%s%s",
                         (int)p->pid, how, p->last_err[0] ? "; its last stderr line: " : "",
                         p->last_err);
        }
        p->pid = 0;
    }
    if (p->err_fd >= 0)
        read_err(p);
    proc_free(p);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    int64_t now = lw_mono_ms();
    for (pproc *p = P.list, *next; p; p = next) {
        next = p->next;
        if (p->retiring) {
            if (p->kill_at && now >= p->kill_at && p->pid) {
                kill(-p->pid, SIGKILL);
                p->kill_at = 0;
                p->killed_at = now;
            } else if (!p->kill_at && now >= p->killed_at + 1000) {
                /* Killed a second ago and its stdout is still open: held by
                 * a process that left its group (the orphan sweep's). */
                if (p->out_fd >= 0) {
                    event_del(p->oev);
                    close(p->out_fd);
                    p->out_fd = -1;
                }
                proc_reap_idle(p);
            }
        } else if (!p->a && p->t->retired) {
            proc_retire(p, "its tenant was changed or removed by a reload");
        } else if (!p->a && p->idle_exit > 0 &&
                   now - p->idle_since >= (int64_t)p->idle_exit * 1000) {
            proc_retire(p, "idle_exit");
        }
    }
}

/* ---- the runner ---- */

static void pp_emit(lw_job *job, const char *type, const char *data)
{
    outcome_event(job, type, data);
}

/* The least recently used idle process, to make room. */
static pproc *lru_idle(void)
{
    pproc *best = NULL;
    for (pproc *p = P.list; p; p = p->next)
        if (!p->retiring && !p->a && (!best || p->idle_since < best->idle_since))
            best = p;
    return best;
}

/* 1 when our child `pid` has exited (a zombie), or is no longer our child
 * at all (the orphan sweep reaped its zombie): one waitid either way. */
static int proc_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return si.si_pid == pid;
}

/* Kinds whose entries run the same command share processes: a handler
 * program usually serves several kinds (lanework.handler.kind). */
static int same_command(const lw_exec_handler *x, const lw_exec_handler *y)
{
    if (x == y)
        return 1;
    if (x->argc != y->argc || x->max_jobs != y->max_jobs || x->idle_exit != y->idle_exit)
        return 0;
    for (size_t i = 0; i < x->argc; i++)
        if (strcmp(x->argv[i], y->argv[i]))
            return 0;
    return 1;
}

static int start(attempt *a)
{
    const lw_exec_handler *ex = lw_tenant_exec(a->tenant->cfg, a->kind);
    pproc *p = NULL;
    for (pproc *q = P.list, *next; q; q = next) {
        next = q->next;
        if (q->retiring || q->a || q->t != tenant_lead(a->tenant) || !same_command(q->ex, ex))
            continue;
        if (q->out_fd < 0 || !q->pid || proc_exited(q->pid)) {
            /* It died between attempts and we have not seen it yet. */
            if (q->out_fd >= 0) {
                event_del(q->oev);
                close(q->out_fd);
                q->out_fd = -1;
            }
            proc_reap_idle(q);
            continue;
        }
        p = q;
        break;
    }
    if (!p) {
        /* One process per slot at most: make room by stopping the idle
         * process that waited longest (another kind's, or tenant's). */
        pproc *old;
        if (P.live >= P.w->opt->concurrency && (old = lru_idle()))
            proc_retire(old, "its slot is needed by another kind");
        if (!(p = proc_spawn(a, ex)))
            return -1;
    }
    if (strcmp(p->kind, a->kind)) {
        char *k = strdup(a->kind);
        if (k) {
            free(p->kind);
            p->kind = k;
        }
    }
    p->a = a;
    p->why[0] = '\0';
    p->cancel_sent = p->termed = p->eof_killed = 0;
    a->pid = p->pid;
    a->runner_state = p;
    a->emit = pp_emit;
    if (send_job(p, a)) {
        p->a = NULL;
        a->runner_state = NULL;
        a->pid = 0;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void stop(attempt *a, int now)
{
    pproc *p = a->runner_state;
    if (!p)
        return;
    worker *w = a->tenant->w;
    int frozen = a->slot >= 0 && w->fence && fence_frozen(w->fence, a->slot);
    if (!now && !frozen && !p->cancel_sent && attempt_stop_reason(a) == STOP_CANCEL &&
        p->in_fd >= 0) {
        /* A handler told to cancel may answer and stay for the next job;
         * if it does not within the grace, it is stopped (grace_over). */
        size_t len;
        char *line = persist_cancel_line(a->id, &len);
        int queued = line && queue_input(p, line, len) == 0;
        free(line);
        if (queued) {
            p->cancel_sent = 1;
            flush_input(p);
            attempt_arm_grace(a);
            return;
        }
    }
    p->termed = 1;
    child_stop(a, now);
}

static void grace_over(attempt *a)
{
    pproc *p = a->runner_state;
    if (p && p->cancel_sent && !p->termed) {
        p->termed = 1;
        child_stop(a, 0); /* TERM now, KILL after another grace */
        return;
    }
    child_kill(a);
}

static void reaped(attempt *a)
{
    pproc *p = a->runner_state;
    if (!p)
        return;
    /* child_reap_leader reaped it: its pid is free, never signal it. */
    p->pid = 0;
    /* An answer it wrote just before it died counts: read what is left. */
    p->reaping = 1;
    if (p->out_fd >= 0)
        read_out(p, 4 * 1024 * 1024); /* a pipe holds far less; an escapee may write on */
    if (p->err_fd >= 0)
        read_err(p);
    if (p->a != a) {
        /* answered() ended the attempt (a is gone). */
        proc_free(p);
        return;
    }
    int st = a->exit_status;
    end_kind how = END_RETRY;
    char why[1200], status[96];
    if (WIFSIGNALED(st))
        snprintf(status, sizeof status, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(status, sizeof status, "exit status %d", WEXITSTATUS(st));
    if (WIFEXITED(st) && WEXITSTATUS(st) == EX_PROTOCOL) {
        how = END_FAIL;
        snprintf(why, sizeof why,
                 "the persistent handler refused LANEWORK_PROTOCOL=" PROTOCOL_VERSION
                 " (exit status %d)%s%s",
                 EX_PROTOCOL, p->last_err[0] ? ": " : "", p->last_err);
        lw_log_about(LW_LOG_ERROR, "handler.protocol", attempt_facts(a, 1), "%s", why);
    } else if (p->why[0]) {
        snprintf(why, sizeof why, "persistent handler: %s", p->why);
    } else if (p->eof_killed && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
        snprintf(why, sizeof why, "persistent handler: closed its stdout before answering%s%s",
                 p->last_err[0] ? "; its last stderr line: " : "", p->last_err);
        lw_log_about(LW_LOG_ERROR, "handler.protocol", attempt_facts(a, 1),
                     "persistent handler process: closed its stdout before answering; failing this "
                     "attempt and "
                     "replacing the process");
    } else {
        snprintf(why, sizeof why, "persistent handler process ended during the attempt (%s)%s%s",
                 status, p->last_err[0] ? ": " : "", p->last_err);
        if (attempt_stop_reason(a) == STOP_NONE)
            lw_log_about(LW_LOG_ERROR, "handler.exited", attempt_facts(a, 1),
                         "%s; the process will be replaced", why);
    }
    p->a = NULL;
    a->runner_state = NULL;
    proc_free(p);
    outcome_finished(a, how, why);
}

static void release(attempt *a)
{
    pproc *p = a->runner_state;
    if (!p)
        return;
    p->a = NULL;
    a->runner_state = NULL;
}

static int open_runner(worker *w, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    P.w = w;
    return 0;
}

/* Worker exit: every process goes now (its attempts were handed back or
 * abandoned by then). */
static void close_runner(worker *w)
{
    (void)w;
    while (P.list) {
        pproc *p = P.list;
        if (p->a)
            release(p->a);
        if (p->pid > 0) {
            kill(-p->pid, SIGKILL);
            while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {
            }
            p->pid = 0;
        }
        proc_free(p);
    }
    if (P.tick)
        event_free(P.tick);
    P.tick = NULL;
}

static int handles(const attempt *a)
{
    const lw_exec_handler *ex = lw_tenant_exec(a->tenant->cfg, a->kind);
    return ex && ex->persistent;
}

const runner run_persistent_runner = {
    .name = "persistent",
    .handles = handles,
    .open = open_runner,
    .start = start,
    .stop = stop,
    .grace_over = grace_over,
    .reaped = reaped,
    .release = release,
    .close = close_runner,
};

/*
 * run_fork.c — a module handler in a forked child (--isolation fork).
 *
 * The child runs handle() and reports over a pipe in frames
 * [type:1][length:4][bytes]: 'V' an event ("TYPE\0DATA"), 'R' the result,
 * 'X' the error, 'S' the lw_status as a decimal. A child that dies without
 * an 'S' frame crashed or exited on its own: a failed attempt, retried.
 *
 * The child is the leader of its own process group and dies with the worker
 * (PR_SET_PDEATHSIG): an orphaned attempt must not keep running while the
 * reaper hands its job to another worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_fork.h"

#include "attempt.h"
#include "child.h"
#include "fence.h"
#include "frames.h"
#include "log.h"
#include "module_host.h"
#include "outcome.h"
#include "seams.h"
#include "sigfork.h"
#include "tenants.h"

typedef struct fork_state {
    fdreader out;
    size_t parsed; /* bytes of out.buf already consumed as frames */
    int have_status;
    int status;
    size_t oversize;      /* a frame announced this many bytes, more than allowed */
    struct event *linger; /* the child exited but its pipe is still open */
    int pipe_open;        /* the result pipe is not at EOF yet */
} fork_state;

/* After the child exits, how long a process it left behind may hold its
 * result pipe open (one that left the process group, so the group kill
 * missed it) before we stop waiting: what the child wrote before exiting
 * is in the pipe already. */
#define PIPE_LINGER_MS 1000

/* The child caps what it sends at --max-payload (job_api.c); a frame longer
 * than that plus room for an event type is a child writing garbage. */
#define FRAME_SLACK 4096

/* ---- in the child ---- */

static int g_fd = -1;
static attempt *g_job;

/* Adds frame [type][len][a][b] to iov at *n (up to 3 pieces); head is its
 * header's storage, LW_FRAME_HEAD bytes that must live until the write. */
static void add_frame(struct iovec *iov, int *n, char *head, char type, const char *a, size_t alen,
                      const char *b, size_t blen)
{
    lw_frame_head(head, type, (uint32_t)(alen + blen));
    iov[(*n)++] = (struct iovec){head, LW_FRAME_HEAD};
    if (alen)
        iov[(*n)++] = (struct iovec){(void *)a, alen};
    if (blen)
        iov[(*n)++] = (struct iovec){(void *)b, blen};
}

static void frame(char type, const char *a, size_t alen, const char *b, size_t blen)
{
    struct iovec iov[3];
    char head[LW_FRAME_HEAD];
    int n = 0;
    add_frame(iov, &n, head, type, a, alen, b, blen);
    lw_frame_writev_all(g_fd, iov, n);
}

/* u in decimal, ending at end (20 digits at most); returns its start. Not
 * snprintf: every child would fault in printf's text pages again. */
static char *decimal(char *end, unsigned long long u)
{
    char *p = end;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    return p;
}

static void child_emit(lw_job *job, const char *type, const char *data)
{
    (void)job;
    frame('V', type, strlen(type) + 1, data ? data : "", data ? strlen(data) : 0);
}

static void on_sigterm(int sig)
{
    (void)sig;
    /* Cooperative first: the handler sees lw_job_cancelled(); SIGKILL
     * follows after the grace if it does not return. */
    if (g_job)
        atomic_store(&g_job->stop, STOP_TIMEOUT);
}

static void child_main(attempt *a, int fd, pid_t parent)
{
    /* Signals are blocked (sigfork) until our own handler is in place;
     * child_fork_attempt made our group and left the terminal. Only the
     * noted dispositions need resetting: in fork isolation no tenant code
     * runs in the worker but a module's load and unload, which note. */
    sigfork_reset_noted_signals();
    /* Nothing of the worker's stays within reach: not its fds (Redis
     * connections, the signal pipe, the HTTP listener, other attempts'
     * pipes), not the fence table. */
    module_child_keep_only(a->tenant->mod, fd);
    fence_child_detach(a->tenant->w->fence);
    g_fd = fd;
    g_job = a;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    if (child_drop_privileges(a->tenant) != 0)
        _exit(3);
    for (int i = 0; a->tenant->run_as && i < 3; i++)
        putenv(a->tenant->user_env[i]);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* after the uid change, which clears it */
    if (getppid() != parent)
        _exit(3); /* the worker died while we were forking */
    /* Marks what this attempt starts, so that the worker can tell its
     * processes that escape the group (child.h, the sweep): the name
     * "lw:SERIAL" stays with what it forks until that execs, and then the
     * environment says LANEWORK_JOB_ID. */
    char digits[24], name[16] = "lw:";
    char *d = decimal(digits + sizeof digits, a->serial);
    size_t dl = (size_t)(digits + sizeof digits - d);
    memcpy(name + 3, d, dl < 12 ? dl : 12); /* as snprintf would cut it: 15 characters */
    prctl(PR_SET_NAME, name);
    /* putenv of our own copy rather than setenv, which also files the
     * value in a search tree: pages every child would copy again. */
    static const char key[] = "LANEWORK_JOB_ID=";
    size_t idlen = strlen(a->id);
    char *var = malloc(sizeof key + idlen);
    if (var) {
        memcpy(var, key, sizeof key - 1);
        memcpy(var + sizeof key - 1, a->id, idlen + 1);
    }
    if (!var || putenv(var) != 0)
        setenv("LANEWORK_JOB_ID", a->id, 1);
    sigfork_unblock_signals();
    a->emit = child_emit;
    module_binding *mb = a->tenant->mod;
    lw_status st = mb->mod->handle(mb->state, a);
    if (a->oversize)
        st = LW_FAIL;
    /* Result, error and status in one write: one wake-up of the worker. */
    struct iovec iov[9];
    char heads[3][LW_FRAME_HEAD], num[24];
    int n = 0;
    if (a->result)
        add_frame(iov, &n, heads[0], 'R', a->result, strlen(a->result), NULL, 0);
    if (a->error)
        add_frame(iov, &n, heads[1], 'X', a->error, strlen(a->error), NULL, 0);
    /* As "%d" would write it (a module may return anything). */
    int sv = (int)st;
    char *st_text = decimal(num + sizeof num, sv < 0 ? 0U - (unsigned)sv : (unsigned)sv);
    if (sv < 0)
        *--st_text = '-';
    add_frame(iov, &n, heads[2], 'S', st_text, (size_t)(num + sizeof num - st_text), NULL, 0);
    lw_frame_writev_all(g_fd, iov, n);
    _exit(0);
}

/* ---- in the worker ---- */

static void take_string(char **dst, const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return;
    memcpy(s, p, n);
    s[n] = '\0';
    free(*dst);
    *dst = s;
}

static void parse_frames(fdreader *r, void *ud)
{
    attempt *a = ud;
    fork_state *fs = a->runner_state;
    for (;;) {
        lw_frame f;
        long took = lw_frame_next(r->buf + fs->parsed, r->len - fs->parsed,
                                  a->max_payload + FRAME_SLACK, &f, &fs->oversize);
        if (took == 0)
            break;
        if (took < 0) {
            /* Not what our child code sends: stop reading it and stop it. */
            r->len = 0;
            fs->parsed = 0;
            child_signal(a, SIGKILL);
            return;
        }
        const char *body = f.body;
        size_t len = f.len;
        switch (f.type) {
        case 'V': {
            const char *nul = memchr(body, '\0', len);
            if (nul) {
                char *data = NULL;
                take_string(&data, nul + 1, len - (size_t)(nul + 1 - body));
                if (data)
                    outcome_event(a, body, data[0] ? data : NULL);
                free(data);
            }
            break;
        }
        case 'R': {
            /* What our child code sent through lw_job_set_result, unless the
             * child writes frames of its own: checked again (JSON, size). */
            char *text = NULL;
            take_string(&text, body, len);
            if (text)
                lw_job_set_result(a, text);
            free(text);
            break;
        }
        case 'X': {
            char *text = NULL;
            take_string(&text, body, len);
            if (text)
                lw_job_set_error(a, text); /* bounded again */
            free(text);
            break;
        }
        case 'S':
            fs->have_status = 1;
            fs->status = lw_frame_status(&f);
            break;
        default: break;
        }
        fs->parsed += (size_t)took;
    }
    /* Keep the buffer small: drop what was parsed. */
    if (fs->parsed > 0 && fs->parsed == r->len) {
        r->len = 0;
        fs->parsed = 0;
    }
}

static void maybe_complete(attempt *a);

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    attempt *a = arg;
    fork_state *fs = a->runner_state;
    /* Read what is there, then stop waiting for the escapee (the sweep,
     * child.c, kills it). */
    if (fs->out.fd >= 0) {
        parse_frames(&fs->out, a);
        if (fs->out.ev)
            event_free(fs->out.ev);
        fs->out.ev = NULL;
        close(fs->out.fd);
        fs->out.fd = -1;
    }
    fs->pipe_open = 0;
    maybe_complete(a);
}

static void maybe_complete(attempt *a)
{
    fork_state *fs = a->runner_state;
    if (!fs || !a->reaped)
        return;
    if (fs->pipe_open) {
        if (!fs->linger && (fs->linger = evtimer_new(a->tenant->w->base, linger_cb, a))) {
            struct timeval tv = {PIPE_LINGER_MS / 1000, (PIPE_LINGER_MS % 1000) * 1000};
            evtimer_add(fs->linger, &tv);
        }
        return;
    }
    if (fs->linger)
        event_free(fs->linger);
    fs->linger = NULL;
    end_kind how = END_RETRY;
    char why[200];
    const char *text = NULL;
    int st = a->exit_status;
    if (fs->oversize) {
        how = END_FAIL;
        snprintf(
            why, sizeof why,
            "the handler process sent %zu bytes at once, more than --max-payload (%zu bytes) allows",
            fs->oversize, a->max_payload);
        text = why;
    } else if (fs->have_status && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        how = attempt_end_kind(a, (lw_status)fs->status);
        text = how == END_OK ? a->result : a->error;
    } else if (WIFSIGNALED(st)) {
        snprintf(why, sizeof why, "crashed: killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
        text = why;
    } else {
        snprintf(why, sizeof why, "handler process exited with status %d before returning",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        text = why;
    }
    fdreader_close(&fs->out);
    a->runner_state = NULL;
    /* text may point into a->result/a->error, which live until attempt_free. */
    outcome_finished(a, how, text);
    free(fs);
}

static void on_eof(fdreader *r, void *ud)
{
    attempt *a = ud;
    fork_state *fs = a->runner_state;
    parse_frames(r, ud);
    fs->pipe_open = 0;
    maybe_complete(a);
}

static void reaped(attempt *a) { maybe_complete(a); }

static void release(attempt *a)
{
    fork_state *fs = a->runner_state;
    if (!fs)
        return;
    if (fs->linger)
        event_free(fs->linger);
    fdreader_close(&fs->out);
    free(fs);
    a->runner_state = NULL;
}

static int start(attempt *a)
{
    int fds[2];
    fork_state *fs = calloc(1, sizeof *fs);
    if (!fs)
        return -1;
    if (lw_pipe2(fds, O_CLOEXEC) < 0) {
        free(fs);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = child_fork_attempt(a->tenant->w);
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        free(fs);
        errno = e;
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(a, fds[1], parent);
    }
    close(fds[1]);
    a->pid = pid;
    a->runner_state = fs;
    fs->pipe_open = 1;
    fs->out.fd = -1;
    fs->out.on_data = parse_frames;
    fs->out.on_eof = on_eof;
    if (fdreader_start(&fs->out, a->tenant->w->base, fds[0], a)) {
        /* Cannot watch the pipe: stop the child; its exit still completes
         * the attempt through SIGCHLD. */
        close(fds[0]);
        fs->out.fd = -1;
        fs->pipe_open = 0;
        child_signal(a, SIGKILL);
    }
    return 0;
}

/* Once at start. libc grows the environment (setenv in every child) with
 * realloc through a slot of its own that is bound lazily: bound here, in
 * the worker, the children inherit it bound. Unbound, each child would
 * look realloc up again and copy the page of libc's table it writes (a
 * few faults in ld.so and libc, ~10 us per attempt). reallocarray calls
 * realloc through that slot; it changes nothing else. */
static int open_runner(worker *w, char *err, size_t errlen)
{
    (void)w, (void)err, (void)errlen;
    free(reallocarray(NULL, 1, 1));
    return 0;
}

static int handles(const attempt *a)
{
    const tenant *t = a->tenant;
    return t->w->opt->isolation == ISOLATION_FORK && module_handles(t->mod, a->kind);
}

const runner run_fork_runner = {
    .name = "fork",
    .handles = handles,
    .open = open_runner,
    .start = start,
    .stop = child_stop,
    .grace_over = child_kill,
    .reaped = reaped,
    .release = release,
};

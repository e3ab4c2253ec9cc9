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

#include "child.h"
#include "log.h"
#include "runners.h"
#include "worker.h"

typedef struct fork_state {
    fdreader out;
    size_t parsed;  /* bytes of out.buf already consumed as frames */
    int have_status;
    int status;
} fork_state;

/* ---- in the child ---- */

static int g_fd = -1;
static attempt *g_job;

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3); /* the parent is gone: nothing left to report to */
        c += w;
        n -= (size_t)w;
    }
}

static void frame(char type, const char *a, size_t alen, const char *b, size_t blen)
{
    uint32_t len = (uint32_t)(alen + blen);
    write_all(g_fd, &type, 1);
    write_all(g_fd, &len, sizeof len);
    if (alen) write_all(g_fd, a, alen);
    if (blen) write_all(g_fd, b, blen);
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
    if (g_job) atomic_store(&g_job->stop, STOP_TIMEOUT);
}

static void child_main(attempt *a, int fd, pid_t parent)
{
    setpgid(0, 0);
    child_reset_signals();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(3); /* the worker died while we were forking */
    g_fd = fd;
    g_job = a;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    a->emit = child_emit;
    module_binding *mb = a->tenant->mod;
    lw_status st = mb->mod->handle(mb->state, a);
    if (a->result) frame('R', a->result, strlen(a->result), NULL, 0);
    if (a->error) frame('X', a->error, strlen(a->error), NULL, 0);
    char num[16];
    int n = snprintf(num, sizeof num, "%d", (int)st);
    frame('S', num, (size_t)n, NULL, 0);
    _exit(0);
}

/* ---- in the worker ---- */

static void take_string(char **dst, const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return;
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
        size_t avail = r->len - fs->parsed;
        if (avail < 5) break;
        const char *p = r->buf + fs->parsed;
        uint32_t len;
        memcpy(&len, p + 1, sizeof len);
        if (avail < 5 + (size_t)len) break;
        const char *body = p + 5;
        switch (p[0]) {
        case 'V': {
            const char *nul = memchr(body, '\0', len);
            if (nul) {
                char *data = NULL;
                take_string(&data, nul + 1, len - (size_t)(nul + 1 - body));
                if (data) send_handler_event(a, body, data[0] ? data : NULL);
                free(data);
            }
            break;
        }
        case 'R': take_string(&a->result, body, len); break;
        case 'X': take_string(&a->error, body, len); break;
        case 'S':
            fs->have_status = 1;
            fs->status = 0;
            for (uint32_t i = 0; i < len && body[i] >= '0' && body[i] <= '9'; i++)
                fs->status = fs->status * 10 + (body[i] - '0');
            break;
        default: break;
        }
        fs->parsed += 5 + len;
    }
    /* Keep the buffer small: drop what was parsed. */
    if (fs->parsed > 0 && fs->parsed == r->len) {
        r->len = 0;
        fs->parsed = 0;
    }
}

static void maybe_complete(attempt *a)
{
    fork_state *fs = a->runner_state;
    if (!a->reaped || a->pipe_open) return;
    end_kind how = END_RETRY;
    char why[160];
    const char *text = NULL;
    int st = a->exit_status;
    if (fs->have_status && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        how = fs->status == LW_OK ? END_OK : fs->status == LW_FAIL ? END_FAIL : END_RETRY;
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
    attempt_finished(a, how, text);
    free(fs);
}

static void on_eof(fdreader *r, void *ud)
{
    attempt *a = ud;
    parse_frames(r, ud);
    a->pipe_open = 0;
    maybe_complete(a);
}

void run_fork_reaped(attempt *a) { maybe_complete(a); }

int run_fork_start(attempt *a)
{
    int fds[2];
    fork_state *fs = calloc(1, sizeof *fs);
    if (!fs) return -1;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        free(fs);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
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
    setpgid(pid, pid); /* also here: no race with a kill(-pid) right after fork */
    close(fds[1]);
    a->pid = pid;
    a->run = RUN_MODULE_FORK;
    a->runner_state = fs;
    a->pipe_open = 1;
    fs->out.fd = -1;
    fs->out.on_data = parse_frames;
    fs->out.on_eof = on_eof;
    if (fdreader_start(&fs->out, a->tenant->w->base, fds[0], a)) {
        /* Cannot watch the pipe: stop the child; its exit still completes
         * the attempt through SIGCHLD. */
        close(fds[0]);
        fs->out.fd = -1;
        a->pipe_open = 0;
        child_signal(a, SIGKILL);
    }
    return 0;
}

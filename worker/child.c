/* child.c — pipes, process groups and exit statuses of attempt children. */
#include "child.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runners.h"
#include "worker.h"

static void reader_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    fdreader *r = arg;
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n > 0) {
            size_t take = (size_t)n;
            if (r->limit && r->len + take > r->limit) {
                take = r->len < r->limit ? r->limit - r->len : 0;
                r->truncated = 1;
            }
            if (r->len + take > r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 4096;
                while (cap < r->len + take) cap *= 2;
                char *grown = realloc(r->buf, cap + 1);
                if (!grown) {
                    r->truncated = 1;
                    take = 0;
                } else {
                    r->buf = grown;
                    r->cap = cap;
                }
            }
            memcpy(r->buf + r->len, chunk, take);
            r->len += take;
            if (r->keep && r->len > r->keep) {
                memmove(r->buf, r->buf + r->len - r->keep, r->keep);
                r->len = r->keep;
                r->truncated = 1;
            }
            if (r->buf) r->buf[r->len] = '\0';
            if (r->on_data) r->on_data(r, r->ud);
            if (r->fd < 0) return; /* on_data closed us */
            continue;
        }
        if (n < 0 && (errno == EINTR)) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        /* EOF or a hard error: either way the child's side is done. */
        event_free(r->ev);
        r->ev = NULL;
        close(r->fd);
        r->fd = -1;
        if (r->on_eof) r->on_eof(r, r->ud);
        return;
    }
}

int fdreader_start(fdreader *r, struct event_base *base, int fd, void *ud)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    r->ud = ud;
    r->ev = event_new(base, fd, EV_READ | EV_PERSIST, reader_cb, r);
    if (!r->ev || event_add(r->ev, NULL)) {
        if (r->ev) event_free(r->ev);
        r->ev = NULL;
        return -1; /* the caller still owns fd */
    }
    r->fd = fd;
    return 0;
}

void fdreader_close(fdreader *r)
{
    if (r->ev) event_free(r->ev);
    r->ev = NULL;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}

void child_signal(attempt *a, int sig)
{
    if (a->pid > 0 && !a->reaped) kill(-a->pid, sig);
}

void child_stop(attempt *a, int immediately)
{
    if (a->pid <= 0 || a->reaped) return;
    if (immediately) {
        child_signal(a, SIGKILL);
        return;
    }
    child_signal(a, SIGTERM);
    attempt_arm_grace(a);
}

void child_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP) sigaction(s, &sa, NULL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

void children_reap(worker *w)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        for (attempt *a = w->running; a; a = a->next) {
            if (a->pid != pid) continue;
            a->reaped = 1;
            a->exit_status = status;
            if (a->run == RUN_EXEC)
                run_exec_reaped(a);
            else
                run_fork_reaped(a);
            break;
        }
    }
}

/* child.c — forking, pipes, process groups and exit statuses of attempt
 * children, and the orphans they leave (child.h). */
#include "child.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attempt.h"
#include "fence.h"
#include "log.h"
#include "seams.h"
#include "sigfork.h"
#include "timefmt.h"

#define SWEEP_EVERY_MS 200
#define SWEEP_MAX_CHILDREN 4096

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
                while (cap < r->len + take)
                    cap *= 2;
                char *grown = realloc(r->buf, cap + 1);
                if (!grown) {
                    r->truncated = 1;
                    take = 0;
                } else {
                    r->buf = grown;
                    r->cap = cap;
                }
            }
            if (take)
                memcpy(r->buf + r->len, chunk, take);
            r->len += take;
            if (r->keep && r->len > r->keep) {
                memmove(r->buf, r->buf + r->len - r->keep, r->keep);
                r->len = r->keep;
                r->truncated = 1;
            }
            if (r->buf)
                r->buf[r->len] = '\0';
            if (r->on_data)
                r->on_data(r, r->ud);
            if (r->fd < 0)
                return; /* on_data closed us */
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or a hard error: either way the child's side is done. */
        event_free(r->ev);
        r->ev = NULL;
        close(r->fd);
        r->fd = -1;
        if (r->on_eof)
            r->on_eof(r, r->ud);
        return;
    }
}

int fdreader_start(fdreader *r, struct event_base *base, int fd, void *ud)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    r->ud = ud;
    r->ev = event_new(base, fd, EV_READ | EV_PERSIST, reader_cb, r);
    if (!r->ev || event_add(r->ev, NULL)) {
        if (r->ev)
            event_free(r->ev);
        r->ev = NULL;
        return -1; /* the caller still owns fd */
    }
    r->fd = fd;
    return 0;
}

void fdreader_close(fdreader *r)
{
    if (r->ev)
        event_free(r->ev);
    r->ev = NULL;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}

pid_t child_fork_attempt(worker *w)
{
    pid_t pid = sigfork();
    if (pid == 0) {
        setpgid(0, 0);
        if (w->tty_fd >= 0) {
            /* Not a session leader: this detaches only us, never the
             * worker or its session. */
            ioctl(w->tty_fd, TIOCNOTTY);
            close(w->tty_fd);
        }
    } else if (pid > 0) {
        /* EACCES once the child has exec'd: it made its group itself. */
        setpgid(pid, pid);
    }
    return pid;
}

void child_signal(attempt *a, int sig)
{
    if (a->pid <= 0 || a->reaped)
        return;
    /* The group exists once child_fork_attempt returned (both sides set
     * it); ESRCH: all of it is gone but maybe the leader's zombie. */
    if (kill(-a->pid, sig) < 0 && errno == ESRCH)
        kill(a->pid, sig);
}

void child_kill(attempt *a) { child_signal(a, SIGKILL); }

void child_stop(attempt *a, int immediately)
{
    if (a->pid <= 0 || a->reaped)
        return;
    worker *w = a->tenant->w;
    int frozen = a->slot >= 0 && w->fence && fence_frozen(w->fence, a->slot);
    if (immediately || frozen || attempt_stop_reason(a) == STOP_LOST) {
        child_signal(a, SIGKILL);
        return;
    }
    child_signal(a, SIGTERM);
    attempt_arm_grace(a);
}

void child_reap_leader(worker *w, attempt *a)
{
    int status = 0;
    if (a->slot >= 0 && w->fence)
        fence_clear(w->fence, a->slot);
    kill(-a->pid, SIGKILL); /* ESRCH: nothing left of it */
    while (waitpid(a->pid, &status, 0) < 0 && errno == EINTR) {
    }
    a->reaped = 1;
    a->exit_status = status;
    w->sweep_wanted = 1;
}

int child_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return 0;
    return si.si_pid == pid;
}

/* ---- orphans ---- */

/* state, ppid and process group of pid from /proc/PID/stat; its command
 * name into comm (16 bytes) when comm is not NULL. */
static int read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp, char *comm)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* The command name is in parentheses and may hold anything: parse
     * after the last ')'. */
    char *p = strrchr(buf, ')'), *open_paren = strchr(buf, '(');
    int pp, pg;
    if (!p || !open_paren || p < open_paren || sscanf(p + 1, " %c %d %d", state, &pp, &pg) != 3)
        return -1;
    if (comm) {
        size_t clen = (size_t)(p - open_paren - 1);
        if (clen > 15)
            clen = 15;
        memcpy(comm, open_paren + 1, clen);
        comm[clen] = '\0';
    }
    *ppid = pp;
    *pgrp = pg;
    return 0;
}

/* The LANEWORK_JOB_ID of pid's environment (as it was at its exec), or
 * "" when it has none. The whole block is read: the variable may come last
 * in a large environment. */
static void read_job_id(pid_t pid, char *out, size_t outlen)
{
    char path[64];
    out[0] = '\0';
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t cap = 65536, len = 0;
    char *env = malloc(cap + 1);
    while (env) {
        ssize_t n = read(fd, env + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            if (cap >= (8u << 20))
                break; /* beyond any ARG_MAX */
            char *grown = realloc(env, cap * 2 + 1);
            if (!grown)
                break;
            env = grown;
            cap *= 2;
        }
    }
    close(fd);
    if (!env)
        return;
    env[len] = '\0';
    static const char key[] = "LANEWORK_JOB_ID=";
    for (char *p = env; p < env + len; p += strlen(p) + 1)
        if (strncmp(p, key, sizeof key - 1) == 0) {
            snprintf(out, outlen, "%s", p + sizeof key - 1);
            break;
        }
    free(env);
}

/* The worker's children: from /proc/self/task/TID/children where the kernel
 * has it, else by scanning every /proc/PID/stat for our pid as parent. */
static size_t list_children(pid_t self, pid_t *out, size_t cap)
{
    size_t n = 0;
    DIR *tasks = opendir("/proc/self/task");
    int have_children_files = 0;
    if (tasks) {
        struct dirent *e;
        while ((e = readdir(tasks))) {
            if (e->d_name[0] == '.')
                continue;
            char path[300], buf[8192];
            snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                break; /* no such file: an older or smaller kernel */
            have_children_files = 1;
            /* Space-separated pids, read in chunks: a number cut at a chunk's
             * end is carried over to the next. */
            size_t keep = 0;
            ssize_t len;
            while (n < cap && (len = read(fd, buf + keep, sizeof buf - 1 - keep)) > 0) {
                size_t have = keep + (size_t)len;
                buf[have] = '\0';
                char *p = buf, *end;
                for (;;) {
                    while (*p == ' ')
                        p++;
                    long v = strtol(p, &end, 10);
                    if (end == p || *end == '\0')
                        break; /* none, or maybe cut */
                    out[n++] = (pid_t)v;
                    p = end;
                    if (n == cap)
                        break;
                }
                keep = strlen(p);
                memmove(buf, p, keep);
            }
            if (keep && n < cap) {
                buf[keep] = '\0';
                long v = strtol(buf, NULL, 10);
                if (v > 0)
                    out[n++] = (pid_t)v;
            }
            close(fd);
        }
        closedir(tasks);
    }
    if (have_children_files)
        return n;
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    struct dirent *e;
    while ((e = readdir(proc)) && n < cap) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        char state;
        pid_t ppid, pgrp;
        if (read_stat(pid, &state, &ppid, &pgrp, NULL) == 0 && ppid == self)
            out[n++] = pid;
    }
    closedir(proc);
    return n;
}

/* One line a minute per job for the processes it left behind. */
static lw_log_gate orphan_gate;

static const attempt *attempt_by_pid(const worker *w, pid_t pid)
{
    for (const attempt *a = w->running; a; a = a->next)
        if (a->pid == pid && !a->reaped)
            return a;
    return NULL;
}

static int job_running(const worker *w, const char *id)
{
    for (const attempt *a = w->running; a; a = a->next)
        if (a->pid > 0 && !a->reaped && strcmp(a->id, id) == 0)
            return 1;
    return 0;
}

static int serial_running(const worker *w, unsigned long long serial)
{
    for (const attempt *a = w->running; a; a = a->next)
        if (a->pid > 0 && !a->reaped && a->serial == serial)
            return 1;
    return 0;
}

/* Orphans the sweep killed: their zombies are ours to reap. */
static pid_t killed[256];
static size_t nkilled;

static int was_killed(pid_t pid)
{
    for (size_t i = 0; i < nkilled; i++)
        if (killed[i] == pid) {
            killed[i] = killed[--nkilled];
            return 1;
        }
    return 0;
}

void children_sweep(worker *w, int64_t now)
{
    if (!w->sweep_wanted || now < w->sweep_at)
        return;
    w->sweep_wanted = 0;
    w->sweep_at = now + SWEEP_EVERY_MS;
    static pid_t kids[SWEEP_MAX_CHILDREN];
    pid_t self = getpid(), own_group = getpgrp(), keeper = fence_keeper_pid(w->fence);
    size_t n = list_children(self, kids, SWEEP_MAX_CHILDREN);
    for (size_t i = 0; i < n; i++) {
        pid_t pid = kids[i];
        char state, comm[16];
        pid_t ppid, pgrp;
        if (pid == keeper || attempt_by_pid(w, pid) || read_stat(pid, &state, &ppid, &pgrp, comm))
            continue;
        /* In our own group: a module's own child (thread isolation), which
         * the module waits for itself. */
        if (pgrp == own_group)
            continue;
        if (state == 'Z') {
            /* A zombie we killed, or one an attempt left (lw:), is ours to
             * reap; others too in fork and pool isolation, where no module
             * code runs in the worker. In thread isolation an unmarked zombie
             * may be a module's own child, which the module will wait for. */
            if (was_killed(pid) || strncmp(comm, "lw:", 3) == 0 ||
                w->opt->isolation != ISOLATION_THREAD)
                waitpid(pid, NULL, WNOHANG);
            continue;
        }
        /* Which attempt it came from: a fork child's name "lw:SERIAL"
         * (kept until an exec), or LANEWORK_JOB_ID (after one). Neither:
         * not started by an attempt (as PID 1 in a container, orphans of
         * other sessions come here too), not ours to judge. An escapee of
         * an attempt still running waits for that attempt's end. */
        char job[256] = "";
        unsigned long long serial = 0;
        char *end;
        if (strncmp(comm, "lw:", 3) == 0 && (serial = strtoull(comm + 3, &end, 10)) > 0 &&
            *end == '\0') {
            if (serial_running(w, serial))
                continue;
            snprintf(job, sizeof job, "(attempt %llu)", serial);
        } else {
            read_job_id(pid, job, sizeof job);
            if (!job[0] || job_running(w, job))
                continue;
        }
        if (attempt_by_pid(w, pgrp))
            continue;
        kill(pid, SIGKILL);
        if (pgrp == pid)
            kill(-pid, SIGKILL);
        if (nkilled < sizeof killed / sizeof killed[0])
            killed[nkilled++] = pid;
        lw_log_about(lw_log_gate_level(&orphan_gate, job, LW_LOG_WARN, 60000), "job.orphan",
                     (lw_log_facts){.job = job},
                     "killed process %d, which left its attempt's process group and outlived it",
                     (int)pid);
        w->sweep_wanted = 1; /* reap it on the next sweep */
    }
}

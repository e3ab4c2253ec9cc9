/*
 * run_pool.c — module handlers in pre-forked children that serve attempts
 * one at a time (--isolation pool; the child's side is pool_child.c).
 *
 * Children are per tenant (each runs its tenant's module init, as the
 * tenant's user) and forked on demand: an attempt goes to an idle child of
 * its tenant, else to a new one. At most --concurrency children serve
 * (idle or busy) at once, whatever the tenants: when a tenant needs one
 * more and the worker has that many, the child of another tenant idle the
 * longest is retired for it (it may still be running its fini while the
 * new one starts). So one tenant may use every slot, as in fork isolation,
 * and the steady state of a busy worker is one child per slot. Lazily
 * rather than all at start: which tenants will have work is not known, and
 * --concurrency children for each of N tenants would be N times the
 * processes and module inits, for the saving of one fork per slot.
 *
 * While it runs an attempt, the child is that attempt's process group, as
 * a fork child is: a->pid is its pid, so the fence freezes it, child_stop
 * stops it (TERM, KILL after the grace) and dispatch_reap collects it
 * unchanged. Between attempts it holds no slot and no fence entry. It is
 * replaced after a crash, any stop request (timeout, cancel, hand-back,
 * lost lease), --pool-max-jobs attempts, an attempt that left processes
 * behind, and when a reload retires its tenant; an idle child that dies
 * is dropped and nothing is charged to any job. An attempt sent to a
 * child that had served before and that died before taking it ('A') is
 * sent to a fresh child instead.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_pool.h"

#include "attempt.h"
#include "child.h"
#include "fence.h"
#include "frames.h"
#include "log.h"
#include "module_host.h"
#include "outcome.h"
#include "pool_child.h"
#include "pool_wire.h"
#include "tenants.h"
#include "timefmt.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* A frame longer than --max-payload plus this is a child writing garbage. */
#define FRAME_SLACK 4096
/* Housekeeping: children of retired tenants, reaping without pidfds. */
#define POOL_TICK_MS 1000
/* The input buffer an idle child keeps between attempts, at most. */
#define IN_KEEP (64 * 1024)
/* At the worker's exit, how long children get to run fini and exit. */
#define CLOSE_WAIT_MS 2000

typedef enum {
    PC_IDLE,    /* waiting for an attempt */
    PC_BUSY,    /* running `a` */
    PC_QUITTING /* told to go (socket closed), not reaped yet */
} pc_state;

typedef struct pool_child {
    struct fork_pool *pool;
    tenant *t; /* holds a reference */
    pid_t pid; /* leads its own process group */
    int pidfd; /* -1: none (kernel without pidfd_open): the tick reaps */
    int sock;  /* our end of the socketpair; -1 once closed */
    pc_state state;
    int64_t served;           /* attempts sent to it */
    int64_t idle_since;       /* mono ms */
    int retire;               /* replace it once the attempt it runs ends */
    int acked;                /* it took the attempt it runs ('A') */
    int eof;                  /* its end of the socket is closed */
    attempt *a;               /* PC_BUSY: borrowed; a->runner_state is this */
    struct event *rd;         /* frames from the child */
    struct event *wr;         /* the rest of a job frame the socket did not take */
    struct event *gone;       /* the pidfd: it exited (idle and quitting only) */
    struct event *kill_timer; /* quitting: SIGKILL if it has not exited */
    char *in;                 /* owned: bytes read, from `parsed` on not consumed */
    size_t in_len, in_cap, parsed;
    char *out; /* owned: the job frame being written */
    size_t out_len, out_off;
    int have_status, status;
    size_t oversize; /* a frame announced this many bytes, too many */
    struct pool_child *next, *prev;
} pool_child;

struct fork_pool {
    worker *w;
    pool_child *head;
    int live; /* idle and busy children (quitting ones not counted) */
    struct event *tick;
};

static void pc_free(pool_child *pc)
{
    struct fork_pool *p = pc->pool;
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        p->head = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    if (pc->state != PC_QUITTING)
        p->live--;
    if (pc->rd)
        event_free(pc->rd);
    if (pc->wr)
        event_free(pc->wr);
    if (pc->gone)
        event_free(pc->gone);
    if (pc->kill_timer)
        event_free(pc->kill_timer);
    if (pc->sock >= 0)
        close(pc->sock);
    if (pc->pidfd >= 0)
        close(pc->pidfd);
    free(pc->in);
    free(pc->out);
    tenant_unref(pc->t);
    free(pc);
}

/* waitid on pc's process, through its pidfd when it has one: the sweep
 * (child.c) may have reaped a zombie first, and a pid alone could name a
 * new process by now. */
static int pc_waitid(const pool_child *pc, siginfo_t *si, int options)
{
    memset(si, 0, sizeof *si);
    if (pc->pidfd >= 0)
        return waitid((idtype_t)P_PIDFD, (id_t)pc->pidfd, si, options);
    return waitid(P_PID, (id_t)pc->pid, si, options);
}

/* 1 when pc's process exited (a zombie, or reaped by someone else). */
static int pc_exited(const pool_child *pc)
{
    siginfo_t si;
    return pc_waitid(pc, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != 0;
}

/* Not running an attempt and exited: kills what is left of its group
 * while its zombie still holds the group id, reaps it, frees pc. Returns
 * 1 when pc is gone (0: still alive, nothing done). */
static int pc_reap_if_exited(pool_child *pc)
{
    siginfo_t si;
    int rc = pc_waitid(pc, &si, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && si.si_pid == 0)
        return 0; /* alive */
    if (rc == 0) {
        kill(-pc->pid, SIGKILL);
        pc_waitid(pc, &si, WEXITED);
        if (si.si_code != CLD_EXITED || si.si_status != 0)
            lw_log(LW_LOG_DEBUG, "pool.exit",
                   "pool process %d of tenant %s ended between attempts (%s %d)", (int)pc->pid,
                   pc->t->cfg->name, si.si_code == CLD_EXITED ? "exit status" : "signal",
                   si.si_status);
        pc->pool->w->sweep_wanted = 1; /* what left its group comes to us */
    }
    pc_free(pc);
    return 1;
}

static void kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pool_child *pc = arg;
    kill(-pc->pid, SIGKILL);
}

/* Tells an idle child to go: EOF on its socket makes it run the module's
 * fini and exit; SIGKILL after the grace if it does not. */
static void pc_quit(pool_child *pc)
{
    if (pc->state == PC_QUITTING)
        return;
    pc->state = PC_QUITTING;
    pc->pool->live--;
    if (pc->rd)
        event_free(pc->rd);
    if (pc->wr)
        event_free(pc->wr);
    pc->rd = pc->wr = NULL;
    if (pc->sock >= 0)
        close(pc->sock);
    pc->sock = -1;
    /* A freeze that landed after its last attempt ended (fence.h) would
     * keep it from reading the EOF. */
    kill(-pc->pid, SIGCONT);
    if (pc->gone && event_add(pc->gone, NULL)) {
        event_free(pc->gone); /* the tick reaps it instead */
        pc->gone = NULL;
        close(pc->pidfd);
        pc->pidfd = -1;
    }
    if (!pc->kill_timer)
        pc->kill_timer = evtimer_new(pc->pool->w->base, kill_timer_cb, pc);
    if (pc->kill_timer) {
        struct timeval tv = {KILL_GRACE_MS / 1000, (KILL_GRACE_MS % 1000) * 1000};
        evtimer_add(pc->kill_timer, &tv);
    }
    pc_reap_if_exited(pc);
}

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

/* Acts on the complete frames in pc->in. Returns -1 when the child sent
 * what our child code never sends (it is killed), else 0. */
static int parse_frames(pool_child *pc)
{
    attempt *a = pc->a;
    size_t max = (a ? a->max_payload : 0) + FRAME_SLACK;
    while (pc->parsed < pc->in_len) {
        lw_frame f;
        long took =
            lw_frame_next(pc->in + pc->parsed, pc->in_len - pc->parsed, max, &f, &pc->oversize);
        if (took == 0)
            break;
        if (took < 0 || !a || pc->have_status)
            return -1; /* nothing is due while idle or after 'S' */
        switch (f.type) {
        case 'A': pc->acked = 1; break;
        case 'Q': pc->retire = 1; break;
        case 'V': {
            const char *nul = memchr(f.body, '\0', f.len);
            if (nul) {
                char *data = NULL;
                take_string(&data, nul + 1, f.len - (size_t)(nul + 1 - f.body));
                if (data)
                    outcome_event(a, f.body, data[0] ? data : NULL);
                free(data);
            }
            break;
        }
        case 'R': {
            /* Checked again (JSON, size): the child is tenant code. */
            char *text = NULL;
            take_string(&text, f.body, f.len);
            if (text)
                lw_job_set_result(a, text);
            free(text);
            break;
        }
        case 'X': {
            char *text = NULL;
            take_string(&text, f.body, f.len);
            if (text)
                lw_job_set_error(a, text);
            free(text);
            break;
        }
        case 'S':
            pc->have_status = 1;
            pc->status = lw_frame_status(&f);
            break;
        default: break;
        }
        pc->parsed += (size_t)took;
    }
    if (pc->parsed == pc->in_len)
        pc->in_len = pc->parsed = 0;
    return 0;
}

/* Reads what the socket has (until EAGAIN or EOF) and parses it. -1: a
 * protocol error (the caller kills the child). */
static int drain(pool_child *pc)
{
    char chunk[16384];
    while (pc->sock >= 0 && !pc->eof) {
        ssize_t n = read(pc->sock, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            pc->eof = 1;
            if (pc->rd)
                event_del(pc->rd);
            break;
        }
        if (pc->in_len + (size_t)n > pc->in_cap) {
            size_t cap = pc->in_cap ? pc->in_cap * 2 : 4096;
            while (cap < pc->in_len + (size_t)n)
                cap *= 2;
            char *grown = realloc(pc->in, cap);
            if (!grown)
                return -1;
            pc->in = grown;
            pc->in_cap = cap;
        }
        memcpy(pc->in + pc->in_len, chunk, (size_t)n);
        pc->in_len += (size_t)n;
        if (parse_frames(pc))
            return -1;
    }
    return 0;
}

static int64_t max_jobs(const pool_child *pc) { return pc->pool->w->opt->pool_max_jobs; }

/* The attempt pc runs has ended: from its 'S' frame (the child lives on,
 * or is retired) or, child_dead, because the child was reaped. */
static void end_attempt(pool_child *pc, int child_dead)
{
    attempt *a = pc->a;
    worker *w = pc->pool->w;
    end_kind how = END_RETRY;
    char why[200];
    const char *text = NULL;
    int st = a->exit_status;
    if (pc->oversize) {
        how = END_FAIL;
        snprintf(
            why, sizeof why,
            "the handler process sent %zu bytes at once, more than --max-payload (%zu bytes) allows",
            pc->oversize, a->max_payload);
        text = why;
    } else if (pc->have_status) {
        how = attempt_end_kind(a, (lw_status)pc->status);
        text = how == END_OK ? a->result : a->error;
    } else if (child_dead && WIFSIGNALED(st)) {
        snprintf(why, sizeof why, "crashed: killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
        text = why;
    } else if (child_dead && WIFEXITED(st) && WEXITSTATUS(st) == POOL_CHILD_INIT_FAILED &&
               a->error) {
        text = a->error; /* the child said why */
    } else {
        snprintf(why, sizeof why, "handler process exited with status %d before returning",
                 child_dead && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        text = why;
    }
    if (!child_dead) {
        /* The group is no longer the attempt's: the fence must not freeze
         * an idle child for this attempt's lease. */
        if (a->slot >= 0 && w->fence)
            fence_clear(w->fence, a->slot);
        a->pid = 0;
    }
    pc->a = NULL;
    a->runner_state = NULL;
    pc->have_status = 0;
    pc->oversize = 0;
    pc->acked = 0;
    if (pc->in_cap > IN_KEEP) {
        /* A big result passed: an idle child keeps no megabyte buffer. */
        free(pc->in);
        pc->in = NULL;
        pc->in_cap = pc->in_len = pc->parsed = 0;
    }
    if (child_dead) {
        pc_free(pc);
    } else if (pc->retire || pc->eof || attempt_stop_reason(a) != STOP_NONE ||
               pc->served >= max_jobs(pc) || pc->t->retired) {
        pc_quit(pc);
    } else {
        pc->state = PC_IDLE;
        pc->idle_since = lw_mono_ms();
        if (pc->gone && !event_pending(pc->gone, EV_READ, NULL))
            event_add(pc->gone, NULL);
    }
    /* text may point into a->result/a->error, which live until attempt_free. */
    outcome_finished(a, how, text);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pool_child *pc = arg;
    if (drain(pc)) {
        /* Garbage from tenant code: stop it. A busy child ends its
         * attempt when reaped; an idle one is just dropped. */
        if (pc->rd)
            event_del(pc->rd);
        pc->eof = 1;
        if (pc->state == PC_BUSY)
            kill(-pc->pid, SIGKILL);
        else
            pc_quit(pc);
        return;
    }
    if (pc->state == PC_BUSY && pc->have_status) {
        end_attempt(pc, 0);
        return;
    }
    if (pc->eof && pc->state == PC_IDLE) {
        /* It closed its socket between attempts: it is dying or broken. */
        kill(-pc->pid, SIGKILL);
        pc_quit(pc);
    }
    /* Busy at EOF: its exit (dispatch_reap, then reaped) ends the attempt. */
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pool_child *pc = arg;
    while (pc->out && pc->out_off < pc->out_len) {
        ssize_t n = write(pc->sock, pc->out + pc->out_off, pc->out_len - pc->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* EV_PERSIST: again */
        if (n < 0)
            break; /* the child is gone: its reaping ends the attempt */
        pc->out_off += (size_t)n;
    }
    free(pc->out);
    pc->out = NULL;
    pc->out_len = pc->out_off = 0;
    event_del(pc->wr);
}

static void gone_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pool_child *pc = arg;
    /* Running an attempt, it is the attempt's leader: dispatch_reap
     * collects it. The pidfd stays readable: stop watching it. */
    if (pc->state == PC_BUSY) {
        event_del(pc->gone);
        return;
    }
    if (pc->state == PC_IDLE) {
        pc->state = PC_QUITTING; /* not counted as live from here on */
        pc->pool->live--;
    }
    pc_reap_if_exited(pc);
}

static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* pidfd_open came one kernel release before waitid(P_PIDFD). */
    siginfo_t si;
    if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG | WNOWAIT) != 0 &&
        errno == EINVAL) {
        close(fd);
        return -1;
    }
    return fd;
#else
    (void)pid;
    return -1;
#endif
}

/* Forks a new idle child for t. NULL with errno set. */
static pool_child *spawn(struct fork_pool *p, tenant *t)
{
    worker *w = p->w;
    int sv[2];
    pool_child *pc = calloc(1, sizeof *pc);
    if (!pc)
        return NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        free(pc);
        return NULL;
    }
    pid_t parent = getpid();
    pid_t pid = child_fork_attempt(w);
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        free(pc);
        errno = e;
        return NULL;
    }
    if (pid == 0) {
        close(sv[0]);
        pool_child_main(t, sv[1], parent);
    }
    close(sv[1]);
    pc->pool = p;
    pc->t = t;
    tenant_ref(t);
    pc->pid = pid;
    pc->sock = sv[0];
    pc->state = PC_IDLE;
    pc->idle_since = lw_mono_ms();
    pc->pidfd = pidfd_of(pid);
    pc->next = p->head;
    if (p->head)
        p->head->prev = pc;
    p->head = pc;
    p->live++;
    lw_log(LW_LOG_DEBUG, "pool.start", "started pool process %d for tenant %s (%d live)", (int)pid,
           t->cfg->name, p->live);
    int fl = fcntl(pc->sock, F_GETFL);
    pc->rd = event_new(w->base, pc->sock, EV_READ | EV_PERSIST, read_cb, pc);
    pc->wr = event_new(w->base, pc->sock, EV_WRITE | EV_PERSIST, write_cb, pc);
    if (pc->pidfd >= 0)
        pc->gone = event_new(w->base, pc->pidfd, EV_READ | EV_PERSIST, gone_cb, pc);
    if (fl < 0 || fcntl(pc->sock, F_SETFL, fl | O_NONBLOCK) < 0 || !pc->rd || !pc->wr ||
        event_add(pc->rd, NULL) || (pc->gone && event_add(pc->gone, NULL))) {
        kill(-pid, SIGKILL);
        pc_quit(pc);
        errno = ENOMEM;
        return NULL;
    }
    return pc;
}

/* An idle child of t that is still alive, or NULL. */
static pool_child *idle_child(struct fork_pool *p, const tenant *t)
{
    for (pool_child *pc = p->head, *next; pc; pc = next) {
        next = pc->next;
        if (pc->state != PC_IDLE || pc->t != t)
            continue;
        /* Its death may not have reached the loop yet. */
        if (pc_exited(pc)) {
            pc->state = PC_QUITTING;
            p->live--;
            pc_reap_if_exited(pc);
            continue;
        }
        return pc;
    }
    return NULL;
}

/* Room for one more child: retires the child idle the longest. */
static void make_room(struct fork_pool *p)
{
    pool_child *oldest = NULL;
    for (pool_child *pc = p->head; pc; pc = pc->next)
        if (pc->state == PC_IDLE && (!oldest || pc->idle_since < oldest->idle_since))
            oldest = pc;
    if (oldest)
        pc_quit(oldest);
}

/* Gives a to an idle child of its tenant, or a new one. 0, or -1 with
 * errno set and nothing of a's kept. */
static int assign(attempt *a)
{
    worker *w = a->tenant->w;
    struct fork_pool *p = w->fork_pool;
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    /* Processes are the tenant's, whichever partition the job came from. */
    tenant *t = tenant_lead(a->tenant);
    pool_child *pc = idle_child(p, t);
    if (!pc) {
        if (p->live >= w->opt->concurrency)
            make_room(p);
        if (!(pc = spawn(p, t)))
            return -1;
    }
    size_t len;
    char *frame = pool_wire_job(a, &len);
    if (!frame) {
        errno = ENOMEM;
        return -1;
    }
    pc->state = PC_BUSY;
    pc->a = a;
    pc->served++;
    pc->acked = 0;
    pc->have_status = 0;
    pc->in_len = pc->parsed = 0;
    a->runner_state = pc;
    a->pid = pc->pid;
    /* Armed here, before the SIGCONT: a freeze the keeper decided for the
     * previous attempt and delivers late is either undone by this SIGCONT
     * or, landing after it, undone by the keeper itself, which rereads
     * the (new) freeze point after each SIGSTOP (fence.c). dispatch arms
     * it again, harmlessly. */
    if (w->fence && a->slot >= 0)
        fence_arm(w->fence, a->slot, pc->pid, attempt_freeze_at(a));
    kill(-pc->pid, SIGCONT);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(pc->sock, frame + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (off < len && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pc->out = frame;
        pc->out_len = len;
        pc->out_off = off;
        event_add(pc->wr, NULL);
    } else {
        /* All sent, or the child is gone: its reaping ends the attempt. */
        free(frame);
    }
    return 0;
}

static int start(attempt *a) { return assign(a); }

static void stop(attempt *a, int now)
{
    pool_child *pc = a->runner_state;
    if (pc)
        pc->retire = 1; /* a child that was stopped is not reused */
    child_stop(a, now);
}

static void reaped(attempt *a)
{
    pool_child *pc = a->runner_state;
    if (!pc)
        return;
    if (drain(pc))
        pc->have_status = 0;
    int had_served = pc->served > 1; /* past init, and past an attempt */
    if (!pc->acked && !pc->have_status && had_served && !pc->oversize &&
        attempt_stop_reason(a) == STOP_NONE) {
        /* It died between attempts, before it took this one: not the
         * job's doing. Once more on a fresh child. */
        pc->a = NULL;
        a->runner_state = NULL;
        pc_free(pc);
        a->pid = 0;
        a->reaped = 0;
        a->exit_status = 0;
        if (assign(a) == 0)
            return;
        char why[200];
        snprintf(
            why, sizeof why,
            "the pool process died before it took the attempt and no new one could start (%s); handed back",
            strerror(errno));
        attempt_request_stop(a, STOP_RESOURCE);
        outcome_finished(a, END_RETRY, why);
        return;
    }
    end_attempt(pc, 1);
}

static void release(attempt *a)
{
    pool_child *pc = a->runner_state;
    if (!pc)
        return;
    pc->a = NULL;
    a->runner_state = NULL;
    kill(-pc->pid, SIGKILL);
    pc_quit(pc);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct fork_pool *p = arg;
    for (pool_child *pc = p->head, *next; pc; pc = next) {
        next = pc->next;
        if (pc->state == PC_IDLE && pc->t->retired) {
            pc_quit(pc); /* may free pc */
            continue;
        }
        if (pc->state == PC_QUITTING && pc->pidfd < 0)
            pc_reap_if_exited(pc);
    }
}

static int handles(const attempt *a)
{
    const tenant *t = a->tenant;
    return t->w->opt->isolation == ISOLATION_POOL && module_handles(t->mod, a->kind);
}

static int open_pool(worker *w, char *err, size_t errlen)
{
    if (w->opt->isolation != ISOLATION_POOL)
        return 0;
    struct fork_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, p))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->w = w;
    struct timeval tv = {POOL_TICK_MS / 1000, (POOL_TICK_MS % 1000) * 1000};
    event_add(p->tick, &tv);
    w->fork_pool = p;
    return 0;
}

static void close_pool(worker *w)
{
    struct fork_pool *p = w->fork_pool;
    if (!p)
        return;
    /* Idle children run fini and exit on EOF; busy ones (only at a forced
     * exit) are killed: their attempts are abandoned. */
    for (pool_child *pc = p->head, *next; pc; pc = next) {
        next = pc->next;
        if (pc->state == PC_BUSY) {
            pc->a->runner_state = NULL;
            pc->a = NULL;
            kill(-pc->pid, SIGKILL);
        }
        pc_quit(pc); /* may free pc */
    }
    int64_t deadline = lw_mono_ms() + CLOSE_WAIT_MS;
    while (p->head && lw_mono_ms() < deadline) {
        for (pool_child *pc = p->head, *next; pc; pc = next) {
            next = pc->next;
            pc_reap_if_exited(pc);
        }
        if (p->head)
            usleep(5000);
    }
    while (p->head) {
        kill(-p->head->pid, SIGKILL);
        while (!pc_reap_if_exited(p->head))
            usleep(1000);
    }
    event_free(p->tick);
    free(p);
    w->fork_pool = NULL;
}

const runner run_pool_runner = {
    .name = "pool",
    .handles = handles,
    .open = open_pool,
    .start = start,
    .stop = stop,
    .grace_over = child_kill,
    .reaped = reaped,
    .release = release,
    .close = close_pool,
};

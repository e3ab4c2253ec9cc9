/*
 * pool_child.c — a pool child serving its tenant's attempts one after
 * another (pool_child.h).
 *
 * What lives on between two attempts of one child is the module's state
 * (what its init made and its handlers changed), the heap, threads the
 * module started and fds it opened: that is what --isolation pool trades
 * for skipping a fork per attempt. What does not: processes, the process
 * group, and the SIGTERM handler and signal mask a stop relies on (reset
 * before each attempt). The child is a child subreaper, so everything an
 * attempt starts stays its descendant; when one of them is still alive
 * after the handler returned, or the handler left the child's process
 * group, the child says so ('Q') and exits, and the worker kills what is
 * left of its group and, through its sweep, whatever left the group (named
 * lw:SERIAL).
 */
#include "pool_child.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fence.h"
#include "frames.h"
#include "module_host.h"
#include "pool_wire.h"
#include "sigfork.h"
#include "tenants.h"

/* Room beyond --max-payload for the job's other fields. */
#define JOB_SLACK (64 * 1024)

static int g_sock = -1;
static attempt *g_job;               /* the attempt running, NULL while idle */
static volatile sig_atomic_t g_term; /* SIGTERM came: exit after this attempt */
static const module_binding *g_mod;
static struct sigaction g_term_action; /* on_sigterm, no SA_RESTART */
static void *g_state;                  /* what the module's init made in this child */
/* LANEWORK_JOB_ID=ID for what the handler execs; putenv keeps the buffer,
 * so each attempt rewrites it in place instead of allocating. */
static char g_job_env[512] = "LANEWORK_JOB_ID=";

static void leave(int status)
{
    if (status == 0 && g_mod->mod->fini)
        g_mod->mod->fini(g_state);
    _exit(status);
}

/* Appends frame [type][len][a][b] to *buf (grown as needed); on OOM the
 * frame is dropped and the buffer left as it was. */
typedef struct outbuf {
    char *p;
    size_t len, cap;
} outbuf;

static void put_frame(outbuf *o, char type, const char *a, size_t alen, const char *b, size_t blen)
{
    size_t need = o->len + LW_FRAME_HEAD + alen + blen;
    if (need > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < need)
            cap *= 2;
        char *grown = realloc(o->p, cap);
        if (!grown)
            return;
        o->p = grown;
        o->cap = cap;
    }
    uint32_t len = (uint32_t)(alen + blen);
    char *d = o->p + o->len;
    d[0] = type;
    memcpy(d + 1, &len, sizeof len);
    if (alen)
        memcpy(d + LW_FRAME_HEAD, a, alen);
    if (blen)
        memcpy(d + LW_FRAME_HEAD + alen, b, blen);
    o->len = need;
}

static void send_frame(char type, const char *a, size_t alen, const char *b, size_t blen)
{
    outbuf o = {0};
    put_frame(&o, type, a, alen, b, blen);
    if (o.len)
        lw_frame_write_all(g_sock, o.p, o.len);
    free(o.p);
}

static void child_emit(lw_job *job, const char *type, const char *data)
{
    (void)job;
    send_frame('V', type, strlen(type) + 1, data ? data : "", data ? strlen(data) : 0);
}

static void on_sigterm(int sig)
{
    (void)sig;
    /* Cooperative first, as in a fork child: the handler sees
     * lw_job_cancelled(); SIGKILL follows after the grace. A child that was
     * asked to stop is not trusted with another attempt. */
    g_term = 1;
    if (g_job)
        atomic_store(&g_job->stop, STOP_TIMEOUT);
}

/* Reads exactly n bytes. 1, or 0 at EOF; SIGTERM while idle leaves. */
static int read_exact(char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(g_sock, p, n);
        if (r < 0 && errno == EINTR) {
            if (g_term)
                leave(0);
            continue;
        }
        if (r <= 0)
            return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

/* 1 when a process this attempt started is still alive (zombies are
 * reaped on the way: as a subreaper the child collects every orphan). */
static int left_processes(void)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0)
            continue;
        if (p == 0)
            return 1;
        if (errno == EINTR)
            continue;
        return 0; /* ECHILD: none */
    }
}

/* One attempt: body is the job frame's (len bytes, room for a NUL). */
static void serve(char *body, size_t len)
{
    attempt a;
    memset(&a, 0, sizeof a);
    uint64_t serial = 0;
    if (pool_wire_read_job(body, len, &a, &serial))
        _exit(5); /* not our worker's frame */
    atomic_init(&a.stop, STOP_NONE);
    a.slot = -1;
    a.emit = child_emit;
    send_frame('A', NULL, 0, NULL, 0);
    /* Marks what this attempt starts, as a fork child does (child.h, the
     * sweep): the name stays with its forks until they exec, then the
     * environment says LANEWORK_JOB_ID. */
    char name[16];
    snprintf(name, sizeof name, "lw:%llu", (unsigned long long)serial);
    prctl(PR_SET_NAME, name);
    snprintf(g_job_env + 16, sizeof g_job_env - 16, "%s", a.id);
    /* What a stop relies on, as the previous handler may have left it:
     * our SIGTERM handler and no signal blocked. */
    sigaction(SIGTERM, &g_term_action, NULL);
    sigfork_unblock_signals();
    g_job = &a;
    if (g_term)
        atomic_store(&a.stop, STOP_TIMEOUT);
    lw_status st = g_mod->mod->handle(g_state, &a);
    g_job = NULL;
    prctl(PR_SET_NAME, "lw:pool");
    if (a.oversize)
        st = LW_FAIL;
    /* A handler that left our process group (setsid, setpgid) would take
     * the next attempts out of reach of group signals and the fence. */
    int quit = left_processes() || g_term || getpgrp() != getpid();
    outbuf o = {0};
    if (quit)
        put_frame(&o, 'Q', NULL, 0, NULL, 0);
    if (a.result)
        put_frame(&o, 'R', a.result, strlen(a.result), NULL, 0);
    if (a.error)
        put_frame(&o, 'X', a.error, strlen(a.error), NULL, 0);
    char num[16];
    int n = snprintf(num, sizeof num, "%d", (int)st);
    put_frame(&o, 'S', num, (size_t)n, NULL, 0);
    lw_frame_write_all(g_sock, o.p, o.len);
    free(o.p);
    free(a.result);
    free(a.error);
    if (quit)
        leave(0);
}

_Noreturn void pool_child_main(const tenant *t, int sock, pid_t parent)
{
    /* As a fork child (run_fork.c): signals stay blocked until our own
     * handler is in place, nothing of the worker's stays within reach. */
    sigfork_reset_signals();
    module_child_keep_only(t->mod, sock);
    fence_child_detach(t->w->fence);
    g_sock = sock;
    g_mod = t->mod;
    g_term_action.sa_handler = on_sigterm; /* no SA_RESTART: an idle read sees it */
    sigemptyset(&g_term_action.sa_mask);
    sigaction(SIGTERM, &g_term_action, NULL);
    if (child_drop_privileges(t) != 0)
        _exit(3);
    for (int i = 0; t->run_as && i < 3; i++)
        putenv(t->user_env[i]);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* after the uid change, which clears it */
    if (getppid() != parent)
        _exit(3); /* the worker died while we were forking */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_NAME, "lw:pool");
    putenv(g_job_env);
    size_t limit = (size_t)t->w->opt->common.max_payload + JOB_SLACK;
    sigfork_unblock_signals();
    /* Once per child, in the child: its state is its own, made as the
     * tenant's user. */
    if (g_mod->mod->init) {
        int rc = g_mod->mod->init(&g_state, t->cfg->name,
                                  t->cfg->config_json ? t->cfg->config_json : "null");
        if (rc != 0) {
            char why[160];
            int n = snprintf(why, sizeof why,
                             "module init for tenant %s failed in the pool process (returned %d)",
                             t->cfg->name, rc);
            send_frame('X', why, (size_t)n, NULL, 0);
            _exit(POOL_CHILD_INIT_FAILED);
        }
    }
    char *body = NULL;
    size_t cap = 0;
    for (;;) {
        char head[LW_FRAME_HEAD];
        if (!read_exact(head, sizeof head))
            leave(0); /* EOF: the worker retires us */
        uint32_t len;
        memcpy(&len, head + 1, sizeof len);
        if (head[0] != 'J' || len > limit)
            _exit(5);
        if ((size_t)len + 1 > cap) {
            char *grown = realloc(body, (size_t)len + 1);
            if (!grown)
                _exit(3);
            body = grown;
            cap = (size_t)len + 1;
        }
        if (!read_exact(body, len))
            leave(0);
        serve(body, len);
    }
}

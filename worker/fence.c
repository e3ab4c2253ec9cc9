/* fence.c — the shared freeze-point table and its keeper (fence.h). */
#include "fence.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sigfork.h"
#include "timefmt.h"

/* Slots are shared with another process: the atomics must not hide a lock
 * in this address space. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "fence slots need address-free (lock-free) atomics");

#define KEEPER_IDLE_MS 200
#define KEEPER_RESTART_MS 1000

/* A slot's `word` is its generation (bumped each time the slot is armed
 * for a new attempt or cleared) times two, plus 1 while frozen: the keeper
 * freezes with a compare-and-swap on the word it read, so it can never
 * mark frozen the next attempt of a slot it looked at a moment ago. */
#define FROZEN_BIT 1ULL

typedef struct fence_slot {
    _Atomic int pgid;                /* process group to freeze; 0: none */
    _Atomic unsigned long long word; /* generation << 1 | frozen */
    _Atomic long long freeze_at;     /* CLOCK_MONOTONIC ms */
    _Atomic long long frozen_at;     /* when the freeze happened */
} fence_slot;

struct fence {
    fence_slot *slots; /* shared mapping */
    int nslots;
    size_t map_len;
    pid_t keeper;
    pid_t worker_pgid;  /* the worker's own process group */
    int64_t restart_at; /* mono ms: no keeper restart before */
    int64_t checked_at; /* mono ms of the last liveness check */
    lw_log_gate gate;
};

static int64_t mono_ms_safe(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fence_check(fence *f, int64_t now)
{
    int64_t next = now + KEEPER_IDLE_MS;
    for (int i = 0; i < f->nslots; i++) {
        fence_slot *s = &f->slots[i];
        unsigned long long word = atomic_load(&s->word);
        if (word & FROZEN_BIT)
            continue;
        int pg = atomic_load(&s->pgid);
        /* Only the worker writes slots (children unmap the table), but a
         * group of 1, or ours, would stop far more than an attempt. */
        if (pg <= 1 || pg == f->worker_pgid || pg == getpgrp())
            continue;
        int64_t at = atomic_load(&s->freeze_at);
        if (now < at) {
            if (at < next)
                next = at;
            continue;
        }
        /* Before the swap: a thaw that follows it must read this. */
        atomic_store(&s->frozen_at, now);
        /* Fails if the slot was re-armed, cleared or extended meanwhile. */
        if (!atomic_compare_exchange_strong(&s->word, &word, word | FROZEN_BIT))
            continue;
        kill(-pg, SIGSTOP);
        /* The worker may have extended the freeze point between our check
         * and the SIGSTOP, and sent its SIGCONT before it: thaw again. An
         * extra SIGCONT is harmless. */
        if (atomic_load(&s->freeze_at) > mono_ms_safe()) {
            kill(-pg, SIGCONT);
            unsigned long long frozen = word | FROZEN_BIT;
            atomic_compare_exchange_strong(&s->word, &frozen, word);
        }
    }
    return next;
}

/* The keeper: a process of its own, so that attempts are frozen on time
 * even while the worker is stopped (SIGSTOP, a debugger) or its loop is
 * stuck. It inherits nothing it could misuse: every fd but 0-2 is closed,
 * and it ignores every signal a terminal or an operator would send to the
 * worker's process group (it has a session of its own anyway). It dies with
 * the worker (PR_SET_PDEATHSIG). Only async-signal-safe calls: it may be
 * forked from a threaded worker. */
static void keeper_main(fence *f, pid_t parent)
{
    setsid(); /* no terminal: its job-control signals are not for us */
    sigfork_reset_signals();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    prctl(PR_SET_NAME, "lanework-fence");
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    const int sigs[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT, SIGTSTP,
                        SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &ign, NULL);
    sigfork_unblock_signals();
    close_range(3, ~0U, 0);
    for (;;) {
        int64_t now = mono_ms_safe();
        int64_t next = fence_check(f, now);
        int64_t wait = next - now;
        if (wait < 1)
            wait = 1;
        if (wait > KEEPER_IDLE_MS)
            wait = KEEPER_IDLE_MS;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void keeper_start(fence *f)
{
    pid_t parent = getpid();
    pid_t pid = sigfork();
    if (pid == 0)
        keeper_main(f, parent);
    if (pid < 0) {
        lw_log(
            lw_log_gate_level(&f->gate, "fork", LW_LOG_ERROR, 60000), "fence.keeper",
            "cannot start the lease keeper: %s; the worker freezes overdue attempts itself (on its tick)",
            strerror(errno));
        f->restart_at = mono_ms_safe() + KEEPER_RESTART_MS;
        return;
    }
    f->keeper = pid;
}

fence *fence_new(int nslots)
{
    fence *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->nslots = nslots;
    f->map_len = (size_t)nslots * sizeof(fence_slot);
    if (f->map_len == 0)
        f->map_len = sizeof(fence_slot);
    void *m = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        free(f);
        errno = e;
        return NULL;
    }
    f->slots = m;
    f->worker_pgid = getpgrp();
    for (int i = 0; i < nslots; i++) {
        atomic_init(&f->slots[i].pgid, 0);
        atomic_init(&f->slots[i].word, 0);
        atomic_init(&f->slots[i].freeze_at, 0);
        atomic_init(&f->slots[i].frozen_at, 0);
    }
    keeper_start(f);
    return f;
}

/* 1 while `pid` is a live child of ours (not reaped, not a zombie). A
 * module in thread isolation calling waitpid(-1) may reap the keeper
 * behind our back: then its pid is free and must not be signalled. */
static int keeper_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'), state;
    int ppid;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return ppid == (int)getpid() && state != 'Z';
}

void fence_free(fence *f)
{
    if (!f)
        return;
    if (f->keeper > 0 && keeper_alive(f->keeper)) {
        kill(f->keeper, SIGKILL);
        waitpid(f->keeper, NULL, 0);
    }
    munmap(f->slots, f->map_len);
    free(f);
}

/* A new generation, running. Only the worker calls it. */
static void next_generation(fence_slot *s)
{
    unsigned long long word = atomic_load(&s->word);
    atomic_store(&s->word, ((word >> 1) + 1) << 1);
}

void fence_child_detach(fence *f)
{
    if (f && f->slots)
        munmap(f->slots, f->map_len);
}

void fence_arm(fence *f, int slot, pid_t pgid, int64_t freeze_at)
{
    fence_slot *s = &f->slots[slot];
    atomic_store(&s->freeze_at, freeze_at);
    atomic_store(&s->pgid, (int)pgid);
    next_generation(s); /* last: the keeper reads the word first */
}

int64_t fence_extend(fence *f, int slot, int64_t freeze_at)
{
    fence_slot *s = &f->slots[slot];
    atomic_store(&s->freeze_at, freeze_at);
    unsigned long long word = atomic_load(&s->word);
    if (!(word & FROZEN_BIT) ||
        !atomic_compare_exchange_strong(&s->word, &word, word & ~FROZEN_BIT))
        return 0;
    int pg = atomic_load(&s->pgid);
    if (pg > 0)
        kill(-pg, SIGCONT);
    int64_t frozen = mono_ms_safe() - atomic_load(&s->frozen_at);
    return frozen > 0 ? frozen : 1;
}

int fence_frozen(const fence *f, int slot)
{
    return (atomic_load(&f->slots[slot].word) & FROZEN_BIT) != 0;
}

void fence_clear(fence *f, int slot)
{
    fence_slot *s = &f->slots[slot];
    atomic_store(&s->pgid, 0);
    next_generation(s);
}

int fence_keeper_exited(fence *f, pid_t pid, int status)
{
    if (!f || pid <= 0 || pid != f->keeper)
        return 0;
    f->keeper = 0;
    char why[64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
    lw_log(
        lw_log_gate_level(&f->gate, why, LW_LOG_ERROR, 60000), "fence.keeper",
        "the lease keeper process ended (%s); restarting it (until then the worker freezes overdue attempts itself)",
        why);
    f->restart_at = mono_ms_safe() + KEEPER_RESTART_MS;
    return 1;
}

pid_t fence_keeper_pid(const fence *f) { return f ? f->keeper : 0; }

void fence_keeper_ensure(fence *f, int64_t now)
{
    if (!f || now < f->restart_at)
        return;
    if (f->keeper > 0) {
        /* Once a second: is it still ours? (See keeper_alive.) */
        if (now < f->checked_at + 1000)
            return;
        f->checked_at = now;
        if (keeper_alive(f->keeper))
            return;
        int status;
        pid_t pid = f->keeper;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fence_keeper_exited(f, pid, status); /* says why, sets the restart time */
            return;
        }
        lw_log(
            LW_LOG_ERROR, "fence.keeper",
            "the lease keeper process %d is gone and was reaped by someone else (a module's waitpid?); restarting it",
            (int)pid);
        f->keeper = 0;
    }
    keeper_start(f);
}

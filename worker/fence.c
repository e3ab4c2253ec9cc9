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

#include "child.h"
#include "log.h"
#include "timefmt.h"

/* Slots are shared with another process: the atomics must not hide a lock
 * in this address space. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "fence slots need address-free (lock-free) atomics");

#define KEEPER_IDLE_MS 200
#define KEEPER_RESTART_MS 1000

enum { SLOT_RUNNING = 0, SLOT_FROZEN = 1 };

typedef struct fence_slot {
    _Atomic int pgid;             /* process group to freeze; 0: none */
    _Atomic int state;            /* SLOT_RUNNING / SLOT_FROZEN */
    _Atomic long long freeze_at;  /* CLOCK_MONOTONIC ms */
    _Atomic long long frozen_at;  /* when the freeze happened */
} fence_slot;

struct fence {
    fence_slot *slots; /* shared mapping */
    int nslots;
    size_t map_len;
    pid_t keeper;
    int64_t restart_at; /* mono ms: no keeper restart before */
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
        int pg = atomic_load(&s->pgid);
        if (pg <= 0 || atomic_load(&s->state) != SLOT_RUNNING) continue;
        int64_t at = atomic_load(&s->freeze_at);
        if (now < at) {
            if (at < next) next = at;
            continue;
        }
        int expected = SLOT_RUNNING;
        if (!atomic_compare_exchange_strong(&s->state, &expected, SLOT_FROZEN)) continue;
        atomic_store(&s->frozen_at, now);
        /* The attempt may have ended since the load: only a group the
         * worker still names is stopped. */
        if (atomic_load(&s->pgid) == pg) kill(-pg, SIGSTOP);
        /* The worker may have extended the freeze point between our check
         * and the SIGSTOP, and sent its SIGCONT before it: thaw again. An
         * extra SIGCONT is harmless. */
        if (atomic_load(&s->freeze_at) > mono_ms_safe() && atomic_load(&s->pgid) == pg) {
            kill(-pg, SIGCONT);
            expected = SLOT_FROZEN;
            atomic_compare_exchange_strong(&s->state, &expected, SLOT_RUNNING);
        }
    }
    return next;
}

/* The keeper: a process of its own, so that attempts are frozen on time
 * even while the worker is stopped (SIGSTOP, a debugger) or its loop is
 * stuck. It inherits nothing it could misuse: every fd but 0-2 is closed,
 * and it ignores every signal a terminal or an operator would send to the
 * worker's process group (it has a group of its own anyway). It dies with
 * the worker (PR_SET_PDEATHSIG). Only async-signal-safe calls: it may be
 * forked from a threaded worker. */
static void keeper_main(fence *f, pid_t parent)
{
    setpgid(0, 0);
    child_reset_signals();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    prctl(PR_SET_NAME, "lanework-fence");
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &ign, NULL);
    child_unblock_signals();
    close_range(3, ~0U, 0);
    for (;;) {
        int64_t now = mono_ms_safe();
        int64_t next = fence_check(f, now);
        int64_t wait = next - now;
        if (wait < 1) wait = 1;
        if (wait > KEEPER_IDLE_MS) wait = KEEPER_IDLE_MS;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void keeper_start(fence *f)
{
    pid_t parent = getpid();
    pid_t pid = child_fork();
    if (pid == 0) keeper_main(f, parent);
    if (pid < 0) {
        lw_log(lw_log_gate_level(&f->gate, "fork", LW_LOG_ERROR, 60000), "fence.keeper",
               "cannot start the lease keeper: %s; the worker freezes overdue attempts itself (on its tick)",
               strerror(errno));
        f->restart_at = mono_ms_safe() + KEEPER_RESTART_MS;
        return;
    }
    setpgid(pid, pid);
    f->keeper = pid;
}

fence *fence_new(int nslots)
{
    fence *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->nslots = nslots;
    f->map_len = (size_t)nslots * sizeof(fence_slot);
    if (f->map_len == 0) f->map_len = sizeof(fence_slot);
    void *m = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        free(f);
        errno = e;
        return NULL;
    }
    f->slots = m;
    for (int i = 0; i < nslots; i++) {
        atomic_init(&f->slots[i].pgid, 0);
        atomic_init(&f->slots[i].state, SLOT_RUNNING);
        atomic_init(&f->slots[i].freeze_at, 0);
        atomic_init(&f->slots[i].frozen_at, 0);
    }
    keeper_start(f);
    return f;
}

void fence_free(fence *f)
{
    if (!f) return;
    if (f->keeper > 0) {
        kill(f->keeper, SIGKILL);
        waitpid(f->keeper, NULL, 0);
    }
    munmap(f->slots, f->map_len);
    free(f);
}

void fence_arm(fence *f, int slot, pid_t pgid, int64_t freeze_at)
{
    fence_slot *s = &f->slots[slot];
    atomic_store(&s->freeze_at, freeze_at);
    atomic_store(&s->state, SLOT_RUNNING);
    atomic_store(&s->pgid, (int)pgid);
}

int64_t fence_extend(fence *f, int slot, int64_t freeze_at)
{
    fence_slot *s = &f->slots[slot];
    atomic_store(&s->freeze_at, freeze_at);
    int expected = SLOT_FROZEN;
    if (!atomic_compare_exchange_strong(&s->state, &expected, SLOT_RUNNING)) return 0;
    int pg = atomic_load(&s->pgid);
    if (pg > 0) kill(-pg, SIGCONT);
    int64_t frozen = mono_ms_safe() - atomic_load(&s->frozen_at);
    return frozen > 0 ? frozen : 1;
}

int fence_frozen(const fence *f, int slot)
{
    return atomic_load(&f->slots[slot].state) == SLOT_FROZEN;
}

void fence_clear(fence *f, int slot)
{
    fence_slot *s = &f->slots[slot];
    atomic_store(&s->pgid, 0);
    atomic_store(&s->state, SLOT_RUNNING);
}

int fence_keeper_exited(fence *f, pid_t pid, int status)
{
    if (!f || pid <= 0 || pid != f->keeper) return 0;
    f->keeper = 0;
    char why[64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
    lw_log(lw_log_gate_level(&f->gate, why, LW_LOG_ERROR, 60000), "fence.keeper",
           "the lease keeper process ended (%s); restarting it (until then the worker freezes overdue attempts itself)",
           why);
    f->restart_at = mono_ms_safe() + KEEPER_RESTART_MS;
    return 1;
}

pid_t fence_keeper_pid(const fence *f) { return f ? f->keeper : 0; }

void fence_keeper_ensure(fence *f, int64_t now)
{
    if (!f || f->keeper > 0 || now < f->restart_at) return;
    keeper_start(f);
}

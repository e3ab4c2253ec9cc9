/*
 * backoff.c — exponential backoff with jitter (backoff.h) and the process's
 * PRNG.
 *
 * The PRNG is splitmix64 with one state per thread, so no lock is taken on
 * the hot path. A forked child inherits its parent's state; the state
 * remembers the pid that seeded it and is reseeded in a new process, so a
 * worker's children do not all draw the same "random" jitter or ids.
 */
#include "backoff.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "invariant.h"

static _Thread_local uint64_t rng_state;
static _Thread_local pid_t rng_pid;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void seed(pid_t pid)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        /* No entropy yet (early boot) or no getrandom: the clock, the pid
         * and this thread's state address still differ between processes
         * and threads, which is all jitter and ids need. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
        s ^= (uint64_t)pid << 32;
        s ^= (uint64_t)(uintptr_t)&rng_state;
    }
    rng_state = s;
    rng_pid = pid;
}

uint64_t lw_random64(void)
{
    pid_t pid = getpid();
    if (pid != rng_pid)
        seed(pid);
    return splitmix64(&rng_state);
}

int64_t lw_backoff_ms(int64_t base_ms, int n, int64_t cap_ms, uint64_t rnd)
{
    if (base_ms <= 0)
        return 0;
    int64_t d = base_ms;
    /* Doubling stops at the cap (or before it would overflow), so a huge n
     * costs at most 63 rounds. cap_ms <= 0 means no cap. */
    for (int i = 1; i < n; i++) {
        if ((cap_ms > 0 && d >= cap_ms) || d > INT64_MAX / 2)
            break;
        d *= 2;
    }
    if (cap_ms > 0 && d > cap_ms)
        d = cap_ms;
    int64_t half = d / 2;
    uint64_t span = (uint64_t)(d - half) + 1;
    LW_ASSERT(d > 0 && half >= 0); /* the contract's "never negative" */
    return half + (int64_t)(rnd % span);
}

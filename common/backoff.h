/* backoff.h — exponential backoff with jitter, for retries and reconnects. */
#ifndef LW_BACKOFF_H
#define LW_BACKOFF_H

#include <stdint.h>

/* Delay before try number `n` (1-based: the delay after the n-th failure):
 * base_ms * 2^(n-1), capped at cap_ms, then "equal jitter": a uniformly
 * random value in [d/2, d] drawn from `rnd`. Never negative; 0 when base_ms is
 * 0. Pure: the same arguments give the same result. */
int64_t lw_backoff_ms(int64_t base_ms, int n, int64_t cap_ms, uint64_t rnd);

/* A random 64-bit value from the process's PRNG: not for secrets. Seeded
 * from getrandom (the clock and pid when it has no entropy yet) once per
 * thread and again in a forked child, so children do not repeat their
 * parent's draws; thread-safe, lock-free. Cannot fail. */
uint64_t lw_random64(void);

#endif

/* timefmt.h — clocks and RFC 3339 timestamps. */
#ifndef LW_TIMEFMT_H
#define LW_TIMEFMT_H

#include <stdint.h>

#define LW_RFC3339_LEN 32

/* Wall clock, milliseconds since the epoch. */
int64_t lw_now_ms(void);
/* Monotonic clock in milliseconds, for durations and timers. */
int64_t lw_mono_ms(void);
/* Writes `ms` (since the epoch) as "2026-11-22T08:03:00.123Z" into out. */
void lw_rfc3339(int64_t ms, char out[LW_RFC3339_LEN]);

#endif

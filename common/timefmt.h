/* timefmt.h — clocks and RFC 3339 timestamps. */
#ifndef LW_TIMEFMT_H
#define LW_TIMEFMT_H

#include <stdint.h>

#define LW_RFC3339_LEN 32

/* Wall clock, milliseconds since the epoch (it may step: not for
 * durations). Cannot fail. */
int64_t lw_now_ms(void);
/* Monotonic clock in milliseconds, for durations and timers; meaningful only
 * on this machine since its boot (not to compare with another host's or to
 * store). Cannot fail. */
int64_t lw_mono_ms(void);
/* Writes `ms` (since the epoch, UTC) as "2026-11-22T08:03:00.123Z" into out.
 * Values from Redis may be anything: a negative one is clamped to the epoch,
 * one past year 9999 to its last millisecond, so the text is always valid
 * RFC 3339. Cannot fail. */
void lw_rfc3339(int64_t ms, char out[LW_RFC3339_LEN]);

#endif

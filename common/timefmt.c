/* timefmt.c — clocks and RFC 3339 timestamps (timefmt.h). */
#include "timefmt.h"

#include <stdio.h>
#include <time.h>

/* 9999-12-31T23:59:59.999Z: beyond it the year needs a fifth digit, which
 * RFC 3339 does not allow. */
#define MAX_MS INT64_C(253402300799999)

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lw_now_ms(void) { return clock_ms(CLOCK_REALTIME); }

int64_t lw_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

/* Timestamps come from Redis records, which anyone can write: an absurd
 * value is clamped into the representable range rather than printed as a
 * malformed date. */
void lw_rfc3339(int64_t ms, char out[LW_RFC3339_LEN])
{
    if (ms < 0)
        ms = 0;
    if (ms > MAX_MS)
        ms = MAX_MS;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, LW_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100,
             tm.tm_min % 100, tm.tm_sec % 100, (int)(ms % 1000));
}

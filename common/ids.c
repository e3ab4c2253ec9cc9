/* ids.c — job ids (ids.h). */
#include "ids.h"

#include <inttypes.h>
#include <stdio.h>

#include "backoff.h"
#include "timefmt.h"

#define MASK48 ((UINT64_C(1) << 48) - 1)

void lw_id_new(char out[LW_ID_LEN + 1])
{
    /* 48 bits of milliseconds last until the year 10889; 48 random bits
     * make two ids of the same millisecond collide once in 2^24 pairs at
     * worst, only when both come from the same millisecond. */
    uint64_t t = (uint64_t)lw_now_ms() & MASK48;
    uint64_t r = lw_random64() & MASK48;
    snprintf(out, LW_ID_LEN + 1, "%012" PRIx64 "%012" PRIx64, t, r);
}

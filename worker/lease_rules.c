/* lease_rules.c — the times derived from --lease (lease_rules.h). */
#include "lease_rules.h"

int64_t lease_rules_freeze_point(int64_t lease_ms, int64_t proof)
{
    /* 0.35 lease of margin before the deadline: more than lib.lua's
     * OUTAGE_FRACTION (0.3), the largest forward step of Redis's clock the
     * outage check may leave unnoticed. */
    return proof + lease_ms * 65 / 100;
}

int64_t lease_rules_reply_timeout_ms(int64_t lease_ms)
{
    /* A renewal sent lease/6 after the last confirmed one and stuck on a
     * dead connection is noticed after this, probed and resent on a fresh
     * connection (redis_async.c: a quarter more for the watchdog, the
     * probe's round trip, a reconnect from 100 ms) before the freeze point
     * at 0.65 lease: 1/6 + 1/4 * 1.25 = 0.48 lease, plus the reconnect.
     * The fixed 10 s the link used before exceeded the fence's slack for
     * every lease under 20 s. At most 10 s, which long leases keep. */
    int64_t ms = lease_ms / 4;
    return ms < 10000 ? ms : 10000;
}

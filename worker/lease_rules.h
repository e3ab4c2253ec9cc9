/*
 * lease_rules.h — the times the worker derives from --lease (lease_rules.c).
 * Pure arithmetic, one place: the fence, the renewals, the claim replies and
 * the Redis link's reply timeout must agree on them (DESIGN §5).
 */
#ifndef LW_LEASE_RULES_H
#define LW_LEASE_RULES_H

#include <stdint.h>

/* The freeze point (mono ms) of a lease that Redis confirmed in a call sent
 * at `proof` (mono ms): 0.65 lease later. */
int64_t lease_rules_freeze_point(int64_t lease_ms, int64_t proof);
/* How long a Redis reply may be overdue before the link probes and
 * replaces its connection (half of it before /healthz says so): lease/4,
 * at most 10 s. */
int64_t lease_rules_reply_timeout_ms(int64_t lease_ms);

#endif

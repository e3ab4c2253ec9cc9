/*
 * partition.h — a tenant's lanes spread over K keyspaces (registry
 * "partitions": K; DESIGN.md section 11 "Partitions").
 *
 * Partition 0 of tenant T is the tenant's own prefix NS:{T}: (so a tenant
 * that was never partitioned is partition 0 of itself), partition p >= 1 is
 * NS:{T#p}: (tenant names cannot hold '#'). Each is an ordinary tenant
 * keyspace with its own hash tag: every script stays in one slot. A job
 * goes to the partition of its routing key -- its lane when given, else its
 * unique key, else its id -- CRC16(key) % K, so a lane, an explicit id reused
 * with the same lane and a unique key each live in one partition. The
 * count in force is partition 0's settings field `partitions` (absent: 1),
 * which the workers publish and enqueue.lua checks.
 */
#ifndef LW_PARTITION_H
#define LW_PARTITION_H

#include <stddef.h>

#define LW_PARTITIONS_MAX 64

struct lw_job_spec;

/* The partition (0..k-1) of routing key `key` (not NULL) among k (k < 2:
 * 0). Pure. */
int lw_partition_of(const char *key, int k);

/* Writes partition p's key prefix of tenant `tenant` in namespace `ns` into
 * out: "NS:{T}:" for p 0, "NS:{T#p}:" else. Returns 0, or -1 when it does
 * not fit (as lw_key_prefix). */
int lw_partition_prefix(char *out, size_t outlen, const char *ns, const char *tenant, int p);

/* The partition number of key prefix `prefix` (0 without "#p}"), or -1
 * when it is not a tenant prefix. Pure. */
int lw_partition_of_prefix(const char *prefix);

/* Partition p's share of a queue cap of `cap` among k partitions (0: no
 * cap): cap / k, one more for the first cap % k, so the shares add up to
 * the cap and it holds fleet-wide. A share that would be 0 (a cap below
 * the count: the registry refuses it, but another worker's registry may
 * have set a bigger count) is 1, or that partition's jobs would never run:
 * the cap may then be exceeded by up to k - cap. Pure. */
int lw_partition_cap_share(int cap, int k, int p);

/* Places job spec `s` (before lw_job_spec_resolve) among k partitions:
 * returns the partition of its routing key (lane, else unique, else id);
 * a spec without an id gets a new one here (owned by s) that falls in the
 * same partition, so the id alone finds the job at once (lw_partition_of
 * of the id). Returns -1 on OOM (s keeps what it had). */
int lw_job_spec_place(struct lw_job_spec *s, int k);

#endif

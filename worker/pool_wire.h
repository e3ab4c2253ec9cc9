/*
 * pool_wire.h — the frame that carries one attempt's job from the worker
 * to a pool child (--isolation pool, run_pool.c), in frames.h's layout:
 * type 'J', a 32-bit length (host order: the child is a fork of the worker),
 * and a body of NUL-separated fields
 *
 *   SERIAL ATTEMPT ATTEMPTS TIMEOUT_MS BACKOFF_MS MAX_PAYLOAD
 *   ID KIND TENANT LANE QUEUE SPOOL_DIR PAYLOAD
 *
 * numbers in decimal, SPOOL_DIR empty when the job is not spooled, PAYLOAD
 * last and not terminated (it runs to the end of the body). Pure:
 * unit-tested alone (tests/unit/test_pool_wire.c).
 */
#ifndef LW_POOL_WIRE_H
#define LW_POOL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

/* The whole 'J' frame (header included) for a's job; *len its size.
 * Returns a malloc'ed buffer the caller frees, NULL on OOM. */
char *pool_wire_job(const attempt *a, size_t *len);
/* Reads a 'J' frame's body (len bytes at body, which must have room for a
 * NUL at body[len]: it is written there) into `out`: the strings point into
 * body, the numbers are set, everything else of `out` is left alone.
 * *serial gets SERIAL. Returns 0, or -1 when the body is not such a job. */
int pool_wire_read_job(char *body, size_t len, attempt *out, uint64_t *serial);

#endif

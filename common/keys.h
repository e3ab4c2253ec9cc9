/*
 * keys.h — Redis key names. Every key of tenant T lives under "NS:{T}:" (a
 * Redis Cluster hash tag: one tenant, one slot). docs/DESIGN.md lists them all;
 * the Lua scripts derive per-job, per-lane and per-queue names from the same
 * prefix, so the two must agree.
 */
#ifndef LW_KEYS_H
#define LW_KEYS_H

#include <stddef.h>

/* Writes "NS:{T}:" into out (names are not checked here: callers pass safe
 * names). Returns 0, or -1 when it does not fit -- a truncated key would
 * name another key -- with out holding a cut-off string. */
int lw_key_prefix(char *out, size_t outlen, const char *ns, const char *tenant);

/* Writes prefix + suffix (+ name when not NULL) into out, e.g.
 * lw_key(buf, sizeof buf, "lw:{acme}:", "ready:", "default"). Returns 0, or -1
 * when it does not fit (as lw_key_prefix). */
int lw_key(char *out, size_t outlen, const char *prefix, const char *suffix, const char *name);

/* Writes the fleet-wide key "NS:SUFFIX" (outside any tenant's slot: the
 * worker directory) into out. Returns 0, or -1 when it does not fit (as
 * lw_key_prefix). */
int lw_key_global(char *out, size_t outlen, const char *ns, const char *suffix);

#endif

/*
 * argv.h — an argument vector for Redis commands, built in one growing
 * buffer (one allocation per doubling, not one per argument: a claim or
 * enqueue batch carries thousands of arguments).
 */
#ifndef LW_ARGV_H
#define LW_ARGV_H

#include <stddef.h>
#include <stdint.h>

typedef struct lw_argv {
    char *buf; /* all arguments back to back */
    size_t used, cap;
    size_t *off; /* start of argument i in buf */
    size_t *len; /* length of argument i */
    size_t n, ncap;
    const char **ptrs; /* filled by lw_argv_ptrs */
    int oom;           /* set once an append failed; every later call is a no-op */
} lw_argv;

/* Makes `a` empty, allocating nothing yet; free with lw_argv_clear. An
 * allocation that fails later sets a->oom instead of returning an error:
 * check it once, before sending. */
void lw_argv_init(lw_argv *a);
/* Appends a copy of s[0..len). */
void lw_argv_add(lw_argv *a, const char *s, size_t len);
/* Appends a copy of the C string s (NULL appends ""). */
void lw_argv_adds(lw_argv *a, const char *s);
/* Appends the key prefix+suffix+name (name may be NULL), e.g. "lw:{t}:" +
 * "ready:" + "default": the script argument builders' one way to name a
 * tenant key, so no caller needs a fixed-size key buffer. */
void lw_argv_addkey(lw_argv *a, const char *prefix, const char *suffix, const char *name);
void lw_argv_addi(lw_argv *a, int64_t v);
/* Replaces argument i (which must exist) with the decimal v. */
void lw_argv_seti(lw_argv *a, size_t i, int64_t v);
/* Returns the pointer array (borrowed; valid until the next change of a) and
 * the lengths, or NULL when an allocation failed at any point. */
const char **lw_argv_ptrs(lw_argv *a, const size_t **lens);
void lw_argv_reset(lw_argv *a); /* empties, keeps the memory */
void lw_argv_clear(lw_argv *a); /* frees */

#endif

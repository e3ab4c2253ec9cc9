/*
 * argv.c — argument vectors for Redis commands (argv.h).
 *
 * Every argument is stored NUL-terminated (not needed by hiredis, which gets
 * the lengths, but it lets callers and tests treat an argument as a C
 * string). Offsets rather than pointers are kept while building, because the
 * buffer moves when it grows; lw_argv_ptrs turns them into pointers once.
 * After the first failed allocation the vector is marked `oom` and stays
 * frozen, so a caller may append a whole batch and check once.
 */
#include "argv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lw_argv_init(lw_argv *a) { memset(a, 0, sizeof *a); }

static int grow_buf(lw_argv *a, size_t need)
{
    if (a->cap - a->used >= need)
        return 0;
    size_t cap = a->cap ? a->cap : 256;
    while (cap - a->used < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *b = realloc(a->buf, cap);
    if (!b)
        return -1;
    a->buf = b;
    a->cap = cap;
    return 0;
}

/* The three per-argument arrays grow together, so ptrs always has room for
 * every argument and lw_argv_ptrs never allocates. */
static int grow_slots(lw_argv *a)
{
    if (a->n < a->ncap)
        return 0;
    size_t ncap = a->ncap ? a->ncap * 2 : 16;
    size_t *off = realloc(a->off, ncap * sizeof *off);
    if (!off)
        return -1;
    a->off = off;
    size_t *len = realloc(a->len, ncap * sizeof *len);
    if (!len)
        return -1;
    a->len = len;
    const char **ptrs = realloc(a->ptrs, ncap * sizeof *ptrs);
    if (!ptrs)
        return -1;
    a->ptrs = ptrs;
    a->ncap = ncap;
    return 0;
}

/* Copies s[0..len) NUL-terminated to the end of buf; returns its offset. */
static int store(lw_argv *a, const char *s, size_t len, size_t *off)
{
    if (len == SIZE_MAX || grow_buf(a, len + 1) != 0)
        return -1;
    *off = a->used;
    if (len)
        memcpy(a->buf + a->used, s, len);
    a->buf[a->used + len] = '\0';
    a->used += len + 1;
    return 0;
}

void lw_argv_add(lw_argv *a, const char *s, size_t len)
{
    size_t off;
    if (a->oom)
        return;
    if (grow_slots(a) != 0 || store(a, s, len, &off) != 0) {
        a->oom = 1;
        return;
    }
    a->off[a->n] = off;
    a->len[a->n] = len;
    a->n++;
}

void lw_argv_adds(lw_argv *a, const char *s)
{
    if (!s)
        s = "";
    lw_argv_add(a, s, strlen(s));
}

void lw_argv_addkey(lw_argv *a, const char *prefix, const char *suffix, const char *name)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), nl = name ? strlen(name) : 0;
    if (a->oom)
        return;
    /* Built in place: a key is never limited by a caller's buffer size. */
    if (pl > SIZE_MAX / 4 || sl > SIZE_MAX / 4 || nl > SIZE_MAX / 4 || grow_slots(a) != 0 ||
        grow_buf(a, pl + sl + nl + 1) != 0) {
        a->oom = 1;
        return;
    }
    char *d = a->buf + a->used;
    memcpy(d, prefix, pl);
    memcpy(d + pl, suffix, sl);
    if (nl)
        memcpy(d + pl + sl, name, nl);
    d[pl + sl + nl] = '\0';
    a->off[a->n] = a->used;
    a->len[a->n] = pl + sl + nl;
    a->used += pl + sl + nl + 1;
    a->n++;
}

void lw_argv_addi(lw_argv *a, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);
    lw_argv_add(a, num, (size_t)n);
}

void lw_argv_seti(lw_argv *a, size_t i, int64_t v)
{
    char num[24];
    if (a->oom || i >= a->n)
        return;
    size_t n = (size_t)snprintf(num, sizeof num, "%" PRId64, v);
    if (n <= a->len[i]) {
        /* Fits where the old value was (the common case: a counter whose
         * digit count did not grow); the bytes left over are dead. */
        memcpy(a->buf + a->off[i], num, n + 1);
    } else {
        size_t off;
        if (store(a, num, n, &off) != 0) {
            a->oom = 1;
            return;
        }
        a->off[i] = off;
    }
    a->len[i] = n;
}

const char **lw_argv_ptrs(lw_argv *a, const size_t **lens)
{
    if (a->oom)
        return NULL;
    if (!a->ptrs && grow_slots(a) != 0) {
        /* An empty vector still gets a valid (empty) array. */
        a->oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < a->n; i++)
        a->ptrs[i] = a->buf + a->off[i];
    if (lens)
        *lens = a->len;
    return a->ptrs;
}

void lw_argv_reset(lw_argv *a)
{
    a->used = 0;
    a->n = 0;
    a->oom = 0;
}

void lw_argv_clear(lw_argv *a)
{
    free(a->buf);
    free(a->off);
    free(a->len);
    free(a->ptrs);
    lw_argv_init(a);
}

/*
 * fault.c — the rules and counters of fault injection (fault.h).
 *
 * Counting starts only once a rule is set (lw_fault_configure, or
 * LANEWORK_FAULT at start), so "the 3rd fork" means the 3rd since then. The
 * counters are atomic: the worker passes through the seams from its I/O
 * threads too. A fork child inherits the parent's counts.
 */
#include "fault.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fail.h"

typedef struct rule {
    unsigned long nth;  /* 0: no rule at this site */
    int and_later;      /* the Nth and every later call */
} rule;

static const struct {
    const char *name;
    int err;
} sites[LW_FAULT_SITES] = {
    [LW_FAULT_ALLOC] = {"alloc", ENOMEM},  [LW_FAULT_FORK] = {"fork", EAGAIN},
    [LW_FAULT_OPEN] = {"open", EMFILE},    [LW_FAULT_WRITE] = {"write", ENOSPC},
    [LW_FAULT_FSYNC] = {"fsync", EIO},     [LW_FAULT_RENAME] = {"rename", EIO},
    [LW_FAULT_MKDIR] = {"mkdir", ENOSPC},  [LW_FAULT_PIPE] = {"pipe", EMFILE},
};

static rule rules[LW_FAULT_SITES];
static atomic_ulong calls[LW_FAULT_SITES];
static atomic_ulong injected;
static atomic_int armed; /* any rule set: the fast path's only load */

/* Parses one "SITE:N" or "SITE:N+" of length len into set[]. */
static int parse_one(const char *p, size_t len, rule *set, char *err, size_t errlen)
{
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return lw_fail(err, errlen, "\"%.*s\": expected SITE:N or SITE:N+", (int)len, p);
    size_t nlen = (size_t)(colon - p);
    int site = -1;
    for (int i = 0; i < LW_FAULT_SITES; i++)
        if (strlen(sites[i].name) == nlen && memcmp(sites[i].name, p, nlen) == 0)
            site = i;
    if (site < 0)
        return lw_fail(err, errlen,
                       "unknown site \"%.*s\" (alloc, fork, open, write, fsync, rename, mkdir, pipe)",
                       (int)nlen, p);
    if (set[site].nth)
        return lw_fail(err, errlen, "site %s given twice", sites[site].name);
    const char *num = colon + 1, *end = p + len;
    int later = end > num && end[-1] == '+';
    if (later)
        end--;
    unsigned long n = 0;
    if (num == end)
        return lw_fail(err, errlen, "\"%.*s\": N missing", (int)len, p);
    for (const char *q = num; q < end; q++) {
        if (*q < '0' || *q > '9' || n > (ULONG_MAX - 9) / 10)
            return lw_fail(err, errlen, "\"%.*s\": N must be a whole number >= 1", (int)len, p);
        n = n * 10 + (unsigned long)(*q - '0');
    }
    if (n == 0)
        return lw_fail(err, errlen, "\"%.*s\": N must be >= 1 (the first call is 1)", (int)len, p);
    set[site].nth = n;
    set[site].and_later = later;
    return 0;
}

int lw_fault_configure(const char *spec, char *err, size_t errlen)
{
    rule set[LW_FAULT_SITES];
    memset(set, 0, sizeof set);
    int any = 0;
    for (const char *p = spec ? spec : ""; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0)
            return lw_fail(err, errlen, "empty entry (entries are separated by one comma)");
        if (parse_one(p, len, set, err, errlen) != 0)
            return -1;
        any = 1;
        p += len;
        if (*p == ',' && !*++p)
            return lw_fail(err, errlen, "empty entry after the last comma");
    }
    atomic_store(&armed, 0);
    memcpy(rules, set, sizeof rules);
    for (int i = 0; i < LW_FAULT_SITES; i++)
        atomic_store(&calls[i], 0);
    atomic_store(&injected, 0);
    lw_alloc_seam_route_cjson(set[LW_FAULT_ALLOC].nth != 0);
    atomic_store(&armed, any);
    return 0;
}

int lw_fault_should_fail(lw_fault_site site)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed))
        return 0;
    const rule *r = &rules[site];
    unsigned long n = atomic_fetch_add_explicit(&calls[site], 1, memory_order_relaxed) + 1;
    if (!r->nth || n < r->nth || (n > r->nth && !r->and_later))
        return 0;
    atomic_fetch_add_explicit(&injected, 1, memory_order_relaxed);
    errno = sites[site].err;
    return 1;
}

unsigned long lw_fault_injected(void)
{
    return atomic_load(&injected);
}

/* Reads LANEWORK_FAULT before main(): the rules then hold for every seam the
 * program passes, its own start-up included, without a line in each
 * main(). A malformed value stops the program (a test that meant to inject
 * a fault must not pass by injecting none). */
__attribute__((constructor)) static void fault_from_env(void)
{
    const char *spec = getenv(LW_FAULT_ENV);
    char why[200];
    if (spec && lw_fault_configure(spec, why, sizeof why) != 0) {
        fprintf(stderr, "%s: " LW_FAULT_ENV "=\"%.100s\" is malformed: %s\n",
                program_invocation_short_name, spec, why);
        exit(2);
    }
}

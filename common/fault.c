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
    unsigned long last; /* calls nth..last fail (ULONG_MAX: every later one) */
} rule;

static const struct {
    const char *name;
    int err;
} sites[LW_FAULT_SITES] = {
    [LW_FAULT_ALLOC] = {"alloc", ENOMEM}, [LW_FAULT_FORK] = {"fork", EAGAIN},
    [LW_FAULT_OPEN] = {"open", EMFILE},   [LW_FAULT_WRITE] = {"write", ENOSPC},
    [LW_FAULT_FSYNC] = {"fsync", EIO},    [LW_FAULT_RENAME] = {"rename", EIO},
    [LW_FAULT_MKDIR] = {"mkdir", ENOSPC}, [LW_FAULT_PIPE] = {"pipe", EMFILE},
};

static rule rules[LW_FAULT_SITES];
static atomic_ulong calls[LW_FAULT_SITES];
static atomic_ulong injected;
static atomic_int armed; /* any rule set: the fast path's only load */

/* A count >= 1 at *q (before end); *q moves past its digits. */
static int parse_count(const char **q, const char *end, unsigned long *out)
{
    unsigned long n = 0;
    const char *start = *q;
    for (; *q < end && **q >= '0' && **q <= '9'; (*q)++) {
        if (n > (ULONG_MAX - 9) / 10)
            return -1;
        n = n * 10 + (unsigned long)(**q - '0');
    }
    if (*q == start || n == 0)
        return -1;
    *out = n;
    return 0;
}

/* Parses one "SITE:N", "SITE:N+" or "SITE:N-M" of length len into set[]. */
static int parse_one(const char *p, size_t len, rule *set, char *err, size_t errlen)
{
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return lw_fail(err, errlen, "\"%.*s\": expected SITE:N, SITE:N+ or SITE:N-M", (int)len, p);
    size_t nlen = (size_t)(colon - p);
    int site = -1;
    for (int i = 0; i < LW_FAULT_SITES; i++)
        if (strlen(sites[i].name) == nlen && memcmp(sites[i].name, p, nlen) == 0)
            site = i;
    if (site < 0)
        return lw_fail(
            err, errlen,
            "unknown site \"%.*s\" (alloc, fork, open, write, fsync, rename, mkdir, pipe)",
            (int)nlen, p);
    if (set[site].nth)
        return lw_fail(err, errlen, "site %s given twice", sites[site].name);
    const char *q = colon + 1, *end = p + len;
    unsigned long n, m;
    if (q == end)
        return lw_fail(err, errlen, "\"%.*s\": N missing", (int)len, p);
    if (*q == '0' && (q + 1 == end || q[1] < '0' || q[1] > '9'))
        return lw_fail(err, errlen, "\"%.*s\": N must be >= 1 (the first call is 1)", (int)len, p);
    if (parse_count(&q, end, &n) != 0)
        return lw_fail(err, errlen, "\"%.*s\": N must be a whole number >= 1", (int)len, p);
    if (q == end) {
        m = n;
    } else if (*q == '+' && q + 1 == end) {
        m = ULONG_MAX;
    } else if (*q == '-') {
        q++;
        if (parse_count(&q, end, &m) != 0 || q != end || m < n)
            return lw_fail(err, errlen, "\"%.*s\": in N-M, M must be a whole number >= N", (int)len,
                           p);
    } else {
        return lw_fail(err, errlen, "\"%.*s\": N must be a whole number >= 1", (int)len, p);
    }
    set[site].nth = n;
    set[site].last = m;
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
    if (!r->nth || n < r->nth || n > r->last)
        return 0;
    atomic_fetch_add_explicit(&injected, 1, memory_order_relaxed);
    errno = sites[site].err;
    return 1;
}

unsigned long lw_fault_injected(void) { return atomic_load(&injected); }

/* Reads LANEWORK_FAULT before main(): the rules then hold for every seam the
 * program passes, its own start-up included, without a line in each
 * main(). A malformed value stops the program (a test that meant to inject
 * a fault must not pass by injecting none). */
/* At exit the faults end: what runs after main returns is not the program
 * under test but its runtime's -- a coverage build's gcov dump, which
 * allocates and crashed when its malloc was made to fail. */
static void fault_disarm(void) { atomic_store(&armed, 0); }

__attribute__((constructor)) static void fault_from_env(void)
{
    const char *spec = getenv(LW_FAULT_ENV);
    char why[200];
    if (spec && lw_fault_configure(spec, why, sizeof why) != 0) {
        fprintf(stderr, "%s: " LW_FAULT_ENV "=\"%.100s\" is malformed: %s\n",
                program_invocation_short_name, spec, why);
        exit(2);
    }
    if (spec)
        atexit(fault_disarm);
}

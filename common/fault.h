/*
 * fault.h — fault injection at the resource seams, for tests.
 *
 * A seam is a place where the process asks the system for a resource:
 * memory, a process, a file, a pipe, a write reaching the disk. Every call
 * through a seam (common/seams.h for the system calls, common/alloc_seam.c
 * for malloc & co.) counts itself at its site and asks lw_fault_should_fail;
 * a test makes the Nth call at a site fail, the way the real failure would
 * (errno set, nothing done), and checks what the code does about it.
 *
 * The rules come from the environment variable LANEWORK_FAULT, read once
 * when the process starts (a malformed value: one line on stderr, exit 2),
 * or from C (lw_fault_configure, for unit tests). The syntax is a
 * comma-separated list of SITE:N (only the Nth call at SITE fails),
 * SITE:N+ (the Nth and every later one) or SITE:N-M (the Nth to the Mth: a
 * shortage that passes), N >= 1; e.g. LANEWORK_FAULT="fork:3,write:5+". Sites: alloc, fork, open, write,
 * fsync, rename, mkdir, pipe.
 *
 * Always compiled: with no rule set, a check is one relaxed atomic load.
 * This is a developer's tool (docs/DESIGN.md, testing), not an operator's.
 */
#ifndef LW_FAULT_H
#define LW_FAULT_H

#include <stddef.h>

#define LW_FAULT_ENV "LANEWORK_FAULT"

typedef enum lw_fault_site {
    LW_FAULT_ALLOC,  /* malloc, calloc, realloc, strdup, strndup; cJSON's: ENOMEM */
    LW_FAULT_FORK,   /* fork: EAGAIN */
    LW_FAULT_OPEN,   /* open, openat: EMFILE */
    LW_FAULT_WRITE,  /* write: ENOSPC */
    LW_FAULT_FSYNC,  /* fsync: EIO */
    LW_FAULT_RENAME, /* renameat, renameat2: EIO */
    LW_FAULT_MKDIR,  /* mkdirat: ENOSPC */
    LW_FAULT_PIPE,   /* pipe2: EMFILE */
    LW_FAULT_SITES
} lw_fault_site;

/* Replaces every rule by those of `spec` (syntax above) and restarts every
 * site's count at zero; NULL or "" removes them all. Returns 0, or -1 with
 * why in err and the previous rules left as they were. Not to be called
 * while other threads pass through the seams. */
int lw_fault_configure(const char *spec, char *err, size_t errlen);

/* Counts one call at `site`. Returns 1 when a rule says this call fails,
 * with errno set to the site's errno (see above); else 0, errno untouched.
 * Thread-safe; async-signal-safe. */
int lw_fault_should_fail(lw_fault_site site);

/* The failures injected since the last lw_fault_configure (all sites): a
 * test's "for N = 1.. until no fault was hit" loop stops at 0. */
unsigned long lw_fault_injected(void);

/* Points cJSON's allocator at the alloc seam (on) or back at malloc (off);
 * lw_fault_configure calls it (alloc_seam.c). */
void lw_alloc_seam_route_cjson(int on);

#endif

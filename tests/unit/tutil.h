/*
 * tutil.h — what the unit tests share: a temporary directory per test
 * (removed again), small file helpers, and the Check runner. Helpers fail
 * the calling test (ck_assert) instead of returning errors.
 */
#ifndef LW_TUTIL_H
#define LW_TUTIL_H

#include <check.h>
#include <stddef.h>

/* Makes a new directory under $TMPDIR (or /tmp); caller frees the returned
 * path and removes the tree with tu_rmrf. */
char *tu_tmpdir(void);
/* Removes `path` and everything below it, never following symlinks. */
void tu_rmrf(const char *path);
/* Returns malloc'ed "dir/name" (caller frees). */
char *tu_path(const char *dir, const char *name);
/* Writes `text` to dir/name (created or truncated). */
void tu_write(const char *dir, const char *name, const char *text);
/* Makes directory dir/name. */
void tu_mkdir(const char *dir, const char *name);
/* Returns the malloc'ed contents of dir/name (caller frees). */
char *tu_read(const char *dir, const char *name);

/* The entry names of directory d (not . and ..), sorted, joined by single
 * spaces into out (truncated to outlen), for exact checks. */
void tu_listing(const char *d, char *out, size_t outlen);

/* Runs the suite; returns the process exit status (0: every test passed). */
int tu_run(Suite *s);

#endif

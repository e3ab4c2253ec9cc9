/*
 * seams.h — the system calls that hand out resources, through the fault
 * seam (fault.h).
 *
 * Each lw_X behaves exactly as X(2) does, except that when a rule of
 * LANEWORK_FAULT (or lw_fault_configure) says this call fails, it does
 * nothing, sets errno as the real failure would and returns -1. Call sites
 * change only the name (fork() -> lw_fork()); what they do on failure is
 * what the tests exercise.
 *
 * Allocation is not here: malloc & co. are wrapped at link time
 * (alloc_seam.c), so no call site changes.
 */
#ifndef LW_SEAMS_H
#define LW_SEAMS_H

#include <sys/types.h>

/* fork(2); an injected failure: -1, EAGAIN, no child. */
pid_t lw_fork(void);

/* open(2) / openat(2) (mode read when flags hold O_CREAT or O_TMPFILE); an
 * injected failure: -1, EMFILE, nothing created. */
int lw_open(const char *path, int flags, ...);
int lw_openat(int dirfd, const char *path, int flags, ...);

/* write(2); an injected failure: -1, ENOSPC, nothing written. */
ssize_t lw_write(int fd, const void *buf, size_t n);

/* fsync(2); an injected failure: -1, EIO. */
int lw_fsync(int fd);

/* renameat(2) / renameat2(2); an injected failure: -1, EIO, nothing moved. */
int lw_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int lw_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                 unsigned int flags);

/* mkdirat(2); an injected failure: -1, ENOSPC, nothing made. */
int lw_mkdirat(int dirfd, const char *path, mode_t mode);

/* pipe2(2); an injected failure: -1, EMFILE, fds untouched. */
int lw_pipe2(int fds[2], int flags);

#endif

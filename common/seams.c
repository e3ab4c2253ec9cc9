/*
 * seams.c — system calls through the fault seam (seams.h).
 */
#include "seams.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"

pid_t lw_fork(void) { return lw_fault_should_fail(LW_FAULT_FORK) ? -1 : fork(); }

/* The mode argument exists only when the flags create a file. */
static mode_t mode_of(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int lw_open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    return lw_fault_should_fail(LW_FAULT_OPEN) ? -1 : open(path, flags, mode);
}

int lw_openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    return lw_fault_should_fail(LW_FAULT_OPEN) ? -1 : openat(dirfd, path, flags, mode);
}

ssize_t lw_write(int fd, const void *buf, size_t n)
{
    return lw_fault_should_fail(LW_FAULT_WRITE) ? -1 : write(fd, buf, n);
}

int lw_fsync(int fd) { return lw_fault_should_fail(LW_FAULT_FSYNC) ? -1 : fsync(fd); }

int lw_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    return lw_fault_should_fail(LW_FAULT_RENAME) ? -1
                                                 : renameat(olddirfd, oldpath, newdirfd, newpath);
}

int lw_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                 unsigned int flags)
{
    return lw_fault_should_fail(LW_FAULT_RENAME)
               ? -1
               : renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

int lw_mkdirat(int dirfd, const char *path, mode_t mode)
{
    return lw_fault_should_fail(LW_FAULT_MKDIR) ? -1 : mkdirat(dirfd, path, mode);
}

int lw_pipe2(int fds[2], int flags)
{
    return lw_fault_should_fail(LW_FAULT_PIPE) ? -1 : pipe2(fds, flags);
}

/*
 * exec_util.h — what the runners that exec a registry command share
 * (exec_util.c): run_exec (a process per attempt) and run_persistent.
 */
#ifndef LW_EXEC_UTIL_H
#define LW_EXEC_UTIL_H

#include <stddef.h>

#include "state.h"

/* The program's path: prog itself when it has a slash, else the first
 * executable PATH entry (default /usr/local/bin:/usr/bin:/bin), else prog
 * unchanged (execve then reports ENOENT in the child). Resolved before fork:
 * execve is async-signal-safe, execvp is not. Returns a malloc'd string the
 * caller frees, NULL on OOM. */
char *exec_resolve_program(const char *prog);
/* Frees a NULL-terminated environment built by a runner, and the array.
 * NULL is ignored. */
void exec_free_env(char **env);

/* The environment a command of tenant t starts from, built before fork
 * (the child of a threaded worker may only call async-signal-safe
 * functions): the worker's own without LANEWORK_* (its Redis URL is not
 * the command's business) and, when t has a "user", that user's HOME, USER
 * and LOGNAME instead of the worker's. NULL-terminated, with room for
 * `extra` more entries; *n is the count. Malloc'd: free with
 * exec_free_env. NULL on OOM. */
char **exec_env_base(const tenant *t, size_t extra, size_t *n);
/* Appends NAME=VALUE at env[*n] (room made by exec_env_base) and counts it.
 * Returns 0, or -1 on OOM (nothing appended). */
int exec_env_add(char **env, size_t *n, const char *name, const char *value);

#endif

/*
 * exec_util.h — what the runners that exec a registry command share
 * (exec_util.c): run_exec (a process per attempt) and run_persistent.
 */
#ifndef LW_EXEC_UTIL_H
#define LW_EXEC_UTIL_H

/* The program's path: prog itself when it has a slash, else the first
 * executable PATH entry (default /usr/local/bin:/usr/bin:/bin), else prog
 * unchanged (execve then reports ENOENT in the child). Resolved before fork:
 * execve is async-signal-safe, execvp is not. Returns a malloc'd string the
 * caller frees, NULL on OOM. */
char *exec_resolve_program(const char *prog);
/* Frees a NULL-terminated environment built by a runner, and the array.
 * NULL is ignored. */
void exec_free_env(char **env);

#endif

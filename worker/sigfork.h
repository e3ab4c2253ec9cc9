/*
 * sigfork.h — fork() for the worker's own children (attempt processes and
 * the fence keeper), safe against the worker's signal handlers (sigfork.c).
 */
#ifndef LW_SIGFORK_H
#define LW_SIGFORK_H

#include <sys/types.h>

/* fork() with every signal blocked across it: in the child (return 0) they
 * stay blocked until sigfork_reset_signals() and sigfork_unblock_signals() --
 * a signal sent to the child's group right after fork (a timeout of 1 ms)
 * would otherwise run the worker's libevent handler in the child, which
 * writes the signal into the pipe it shares with the worker: the worker
 * would take a job's SIGTERM for its own. In the parent the mask is
 * restored before returning. */
pid_t sigfork(void);
/* In a fresh child: every signal disposition back to the default (the
 * mask is left alone). Async-signal-safe. */
void sigfork_reset_signals(void);
/* In a fresh child, once its own handlers are in place: unblock all. */
void sigfork_unblock_signals(void);

#endif

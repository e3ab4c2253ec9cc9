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
/* Records which signals have a disposition other than SIG_DFL now (the
 * worker's handlers and ignores, what module code set), for
 * sigfork_reset_noted_signals(). Called after everything that may change a
 * disposition outside an attempt: the worker's set-up, loading and
 * unloading a module (reload.c, tenants.c). 64 sigaction() queries. */
void sigfork_note_dispositions(void);
/* sigfork_reset_signals() for the noted signals only (all of them when
 * nothing was noted yet): a handful of sigaction() calls instead of 64,
 * about 15 us of each fork child on a 2-core VM (DESIGN.md section 10).
 * Exact only where no other code changed a disposition since the last note:
 * fork isolation, where tenant code runs in the worker only as a module's
 * constructors, init and fini. Async-signal-safe. */
void sigfork_reset_noted_signals(void);
/* In a fresh child, once its own handlers are in place: unblock all. */
void sigfork_unblock_signals(void);

#endif

/* sigfork.c — fork() that no signal handler of the worker runs across
 * (sigfork.h). */
#include "sigfork.h"

#include "seams.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

pid_t sigfork(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = lw_fork();
    if (pid != 0) {
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = e;
    }
    return pid;
}

/* The signals whose disposition was not SIG_DFL at the last note; a child
 * reads its copy. */
static sigset_t noted;
static int have_noted;

static void reset_where(const sigset_t *only)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP && (!only || sigismember(only, s) == 1))
            sigaction(s, &sa, NULL);
}

void sigfork_reset_signals(void) { reset_where(NULL); }

void sigfork_note_dispositions(void)
{
    sigset_t now;
    sigemptyset(&now);
    for (int s = 1; s < NSIG; s++) {
        struct sigaction cur;
        /* Unknown to the kernel (a glibc-reserved real-time signal): -1, and
         * nothing to reset. */
        if (s != SIGKILL && s != SIGSTOP && sigaction(s, NULL, &cur) == 0 &&
            ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL))
            sigaddset(&now, s);
    }
    noted = now;
    have_noted = 1;
}

void sigfork_reset_noted_signals(void) { reset_where(have_noted ? &noted : NULL); }

void sigfork_unblock_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

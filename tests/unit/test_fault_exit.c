/* test_fault_exit.c — faults end when the process exits (common/fault.c):
 * what runs after main returns is the runtime's, not the program under test
 * -- a coverage build's gcov dump allocated there and crashed when its
 * malloc was made to fail. Run with LANEWORK_FAULT=alloc:1+ (every
 * allocation fails from the start): main's own allocation must fail, a
 * destructor's, after exit began, must not. Exit 0: both held. */
#include <stdlib.h>
#include <unistd.h>

static int main_failed;

/* Runs from _dl_fini, after exit's atexit handlers: where gcov dumps. */
__attribute__((destructor)) static void after_exit(void)
{
    void *p = malloc(64);
    _exit(main_failed && p ? 0 : 1);
}

int main(void)
{
    void *p = malloc(64);
    main_failed = p == NULL;
    free(p);
    return 0;
}

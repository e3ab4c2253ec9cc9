/* runners.c — the list of runners (runners.h). An exec entry in the
 * registry wins over the tenant's module, so exec comes first. */
#include "runners.h"

#include "run_exec.h"
#include "run_fork.h"
#include "run_persistent.h"
#include "run_pool.h"
#include "run_thread.h"

/* One line per runner: adding an isolation mode is adding its line. */
/* clang-format off */
static const runner *const all[] = {
    &run_persistent_runner, /* persistent exec entries: before run_exec, which takes every exec entry */
    &run_exec_runner,
    &run_fork_runner,       /* --isolation fork */
    &run_pool_runner,       /* --isolation pool */
    &run_thread_runner,     /* --isolation thread */
};
/* clang-format on */
#define NRUNNERS (sizeof all / sizeof all[0])

const runner *runners_find(const attempt *a)
{
    for (size_t i = 0; i < NRUNNERS; i++)
        if (all[i]->handles(a))
            return all[i];
    return NULL;
}

int runners_open(worker *w, char *err, size_t errlen)
{
    for (size_t i = 0; i < NRUNNERS; i++)
        if (all[i]->open && all[i]->open(w, err, errlen))
            return -1;
    return 0;
}

void runners_close(worker *w)
{
    for (size_t i = 0; i < NRUNNERS; i++)
        if (all[i]->close)
            all[i]->close(w);
}

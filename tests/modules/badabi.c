/* badabi.c — a module built for another ABI: the worker must refuse it. */
#include <lanework/module.h>

static lw_status handle(void *st, lw_job *job)
{
    (void)st, (void)job;
    return LW_OK;
}

static const lw_module module = {LW_MODULE_ABI + 41, "badabi", 0, 0, handle, 0};

const lw_module *lanework_module(void);
const lw_module *lanework_module(void) { return &module; }

/* allkinds.c — a module whose kinds list is NULL: it serves every kind, so
 * the CLI must accept any kind for its tenant. */
#include <lanework/module.h>

static lw_status handle(void *st, lw_job *job)
{
    (void)st, (void)job;
    return LW_OK;
}

static const lw_module module = {LW_MODULE_ABI, "allkinds", 0, 0, handle, 0};

const lw_module *lanework_module(void);
const lw_module *lanework_module(void) { return &module; }

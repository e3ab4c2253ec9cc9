/* module_host.c — dlopen, ABI check, init/fini of tenant modules. */
#include "module_host.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

module_binding *module_bind(const char *path, const char *tenant, const char *config_json,
                            char *err, size_t errlen)
{
    module_binding *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    /* RTLD_NOW: an unresolved symbol is a load error now, not a crash in the
     * middle of some job later. */
    b->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!b->dl) {
        snprintf(err, errlen, "%s: cannot load module: %s", path, dlerror());
        goto fail;
    }
    lw_module_entry_fn entry;
    void *sym = dlsym(b->dl, LW_MODULE_ENTRY);
    if (!sym) {
        snprintf(err, errlen, "%s: not a lanework module: no symbol %s", path, LW_MODULE_ENTRY);
        goto fail;
    }
    /* POSIX guarantees a data pointer from dlsym converts to a function
     * pointer; memcpy keeps -Wpedantic quiet about it. */
    memcpy(&entry, &sym, sizeof entry);
    b->mod = entry();
    if (!b->mod) {
        snprintf(err, errlen, "%s: %s() returned NULL", path, LW_MODULE_ENTRY);
        goto fail;
    }
    if (b->mod->abi != LW_MODULE_ABI) {
        snprintf(err, errlen, "%s: module abi %d, this worker needs abi %d (rebuild it against this lanework's module.h)",
                 path, b->mod->abi, LW_MODULE_ABI);
        goto fail;
    }
    if (!b->mod->handle) {
        snprintf(err, errlen, "%s: module \"%s\" has no handle function", path,
                 b->mod->name ? b->mod->name : "?");
        goto fail;
    }
    if (b->mod->init) {
        int rc = b->mod->init(&b->state, tenant, config_json ? config_json : "null");
        if (rc != 0) {
            snprintf(err, errlen, "%s: module init for tenant %s failed (returned %d)", path, tenant, rc);
            b->mod = NULL; /* do not call fini for a failed init */
            goto fail;
        }
    }
    return b;
fail:
    if (b) {
        if (b->dl) dlclose(b->dl);
        free(b->path);
        free(b);
    }
    return NULL;
}

void module_unbind(module_binding *b)
{
    if (!b) return;
    if (b->mod && b->mod->fini) b->mod->fini(b->state);
    if (b->dl) dlclose(b->dl);
    free(b->path);
    free(b);
}

int module_handles(const module_binding *b, const char *kind)
{
    if (!b || !b->mod) return 0;
    if (!b->mod->kinds) return 1;
    for (const char *const *k = b->mod->kinds; *k; k++)
        if (strcmp(*k, kind) == 0) return 1;
    return 0;
}

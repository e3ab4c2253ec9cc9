/* module_host.c — dlopen, ABI check, init/fini of tenant modules. */
#include "module_host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fds open now, ascending, from /proc/self/fd. Caller frees; NULL
 * with *n = 0 when it cannot be read. */
static int *open_fds(size_t *n)
{
    *n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return NULL;
    int dfd = dirfd(d);
    size_t cap = 64;
    int *fds = malloc(cap * sizeof *fds);
    struct dirent *e;
    while (fds && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd == dfd)
            continue;
        if (*n == cap) {
            int *grown = realloc(fds, cap * 2 * sizeof *fds);
            if (!grown)
                break;
            fds = grown;
            cap *= 2;
        }
        fds[(*n)++] = fd;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a few dozen fds */
        for (size_t k = i; k > 0 && fds[k - 1] > fds[k]; k--) {
            int t = fds[k];
            fds[k] = fds[k - 1];
            fds[k - 1] = t;
        }
    return fds;
}

/* Keeps in b->fds what is open now and was not in before[0..nbefore). */
static void note_module_fds(module_binding *b, const int *before, size_t nbefore)
{
    size_t n;
    int *now = open_fds(&n);
    if (!now)
        return;
    size_t k = 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < nbefore && before[j] < now[i])
            j++;
        if (j < nbefore && before[j] == now[i])
            continue;
        now[k++] = now[i];
    }
    b->fds = now;
    b->nfds = k;
}

module_binding *module_bind(const char *path, const char *tenant, const char *config_json,
                            char *err, size_t errlen)
{
    size_t nbefore;
    int *before = open_fds(&nbefore);
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
        snprintf(
            err, errlen,
            "%s: module abi %d, this worker needs abi %d (rebuild it against this lanework's module.h)",
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
            snprintf(err, errlen, "%s: module init for tenant %s failed (returned %d)", path,
                     tenant, rc);
            b->mod = NULL; /* do not call fini for a failed init */
            goto fail;
        }
    }
    note_module_fds(b, before, nbefore);
    free(before);
    return b;
fail:
    free(before);
    if (b) {
        if (b->dl)
            dlclose(b->dl);
        free(b->path);
        free(b);
    }
    return NULL;
}

void module_child_keep_only(const module_binding *b, int keep)
{
    /* Ascending list of what stays above 2: keep, then the module's. */
    int stay[1024];
    size_t n = 0;
    stay[n++] = keep;
    for (size_t i = 0; b && i < b->nfds && n < sizeof stay / sizeof stay[0]; i++)
        if (b->fds[i] > 2 && b->fds[i] != keep)
            stay[n++] = b->fds[i];
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && stay[k - 1] > stay[k]; k--) {
            int t = stay[k];
            stay[k] = stay[k - 1];
            stay[k - 1] = t;
        }
    unsigned int from = 3;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned int)stay[i] > from)
            close_range(from, (unsigned int)stay[i] - 1, 0);
        from = (unsigned int)stay[i] + 1;
    }
    close_range(from, ~0U, 0);
}

void module_unbind(module_binding *b)
{
    if (!b)
        return;
    if (b->mod && b->mod->fini)
        b->mod->fini(b->state);
    if (b->dl)
        dlclose(b->dl);
    free(b->path);
    free(b->fds);
    free(b);
}

int module_handles(const module_binding *b, const char *kind)
{
    if (!b || !b->mod)
        return 0;
    if (!b->mod->kinds)
        return 1;
    for (const char *const *k = b->mod->kinds; *k; k++)
        if (strcmp(*k, kind) == 0)
            return 1;
    return 0;
}

/*
 * kinds.c — whether a tenant serves a kind, for `enqueue` (and each line
 * of `--batch`): a kind no handler of the tenant serves would only fail at
 * its first attempt ("no handler for kind K"), long after the enqueuer
 * went away.
 *
 * A kind is served by an `exec` key of the registry entry, or by the
 * tenant's module: its own `kinds` list (NULL: every kind). The list is
 * known only to the module, so the CLI dlopen()s it (RTLD_LAZY|RTLD_LOCAL)
 * and calls lanework_module() to read `abi` and `kinds`, never `init`,
 * `handle` or `fini`: no tenant code runs but the module's ELF
 * constructors, which any dlopen runs. A module that cannot be loaded here
 * (not readable by this user, a library only the worker's environment has,
 * another ABI) leaves the kind unchecked: the job is accepted, as without
 * a registry, with a note on stderr when LANEWORK_DEBUG is set.
 *
 * Loaded modules stay loaded until the process exits (their `kinds` strings
 * live in them); one dlopen per module path, however many lines a batch has.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lanework/module.h"

#define MAX_MODULES 64

typedef struct probed {
    char *path;           /* owned */
    const lw_module *mod; /* NULL: could not be read (kinds unknown) */
    char *why;            /* owned; why mod is NULL */
} probed;

static probed cache[MAX_MODULES];
static size_t ncache;

/* The module at `path` as far as the CLI can read it, or NULL (then `why`
 * says why). Cached for the process's lifetime. */
static const lw_module *probe(const char *path, char *why, size_t whylen)
{
    for (size_t i = 0; i < ncache; i++)
        if (strcmp(cache[i].path, path) == 0) {
            snprintf(why, whylen, "%s", cache[i].why);
            return cache[i].mod;
        }
    const lw_module *mod = NULL;
    void *dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        snprintf(why, whylen, "cannot load module: %s", e ? e : "?");
    } else {
        void *sym = dlsym(dl, LW_MODULE_ENTRY);
        lw_module_entry_fn entry = NULL;
        if (sym)
            memcpy(&entry, &sym, sizeof entry); /* POSIX: a dlsym pointer converts */
        mod = entry ? entry() : NULL;
        if (!mod)
            snprintf(why, whylen, "no %s()", LW_MODULE_ENTRY);
        else if (mod->abi != LW_MODULE_ABI) {
            snprintf(why, whylen, "module abi %d, this CLI reads abi %d", mod->abi, LW_MODULE_ABI);
            mod = NULL;
        }
        if (!mod)
            dlclose(dl);
    }
    if (ncache < MAX_MODULES) {
        cache[ncache].path = cli_strdup(path);
        cache[ncache].why = cli_strdup(mod ? "" : why);
        cache[ncache++].mod = mod;
    }
    return mod;
}

int cli_check_kind(cli *c, const cli_tenant *t, const char *kind)
{
    if (!t->reg || !kind || lw_tenant_exec(t->reg, kind))
        return 0;
    if (t->reg->module_path) {
        char why[512];
        const lw_module *mod = probe(t->reg->module_path, why, sizeof why);
        if (!mod) {
            const char *dbg = getenv("LANEWORK_DEBUG");
            if (dbg && *dbg)
                cli_err(c->cmd, "debug: kind %s not checked: %s: %s", cli_show(kind),
                        cli_show(t->reg->module_path), why);
            return 0;
        }
        if (!mod->kinds)
            return 0;
        for (const char *const *k = mod->kinds; *k; k++)
            if (strcmp(*k, kind) == 0)
                return 0;
    }
    cli_err(c->cmd, "tenant %s has no handler for kind %s (%s)", t->name, cli_show(kind),
            t->reg->module_path ? "neither its module's kinds nor its exec keys name it"
                                : "no exec key names it, and it has no module");
    return CLI_USAGE;
}

/*
 * kinds.c — whether a tenant serves a kind, for `enqueue` (and each line
 * of `--batch`): a kind no handler of the tenant serves would only fail at
 * its first attempt ("no handler for kind K"), long after the enqueuer
 * went away.
 *
 * A kind is served by an `exec` key of the registry entry, or by the
 * tenant's module: its own `kinds` list (NULL: every kind). Only the module
 * knows that list, and the CLI does not load tenant code (its constructors
 * would run here, with the enqueuer's rights, and an application host may
 * not even have the file). So the workers, which load it, publish what they
 * serve: `P kinds`, a set of kinds ("*": every kind), added to by every
 * worker when it connects or reloads (worker/tenant_settings.c). A union, so
 * a rolling upgrade never makes a kind an older worker lacks look
 * unserved; a kind a module dropped stays accepted, and fails at its first
 * attempt as before.
 *
 * Without a registry, or when Redis cannot be asked, or no worker has
 * published yet, a kind of a module tenant is accepted. A tenant with no
 * module serves its exec keys and nothing else: the registry says so alone.
 * The set is read once per tenant and process (a batch asks once).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "redis_sync.h"

#define MAX_TENANTS 64

typedef struct served {
    char *tenant;    /* owned */
    redisReply *set; /* owned: SMEMBERS P kinds; NULL: could not be read */
} served;

static served cache[MAX_TENANTS];
static size_t ncache;

/* P kinds of tenant t, or NULL when it cannot be read. Cached. `shared`:
 * asked on the tenant's own connection (a single enqueue: nothing else is
 * in flight on it, and it is reused for the enqueue). Else on a connection
 * of its own: with --batch the tenant's may carry pipelined calls whose
 * replies are not read yet, and a reply taken out of turn would shift
 * every later one. */
static const redisReply *published(const cli_tenant *t, int shared)
{
    for (size_t i = 0; i < ncache; i++)
        if (strcmp(cache[i].tenant, t->name) == 0)
            return cache[i].set;
    redisReply *r = NULL;
    char key[CLI_KEY_MAX], err[256];
    lw_key(key, sizeof key, t->prefix, "kinds", NULL);
    const char *sm[2] = {"SMEMBERS", key};
    if (shared) {
        if (cli_connect(t->conn, 1, NULL, 0) == 0)
            r = cli_cmd(t->conn, 2, sm);
    } else {
        lw_sconn *ctx = lw_redis_connect_sync(t->conn->url, t->conn->slot, CLI_CONNECT_TIMEOUT_MS,
                                              NULL, err, sizeof err);
        if (ctx) {
            lw_sconn_set_timeout(ctx, CLI_CONNECT_TIMEOUT_MS);
            r = lw_sconn_command(ctx, 2, sm, NULL);
            lw_sconn_free(ctx);
        }
    }
    if (r && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r); /* a refusal is for the enqueue itself to report */
        r = NULL;
    }
    if (ncache < MAX_TENANTS) {
        cache[ncache].tenant = cli_strdup(t->name);
        cache[ncache++].set = r;
    } else if (r) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

static int in_set(const redisReply *set, const char *kind)
{
    for (size_t i = 0; i < set->elements; i++) {
        const redisReply *e = set->element[i];
        if (e->type == REDIS_REPLY_STRING &&
            (strcmp(e->str, kind) == 0 || strcmp(e->str, "*") == 0))
            return 1;
    }
    return 0;
}

int cli_check_kind(cli *c, const cli_tenant *t, const char *kind, int shared)
{
    if (!t->reg || !kind || lw_tenant_exec(t->reg, kind))
        return 0;
    if (t->reg->module_path) {
        const redisReply *set = published(t, shared);
        if (!set || set->elements == 0 || in_set(set, kind))
            return 0;
    }
    cli_err(c->cmd, "tenant %s has no handler for kind %s (%s)", t->name, cli_show(kind),
            t->reg->module_path
                ? "no exec key names it, and no worker serving the tenant says its module does"
                : "no exec key names it, and it has no module");
    return CLI_USAGE;
}

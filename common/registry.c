/*
 * registry.c — the tenant registry (registry.h, CONTRACT section 3).
 *
 * Parsing is strict: an unknown field is an error (a typo such as "spool"
 * must not silently leave a tenant without its spools), so is a field given
 * twice. Every message starts with where the problem is — the file, and in
 * an array which tenant ("tenant #2 (\"acme\")") — then says why, so an
 * operator can fix it without guessing. Nothing here runs or loads anything.
 */
#include "registry.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "fail.h"
#include "jsonx.h"
#include "names.h"
#include "url.h"

/* A registry larger than this is a mistake (a wrong path), not a registry. */
#define MAX_FILE_BYTES (16u * 1024 * 1024)
/* Ten years: bounds the defaults so that milliseconds never overflow. */
#define MAX_SECONDS 315360000.0
#define SAFE_RULE "letters, digits, '-', '_', '.'; not starting with '.'; at most 200 bytes"

typedef struct {
    char *err;
    size_t errlen;
    char where[640];  /* "FILE: tenant #2 (\"acme\")", the start of every message */
    const char *base; /* directory that relative paths are resolved against */
} ctx;

/* Every message starts with where the problem is. Returns -1. */
#define fail(c, ...) lw_fail_at((c)->err, (c)->errlen, (c)->where, __VA_ARGS__)

/* --- freeing ------------------------------------------------------------- */

static void tenant_clear(lw_tenant *t)
{
    free(t->name);
    free(t->module_path);
    free(t->config_json);
    for (size_t i = 0; i < t->nexecs; i++) {
        free(t->execs[i].kind);
        for (size_t k = 0; k < t->execs[i].argc; k++)
            free(t->execs[i].argv[k]);
        free(t->execs[i].argv);
    }
    free(t->execs);
    for (size_t i = 0; i < t->nspools; i++) {
        free(t->spools[i].kind);
        free(t->spools[i].dir);
    }
    free(t->spools);
    for (size_t i = 0; i < t->nqueues; i++)
        free(t->queues[i].name);
    free(t->queues);
    free(t->redis_url);
    free(t->user);
    free(t->source);
    memset(t, 0, sizeof *t);
}

void lw_registry_free(lw_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ntenants; i++)
        tenant_clear(&r->tenants[i]);
    free(r->tenants);
    free(r->path);
    free(r);
}

/* --- field checks -------------------------------------------------------- */

/* The first member name that occurs twice in `obj`, or NULL. cJSON keeps
 * both and reads the first, which would hide the second from the author. */
static const char *duplicate_member(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a; a = a->next) {
        for (const cJSON *b = a->next; b; b = b->next) {
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return a->string;
        }
    }
    return NULL;
}

/* An object whose member names must not repeat; `what` names it. */
static int check_object(ctx *c, const cJSON *v, const char *what, const char *shape)
{
    if (!cJSON_IsObject(v))
        return fail(c, "%s must be an object (%s)", what, shape);
    const char *dup = duplicate_member(v);
    if (dup)
        return fail(c, "%s: field \"%.64s\" is given twice", what, dup);
    return 0;
}

/* A JSON number that is a whole number in [min, max]. */
static int whole_number(const cJSON *v, double min, double max, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= min && d <= max))
        return -1;
    int64_t i = (int64_t)d;
    if ((double)i != d)
        return -1;
    *out = i;
    return 0;
}

/* A relative path from the registry is taken relative to the directory of
 * the file that names it, not to whatever the worker's cwd is; the result
 * always holds a '/', so dlopen() never searches the library path for it. */
static char *resolve_path(const ctx *c, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    size_t n = strlen(c->base) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", c->base, p);
    return out;
}

/* --- the parts of a tenant ----------------------------------------------- */

/* argv of exec.KIND from a JSON array of strings (the array form, or the
 * object form's "command"). */
static int parse_command(ctx *c, const cJSON *e, const char *kind, const char *where,
                         lw_exec_handler *h)
{
    int argc = cJSON_IsArray(e) ? cJSON_GetArraySize(e) : 0;
    int ok = argc > 0;
    for (const cJSON *a = ok ? e->child : NULL; a; a = a->next)
        ok = ok && cJSON_IsString(a);
    if (!ok || !e->child->valuestring[0])
        return fail(
            c, "exec.%s%s must be a non-empty array of strings (the program and its arguments)",
            kind, where);
    h->argv = calloc((size_t)argc + 1, sizeof *h->argv);
    if (!h->argv)
        return fail(c, "out of memory");
    for (const cJSON *a = e->child; a; a = a->next) {
        if (!(h->argv[h->argc++] = strdup(a->valuestring)))
            return fail(c, "out of memory");
    }
    return 0;
}

/* The object form: {"command": [...], "persistent": bool, "max_jobs": N,
 * "idle_exit": S}. max_jobs and idle_exit only mean something for a
 * persistent process, so they are refused without "persistent": true
 * rather than silently ignored. */
static int parse_exec_object(ctx *c, const cJSON *e, lw_exec_handler *h)
{
    const char *k = e->string;
    const char *dup = duplicate_member(e);
    if (dup)
        return fail(c, "exec.%s: field \"%.64s\" is given twice", k, dup);
    const cJSON *cmd = NULL, *max_jobs = NULL, *idle_exit = NULL;
    for (const cJSON *f = e->child; f; f = f->next) {
        if (strcmp(f->string, "command") == 0) {
            cmd = f;
        } else if (strcmp(f->string, "persistent") == 0) {
            if (!cJSON_IsBool(f))
                return fail(c, "exec.%s.persistent must be true or false", k);
            h->persistent = cJSON_IsTrue(f);
        } else if (strcmp(f->string, "max_jobs") == 0) {
            max_jobs = f;
        } else if (strcmp(f->string, "idle_exit") == 0) {
            idle_exit = f;
        } else {
            return fail(
                c,
                "exec.%s: unknown field \"%.64s\" (known: command, persistent, max_jobs, idle_exit)",
                k, f->string);
        }
    }
    if (!cmd)
        return fail(c, "exec.%s: \"command\" is missing (the program and its arguments)", k);
    int64_t n;
    if (max_jobs) {
        if (whole_number(max_jobs, 0, 1e9, &n))
            return fail(
                c,
                "exec.%s.max_jobs must be a whole number of attempts from 0 (no limit) to 1000000000",
                k);
        h->max_jobs = (int)n;
    }
    if (idle_exit) {
        if (whole_number(idle_exit, 0, 86400 * 365, &n))
            return fail(
                c, "exec.%s.idle_exit must be a whole number of seconds from 0 (never) to 31536000",
                k);
        h->idle_exit = (int)n;
    }
    if (!h->persistent && (max_jobs || idle_exit))
        return fail(c, "exec.%s: %s only applies with \"persistent\": true", k,
                    max_jobs ? "max_jobs" : "idle_exit");
    return parse_command(c, cmd, k, ".command", h);
}

static int parse_exec(ctx *c, const cJSON *v, lw_tenant *t)
{
    if (check_object(
            c, v, "exec",
            "kind -> [\"program\", \"arg\", ...] or {\"command\": [...], \"persistent\": true}"))
        return -1;
    int n = cJSON_GetArraySize(v);
    t->execs = calloc((size_t)n + 1, sizeof *t->execs);
    if (!t->execs)
        return fail(c, "out of memory");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!lw_name_is_safe(e->string))
            return fail(c, "exec: kind \"%.64s\" is not a safe name (" SAFE_RULE ")", e->string);
        lw_exec_handler *h = &t->execs[t->nexecs++];
        if (!(h->kind = strdup(e->string)))
            return fail(c, "out of memory");
        if (cJSON_IsObject(e) ? parse_exec_object(c, e, h) : parse_command(c, e, e->string, "", h))
            return -1;
    }
    return 0;
}

static int parse_spools(ctx *c, const cJSON *v, lw_tenant *t)
{
    if (check_object(c, v, "spools", "kind -> directory"))
        return -1;
    t->spools = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof *t->spools);
    if (!t->spools)
        return fail(c, "out of memory");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!lw_name_is_safe(e->string))
            return fail(c, "spools: kind \"%.64s\" is not a safe name (" SAFE_RULE ")", e->string);
        if (!cJSON_IsString(e) || !e->valuestring[0])
            return fail(c, "spools.%s must be a directory (a non-empty string)", e->string);
        lw_spool_cfg *s = &t->spools[t->nspools++];
        s->kind = strdup(e->string);
        s->dir = resolve_path(c, e->valuestring);
        if (!s->kind || !s->dir)
            return fail(c, "out of memory");
    }
    return 0;
}

static int parse_queues(ctx *c, const cJSON *v, lw_tenant *t)
{
    if (check_object(c, v, "queues", "name -> {} or {\"max_active\": N}"))
        return -1;
    t->queues = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof *t->queues);
    if (!t->queues)
        return fail(c, "out of memory");
    for (const cJSON *e = v->child; e; e = e->next) {
        char what[128];
        if (!lw_name_is_safe(e->string))
            return fail(c, "queues: queue name \"%.64s\" is not a safe name (" SAFE_RULE ")",
                        e->string);
        snprintf(what, sizeof what, "queues.%s", e->string);
        if (check_object(c, e, what, "{} or {\"max_active\": N}"))
            return -1;
        lw_queue_cfg *q = &t->queues[t->nqueues++];
        if (!(q->name = strdup(e->string)))
            return fail(c, "out of memory");
        for (const cJSON *f = e->child; f; f = f->next) {
            int64_t cap;
            if (strcmp(f->string, "max_active") != 0)
                return fail(c, "%s: unknown field \"%.64s\" (known: max_active)", what, f->string);
            if (whole_number(f, 0, INT_MAX, &cap) != 0)
                return fail(c, "%s.max_active must be a non-negative integer", what);
            q->max_active = (int)cap;
        }
    }
    return 0;
}

#define DEFAULT_FIELDS "attempts, timeout, backoff, keep_succeeded, keep_failed, events_max"

static int parse_defaults(ctx *c, const cJSON *v, lw_tenant *t)
{
    if (check_object(c, v, "defaults", DEFAULT_FIELDS))
        return -1;
    for (const cJSON *f = v->child; f; f = f->next) {
        int64_t n;
        if (strcmp(f->string, "attempts") == 0) {
            if (whole_number(f, 1, INT_MAX, &n) != 0)
                return fail(c, "defaults.attempts must be an integer >= 1");
            t->defaults.attempts = (int)n;
        } else if (strcmp(f->string, "timeout") == 0) {
            if (lw_json_seconds_ms(f, 1, MAX_SECONDS, &n) != 0)
                return fail(c,
                            "defaults.timeout must be a number of seconds > 0 (at most 10 years)");
            t->defaults.timeout_ms = n;
        } else if (strcmp(f->string, "backoff") == 0) {
            if (lw_json_seconds_ms(f, 0, MAX_SECONDS, &n) != 0)
                return fail(c,
                            "defaults.backoff must be a number of seconds >= 0 (at most 10 years)");
            t->defaults.backoff_ms = n;
        } else if (strcmp(f->string, "keep_succeeded") == 0 ||
                   strcmp(f->string, "keep_failed") == 0) {
            if (whole_number(f, 1, (double)LW_MAX_KEEP_S, &n) != 0)
                return fail(c, "defaults.%s must be a whole number of seconds from 1 to %lld",
                            f->string, (long long)LW_MAX_KEEP_S);
            if (strcmp(f->string, "keep_succeeded") == 0)
                t->defaults.keep_succeeded_s = n;
            else
                t->defaults.keep_failed_s = n;
        } else if (strcmp(f->string, "events_max") == 0) {
            if (whole_number(f, 1, (double)LW_MAX_EVENTS, &n) != 0)
                return fail(c, "defaults.events_max must be a whole number from 1 to %lld",
                            (long long)LW_MAX_EVENTS);
            t->defaults.events_max = n;
        } else {
            return fail(c, "defaults: unknown field \"%.64s\" (known: " DEFAULT_FIELDS ")",
                        f->string);
        }
    }
    return 0;
}

static int parse_redis(ctx *c, const cJSON *v, lw_tenant *t)
{
    char why[512];
    if (!cJSON_IsString(v))
        return fail(c, "redis must be a string (a Redis URL)");
    lw_url *u = lw_url_parse(v->valuestring, why, sizeof why);
    if (!u)
        return fail(c, "redis: %s", why);
    lw_url_free(u);
    if (!(t->redis_url = strdup(v->valuestring)))
        return fail(c, "out of memory");
    return 0;
}

/* "user": a user name (or a numeric uid) the tenant's handler processes run
 * as. Only its form is checked here; that it exists and that the worker
 * may switch to it is the worker's business (the CLI never uses it). */
static int parse_user(ctx *c, const cJSON *v, lw_tenant *t)
{
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 64)
        return fail(c, "user must be a user name or uid (a string of 1 to 64 characters)");
    for (const char *p = v->valuestring; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || (*p == '$' && p[1] == '\0')))
            return fail(c,
                        "user \"%.64s\" is not a user name (letters, digits, _ - . and a final $)",
                        v->valuestring);
    if (!(t->user = strdup(v->valuestring)))
        return fail(c, "out of memory");
    return 0;
}

/* Fills *t from one tenant object; `index` is its 1-based place in an array,
 * or 0 for a file holding a single object. */
static int parse_tenant(ctx *c, const cJSON *obj, int index, const char *source, lw_tenant *t)
{
    size_t wl = strlen(c->where);
    if (index > 0)
        snprintf(c->where + wl, sizeof c->where - wl, ": tenant #%d", index);
    if (!cJSON_IsObject(obj))
        return fail(c, "must be a JSON object (one tenant)");
    t->defaults.attempts = LW_DEFAULT_ATTEMPTS;
    t->defaults.timeout_ms = (int64_t)LW_DEFAULT_TIMEOUT_S * 1000;
    t->defaults.backoff_ms = LW_DEFAULT_BACKOFF_MS;
    if (!(t->source = strdup(source)))
        return fail(c, "out of memory");

    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "tenant");
    if (!name)
        return fail(c, "\"tenant\" is missing (the tenant's name)");
    if (!cJSON_IsString(name))
        return fail(c, "tenant must be a string");
    if (!lw_name_is_safe(name->valuestring))
        return fail(c, "tenant \"%.64s\" is not a safe name (" SAFE_RULE ")", name->valuestring);
    if (!(t->name = strdup(name->valuestring)))
        return fail(c, "out of memory");
    if (index > 0) {
        wl = strlen(c->where);
        snprintf(c->where + wl, sizeof c->where - wl, " (\"%s\")", t->name);
    }
    const char *dup = duplicate_member(obj);
    if (dup)
        return fail(c, "field \"%.64s\" is given twice", dup);

    for (const cJSON *f = obj->child; f; f = f->next) {
        const char *k = f->string;
        int rc = 0;
        if (strcmp(k, "tenant") == 0)
            continue;
        if (cJSON_IsNull(f) && strcmp(k, "config") != 0)
            continue; /* an optional field written as null: not given */
        if (strcmp(k, "module") == 0) {
            if (!cJSON_IsString(f) || !f->valuestring[0])
                return fail(c, "module must be a path (a non-empty string)");
            if (!(t->module_path = resolve_path(c, f->valuestring)))
                return fail(c, "out of memory");
        } else if (strcmp(k, "config") == 0) {
            /* Handed to the module's init as text; cJSON's rendering is
             * fine here (it is not shown back to anyone). */
            if (!(t->config_json = cJSON_PrintUnformatted(f)))
                return fail(c, "out of memory");
        } else if (strcmp(k, "exec") == 0) {
            rc = parse_exec(c, f, t);
        } else if (strcmp(k, "spools") == 0) {
            rc = parse_spools(c, f, t);
        } else if (strcmp(k, "queues") == 0) {
            rc = parse_queues(c, f, t);
        } else if (strcmp(k, "redis") == 0) {
            rc = parse_redis(c, f, t);
        } else if (strcmp(k, "defaults") == 0) {
            rc = parse_defaults(c, f, t);
        } else if (strcmp(k, "user") == 0) {
            rc = parse_user(c, f, t);
        } else if (strcmp(k, "partitions") == 0) {
            int64_t n;
            if (whole_number(f, 1, LW_PARTITIONS_MAX, &n) != 0)
                return fail(c, "partitions must be an integer from 1 to %d", LW_PARTITIONS_MAX);
            t->partitions = (int)n;
        } else {
            return fail(
                c,
                "unknown field \"%.64s\" (known: tenant, module, config, exec, spools, queues, "
                "redis, defaults, user, partitions)",
                k);
        }
        if (rc)
            return -1;
    }
    if (!t->config_json && !(t->config_json = strdup("null")))
        return fail(c, "out of memory");
    if (t->partitions < 1)
        t->partitions = 1;
    /* A cap is shared out over the partitions (DESIGN.md section 13): one
     * with less than a job per partition would leave some never running. */
    for (size_t i = 0; i < t->nqueues; i++)
        if (t->queues[i].max_active > 0 && t->queues[i].max_active < t->partitions)
            return fail(c,
                        "queues.%s.max_active (%d) is below partitions (%d): each partition "
                        "needs a share of at least 1",
                        t->queues[i].name, t->queues[i].max_active, t->partitions);
    return 0;
}

/* --- documents ----------------------------------------------------------- */

/* Reports where cJSON stopped as a line and column of the text: "HEAD at
 * line L, column C" then `what`. */
static void malformed(ctx *c, const char *text, size_t len, const char *stop, const char *head,
                      const char *what)
{
    size_t off = stop && stop >= text && stop <= text + len ? (size_t)(stop - text) : len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    fail(c, "%s at line %zu, column %zu%s", head, line, col, what);
}

static int all_blank(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (!(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            return 0;
    }
    return 1;
}

/* The directory relative paths of `source` resolve against: the real path
 * of its directory when it exists, else its directory as written. */
static char *base_dir(const char *source)
{
    const char *slash = strrchr(source, '/');
    char *dir =
        slash ? strndup(source, slash == source ? 1 : (size_t)(slash - source)) : strdup(".");
    if (!dir)
        return NULL;
    char *real = realpath(dir, NULL);
    if (real) {
        free(dir);
        return real;
    }
    return dir;
}

lw_registry *lw_registry_parse(const char *text, size_t len, const char *source, int single,
                               char *err, size_t errlen)
{
    ctx c = {err, errlen, "", NULL};
    snprintf(c.where, sizeof c.where, "%s", source ? source : "registry");
    lw_registry *r = calloc(1, sizeof *r);
    char *base = base_dir(source ? source : "registry");
    cJSON *root = NULL;
    if (!r || !base || !(r->path = strdup(source ? source : "registry"))) {
        fail(&c, "out of memory");
        goto fail;
    }
    c.base = base;
    if (all_blank(text, text + len)) {
        fail(&c, "is empty (expected %s)",
             single ? "one tenant object" : "a JSON array of tenant objects");
        goto fail;
    }
    const char *stop = text;
    root = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
    if (!root) {
        /* cJSON says NULL for a failed allocation too: strict-valid text
         * that did not parse ran out of memory -- unless it holds a lone
         * UTF-16 surrogate, which cJSON refuses. */
        if (lw_json_valid(text, len) && !lw_json_unpaired_surrogate(text, len))
            fail(&c, "out of memory");
        else
            malformed(&c, text, len, stop, "malformed JSON", "");
        goto fail;
    }
    if (!all_blank(stop, text + len)) {
        while (*stop == ' ' || *stop == '\t' || *stop == '\n' || *stop == '\r')
            stop++;
        malformed(&c, text, len, stop, "malformed JSON", ": unexpected text after the JSON value");
        goto fail;
    }
    /* cJSON decodes \u0000 into a NUL byte, which ends the C string it
     * hands out: "acme\u0000x" would be read as tenant "acme",
     * "redis://h\u0000@x" as "redis://h". No registry string may hold it. */
    const char *nul = lw_json_nul_escape(text, len);
    if (nul) {
        malformed(&c, text, len, nul, "\\u0000",
                  ": a registry string must not hold U+0000 (it would cut the string short)");
        goto fail;
    }
    /* A file may hold one object as well as an array: one tenant per file
     * is a common layout, and there is nothing else it could mean. */
    int one = cJSON_IsObject(root);
    if (single && !one) {
        fail(&c, "must hold one tenant object");
        goto fail;
    }
    if (!one && !cJSON_IsArray(root)) {
        fail(&c, "must hold a JSON array of tenant objects");
        goto fail;
    }
    size_t n = one ? 1 : (size_t)cJSON_GetArraySize(root);
    r->tenants = calloc(n + 1, sizeof *r->tenants);
    if (!r->tenants) {
        fail(&c, "out of memory");
        goto fail;
    }
    const cJSON *item = one ? root : root->child;
    for (int i = 1; item; item = one ? NULL : item->next, i++) {
        size_t wl = strlen(c.where);
        lw_tenant *t = &r->tenants[r->ntenants++];
        if (parse_tenant(&c, item, one ? 0 : i, r->path, t) != 0)
            goto fail;
        c.where[wl] = '\0';
        for (size_t k = 0; k + 1 < r->ntenants; k++) {
            if (strcmp(r->tenants[k].name, t->name) == 0) {
                fail(&c, "tenant #%d (\"%s\"): tenant \"%s\" is defined twice (also tenant #%zu)",
                     i, t->name, t->name, k + 1);
                goto fail;
            }
        }
    }
    cJSON_Delete(root);
    free(base);
    return r;
fail:
    cJSON_Delete(root);
    free(base);
    lw_registry_free(r);
    return NULL;
}

/* Reads and parses one file. */
static lw_registry *load_file(const char *path, int single, char *err, size_t errlen)
{
    size_t len;
    char *text = lw_read_file(path, MAX_FILE_BYTES, &len);
    if (!text) {
        if (errno == EFBIG)
            snprintf(err, errlen, "%s: larger than %u MiB; is this really the registry?", path,
                     MAX_FILE_BYTES >> 20);
        else if (errno == EINVAL)
            snprintf(
                err, errlen,
                "%s: not a regular file (a FIFO, a device?); the registry is a JSON file or a directory of them",
                path);
        else
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    lw_registry *r = lw_registry_parse(text, len, path, single, err, errlen);
    free(text);
    return r;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the *.json files of `dir` not starting with '.', sorted
 * bytewise (not by locale: the order must not depend on the environment).
 * Returns the count, or -1 with errno. */
static int list_json(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= 5 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                goto oom;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name)))
            goto oom;
        n++;
    }
    closedir(d);
    if (n > INT_MAX)
        n = INT_MAX;
    if (n)
        qsort(names, n, sizeof *names, by_name);
    *out = names;
    return (int)n;
oom:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    errno = ENOMEM;
    return -1;
}

/* Moves the tenants of `part` (one file) into `r`, refusing a tenant name
 * that an earlier file defined. Frees `part`. */
static int merge(lw_registry *r, lw_registry *part, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < part->ntenants && rc == 0; i++) {
        const lw_tenant *t = &part->tenants[i];
        const lw_tenant *other = lw_registry_find(r, t->name);
        if (other) {
            snprintf(err, errlen, "%s: tenant \"%s\" is already defined in %s", t->source, t->name,
                     other->source);
            rc = -1;
        }
    }
    lw_tenant *nt =
        rc ? NULL : realloc(r->tenants, (r->ntenants + part->ntenants + 1) * sizeof *nt);
    if (!rc && !nt) {
        snprintf(err, errlen, "%s: out of memory", part->path);
        rc = -1;
    }
    if (!rc) {
        memcpy(nt + r->ntenants, part->tenants, part->ntenants * sizeof *nt);
        r->tenants = nt;
        r->ntenants += part->ntenants;
        part->ntenants = 0; /* moved, not to be freed with part */
    }
    lw_registry_free(part);
    return rc;
}

static lw_registry *load_dir(const char *dir, char *err, size_t errlen)
{
    char **names = NULL;
    int n = list_json(dir, &names);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot read the directory: %s", dir, strerror(errno));
        return NULL;
    }
    lw_registry *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(dir))) {
        snprintf(err, errlen, "%s: out of memory", dir);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        struct stat st;
        if (!path) {
            snprintf(err, errlen, "%s: out of memory", dir);
            goto fail;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        /* stat, not lstat: Kubernetes mounts ConfigMap files as symlinks. */
        const char *why = stat(path, &st) != 0   ? strerror(errno)
                          : !S_ISREG(st.st_mode) ? "not a regular file"
                                                 : NULL;
        if (why) {
            snprintf(err, errlen, "%s: %s", path, why);
            free(path);
            goto fail;
        }
        lw_registry *part = load_file(path, 1, err, errlen);
        free(path);
        if (!part || merge(r, part, err, errlen) != 0)
            goto fail;
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
fail:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    lw_registry_free(r);
    return NULL;
}

/* Refuses two (tenant, kind) pairs naming one spool directory (by its real
 * path once it exists: `D` and `D/` and a symlink to D are one): each would
 * enqueue every entry as its own job, and one tenant's handlers would run
 * the other's jobs. Returns 0, or -1 with why in err. */
static int spools_disjoint(const lw_registry *r, char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; i < r->ntenants; i++)
        n += r->tenants[i].nspools;
    if (n < 2)
        return 0;
    char **real = calloc(n, sizeof *real);
    const lw_tenant **who = calloc(n, sizeof *who);
    const lw_spool_cfg **sp = calloc(n, sizeof *sp);
    int rc = 0;
    if (!real || !who || !sp) {
        snprintf(err, errlen, "%s: out of memory", r->path);
        rc = -1;
    }
    size_t k = 0;
    for (size_t i = 0; !rc && i < r->ntenants; i++)
        for (size_t j = 0; j < r->tenants[i].nspools; j++, k++) {
            who[k] = &r->tenants[i];
            sp[k] = &r->tenants[i].spools[j];
            real[k] = realpath(sp[k]->dir, NULL);
            if (!real[k] && (real[k] = strdup(sp[k]->dir))) {
                /* Not there yet: as written, less trailing slashes. */
                size_t l = strlen(real[k]);
                while (l > 1 && real[k][l - 1] == '/')
                    real[k][--l] = '\0';
            }
        }
    for (size_t a = 0; !rc && a < n; a++)
        for (size_t b = a + 1; !rc && b < n; b++)
            if (real[a] && real[b] && strcmp(real[a], real[b]) == 0) {
                snprintf(
                    err, errlen,
                    "%s: tenant \"%s\" spool of kind %s and tenant \"%s\" spool of kind %s are one "
                    "directory (%s): each would run its jobs",
                    who[b]->source, who[a]->name, sp[a]->kind, who[b]->name, sp[b]->kind, real[a]);
                rc = -1;
            }
    for (size_t i = 0; real && i < n; i++)
        free(real[i]);
    free(real);
    free(who);
    free(sp);
    return rc;
}

lw_registry *lw_registry_load(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (!path || !*path) {
        snprintf(err, errlen, "registry: no path given");
        return NULL;
    }
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    lw_registry *r =
        S_ISDIR(st.st_mode) ? load_dir(path, err, errlen) : load_file(path, 0, err, errlen);
    if (r && spools_disjoint(r, err, errlen) != 0) {
        lw_registry_free(r);
        return NULL;
    }
    return r;
}

/* --- lookups ------------------------------------------------------------- */

static int str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

int lw_tenant_same_runtime(const lw_tenant *a, const lw_tenant *b)
{
    if (!str_eq(a->name, b->name) || !str_eq(a->module_path, b->module_path) ||
        !str_eq(a->config_json, b->config_json) || !str_eq(a->redis_url, b->redis_url) ||
        !str_eq(a->user, b->user) || a->nexecs != b->nexecs || a->nspools != b->nspools ||
        a->nqueues != b->nqueues || a->defaults.attempts != b->defaults.attempts ||
        a->defaults.timeout_ms != b->defaults.timeout_ms ||
        a->defaults.backoff_ms != b->defaults.backoff_ms || a->partitions != b->partitions)
        return 0;
    for (size_t i = 0; i < a->nexecs; i++) {
        if (!str_eq(a->execs[i].kind, b->execs[i].kind) || a->execs[i].argc != b->execs[i].argc ||
            a->execs[i].persistent != b->execs[i].persistent ||
            a->execs[i].max_jobs != b->execs[i].max_jobs ||
            a->execs[i].idle_exit != b->execs[i].idle_exit)
            return 0;
        for (size_t k = 0; k < a->execs[i].argc; k++)
            if (!str_eq(a->execs[i].argv[k], b->execs[i].argv[k]))
                return 0;
    }
    for (size_t i = 0; i < a->nspools; i++)
        if (!str_eq(a->spools[i].kind, b->spools[i].kind) ||
            !str_eq(a->spools[i].dir, b->spools[i].dir))
            return 0;
    for (size_t i = 0; i < a->nqueues; i++)
        if (!str_eq(a->queues[i].name, b->queues[i].name) ||
            a->queues[i].max_active != b->queues[i].max_active)
            return 0;
    return 1;
}

const lw_tenant *lw_registry_find(const lw_registry *r, const char *tenant)
{
    for (size_t i = 0; r && tenant && i < r->ntenants; i++) {
        if (strcmp(r->tenants[i].name, tenant) == 0)
            return &r->tenants[i];
    }
    return NULL;
}

const lw_exec_handler *lw_tenant_exec(const lw_tenant *t, const char *kind)
{
    for (size_t i = 0; t && kind && i < t->nexecs; i++) {
        if (strcmp(t->execs[i].kind, kind) == 0)
            return &t->execs[i];
    }
    return NULL;
}

const lw_spool_cfg *lw_tenant_spool(const lw_tenant *t, const char *kind)
{
    for (size_t i = 0; t && kind && i < t->nspools; i++) {
        if (strcmp(t->spools[i].kind, kind) == 0)
            return &t->spools[i];
    }
    return NULL;
}

int lw_tenant_queue_cap(const lw_tenant *t, const char *queue)
{
    for (size_t i = 0; t && queue && i < t->nqueues; i++) {
        if (strcmp(t->queues[i].name, queue) == 0)
            return t->queues[i].max_active;
    }
    return 0;
}

/*
 * fuzz_registry.c — the tenant registry (common/registry.c) through its
 * in-memory entry point lw_registry_parse, which lw_registry_load calls with
 * a file's whole text: the file form (an array of tenants, or one object)
 * and the per-file form of a registry directory (exactly one object).
 *
 * The input is the registry text. What must hold of a registry that loads:
 *  - every name (tenant, exec kind, spool kind, queue) is a safe name and
 *    unique, so the lookups find each entry itself;
 *  - exec argv is non-empty, NULL-terminated, its program non-empty;
 *    spool directories and module paths are absolute once resolved against
 *    the registry's directory (relative ones are resolved);
 *  - defaults are in range, the per-tenant Redis URL parses, and config_json
 *    is JSON;
 *  - names, paths, argv, URLs and config strings are taken whole: an
 *    accepted registry holds no \u0000 escape, which cJSON would decode into
 *    a NUL byte and so cut the C string short ("acme\u0000x" read as
 *    "acme", "redis://h\u0000@x" as "redis://h");
 *  - single mode accepts exactly what array mode accepts for an object.
 * A refusal leaves a message starting with the source name.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "names.h"
#include "registry.h"
#include "url.h"

/* A relative source whose directory does not exist: relative paths in the
 * registry then resolve against "fuzzreg" as written. */
#define SOURCE "fuzzreg/registry.json"

static void check_tenant(const lw_registry *r, const lw_tenant *t)
{
    FUZZ_CHECK(lw_name_is_safe(t->name));
    FUZZ_CHECK(lw_registry_find(r, t->name) == t);
    FUZZ_CHECK(t->source != NULL && strcmp(t->source, SOURCE) == 0);
    FUZZ_CHECK(t->config_json != NULL);
    cJSON *cfg = cJSON_Parse(t->config_json);
    FUZZ_CHECK(cfg != NULL);
    cJSON_Delete(cfg);
    FUZZ_CHECK(!t->module_path || t->module_path[0] == '/' ||
               strncmp(t->module_path, "fuzzreg/", 8) == 0);
    for (size_t i = 0; i < t->nexecs; i++) {
        const lw_exec_handler *h = &t->execs[i];
        FUZZ_CHECK(lw_name_is_safe(h->kind));
        FUZZ_CHECK(lw_tenant_exec(t, h->kind) == h);
        FUZZ_CHECK(h->argc >= 1 && h->argv[0] != NULL && h->argv[0][0] != '\0');
        for (size_t k = 0; k < h->argc; k++)
            FUZZ_CHECK(h->argv[k] != NULL);
        FUZZ_CHECK(h->argv[h->argc] == NULL);
    }
    for (size_t i = 0; i < t->nspools; i++) {
        const lw_spool_cfg *s = &t->spools[i];
        FUZZ_CHECK(lw_name_is_safe(s->kind));
        FUZZ_CHECK(lw_tenant_spool(t, s->kind) == s);
        FUZZ_CHECK(s->dir != NULL && (s->dir[0] == '/' || strncmp(s->dir, "fuzzreg/", 8) == 0));
    }
    for (size_t i = 0; i < t->nqueues; i++) {
        const lw_queue_cfg *q = &t->queues[i];
        FUZZ_CHECK(lw_name_is_safe(q->name));
        FUZZ_CHECK(q->max_active >= 0);
        FUZZ_CHECK(lw_tenant_queue_cap(t, q->name) == q->max_active);
    }
    FUZZ_CHECK(t->defaults.attempts >= 1);
    FUZZ_CHECK(t->defaults.timeout_ms > 0);
    FUZZ_CHECK(t->defaults.backoff_ms >= 0);
    /* Ten years in milliseconds, the documented bound. */
    FUZZ_CHECK(t->defaults.timeout_ms <= INT64_C(315360000000));
    FUZZ_CHECK(t->defaults.backoff_ms <= INT64_C(315360000000));
    if (t->redis_url) {
        lw_url *u = lw_url_parse(t->redis_url, NULL, 0);
        FUZZ_CHECK(u != NULL);
        lw_url_free(u);
    }
}

static void check_registry(const lw_registry *r)
{
    FUZZ_CHECK(r->path != NULL && strcmp(r->path, SOURCE) == 0);
    for (size_t i = 0; i < r->ntenants; i++)
        check_tenant(r, &r->tenants[i]);
}

static void check_refusal(const char *err, size_t errlen)
{
    FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
    FUZZ_CHECK(strncmp(err, SOURCE ": ", strlen(SOURCE) + 2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_exact(data, size);
    char err[1024];
    memset(err, 'x', sizeof err);

    lw_registry *arr = lw_registry_parse(text, size, SOURCE, 0, err, sizeof err);
    if (arr) {
        check_registry(arr);
        FUZZ_CHECK(fuzz_nul_escape(text, size) == NULL);
    } else
        check_refusal(err, sizeof err);

    memset(err, 'x', sizeof err);
    lw_registry *one = lw_registry_parse(text, size, SOURCE, 1, err, sizeof err);
    if (one) {
        check_registry(one);
        FUZZ_CHECK(one->ntenants == 1);
        /* An object is one tenant in either mode. */
        FUZZ_CHECK(arr != NULL && arr->ntenants == 1);
        FUZZ_CHECK(strcmp(arr->tenants[0].name, one->tenants[0].name) == 0);
    } else {
        check_refusal(err, sizeof err);
    }

    lw_registry_free(arr);
    lw_registry_free(one);
    free(text);
    return 0;
}

/* test_registry.c — the tenant registry: file and directory forms, every
 * field, and every error, each message naming the file. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "registry.h"
#include "tutil.h"

static char *dir; /* this test's temp dir (its real path) */

static void setup(void)
{
    char *d = tu_tmpdir();
    dir = realpath(d, NULL);
    ck_assert_ptr_nonnull(dir);
    free(d);
}

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
    dir = NULL;
}

/* Writes `text` as DIR/name and loads DIR/name; expects failure with
 * exactly "DIR/name: " + want. */
static void load_fails(const char *name, const char *text, const char *want)
{
    char err[1024] = "", expect[1024];
    tu_write(dir, name, text);
    char *path = tu_path(dir, name);
    lw_registry *r = lw_registry_load(path, err, sizeof err);
    ck_assert_msg(r == NULL, "%s loaded", text);
    snprintf(expect, sizeof expect, "%s: %s", path, want);
    ck_assert_str_eq(err, expect);
    free(path);
}

static lw_registry *load_ok(const char *name, const char *text)
{
    char err[1024] = "";
    tu_write(dir, name, text);
    char *path = tu_path(dir, name);
    lw_registry *r = lw_registry_load(path, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    free(path);
    return r;
}

static const char FULL[] =
    "[\n"
    "  {\n"
    "    \"tenant\": \"acme\",\n"
    "    \"module\": \"/usr/lib/lanework/modules/example.so\",\n"
    "    \"config\": {\"any\": \"json\", \"n\": [1, 2.5, true, null]},\n"
    "    \"exec\": {\"thumbnail\": [\"/usr/local/bin/make-thumb\", \"--fast\"], \"noop\": [\"true\"]},\n"
    "    \"spools\": {\"upload\": \"/var/lib/lanework/acme/uploads\", \"local\": \"spool/in\"},\n"
    "    \"queues\": {\"default\": {}, \"chat\": {\"max_active\": 8}},\n"
    "    \"redis\": \"redis://:pw@shard-2:6379/0\",\n"
    "    \"defaults\": {\"attempts\": 5, \"timeout\": 1.5, \"backoff\": 0.25, \"keep_succeeded\": 60,\n"
    "                 \"keep_failed\": 86400, \"events_max\": 5000},\n"
    "    \"user\": \"acme-jobs\"\n"
    "  },\n"
    "  {\"tenant\": \"beta\", \"module\": \"mods/beta.so\"}\n"
    "]\n";

START_TEST(file_every_field)
{
    lw_registry *r = load_ok("registry.json", FULL);
    char *path = tu_path(dir, "registry.json");
    ck_assert_str_eq(r->path, path);
    ck_assert_uint_eq(r->ntenants, 2);

    const lw_tenant *t = &r->tenants[0];
    ck_assert_str_eq(t->name, "acme");
    ck_assert_str_eq(t->module_path, "/usr/lib/lanework/modules/example.so");
    ck_assert_str_eq(t->config_json, "{\"any\":\"json\",\"n\":[1,2.5,true,null]}");
    ck_assert_uint_eq(t->nexecs, 2);
    ck_assert_str_eq(t->execs[0].kind, "thumbnail");
    ck_assert_uint_eq(t->execs[0].argc, 2);
    ck_assert_str_eq(t->execs[0].argv[0], "/usr/local/bin/make-thumb");
    ck_assert_str_eq(t->execs[0].argv[1], "--fast");
    ck_assert_ptr_null(t->execs[0].argv[2]);
    ck_assert_str_eq(t->execs[1].kind, "noop");
    ck_assert_uint_eq(t->execs[1].argc, 1);
    ck_assert_ptr_null(t->execs[1].argv[1]);
    ck_assert_uint_eq(t->nspools, 2);
    ck_assert_str_eq(t->spools[0].kind, "upload");
    ck_assert_str_eq(t->spools[0].dir, "/var/lib/lanework/acme/uploads");
    char *local = tu_path(dir, "spool/in");
    ck_assert_str_eq(t->spools[1].dir, local); /* relative: against the file's directory */
    free(local);
    ck_assert_uint_eq(t->nqueues, 2);
    ck_assert_str_eq(t->queues[0].name, "default");
    ck_assert_int_eq(t->queues[0].max_active, 0);
    ck_assert_str_eq(t->queues[1].name, "chat");
    ck_assert_int_eq(t->queues[1].max_active, 8);
    ck_assert_str_eq(t->redis_url, "redis://:pw@shard-2:6379/0");
    ck_assert_int_eq(t->defaults.attempts, 5);
    ck_assert_int_eq(t->defaults.timeout_ms, 1500);
    ck_assert_int_eq(t->defaults.backoff_ms, 250);
    ck_assert_int_eq(t->defaults.keep_succeeded_s, 60);
    ck_assert_int_eq(t->defaults.keep_failed_s, 86400);
    ck_assert_int_eq(t->defaults.events_max, 5000);
    ck_assert_str_eq(t->user, "acme-jobs");
    ck_assert_str_eq(t->source, path);

    t = &r->tenants[1];
    ck_assert_str_eq(t->name, "beta");
    char *mod = tu_path(dir, "mods/beta.so");
    ck_assert_str_eq(t->module_path, mod);
    free(mod);
    ck_assert_str_eq(t->config_json, "null");
    ck_assert_uint_eq(t->nexecs, 0);
    ck_assert_uint_eq(t->nspools, 0);
    ck_assert_uint_eq(t->nqueues, 0);
    ck_assert_ptr_null(t->redis_url);
    ck_assert_ptr_null(t->user);
    ck_assert_int_eq(t->defaults.attempts, LW_DEFAULT_ATTEMPTS);
    ck_assert_int_eq(t->defaults.timeout_ms, LW_DEFAULT_TIMEOUT_S * 1000);
    ck_assert_int_eq(t->defaults.backoff_ms, LW_DEFAULT_BACKOFF_MS);
    ck_assert_int_eq(t->defaults.keep_succeeded_s, 0); /* not set: settings.h falls back */
    ck_assert_int_eq(t->defaults.events_max, 0);
    free(path);
    lw_registry_free(r);
}
END_TEST

START_TEST(lookups)
{
    lw_registry *r = load_ok("registry.json", FULL);
    const lw_tenant *t = lw_registry_find(r, "acme");
    ck_assert_ptr_eq(t, &r->tenants[0]);
    ck_assert_ptr_eq(lw_registry_find(r, "beta"), &r->tenants[1]);
    ck_assert_ptr_null(lw_registry_find(r, "nope"));
    ck_assert_ptr_eq(lw_tenant_exec(t, "noop"), &t->execs[1]);
    ck_assert_ptr_null(lw_tenant_exec(t, "upload"));
    ck_assert_ptr_eq(lw_tenant_spool(t, "upload"), &t->spools[0]);
    ck_assert_ptr_null(lw_tenant_spool(t, "thumbnail"));
    ck_assert_int_eq(lw_tenant_queue_cap(t, "chat"), 8);
    ck_assert_int_eq(lw_tenant_queue_cap(t, "default"), 0);
    ck_assert_int_eq(lw_tenant_queue_cap(t, "unlisted"), 0);
    lw_registry_free(r);
}
END_TEST

START_TEST(file_single_object_and_empty)
{
    lw_registry *r = load_ok("one.json", "{\"tenant\": \"solo\", \"config\": null}");
    ck_assert_uint_eq(r->ntenants, 1);
    ck_assert_str_eq(r->tenants[0].name, "solo");
    ck_assert_str_eq(r->tenants[0].config_json, "null");
    lw_registry_free(r);
    r = load_ok("empty.json", " [ ] ");
    ck_assert_uint_eq(r->ntenants, 0);
    lw_registry_free(r);
}
END_TEST

START_TEST(directory_form)
{
    tu_mkdir(dir, "reg.d");
    char *d = tu_path(dir, "reg.d");
    tu_write(d, "b.json", "{\"tenant\": \"bravo\", \"spools\": {\"up\": \"../spool\"}}");
    tu_write(d, "a.json", "{\"tenant\": \"alpha\", \"module\": \"alpha.so\"}");
    tu_write(d, ".hidden.json", "this is not JSON and is ignored");
    tu_write(d, "notes.txt", "ignored too");
    tu_write(d, "c.json.bak", "and this");
    char err[1024] = "";
    lw_registry *r = lw_registry_load(d, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_str_eq(r->path, d);
    ck_assert_uint_eq(r->ntenants, 2);
    ck_assert_str_eq(r->tenants[0].name, "alpha");
    char *want = tu_path(d, "alpha.so");
    ck_assert_str_eq(r->tenants[0].module_path, want);
    free(want);
    want = tu_path(d, "a.json");
    ck_assert_str_eq(r->tenants[0].source, want);
    free(want);
    ck_assert_str_eq(r->tenants[1].name, "bravo");
    want = tu_path(d, "../spool");
    ck_assert_str_eq(r->tenants[1].spools[0].dir, want);
    free(want);
    lw_registry_free(r);

    /* An empty directory is an empty registry. */
    tu_mkdir(dir, "empty.d");
    char *e = tu_path(dir, "empty.d");
    r = lw_registry_load(e, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->ntenants, 0);
    lw_registry_free(r);
    free(e);
    free(d);
}
END_TEST

START_TEST(directory_errors)
{
    char err[1024] = "", want[2048];
    tu_mkdir(dir, "dup.d");
    char *d = tu_path(dir, "dup.d");
    tu_write(d, "a.json", "{\"tenant\": \"acme\"}");
    tu_write(d, "b.json", "{\"tenant\": \"acme\"}");
    ck_assert_ptr_null(lw_registry_load(d, err, sizeof err));
    snprintf(want, sizeof want, "%s/b.json: tenant \"acme\" is already defined in %s/a.json", d, d);
    ck_assert_str_eq(err, want);

    /* Each file holds one object, not an array. */
    tu_write(d, "b.json", "[{\"tenant\": \"b\"}]");
    ck_assert_ptr_null(lw_registry_load(d, err, sizeof err));
    snprintf(want, sizeof want, "%s/b.json: must hold one tenant object", d);
    ck_assert_str_eq(err, want);

    tu_write(d, "b.json", "{\"tenant\": \"b\", \"queues\": {\"q\": {\"max_active\": 1.5}}}");
    ck_assert_ptr_null(lw_registry_load(d, err, sizeof err));
    snprintf(want, sizeof want, "%s/b.json: queues.q.max_active must be a non-negative integer", d);
    ck_assert_str_eq(err, want);

    char *b = tu_path(d, "b.json");
    ck_assert_int_eq(unlink(b), 0);
    free(b);
    tu_mkdir(d, "c.json");
    ck_assert_ptr_null(lw_registry_load(d, err, sizeof err));
    snprintf(want, sizeof want, "%s/c.json: not a regular file", d);
    ck_assert_str_eq(err, want);
    free(d);
}
END_TEST

START_TEST(missing_file)
{
    char err[1024] = "", want[1024];
    char *p = tu_path(dir, "nope.json");
    ck_assert_ptr_null(lw_registry_load(p, err, sizeof err));
    snprintf(want, sizeof want, "%s: No such file or directory", p);
    ck_assert_str_eq(err, want);
    free(p);
}
END_TEST

START_TEST(malformed)
{
    char err[1024] = "";
    tu_write(dir, "bad.json", "[\n {\"tenant\": \"a\",}\n]\n");
    char *p = tu_path(dir, "bad.json");
    ck_assert_ptr_null(lw_registry_load(p, err, sizeof err));
    char want[1024];
    snprintf(want, sizeof want, "%s: malformed JSON at line 2, column ", p);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    free(p);

    load_fails("trail.json", "[{\"tenant\": \"a\"}] x",
               "malformed JSON at line 1, column 19: unexpected text after the JSON value");
    /* Valid by RFC 8259's grammar, refused by cJSON: not "out of memory". */
    load_fails("surrogate.json", "[{\"tenant\": \"a\", \"config\": {\"s\": \"\\ud800x\"}}]",
               "malformed JSON at line 1, column 35");
    load_fails("empty.json", " \n", "is empty (expected a JSON array of tenant objects)");
    load_fails("num.json", "42", "must hold a JSON array of tenant objects");
    load_fails("elem.json", "[{\"tenant\": \"a\"}, 7]",
               "tenant #2: must be a JSON object (one tenant)");
}
END_TEST

START_TEST(partitions)
{
    lw_registry *r =
        load_ok("p.json", "[{\"tenant\": \"a\"}, {\"tenant\": \"b\", \"partitions\": 8, "
                          "\"queues\": {\"q\": {\"max_active\": 8}}}]");
    ck_assert_int_eq(r->tenants[0].partitions, 1);
    ck_assert_int_eq(r->tenants[1].partitions, 8);
    lw_registry *r2 = load_ok("p2.json", "[{\"tenant\": \"b\", \"partitions\": 4, "
                                         "\"queues\": {\"q\": {\"max_active\": 8}}}]");
    /* Another count is another runtime: its lanes route elsewhere. */
    ck_assert_int_eq(lw_tenant_same_runtime(&r->tenants[1], &r2->tenants[0]), 0);
    lw_registry_free(r);
    lw_registry_free(r2);
    load_fails("p.json", "[{\"tenant\": \"a\", \"partitions\": 0}]",
               "tenant #1 (\"a\"): partitions must be an integer from 1 to 64");
    load_fails("p.json", "[{\"tenant\": \"a\", \"partitions\": 65}]",
               "tenant #1 (\"a\"): partitions must be an integer from 1 to 64");
    load_fails("p.json", "[{\"tenant\": \"a\", \"partitions\": \"8\"}]",
               "tenant #1 (\"a\"): partitions must be an integer from 1 to 64");
    load_fails("p.json", "[{\"tenant\": \"a\", \"partitions\": 2.5}]",
               "tenant #1 (\"a\"): partitions must be an integer from 1 to 64");
    load_fails("p.json",
               "[{\"tenant\": \"a\", \"partitions\": 4, \"queues\": {\"q\": {\"max_active\": 3}}}]",
               "tenant #1 (\"a\"): queues.q.max_active (3) is below partitions (4): each partition "
               "needs a share of at least 1");
}
END_TEST

START_TEST(tenant_errors)
{
    load_fails("r.json", "[{\"module\": \"x.so\"}]",
               "tenant #1: \"tenant\" is missing (the tenant's name)");
    load_fails("r.json", "[{\"tenant\": 5}]", "tenant #1: tenant must be a string");
    load_fails(
        "r.json", "[{\"tenant\": \"../etc\"}]",
        "tenant #1: tenant \"../etc\" is not a safe name (letters, digits, '-', '_', '.'; not "
        "starting with '.'; at most 200 bytes)");
    load_fails(
        "r.json", "[{\"tenant\": \".hidden\"}]",
        "tenant #1: tenant \".hidden\" is not a safe name (letters, digits, '-', '_', '.'; not "
        "starting with '.'; at most 200 bytes)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\"}, {\"tenant\": \"acme\", \"spool\": {}}]",
        "tenant #2 (\"acme\"): unknown field \"spool\" (known: tenant, module, config, exec, "
        "spools, queues, redis, defaults, user, partitions)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"user\": \"x y\"}]",
        "tenant #1 (\"a\"): user \"x y\" is not a user name (letters, digits, _ - . and a final $)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"user\": 7}]",
        "tenant #1 (\"a\"): user must be a user name or uid (a string of 1 to 64 characters)");
    load_fails("r.json", "[{\"tenant\": \"a\"}, {\"tenant\": \"b\"}, {\"tenant\": \"a\"}]",
               "tenant #3 (\"a\"): tenant \"a\" is defined twice (also tenant #1)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"module\": \"x\", \"module\": \"y\"}]",
               "tenant #1 (\"a\"): field \"module\" is given twice");
}
END_TEST

/* Found by tests/fuzz/fuzz_registry: cJSON decodes \u0000 into a NUL byte,
 * so "acme\u0000evil" loaded as tenant "acme", "redis://h\u0000@x" as
 * "redis://h", and argv strings were cut short. */
START_TEST(refuses_nul)
{
    const char *why = ": a registry string must not hold U+0000 (it would cut the string short)";
    char want[256];
    snprintf(want, sizeof want, "\\u0000 at line 1, column 18%s", why);
    load_fails("r.json", "[{\"tenant\": \"acme\\u0000evil\"}]", want);
    snprintf(want, sizeof want, "\\u0000 at line 2, column 21%s", why);
    load_fails("r.json", "{\"tenant\": \"a\",\n \"redis\": \"redis://h\\u0000@x:1\"}", want);
    snprintf(want, sizeof want, "\\u0000 at line 1, column 40%s", why);
    load_fails("r.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": [\"/bin/x\\u0000y\"]}}]", want);

    /* An escaped backslash followed by "u0000" is not U+0000. */
    lw_registry *r =
        load_ok("ok.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": [\"/bin/x\\\\u0000\"]}}]");
    ck_assert_str_eq(r->tenants[0].execs[0].argv[0], "/bin/x\\u0000");
    lw_registry_free(r);
}
END_TEST

/* The object form of an exec entry (CONTRACT section 11). */
START_TEST(exec_object_form)
{
    lw_registry *r = load_ok(
        "p.json", "[{\"tenant\": \"a\", \"exec\": {"
                  "\"exam\": {\"command\": [\"python3\", \"-m\", \"app\"], \"persistent\": true, "
                  "\"max_jobs\": 1000, \"idle_exit\": 60},"
                  "\"plain\": {\"command\": [\"/bin/true\"]},"
                  "\"arr\": [\"/bin/x\"]}}]");
    const lw_tenant *t = &r->tenants[0];
    const lw_exec_handler *h = lw_tenant_exec(t, "exam");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->persistent, 1);
    ck_assert_int_eq(h->max_jobs, 1000);
    ck_assert_int_eq(h->idle_exit, 60);
    ck_assert_uint_eq(h->argc, 3);
    ck_assert_str_eq(h->argv[2], "app");
    ck_assert_ptr_null(h->argv[3]);
    h = lw_tenant_exec(t, "plain");
    ck_assert_int_eq(h->persistent, 0);
    ck_assert_str_eq(h->argv[0], "/bin/true");
    ck_assert_int_eq(lw_tenant_exec(t, "arr")->persistent, 0);
    lw_registry_free(r);

    /* Changing only a persistent setting is a runtime change (a reload
     * replaces the processes). */
    char err[256];
    static const char *const V[] = {
        "{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"persistent\": true, \"max_jobs\": 5}}}",
        "{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"persistent\": true, \"max_jobs\": 6}}}",
        "{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"persistent\": true, \"max_jobs\": 5, "
        "\"idle_exit\": 3}}}",
    };
    lw_registry *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = lw_registry_parse(V[i], strlen(V[i]), "r.json", 1, err, sizeof err);
        ck_assert_msg(v[i] != NULL, "%s", err);
    }
    ck_assert(lw_tenant_same_runtime(&v[0]->tenants[0], &v[0]->tenants[0]));
    ck_assert(!lw_tenant_same_runtime(&v[0]->tenants[0], &v[1]->tenants[0]));
    ck_assert(!lw_tenant_same_runtime(&v[0]->tenants[0], &v[2]->tenants[0]));
    for (int i = 0; i < 3; i++)
        lw_registry_free(v[i]);
}
END_TEST

START_TEST(exec_object_errors)
{
    load_fails("r.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"persistent\": true}}}]",
               "tenant #1 (\"a\"): exec.k: \"command\" is missing (the program and its arguments)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": []}}}]",
        "tenant #1 (\"a\"): exec.k.command must be a non-empty array of strings (the program and its "
        "arguments)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": \"/x\"}}}]",
        "tenant #1 (\"a\"): exec.k.command must be a non-empty array of strings (the program and its "
        "arguments)");
    load_fails(
        "r.json",
        "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"persistent\": 1}}}]",
        "tenant #1 (\"a\"): exec.k.persistent must be true or false");
    load_fails(
        "r.json",
        "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"persistent\": true, "
        "\"max_jobs\": -1}}}]",
        "tenant #1 (\"a\"): exec.k.max_jobs must be a whole number of attempts from 0 (no limit) to "
        "1000000000");
    load_fails(
        "r.json",
        "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"persistent\": true, "
        "\"idle_exit\": 1.5}}}]",
        "tenant #1 (\"a\"): exec.k.idle_exit must be a whole number of seconds from 0 (never) to 31536000");
    load_fails("r.json",
               "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"max_jobs\": 3}}}]",
               "tenant #1 (\"a\"): exec.k: max_jobs only applies with \"persistent\": true");
    load_fails(
        "r.json",
        "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"persistent\": true, "
        "\"max_job\": 3}}}]",
        "tenant #1 (\"a\"): exec.k: unknown field \"max_job\" (known: command, persistent, max_jobs, "
        "idle_exit)");
    load_fails(
        "r.json",
        "[{\"tenant\": \"a\", \"exec\": {\"k\": {\"command\": [\"/x\"], \"command\": [\"/y\"]}}}]",
        "tenant #1 (\"a\"): exec.k: field \"command\" is given twice");
}
END_TEST

START_TEST(type_errors)
{
    load_fails("r.json", "[{\"tenant\": \"a\", \"module\": 5}]",
               "tenant #1 (\"a\"): module must be a path (a non-empty string)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"module\": \"\"}]",
               "tenant #1 (\"a\"): module must be a path (a non-empty string)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"exec\": [\"x\"]}]",
               "tenant #1 (\"a\"): exec must be an object (kind -> [\"program\", \"arg\", ...] or "
               "{\"command\": [...], \"persistent\": true})");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": []}}]",
        "tenant #1 (\"a\"): exec.k must be a non-empty array of strings (the program and its "
        "arguments)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": [\"/bin/x\", 1]}}]",
        "tenant #1 (\"a\"): exec.k must be a non-empty array of strings (the program and its "
        "arguments)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"exec\": {\"k\": \"/bin/x\"}}]",
        "tenant #1 (\"a\"): exec.k must be a non-empty array of strings (the program and its "
        "arguments)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"exec\": {\"a/b\": [\"x\"]}}]",
        "tenant #1 (\"a\"): exec: kind \"a/b\" is not a safe name (letters, digits, '-', '_', "
        "'.'; not starting with '.'; at most 200 bytes)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"spools\": {\"up\": 1}}]",
               "tenant #1 (\"a\"): spools.up must be a directory (a non-empty string)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"spools\": {\"u p\": \"/x\"}}]",
        "tenant #1 (\"a\"): spools: kind \"u p\" is not a safe name (letters, digits, '-', '_', "
        "'.'; not starting with '.'; at most 200 bytes)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"queues\": {\"chat\": 3}}]",
               "tenant #1 (\"a\"): queues.chat must be an object ({} or {\"max_active\": N})");
    load_fails(
        "r.json",
        "[{\"tenant\": \"a\"}, {\"tenant\": \"acme\", \"queues\": {\"chat\": {\"max_active\": -1}}}]",
        "tenant #2 (\"acme\"): queues.chat.max_active must be a non-negative integer");
    load_fails("r.json", "[{\"tenant\": \"a\", \"queues\": {\"chat\": {\"max_active\": \"8\"}}}]",
               "tenant #1 (\"a\"): queues.chat.max_active must be a non-negative integer");
    load_fails("r.json", "[{\"tenant\": \"a\", \"queues\": {\"chat\": {\"max\": 1}}}]",
               "tenant #1 (\"a\"): queues.chat: unknown field \"max\" (known: max_active)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"queues\": {\"q:x\": {}}}]",
               "tenant #1 (\"a\"): queues: queue name \"q:x\" is not a safe name (letters, digits, "
               "'-', '_', '.'; not starting with '.'; at most 200 bytes)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"redis\": 6379}]",
               "tenant #1 (\"a\"): redis must be a string (a Redis URL)");
    load_fails("r.json", "[{\"tenant\": \"a\", \"defaults\": {\"attempts\": 0}}]",
               "tenant #1 (\"a\"): defaults.attempts must be an integer >= 1");
    load_fails("r.json", "[{\"tenant\": \"a\", \"defaults\": {\"attempts\": 2.5}}]",
               "tenant #1 (\"a\"): defaults.attempts must be an integer >= 1");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"defaults\": {\"timeout\": 0}}]",
        "tenant #1 (\"a\"): defaults.timeout must be a number of seconds > 0 (at most 10 years)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"defaults\": {\"backoff\": -1}}]",
        "tenant #1 (\"a\"): defaults.backoff must be a number of seconds >= 0 (at most 10 years)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"defaults\": {\"retries\": 1}}]",
        "tenant #1 (\"a\"): defaults: unknown field \"retries\" (known: attempts, timeout, backoff, "
        "keep_succeeded, keep_failed, events_max)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"defaults\": 3}]",
        "tenant #1 (\"a\"): defaults must be an object (attempts, timeout, backoff, keep_succeeded, "
        "keep_failed, events_max)");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"defaults\": {\"keep_failed\": 0}}]",
        "tenant #1 (\"a\"): defaults.keep_failed must be a whole number of seconds from 1 to "
        "3153600000");
    load_fails(
        "r.json", "[{\"tenant\": \"a\", \"defaults\": {\"events_max\": 1.5}}]",
        "tenant #1 (\"a\"): defaults.events_max must be a whole number from 1 to 1000000000");
}
END_TEST

START_TEST(bad_redis_url)
{
    load_fails("r.json", "[{\"tenant\": \"a\", \"redis\": \"redis://:S3CRET@shard:99999\"}]",
               "tenant #1 (\"a\"): redis: bad Redis URL \"redis://:***@shard:99999\": port must be "
               "1..65535");
}
END_TEST

/* A reload keeps a tenant whose runtime is unchanged; settings alone are
 * not a change (they are published either way), anything a handler or a
 * claim uses is. */
START_TEST(same_runtime)
{
    static const char BASE[] =
        "{\"tenant\": \"a\", \"module\": \"/m.so\", \"config\": {\"k\": 1}, "
        "\"exec\": {\"x\": [\"/bin/x\", \"-f\"]}, \"queues\": {\"q\": {\"max_active\": 2}}, "
        "\"defaults\": {\"attempts\": 2%s}%s}";
    static const char *const SAME[] = {", \"keep_failed\": 60",
                                       ", \"events_max\": 10, \"keep_succeeded\": 5"};
    static const char *const OTHER[][2] = {
        {"", ", \"redis\": \"redis://h:1/0\""},
        {"", ", \"user\": \"nobody\""},
        {"", ", \"spools\": {\"k\": \"/sp\"}"},
        {", \"timeout\": 9", ""},
        {", \"backoff\": 0", ""},
    };
    char text[1024], err[256];
    snprintf(text, sizeof text, BASE, "", "");
    lw_registry *base = lw_registry_parse(text, strlen(text), "r.json", 1, err, sizeof err);
    ck_assert_msg(base != NULL, "%s", err);
    for (size_t i = 0; i < sizeof SAME / sizeof SAME[0]; i++) {
        snprintf(text, sizeof text, BASE, SAME[i], "");
        lw_registry *r = lw_registry_parse(text, strlen(text), "r.json", 1, err, sizeof err);
        ck_assert_msg(r != NULL, "%s", err);
        ck_assert_msg(lw_tenant_same_runtime(&base->tenants[0], &r->tenants[0]), "%s", text);
        lw_registry_free(r);
    }
    for (size_t i = 0; i < sizeof OTHER / sizeof OTHER[0]; i++) {
        snprintf(text, sizeof text, BASE, OTHER[i][0], OTHER[i][1]);
        lw_registry *r = lw_registry_parse(text, strlen(text), "r.json", 1, err, sizeof err);
        ck_assert_msg(r != NULL, "%s", err);
        ck_assert_msg(!lw_tenant_same_runtime(&base->tenants[0], &r->tenants[0]), "%s", text);
        lw_registry_free(r);
    }
    static const char *const EDITS[][2] = {
        {"\"/m.so\"", "\"/n.so\""},
        {"{\"k\": 1}", "{\"k\": 2}"},
        {"\"-f\"", "\"-g\""},
        {"\"max_active\": 2", "\"max_active\": 3"},
        {"\"attempts\": 2", "\"attempts\": 3"},
        {"[\"/bin/x\", \"-f\"]", "{\"command\": [\"/bin/x\", \"-f\"], \"persistent\": true}"}};
    for (size_t i = 0; i < sizeof EDITS / sizeof EDITS[0]; i++) {
        char edited[1024];
        snprintf(text, sizeof text, BASE, "", "");
        char *at = strstr(text, EDITS[i][0]);
        ck_assert_ptr_nonnull(at);
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, EDITS[i][1],
                 at + strlen(EDITS[i][0]));
        lw_registry *r = lw_registry_parse(edited, strlen(edited), "r.json", 1, err, sizeof err);
        ck_assert_msg(r != NULL, "%s", err);
        ck_assert_msg(!lw_tenant_same_runtime(&base->tenants[0], &r->tenants[0]), "%s", edited);
        lw_registry_free(r);
    }
    lw_registry_free(base);
}
END_TEST

/* Two (tenant, kind) pairs on one spool directory, however written. */
START_TEST(spools_shared)
{
    tu_mkdir(dir, "sp");
    char *sp = tu_path(dir, "sp");
    char text[2048], want[2048];
    snprintf(
        text, sizeof text,
        "[{\"tenant\": \"a\", \"spools\": {\"k\": \"%s\"}}, {\"tenant\": \"b\", \"spools\": {\"k\": \"%s/\"}}]",
        sp, sp);
    snprintf(
        want, sizeof want,
        "tenant \"a\" spool of kind k and tenant \"b\" spool of kind k are one directory (%s): each "
        "would run its jobs",
        sp);
    load_fails("shared.json", text, want);
    snprintf(text, sizeof text,
             "[{\"tenant\": \"a\", \"spools\": {\"k\": \"%s\", \"j\": \"%s/sub/..\"}}]", sp, sp);
    tu_mkdir(sp, "sub");
    snprintf(
        want, sizeof want,
        "tenant \"a\" spool of kind k and tenant \"a\" spool of kind j are one directory (%s): each "
        "would run its jobs",
        sp);
    load_fails("one.json", text, want);
    free(sp);
}
END_TEST

START_TEST(defaults_zero_backoff)
{
    lw_registry *r = load_ok(
        "r.json", "[{\"tenant\": \"a\", \"defaults\": {\"backoff\": 0, \"timeout\": 0.0001}}]");
    ck_assert_int_eq(r->tenants[0].defaults.backoff_ms, 0);
    ck_assert_int_eq(r->tenants[0].defaults.timeout_ms, 1); /* rounded up, never 0 */
    ck_assert_int_eq(r->tenants[0].defaults.attempts, LW_DEFAULT_ATTEMPTS);
    lw_registry_free(r);
}
END_TEST

START_TEST(parse_text)
{
    char err[512];
    const char *one = "{\"tenant\": \"x\"}";
    lw_registry *r = lw_registry_parse(one, strlen(one), "inline", 1, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->tenants[0].source, "inline");
    lw_registry_free(r);
    ck_assert_ptr_null(lw_registry_parse("[]", 2, "inline", 1, err, sizeof err));
    ck_assert_str_eq(err, "inline: must hold one tenant object");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, file_every_field);
    tcase_add_test(tc, lookups);
    tcase_add_test(tc, file_single_object_and_empty);
    tcase_add_test(tc, directory_form);
    tcase_add_test(tc, directory_errors);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, tenant_errors);
    tcase_add_test(tc, refuses_nul);
    tcase_add_test(tc, type_errors);
    tcase_add_test(tc, bad_redis_url);
    tcase_add_test(tc, defaults_zero_backoff);
    tcase_add_test(tc, spools_shared);
    tcase_add_test(tc, same_runtime);
    tcase_add_test(tc, exec_object_form);
    tcase_add_test(tc, exec_object_errors);
    tcase_add_test(tc, parse_text);
    tcase_add_test(tc, partitions);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

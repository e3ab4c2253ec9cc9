/* options.c — parsing lanework-worker's flags; environment first, flags win. */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "names.h"

static const char USAGE[] =
    "usage: lanework-worker --registry PATH [--redis URL] [--tenant T]... [--queue Q]...\n"
    "                       [--concurrency N] [--isolation fork|thread|pool]\n"
    "                       [--pool-max-jobs N] [--name NAME]\n"
    "                       [--http HOST:PORT] [--burst] [--max-jobs N] [--lease SECONDS]\n"
    "                       [--shutdown-timeout SECONDS] [--poll SECONDS]\n"
    "                       [--spool-rescan SECONDS]\n"
    "                       [--log-format text|json] [--log-level error|warn|info|debug]\n"
    "\n"
    "Pops jobs from Redis lanes and runs them with the handlers of the registry's tenants.\n"
    "\n"
    "  --tenant T            serve tenant T only (repeatable; default: every tenant)\n"
    "  --queue Q             consume queue Q (repeatable, highest priority first;\n"
    "                        default: default)\n"
    "  --concurrency N       attempts running at once (default 8)\n"
    "  --isolation fork      each attempt in a forked child (default): a crash or a\n"
    "                        hard timeout fails that attempt only\n"
    "  --isolation thread    handlers on N threads in the worker: trusted modules,\n"
    "                        highest throughput; timeouts are cooperative\n"
    "  --isolation pool      handlers in pre-forked children that serve attempts one\n"
    "                        at a time (module state lives on between them); a crash\n"
    "                        or a hard timeout still fails that attempt only, and the\n"
    "                        child is replaced\n"
    "  --pool-max-jobs N     replace a pool child after N attempts (default 1000)\n"
    "  --name NAME           worker name in events and `lanework workers` (default host:pid)\n"
    "  --http HOST:PORT      serve GET /healthz (ready), /livez (loop turns), /metrics\n"
    "  --burst               exit 0 once nothing it could claim is queued or due within 1 s\n"
    "  --max-jobs N          exit 0 after N attempts\n"
    "  --lease SECONDS       lease of a claimed job, renewed every sixth of it; an attempt\n"
    "                        whose lease cannot be renewed is frozen at 0.65 of it, and a\n"
    "                        Redis connection silent for 0.3 of it is reset (default 15)\n"
    "  --shutdown-timeout S  on SIGTERM, wait this long before handing back (default 30)\n"
    "  --poll SECONDS        an idle tenant is asked for work this often (default 0.25,\n"
    "                        +0-50 % jitter), doubling up to 8 s while its wake-up\n"
    "                        subscription is confirmed (not with a max_active cap);\n"
    "                        new work wakes the worker at once\n"
    "  --spool-rescan S      scan every spool this often (default 30, +0-25 % jitter;\n"
    "                        0: never), beside inotify, which picks up a new job\n"
    "                        directory at once, and the scans at start, on HUP and\n"
    "                        whenever a tenant's Redis comes back\n"
    "  --log-format text|json, --log-level error|warn|info|debug (a job's id, tenant, kind,\n"
    "                        queue, lane, attempt, worker, duration: fields of JSON lines)\n"
    "\n"
    "Signals: TERM/INT drain then hand back (a second one hands back at once); TSTP stops\n"
    "claiming; HUP reloads the registry and rescans the spools.\n"
    "Exit status: 0 normal, 2 configuration error.\n"
    "\n"
    "Shared settings (flags win over the environment):\n";

static int push(char ***list, const char *v)
{
    size_t n = 0;
    while (*list && (*list)[n])
        n++;
    char **grown = realloc(*list, (n + 2) * sizeof *grown);
    if (!grown)
        return -1;
    *list = grown;
    if (!(grown[n] = strdup(v)))
        return -1;
    grown[n + 1] = NULL;
    return 0;
}

static void free_list(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

/* Value of "--flag VALUE" or "--flag=VALUE" at argv[*i]; NULL when argv[*i]
 * is not `flag`. Sets *missing when the value is absent. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag, int *missing)
{
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

static int valid_worker_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return 0;
    return 1;
}

int options_parse(worker_options *o, int argc, char **argv, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->concurrency = 8;
    o->isolation = ISOLATION_FORK;
    o->pool_max_jobs = 1000;
    o->lease_ms = 15000;
    o->shutdown_timeout_ms = 30000;
    o->poll_ms = 250;
    o->spool_rescan_ms = 30000;
    o->log_level = LW_LOG_INFO;
    if (lw_config_init(&o->common)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (lw_config_from_env(&o->common, err, errlen))
        return -1;

    for (int i = 1; i < argc; i++) {
        int missing = 0, used;
        const char *v;
        int64_t n;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            fputs(LW_CONFIG_USAGE, stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("lanework-worker %s\n", LW_VERSION);
            return 1;
        }
        used = lw_config_take_flag(&o->common, argc, argv, i, err, errlen);
        if (used < 0)
            return -1;
        if (used > 0) {
            i += used - 1;
            continue;
        }
#define FLAG(name) ((v = flag_value(argc, argv, &i, name, &missing)) != NULL || missing)
        if (FLAG("--tenant")) {
            if (missing)
                goto need_value;
            if (!lw_name_is_safe(v)) {
                snprintf(err, errlen,
                         "--tenant: \"%.100s\" is not a safe name (letters, digits, - _ .)", v);
                return -1;
            }
            if (push(&o->tenants, v))
                goto oom;
        } else if (FLAG("--queue")) {
            if (missing)
                goto need_value;
            if (!lw_name_is_safe(v)) {
                snprintf(err, errlen,
                         "--queue: \"%.100s\" is not a safe name (letters, digits, - _ .)", v);
                return -1;
            }
            if (push(&o->queues, v))
                goto oom;
        } else if (FLAG("--concurrency")) {
            if (missing)
                goto need_value;
            if (lw_parse_int(v, 1, 4096, &n)) {
                snprintf(err, errlen, "--concurrency: \"%.100s\" is not an integer from 1 to 4096",
                         v);
                return -1;
            }
            o->concurrency = (int)n;
        } else if (FLAG("--isolation")) {
            if (missing)
                goto need_value;
            if (!strcmp(v, "fork"))
                o->isolation = ISOLATION_FORK;
            else if (!strcmp(v, "thread"))
                o->isolation = ISOLATION_THREAD;
            else if (!strcmp(v, "pool"))
                o->isolation = ISOLATION_POOL;
            else {
                snprintf(err, errlen, "--isolation: \"%.100s\" is not fork, thread or pool", v);
                return -1;
            }
        } else if (FLAG("--pool-max-jobs")) {
            if (missing)
                goto need_value;
            if (lw_parse_int(v, 1, INT64_MAX, &o->pool_max_jobs)) {
                snprintf(err, errlen, "--pool-max-jobs: \"%.100s\" is not a positive integer", v);
                return -1;
            }
        } else if (FLAG("--name")) {
            if (missing)
                goto need_value;
            if (!valid_worker_name(v)) {
                snprintf(
                    err, errlen,
                    "--name: must be 1 to 200 characters without spaces or control characters");
                return -1;
            }
            free(o->name);
            if (!(o->name = strdup(v)))
                goto oom;
        } else if (FLAG("--http")) {
            if (missing)
                goto need_value;
            const char *colon = strrchr(v, ':');
            if (!colon || colon == v || lw_parse_int(colon + 1, 0, 65535, &n)) {
                snprintf(err, errlen, "--http: \"%.100s\" is not HOST:PORT", v);
                return -1;
            }
            free(o->http);
            if (!(o->http = strdup(v)))
                goto oom;
        } else if (!strcmp(argv[i], "--burst")) {
            o->burst = 1;
        } else if (FLAG("--max-jobs")) {
            if (missing)
                goto need_value;
            if (lw_parse_int(v, 1, INT64_MAX, &o->max_jobs)) {
                snprintf(err, errlen, "--max-jobs: \"%.100s\" is not a positive integer", v);
                return -1;
            }
        } else if (FLAG("--lease")) {
            if (missing)
                goto need_value;
            if (lw_parse_seconds_ms(v, 3600, &o->lease_ms) || o->lease_ms < 1000) {
                snprintf(err, errlen,
                         "--lease: \"%.100s\" is not a number of seconds from 1 to 3600", v);
                return -1;
            }
        } else if (FLAG("--shutdown-timeout")) {
            if (missing)
                goto need_value;
            if (lw_parse_seconds_ms(v, 86400, &o->shutdown_timeout_ms)) {
                snprintf(err, errlen, "--shutdown-timeout: \"%.100s\" is not a number of seconds",
                         v);
                return -1;
            }
        } else if (FLAG("--poll")) {
            if (missing)
                goto need_value;
            if (lw_parse_seconds_ms(v, 3600, &o->poll_ms) || o->poll_ms < 10) {
                snprintf(err, errlen,
                         "--poll: \"%.100s\" is not a number of seconds from 0.01 to 3600", v);
                return -1;
            }
        } else if (FLAG("--spool-rescan")) {
            if (missing)
                goto need_value;
            if (lw_parse_seconds_ms(v, 86400, &o->spool_rescan_ms) ||
                (o->spool_rescan_ms > 0 && o->spool_rescan_ms < 100)) {
                snprintf(
                    err, errlen,
                    "--spool-rescan: \"%.100s\" is not 0 or a number of seconds from 0.1 to 86400",
                    v);
                return -1;
            }
        } else if (FLAG("--log-format")) {
            if (missing)
                goto need_value;
            if (!strcmp(v, "json"))
                o->log_json = 1;
            else if (!strcmp(v, "text"))
                o->log_json = 0;
            else {
                snprintf(err, errlen, "--log-format: \"%.100s\" is not text or json", v);
                return -1;
            }
        } else if (FLAG("--log-level")) {
            if (missing)
                goto need_value;
            if (lw_log_level_parse(v, &o->log_level)) {
                snprintf(err, errlen, "--log-level: \"%.100s\" is not error, warn, info or debug",
                         v);
                return -1;
            }
        } else {
            snprintf(err, errlen, "unknown argument \"%.100s\" (see --help)", argv[i]);
            return -1;
        }
#undef FLAG
        continue;
    need_value:
        snprintf(err, errlen, "%.60s: needs a value", argv[i]);
        return -1;
    }
    if (!o->common.registry_path) {
        snprintf(err, errlen, "--registry: required (or LANEWORK_REGISTRY)");
        return -1;
    }
    if (!o->queues && push(&o->queues, "default"))
        goto oom;
    if (!o->name) {
        char host[256] = "localhost";
        char buf[300];
        gethostname(host, sizeof host - 1);
        snprintf(buf, sizeof buf, "%s:%ld", host, (long)getpid());
        if (!(o->name = strdup(buf)))
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

const char *options_isolation_name(isolation_kind k)
{
    switch (k) {
    case ISOLATION_THREAD: return "thread";
    case ISOLATION_POOL: return "pool";
    case ISOLATION_FORK: break;
    }
    return "fork";
}

void options_clear(worker_options *o)
{
    lw_config_clear(&o->common);
    free_list(o->tenants);
    free_list(o->queues);
    free(o->name);
    free(o->http);
    memset(o, 0, sizeof *o);
}

/* options.h — lanework-worker's command line (CONTRACT section 5). */
#ifndef LW_OPTIONS_H
#define LW_OPTIONS_H

#include <stdint.h>

#include "config.h"
#include "log.h"

typedef enum { ISOLATION_FORK, ISOLATION_THREAD, ISOLATION_POOL } isolation_kind;

typedef struct worker_options {
    lw_config common; /* --redis --namespace --registry --max-payload --keep-* --events-max */
    char **tenants;   /* --tenant, repeatable; NULL-terminated; empty: every tenant */
    char **queues;    /* --queue, repeatable, in priority order; default {"default"} */
    int concurrency;  /* --concurrency N (default 8) */
    isolation_kind isolation;
    int64_t pool_max_jobs;       /* --pool-max-jobs N: attempts a pool child serves before
                              it is replaced (default 1000) */
    char *name;                  /* --name, default host:pid */
    char *http;                  /* --http HOST:PORT or NULL */
    int burst;                   /* --burst */
    int64_t max_jobs;            /* --max-jobs N, 0: unlimited */
    int64_t lease_ms;            /* --lease SECONDS (default 15) */
    int64_t shutdown_timeout_ms; /* --shutdown-timeout SECONDS (default 30) */
    int64_t poll_ms;         /* --poll SECONDS: claim interval of an idle tenant (default 0.25) */
    int64_t spool_rescan_ms; /* --spool-rescan SECONDS: full spool scans (default 30; 0: none) */
    int log_json;            /* --log-format json */
    lw_log_level log_level;
} worker_options;

/* Parses argv. Returns 0; 1 when --help/--version was printed (exit 0); -1
 * with "why" in err (exit 2). Free with options_clear. */
int options_parse(worker_options *o, int argc, char **argv, char *err, size_t errlen);
/* "fork", "thread" or "pool": logs and the worker directory. */
const char *options_isolation_name(isolation_kind k);
/* Frees what options_parse allocated in o (o itself is the caller's). */
void options_clear(worker_options *o);

#endif

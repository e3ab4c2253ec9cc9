/* cmd_retry.c — `lanework retry --tenant T (ID... | --all-failed)` (retry.lua). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keys.h"
#include "redis_sync.h"
#include "script_args.h"
#include "script_replies.h"

/* Jobs taken from the failed index per call of --all-failed. */
#define ALL_FAILED_CHUNK 500

static const char USAGE[] =
    "Usage: lanework retry --tenant T ID...\n"
    "       lanework retry --tenant T --all-failed\n"
    "\n"
    "Gives failed, cancelled or expired jobs a fresh set of attempts: each is\n"
    "queued again at the tail of its lane. Prints the id of every job retried,\n"
    "one per line, and nothing else on stdout (also with --all-failed: count\n"
    "them with `| wc -l`).\n"
    "\n"
    "  --all-failed   retry every job of the tenant's failed index (failed jobs\n"
    "                 still retained), 500 per Redis call, oldest first; jobs that\n"
    "                 fail again meanwhile are not retried a second time.\n"
    "\n"
    "A job whose unique key is held by a job enqueued after it finished is not\n"
    "retried (stderr names the holder); with --all-failed that is no error:\n"
    "such jobs stay in the failed index for a later retry.\n"
    "\n"
    "Exit status: 0 all retried; 1 a record is corrupt; 2 usage error, or a job\n"
    "is not failed, cancelled or expired (stderr names its status) or its unique\n"
    "key is held (by ID); 3 Redis unreachable or refused; 4 no such job. With several\n"
    "problems the status is that of the first, in argument order; every job\n"
    "that could be retried is. --all-failed on a partitioned tenant whose\n"
    "partition 0 answers retries what the partitions it reaches hold even when\n"
    "other masters are down: stderr names the ones skipped and the count retried,\n"
    "and the exit status is 3.\n";

/* A job whose unique key was taken by a job enqueued after it finished
 * stays as it is: retrying it would make two jobs hold one key. */
static void held_line(cli *c, const char *id, const char *holder)
{
    cli_err(c->cmd, "job %s is not retried: its unique key is held by job %s", id, holder);
}

/* Runs retry.lua once. ids mode: `args` are the ids; failed mode: the
 * limit and the skip. Returns the reply (read into *got) or NULL (printed). */
static redisReply *run_retry(cli *c, cli_tenant *t, const char *mode, const char *const *args,
                             size_t nargs, lw_retry_reply *got)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_retry_keys(&a, t->prefix);
    lw_retry_argv_add(
        &a, &(lw_retry_argv){.prefix = t->prefix, .events_cap = t->set.events_max, .mode = mode});
    for (size_t i = 0; i < nargs; i++)
        lw_retry_arg_argv_add(&a, &(lw_retry_arg_argv){.value = args[i]});
    char err[256];
    redisReply *r = cli_script(t->conn, &lw_script_retry, LW_RETRY_NKEYS, &a, err, sizeof err);
    lw_argv_clear(&a);
    if (!r) {
        cli_redis_err(t->conn, NULL, err);
        return NULL;
    }
    if (lw_retry_reply_read(r, got, err, sizeof err) != 0) {
        cli_redis_err(t->conn, r, NULL);
        freeReplyObject(r);
        return NULL;
    }
    char why[256], line[600];
    if (cli_confirm(c, t->conn, t->prefix, why, sizeof why) != 0) {
        snprintf(line, sizeof line, "retry recorded on the primary, but %s", why);
        cli_redis_err(t->conn, NULL, line);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

typedef struct idx_id {
    const char *id;
    size_t i;
} idx_id;

static int cmp_idx_id(const void *a, const void *b)
{
    const idx_id *x = a, *y = b;
    int d = strcmp(x->id, y->id);
    return d ? d : (x->i > y->i) - (x->i < y->i);
}

/* Drops repeated ids from ids[0..*n), keeping the first of each in order
 * (a job named twice is retried once). Returns 0 or -1 on OOM. */
static int dedupe(const char **ids, size_t *n)
{
    idx_id *v = malloc((*n + 1) * sizeof *v);
    unsigned char *dup = calloc(*n + 1, 1);
    if (!v || !dup) {
        free(v);
        free(dup);
        return -1;
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = (idx_id){ids[i], i};
    qsort(v, *n, sizeof *v, cmp_idx_id);
    for (size_t i = 1; i < *n; i++)
        if (strcmp(v[i].id, v[i - 1].id) == 0)
            dup[v[i].i] = 1;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!dup[i])
            ids[k++] = ids[i];
    *n = k;
    free(v);
    free(dup);
    return 0;
}

static int retry_ids(cli *c, cli_tenant *t, const char *const *ids, size_t n)
{
    /* retry.lua answers "queued" both for a job it queued and for one that
     * was queued already (not retryable): read the statuses first to tell
     * the two apart. */
    unsigned char *was_queued = calloc(n + 1, 1);
    if (!was_queued) {
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        char key[CLI_KEY_MAX];
        lw_key(key, sizeof key, t->prefix, "job:", ids[i]);
        const char *hget[3] = {"HGET", key, "status"};
        if (cli_append(t->conn, 3, hget) != 0) {
            free(was_queued);
            return CLI_REDIS;
        }
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *q = cli_next_reply(t->conn);
        if (!q) {
            free(was_queued);
            return CLI_REDIS;
        }
        was_queued[i] = (unsigned char)cli_reply_is(q, "queued");
        freeReplyObject(q); /* errors (not a hash) are for retry.lua to report */
    }
    lw_retry_reply got;
    redisReply *r = run_retry(c, t, "ids", ids, n, &got);
    if (!r) {
        free(was_queued);
        return CLI_REDIS;
    }
    int rc = CLI_OK;
    for (size_t i = 0; i < got.n_job; i++) {
        lw_retry_job job;
        lw_retry_job_at(&got, i, &job);
        const char *id = job.id.s, *what = job.status.s;
        int this_rc = CLI_OK;
        if (strcmp(what, "queued") == 0 && i < n && was_queued[i]) {
            cli_err(c->cmd, "job %s is queued, not failed, cancelled or expired", id);
            this_rc = CLI_USAGE;
        } else if (strcmp(what, "queued") == 0) {
            printf("%s\n", id);
        } else if (strcmp(what, "missing") == 0) {
            cli_err(c->cmd, "no such job %s", id);
            this_rc = CLI_NOJOB;
        } else if (strncmp(what, "partitioned: ", 13) == 0) {
            cli_err(c->cmd, "job %s: %s", id, what + 13);
            this_rc = CLI_USAGE;
        } else if (strncmp(what, "corrupt", 7) == 0) {
            cli_err(c->cmd, "job %s: %s", id, what);
            this_rc = CLI_JOB;
        } else if (strncmp(what, "held: ", 6) == 0) {
            held_line(c, id, what + 6);
            this_rc = CLI_USAGE;
        } else {
            cli_err(c->cmd, "job %s is %s, not failed, cancelled or expired", id, what);
            this_rc = CLI_USAGE;
        }
        if (rc == CLI_OK)
            rc = this_rc;
    }
    freeReplyObject(r);
    free(was_queued);
    int frc = cli_flush(c);
    return rc ? rc : frc;
}

/* Repeats retry.lua in "failed" mode until a call changes nothing, or as
 * many entries as the index held at the start were handled (jobs that fail
 * again meanwhile re-enter the index at its end). */
static int retry_all_failed(cli *c, cli_tenant *t, long long *retried)
{
    char key[CLI_KEY_MAX];
    lw_key(key, sizeof key, t->prefix, "failed", NULL);
    const char *zc[2] = {"ZCARD", key};
    redisReply *r = cli_cmd(t->conn, 2, zc);
    if (!r)
        return CLI_REDIS;
    if (r->type != REDIS_REPLY_INTEGER) {
        int rc = cli_redis_err(t->conn, r, NULL);
        freeReplyObject(r);
        return rc;
    }
    long long total = r->integer, done = 0;
    freeReplyObject(r);
    char limit[24], skip[24];
    long long held = 0;
    snprintf(limit, sizeof limit, "%d", ALL_FAILED_CHUNK);
    const char *args[2] = {limit, skip};
    while (done < total) {
        snprintf(skip, sizeof skip, "%lld", held);
        lw_retry_reply got;
        r = run_retry(c, t, "failed", args, 2, &got);
        if (!r)
            return CLI_REDIS;
        int progress = 0;
        for (size_t i = 0; i < got.n_job; i++) {
            lw_retry_job job;
            lw_retry_job_at(&got, i, &job);
            const char *what = job.status.s;
            if (strcmp(what, "queued") == 0) {
                printf("%s\n", job.id.s);
                (*retried)++;
                progress = 1;
            } else if (strcmp(what, "missing") == 0 || strncmp(what, "corrupt", 7) == 0) {
                progress = 1; /* dropped from the index */
            } else if (strncmp(what, "held: ", 6) == 0) {
                held_line(c, job.id.s, what + 6);
                held++; /* stays in the index: skipped from now on */
                progress = 1;
            }
        }
        done += (long long)got.n_job;
        freeReplyObject(r);
        int rc = cli_flush(c);
        if (rc)
            return rc;
        if (!progress)
            break;
    }
    return CLI_OK;
}

static int retry_part(cli *c, cli_tenant *pt, const char *const *ids, size_t n, void *ud)
{
    (void)ud;
    return retry_ids(c, pt, ids, n);
}

/* --all-failed in every partition (an unpartitioned tenant is one). A
 * partition whose master is down is named and skipped: the others' failed
 * jobs are retried all the same, and stderr says how many (stdout stays the
 * ids alone). Returns CLI_REDIS when one was skipped. */
static int retry_all_parts(cli *c, cli_tenant *t)
{
    int rc = cli_partitions(c, t);
    if (rc)
        return rc;
    long long retried = 0;
    if (t->nparts == 1)
        return retry_all_failed(c, t, &retried);
    int skipped = 0;
    for (int p = 0; rc == 0 && p < t->nparts; p++) {
        cli_tenant pt;
        char why[256];
        int got = cli_part_open(c, t, p, &pt, why, sizeof why);
        if (got == 0 && (got = retry_all_failed(c, &pt, &retried)) == CLI_REDIS)
            cli_part_why(&pt, why, sizeof why);
        if (got == CLI_REDIS) {
            cli_part_unreadable(c, t->name, p, why, "its failed jobs were not all retried");
            skipped++;
        } else {
            rc = got;
        }
    }
    if (rc == 0 && skipped) {
        cli_err(
            c->cmd,
            "%lld job(s) retried; %d partition(s) not reached (above): run it again once they are back",
            retried, skipped);
        rc = CLI_REDIS;
    }
    return rc;
}

int cli_retry_jobs(cli *c, cli_tenant *t, const char **ids, size_t n)
{
    if (dedupe(ids, &n) != 0) {
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    return cli_each_partition(c, t, ids, n, retry_part, NULL);
}

int cmd_retry(cli *c, int argc, char **argv)
{
    const char *tenant = NULL;
    int all = 0;
    const cli_opt opts[] = {{"--tenant", &tenant, NULL, NULL, NULL},
                            {"--all-failed", NULL, &all, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    cli_args args;
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_ANY, &args, &rc))
        return rc;
    cli_tenant t;
    rc = CLI_USAGE;
    if (all && args.npos > 0) {
        cli_err(c->cmd, "--all-failed takes no job ids");
        goto out;
    }
    if (!all && args.npos == 0) {
        cli_err(c->cmd, "expected job ids or --all-failed (see lanework retry --help)");
        goto out;
    }
    if ((rc = cli_tenant_open(c, tenant, args.pos, args.npos, &t)) != 0 ||
        (rc = cli_bound_replies(t.conn)) != 0)
        goto out;
    rc = all ? retry_all_parts(c, &t) : cli_retry_jobs(c, &t, args.pos, args.npos);
out:
    cli_args_free(&args);
    return rc;
}

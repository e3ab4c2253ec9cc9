/*
 * cmd_enqueue.c — `lanework enqueue`: one job from flags (this file) or many
 * from JSON lines (`--batch`, cmd_batch.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "partition.h"
#include "enqueue_args.h"
#include "jsonx.h"
#include "keys.h"
#include "redis_sync.h"
#include "script_replies.h"
#include "spool.h"

static const char USAGE[] =
    "Usage: lanework enqueue --tenant T --kind K [OPTIONS]\n"
    "       lanework enqueue --batch FILE|- [--tenant T] [--kind K] [DEFAULTS]\n"
    "\n"
    "Enqueues one job and prints its id, and nothing else, on stdout. When --id\n"
    "names a job that exists already, or --unique a key that is held, nothing is\n"
    "enqueued: the existing job's id is printed, stderr says so\n"
    "(`lanework: enqueue: KEY is held by job ID (STATUS)`), and the exit status\n"
    "is 0.\n"
    "\n"
    "  --tenant T           the tenant (required; with a registry, one of its tenants)\n"
    "  --kind K             the job kind (required; with a registry, one the tenant\n"
    "                       serves: an exec key, or a kind its workers say its\n"
    "                       module serves)\n"
    "  --queue Q            the queue (default: default)\n"
    "  --lane L             jobs of one lane run one at a time, in enqueue order\n"
    "                       (default: the job's own id)\n"
    "  --id ID              the job id (default: a new one)\n"
    "  --unique KEY         at most one job per KEY: KEY is held while its job waits\n"
    "                       or runs, and free again once it finished\n"
    "  --unique-for S       hold KEY for S seconds after this enqueue, whatever the\n"
    "                       job's status (a debounce); needs --unique\n"
    "  --payload JSON       the payload, a JSON value; \"-\" reads it from stdin\n"
    "  --payload-file FILE  the payload from FILE (\"-\": stdin)\n"
    "                       Without either, the payload is read from stdin when stdin\n"
    "                       is not a terminal (an empty stdin gives null); from a\n"
    "                       terminal it is null. Surrounding whitespace is dropped;\n"
    "                       a NUL byte, or nesting deeper than 1000, is refused.\n"
    "  --delay S            run no earlier than S seconds from now\n"
    "  --attempts N         the maximum number of attempts (default: the tenant's\n"
    "                       registry default, else 3)\n"
    "  --timeout S          seconds one attempt may run (default: the tenant's, else 180)\n"
    "  --expires S          end as expired when not started within S seconds\n"
    "  --spool DIR          first write DIR/ID/job.json (status queued), then enqueue.\n"
    "                       With a registry DIR must be the tenant's spool of kind K\n"
    "                       (else exit 2, nothing written). Redis unreachable or\n"
    "                       refusing (OOM, READONLY): the job stays accepted (a\n"
    "                       warning, exit 0), and the workers watching DIR enqueue\n"
    "                       it once their Redis takes it. A job.json of an explicit\n"
    "                       --id that exists already is kept (idempotent by id).\n"
    "  --wait               then wait until the job ends; when it succeeded, print its\n"
    "                       result JSON on a second line (null when it has none).\n"
    "                       With --spool and Redis unreachable the job stays spooled but\n"
    "                       cannot be awaited: exit 3.\n"
    "  --wait-timeout S     stop waiting after S seconds (exit 124)\n"
    "  --batch FILE|-       enqueue one job per line of FILE (\"-\": stdin)\n"
    "\n"
    "Batch: each non-blank line is one JSON object with the fields tenant, kind,\n"
    "lane, queue, id, unique, payload (a JSON value), delay, attempts, timeout,\n"
    "expires, unique_for (seconds); --tenant, --kind, --queue, --lane, --delay,\n"
    "--attempts, --timeout and --expires are defaults for the lines. One id is\n"
    "printed per accepted line, in input order (an existing job's too: stderr\n"
    "says `lanework: batch line N: ...` of it, exit status 0). A bad line prints\n"
    "`lanework: batch line N: why` and no id; the others go on, exit status 2.\n"
    "If Redis fails part-way: exit 3, and stderr says how many lines were\n"
    "enqueued. Lines go in pipelined groups; when the input pauses, what was\n"
    "read is sent at once. A line may be up to twice --max-payload plus 1 MiB.\n"
    "\n"
    "Exit status: 0 enqueued (with --wait: and succeeded); 1 with --wait: the job\n"
    "ended failed, cancelled or expired; 2 usage or input error; 3 Redis\n"
    "unreachable or refused; 4 with --wait: the job vanished; 124 --wait-timeout.\n";

typedef struct enq_opts {
    const char *tenant, *kind, *lane, *queue, *id, *unique, *unique_for, *payload, *payload_file;
    const char *delay, *attempts, *timeout, *expires, *wait_timeout, *spool, *batch;
    int wait;
} enq_opts;

/* Fills the job fields given as flags into s. Returns 0 or CLI_USAGE. */
static int spec_from_opts(cli *c, const enq_opts *o, lw_job_spec *s)
{
    if (o->tenant)
        s->tenant = cli_strdup(o->tenant);
    if (o->kind)
        s->kind = cli_strdup(o->kind);
    if (o->lane)
        s->lane = cli_strdup(o->lane);
    if (o->queue)
        s->queue = cli_strdup(o->queue);
    if (o->id)
        s->id = cli_strdup(o->id);
    if (o->unique)
        s->unique = cli_strdup(o->unique);
    if (o->delay && cli_seconds(c, "--delay", o->delay, 1, &s->delay_ms))
        return CLI_USAGE;
    if (o->timeout && cli_seconds(c, "--timeout", o->timeout, 0, &s->timeout_ms))
        return CLI_USAGE;
    if (o->expires && cli_seconds(c, "--expires", o->expires, 0, &s->expires_ms))
        return CLI_USAGE;
    if (o->unique_for && cli_seconds(c, "--unique-for", o->unique_for, 1, &s->unique_for_ms))
        return CLI_USAGE;
    if (o->attempts) {
        int64_t v;
        if (cli_int(c, "--attempts", o->attempts, 1, INT32_MAX, &v))
            return CLI_USAGE;
        s->attempts = (int)v;
    }
    return 0;
}

/* Reads the payload as --payload / --payload-file / stdin say (see USAGE)
 * into s. Returns 0 or CLI_USAGE. */
static int read_payload(cli *c, const enq_opts *o, lw_job_spec *s)
{
    if (o->payload && o->payload_file) {
        cli_err(c->cmd, "--payload and --payload-file exclude each other");
        return CLI_USAGE;
    }
    if (o->payload && strcmp(o->payload, "-") != 0) {
        lw_job_spec_set_payload(s, cli_strdup(o->payload));
        return 0;
    }
    const char *src;
    int implicit = 0;
    if (o->payload)
        src = "-";
    else if (o->payload_file)
        src = o->payload_file;
    else if (isatty(0)) {
        lw_job_spec_set_payload(s, cli_strdup("null"));
        return 0;
    } else {
        src = "-";
        implicit = 1;
    }
    /* Some slack for surrounding whitespace; the limit itself is checked by
     * lw_job_spec_validate on the trimmed text. */
    size_t max = c->cfg.max_payload > 0 ? (size_t)c->cfg.max_payload + 4096 : SIZE_MAX / 2;
    size_t len = 0;
    char *text = cli_read_all(src, max, &len);
    if (!text) {
        if (errno == EFBIG)
            cli_err(c->cmd, "payload: larger than %lld bytes (--max-payload)",
                    (long long)c->cfg.max_payload);
        else if (strcmp(src, "-") == 0)
            cli_err(c->cmd, "stdin: %s", strerror(errno));
        else
            cli_err(c->cmd, "--payload-file: %s: %s", cli_show(src), strerror(errno));
        return CLI_USAGE;
    }
    /* A NUL byte would end the C string the payload travels as: the job
     * would silently run with the text before it. */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        cli_err(c->cmd, "payload: contains a NUL byte at offset %zu", (size_t)(nul - text));
        free(text);
        return CLI_USAGE;
    }
    size_t b = 0;
    while (b < len && (text[b] == ' ' || text[b] == '\t' || text[b] == '\n' || text[b] == '\r'))
        b++;
    while (len > b && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                       text[len - 1] == '\r'))
        len--;
    memmove(text, text + b, len - b);
    text[len - b] = '\0';
    if (len == b) {
        free(text);
        if (!implicit) {
            cli_err(c->cmd, "payload: %s is empty, not JSON",
                    strcmp(src, "-") == 0 ? "stdin" : cli_show(src));
            return CLI_USAGE;
        }
        text = cli_strdup("null");
    }
    lw_job_spec_set_payload(s, text);
    return 0;
}

/* --spool: writes DIR/ID/job.json and sets s->spool_dir. With a registry,
 * DIR must be the tenant's spool of this kind (realpaths compared), the
 * only place a worker's spool scan looks: anything else is refused before
 * a file is written. The record names the spool by the registry's path (the
 * one the worker knows); without a registry by DIR's absolute path. *wrote
 * is set when this call created the file (not when an explicit --id found
 * it there). Returns 0 or CLI_USAGE. */
static int spool_write(cli *c, const cli_tenant *t, const char *dir, lw_job_spec *s,
                       int explicit_id, int *wrote)
{
    char real[PATH_MAX], cfg_real[PATH_MAX], err[512];
    *wrote = 0;
    if (!realpath(dir, real)) {
        cli_err(c->cmd, "--spool: %s: %s", cli_show(dir), strerror(errno));
        return CLI_USAGE;
    }
    const char *base = real;
    if (t->reg) {
        const lw_spool_cfg *sc = lw_tenant_spool(t->reg, s->kind);
        if (!sc) {
            cli_err(c->cmd,
                    "--spool: tenant %s has no spool of kind %s in the registry: no "
                    "worker would find the job in %s",
                    t->name, s->kind, cli_show(dir));
            return CLI_USAGE;
        }
        if (!realpath(sc->dir, cfg_real) || strcmp(cfg_real, real) != 0) {
            cli_err(c->cmd,
                    "--spool: %s is not tenant %s's spool of kind %s (that is %s): no "
                    "worker would find the job there",
                    cli_show(dir), t->name, s->kind, cli_show(sc->dir));
            return CLI_USAGE;
        }
        base = sc->dir;
    }
    size_t n = strlen(base) + strlen(s->id) + 2;
    s->spool_dir = malloc(n);
    if (!s->spool_dir) {
        cli_err(c->cmd, "out of memory");
        return CLI_USAGE;
    }
    snprintf(s->spool_dir, n, "%s/%s", base, s->id);
    char jf[PATH_MAX + 512];
    snprintf(jf, sizeof jf, "%s/%s/job.json", real, s->id);
    if (explicit_id && access(jf, F_OK) == 0)
        return 0;
    if (lw_spool_create(real, s, err, sizeof err) != 0) {
        cli_err(c->cmd, "--spool: %s", err);
        return CLI_USAGE;
    }
    *wrote = 1;
    return 0;
}

/* --spool and Redis did not take the job: unreachable, busy loading, or
 * refusing it (OOM, READONLY: a replica, an old primary after a failover).
 * The job stays accepted in the spool -- a warning, exit 0: the tenant's
 * workers watch that spool and enqueue it on their own Redis as soon as it
 * takes it. (Removing the entry on a refusal, as a first version did, was
 * wrong: a worker's watcher may already have enqueued it, on the primary
 * the CLI does not talk to, and the job ran while the CLI said it was
 * refused.) Returns the exit status. */
static int spool_fallback(cli *c, const cli_tenant *t, const enq_opts *o, const lw_job_spec *s,
                          const redisReply *r, const char *conn_why)
{
    char why[512], line[512];
    if (r && r->type == REDIS_REPLY_ERROR)
        cli_oneline(r->str, r->len, why, sizeof why);
    else if (r)
        snprintf(why, sizeof why, "unexpected reply");
    else
        snprintf(why, sizeof why, "%s", conn_why);
    cli_oneline(why, strlen(why), line, sizeof line);
    cli_err(c->cmd,
            "warning: redis %s: %s; job %s stays in spool %s, and the tenant's workers enqueue it "
            "once their Redis takes it",
            t->conn->url->redacted, line, s->id, cli_show(o->spool));
    printf("%s\n", s->id);
    int rc = cli_flush(c);
    if (rc == CLI_OK && o->wait) {
        cli_err(c->cmd, "--wait: cannot wait for job %s without Redis", s->id);
        rc = CLI_REDIS;
    }
    return rc;
}

/* The enqueue returned an existing job (`why`: enqueue.lua's "held ..." or
 * "exists ..."). Says so -- unless it is the job this call spooled under a
 * new id, which a worker watching the spool enqueued first (then nothing is
 * a duplicate) --
 * and, when another job holds the unique key, removes the spool entry this
 * call wrote: a deduplicated job must leave nothing behind to run later. */
static void existing_job(cli *c, const enq_opts *o, const lw_job_spec *s, const char *id,
                         const char *why, int spool_wrote)
{
    /* A new id cannot have existed: a watcher enqueued our own entry. */
    if (spool_wrote && !o->id && strcmp(id, s->id) == 0)
        return;
    cli_enqueue_existing(c->cmd, s->unique, id, why);
    char real[PATH_MAX], err[512];
    if (spool_wrote && strcmp(id, s->id) != 0 && realpath(o->spool, real) &&
        lw_spool_remove(real, s->id, err, sizeof err) != 0)
        cli_err(c->cmd,
                "warning: spool entry %s/%s of the deduplicated job not removed: %s (a "
                "worker marks it failed)",
                cli_show(o->spool), s->id, err);
}

/* Prints the result of a succeeded job as one line (null when none). JSON
 * may hold line breaks only as whitespace, so they become spaces; text that
 * is not JSON is printed as a JSON string. */
static int print_result(cli *c, const cli_tenant *t, const char *id)
{
    char key[CLI_KEY_MAX];
    if (lw_key(key, sizeof key, t->prefix, "job:", id) != 0)
        return CLI_USAGE;
    const char *argv[3] = {"HGET", key, "result"};
    redisReply *r = cli_cmd(t->conn, 3, argv);
    if (!r)
        return CLI_REDIS;
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = cli_redis_err(t->conn, r, NULL);
        freeReplyObject(r);
        return rc;
    }
    if (r->type != REDIS_REPLY_STRING) {
        puts("null");
    } else if (lw_json_valid(r->str, r->len)) {
        for (size_t i = 0; i < r->len; i++)
            if (r->str[i] == '\n' || r->str[i] == '\r')
                r->str[i] = ' ';
        printf("%.*s\n", (int)r->len, r->str);
    } else {
        char *q = lw_json_quote(r->str, r->len);
        printf("%s\n", q ? q : "null");
        free(q);
    }
    freeReplyObject(r);
    return cli_flush(c);
}

/* --wait: waits for job `id` of partition pt and prints its result. */
static int wait_and_print(cli *c, cli_tenant *pt, const char *id, int64_t wait_ms)
{
    const char *ids[1] = {id};
    int rc = cli_wait_jobs(c, pt, ids, 1, wait_ms);
    return rc == CLI_OK ? print_result(c, pt, id) : rc;
}

static int enqueue_one(cli *c, const enq_opts *o)
{
    lw_job_spec s;
    lw_job_spec_init(&s);
    lw_argv a;
    lw_argv_init(&a);
    redisReply *r = NULL;
    int64_t wait_ms = -1;
    char err[512], why[512];
    char *known = NULL; /* owned: the job partition 0 answers with (known.lua) */
    cli_tenant t;
    int rc = spec_from_opts(c, o, &s);
    if (rc)
        goto out;
    rc = CLI_USAGE;
    if (!o->tenant) {
        cli_err(c->cmd, "--tenant is required");
        goto out;
    }
    if (!o->kind) {
        cli_err(c->cmd, "--kind is required");
        goto out;
    }
    if (o->wait_timeout && !o->wait) {
        cli_err(c->cmd, "--wait-timeout needs --wait");
        goto out;
    }
    if (o->wait_timeout && cli_seconds(c, "--wait-timeout", o->wait_timeout, 1, &wait_ms))
        goto out;
    if ((rc = cli_tenant_get(c, o->tenant, &t)) != 0)
        goto out;
    if ((rc = cli_check_kind(c, &t, o->kind, 1)) != 0)
        goto out;
    if ((rc = read_payload(c, o, &s)) != 0)
        goto out;
    rc = CLI_USAGE;
    if (lw_job_spec_validate(&s, c->cfg.max_payload, err, sizeof err) != 0) {
        cli_err(c->cmd, "%s", err);
        goto out;
    }
    /* The partition count in force decides where the job goes; with --spool
     * and Redis unreachable the job file is enough (a worker routes it). */
    why[0] = '\0';
    int conn_rc = cli_connect(t.conn, o->spool != NULL, why, sizeof why);
    if (conn_rc == 0 && (rc = cli_partitions(c, &t)) != 0)
        goto out;
    if (conn_rc != 0 && !o->spool) {
        rc = conn_rc;
        goto out;
    }
    int part = lw_job_spec_place(&s, t.nparts);
    cli_tenant pt;
    rc = CLI_USAGE;
    if (part < 0 || lw_job_spec_resolve(&s, t.reg ? &t.reg->defaults : NULL) != 0) {
        cli_err(c->cmd, "out of memory");
        goto out;
    }
    if ((rc = cli_tenant_part(c, &t, part, &pt)) != 0)
        goto out;
    int spool_wrote = 0;
    if (o->spool && (rc = spool_write(c, &t, o->spool, &s, o->id != NULL, &spool_wrote)) != 0)
        goto out;

    for (int tries = 0;; tries++) {
        /* Partition 0 may hold this id or unique key from before the tenant
         * was partitioned: then that job is the answer (known.lua). */
        if (conn_rc == 0 && cli_known_needed(&t, pt.part, &s, o->id != NULL) &&
            ((rc = cli_known_before(&t, &s, &known, why, sizeof why, o->spool ? err : NULL,
                                    sizeof err)) != 0 ||
             known))
            break;
        lw_enqueue_begin(&a, pt.prefix, t.set.events_max, t.nparts > 0 ? t.nparts : 1);
        lw_enqueue_add(&a, &s);
        if (conn_rc == 0 && cli_connect(pt.conn, o->spool != NULL, why, sizeof why) == 0)
            r = cli_script(pt.conn, &lw_script_enqueue, LW_ENQUEUE_NKEYS, &a, why, sizeof why);
        /* The count changed between our read and the call (a worker applied
         * its registry's on the empty tenant): nothing was written; route
         * again, once, by the count the refusal names. */
        if (tries > 0 || !r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "LWPARTITIONS ", 13))
            break;
        t.nparts = atoi(r->str + 13);
        if (t.nparts < 1 || t.nparts > LW_PARTITIONS_MAX)
            break;
        t.legacy = t.nparts > 1; /* the count just changed: partition 0 says */
        freeReplyObject(r);
        r = NULL;
        if ((rc = cli_tenant_part(c, &t, lw_job_spec_place(&s, t.nparts), &pt)) != 0)
            goto out;
    }
    if (rc && o->spool && rc == CLI_REDIS) {
        /* Accepted all the same: the job file is there for a worker. */
        rc = spool_fallback(c, &t, o, &s, NULL, err);
        goto out;
    }
    if (rc)
        goto out;
    if (known) {
        existing_job(c, o, &s, known, why, spool_wrote);
        printf("%s\n", known);
        rc = cli_flush(c);
        if (rc == CLI_OK && o->wait)
            rc = wait_and_print(c, &t, known, wait_ms);
        goto out;
    }
    lw_enqueue_reply got;
    lw_enqueue_job job;
    int ok = r && lw_enqueue_reply_read(r, &got, NULL, 0) == 0 && got.n_job == 1;
    if (!ok) {
        if (o->spool)
            rc = spool_fallback(c, &t, o, &s, r, why);
        else if (r)
            rc = cli_redis_err(pt.conn, r, NULL);
        else if (pt.conn->ctx)
            rc = cli_redis_err(pt.conn, NULL, why);
        else
            rc = CLI_REDIS; /* cli_connect said why */
        goto out;
    }
    lw_enqueue_job_at(&got, 0, &job);
    if (cli_confirm(c, pt.conn, pt.prefix, why, sizeof why) != 0) {
        /* On the primary, not on enough replicas: not acknowledged. With
         * --spool the job file stays for a worker to enqueue again (the
         * same id: no duplicate). */
        char line[1100];
        snprintf(line, sizeof line, "job %s enqueued on the primary, but %s", job.id.s, why);
        if (o->spool)
            rc = spool_fallback(c, &t, o, &s, NULL, line);
        else
            rc = cli_redis_err(pt.conn, NULL, line);
        goto out;
    }
    char *id = cli_strdup(job.id.s);
    if (job.why.len > 0)
        existing_job(c, o, &s, id, job.why.s, spool_wrote);
    printf("%s\n", id);
    rc = cli_flush(c);
    if (rc == CLI_OK && o->wait)
        rc = wait_and_print(c, &pt, id, wait_ms);
    free(id);
out:
    free(known);
    if (r)
        freeReplyObject(r);
    lw_argv_clear(&a);
    lw_job_spec_clear(&s);
    return rc;
}

int cmd_enqueue(cli *c, int argc, char **argv)
{
    enq_opts o;
    memset(&o, 0, sizeof o);
    const cli_opt opts[] = {
        {"--tenant", &o.tenant, NULL, NULL, NULL},
        {"--kind", &o.kind, NULL, NULL, NULL},
        {"--lane", &o.lane, NULL, NULL, NULL},
        {"--queue", &o.queue, NULL, NULL, NULL},
        {"--id", &o.id, NULL, NULL, NULL},
        {"--unique", &o.unique, NULL, NULL, NULL},
        {"--unique-for", &o.unique_for, NULL, NULL, NULL},
        {"--payload", &o.payload, NULL, NULL, NULL},
        {"--payload-file", &o.payload_file, NULL, NULL, NULL},
        {"--delay", &o.delay, NULL, NULL, NULL},
        {"--attempts", &o.attempts, NULL, NULL, NULL},
        {"--timeout", &o.timeout, NULL, NULL, NULL},
        {"--expires", &o.expires, NULL, NULL, NULL},
        {"--wait", NULL, &o.wait, NULL, NULL},
        {"--wait-timeout", &o.wait_timeout, NULL, NULL, NULL},
        {"--spool", &o.spool, NULL, NULL, NULL},
        {"--batch", &o.batch, NULL, NULL, NULL},
        {NULL, NULL, NULL, NULL, NULL},
    };
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        return rc;
    if (!o.batch)
        return enqueue_one(c, &o);

    const struct {
        const char *v, *name;
    } single[] = {{o.id, "--id"},
                  {o.unique, "--unique"},
                  {o.unique_for, "--unique-for"},
                  {o.payload, "--payload"},
                  {o.payload_file, "--payload-file"},
                  {o.spool, "--spool"},
                  {o.wait_timeout, "--wait-timeout"}};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        if (single[i].v) {
            cli_err(c->cmd, "%s cannot be used with --batch", single[i].name);
            return CLI_USAGE;
        }
    }
    if (o.wait) {
        cli_err(c->cmd, "--wait cannot be used with --batch");
        return CLI_USAGE;
    }
    lw_job_spec d;
    lw_job_spec_init(&d);
    rc = spec_from_opts(c, &o, &d);
    if (rc == 0)
        rc = cmd_batch(c, o.batch, &d);
    lw_job_spec_clear(&d);
    return rc;
}

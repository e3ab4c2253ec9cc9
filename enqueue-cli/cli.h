/*
 * cli.h — what every `lanework` command shares: the exit statuses, error
 * lines, option parsing, tenant resolution and Redis connections.
 *
 * A command is a function `int cmd_X(cli *c, int argc, char **argv)` called
 * with argv[0] = the command name; it returns the process exit status. Errors
 * are printed where they are found, as one line `lanework: WHAT: WHY`, so a
 * command returns a bare status.
 */
#ifndef LW_CLI_H
#define LW_CLI_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "argv.h"
#include "config.h"
#include "jobspec.h"
#include "partition.h"
#include "registry.h"
#include "resp_sync.h"
#include "scripts.h"
#include "settings.h"
#include "url.h"

/* Exit statuses (CONTRACT section 9). */
enum {
    CLI_OK = 0,        /* done; for wait: every job succeeded */
    CLI_JOB = 1,       /* a job ended failed, cancelled or expired (or is corrupt) */
    CLI_USAGE = 2,     /* usage or input error */
    CLI_REDIS = 3,     /* Redis unreachable or refused the command */
    CLI_NOJOB = 4,     /* no such job */
    CLI_TIMEOUT = 124, /* wait timed out */
};

#define CLI_CONNECT_TIMEOUT_MS 5000
#define CLI_PREFIX_MAX 512
#define CLI_KEY_MAX 1024
/* Connections one command may hold: a Cluster URL has one per slot used, and
 * a tenant may have LW_PARTITIONS_MAX partitions. */
#define CLI_CONNS_MAX 160

/* One Redis server in use (connected on first use). */
typedef struct cli_conn {
    char *url_text; /* owned; as configured */
    lw_url *url;    /* owned */
    lw_sconn *ctx;  /* owned; NULL until connected */
    int scripts_loaded;
    int evalsha_only;     /* the server refused FCALL or the library: EVALSHA */
    int reply_timeout_ms; /* 0: none (cli_set_reply_timeout) */
    int connect_ms;       /* a connect's bound; 0: CLI_CONNECT_TIMEOUT_MS */
    int warned;           /* the insecure=1 warning was printed */
    /* Cluster URLs: the node this connection reaches is the master serving
     * this hash slot (asked again at every reconnect), or any node for -1.
     * Once the URL's masters are known (cli_cluster_map) it is the first
     * slot of its master: one connection serves all of that master's keys. */
    int slot;
    /* cli_part_open could not connect (why in part_why): the other
     * partitions of that master are not tried again by the same command,
     * as each try may cost a connect timeout per seed. */
    int part_failed;
    char part_why[256];
    /* The breaker of long-running users (holds.c; NULL: none, every
     * command). Borrowed from cli at creation. */
    struct cli_holds *holds;
} cli_conn;

struct cli_slotmap;

typedef struct cli {
    lw_config cfg;
    const char *cmd;  /* the running command's name, for messages */
    int env_failed;   /* the environment held a bad value (reported) */
    lw_registry *reg; /* NULL without a registry (or before cli_registry) */
    int reg_loaded;
    cli_conn *conns;
    size_t nconns;
    struct cli_slotmap *maps; /* owned; Cluster URLs' masters (cli_cluster_map) */
    size_t nmaps;
    struct cli_holds *holds; /* borrowed; the breaker of every connection made */
    /* The reply bound a connection made from now on starts with (0: none
     * until the command sets one): the dashboard's DASH_REPLY_MS, so that
     * cli_part_open keeps it rather than its own CLI_PART_REPLY_MS. */
    int new_reply_ms;
    /* The connect bound of a connection made from now on (0: the usual
     * CLI_CONNECT_TIMEOUT_MS; per try: a Cluster URL may try a seed and
     * then the master it names). */
    int new_connect_ms;
} cli;

/* A tenant as the commands use it. Borrowed pointers into `cli`. */
typedef struct cli_tenant {
    const char *name;
    const lw_tenant *reg;        /* the registry entry; NULL without a registry */
    cli_conn *conn;              /* its Redis (not connected yet) */
    char prefix[CLI_PREFIX_MAX]; /* "NS:{T}:", or partition part's (partition.h) */
    int part;                    /* the partition these are of */
    int nparts;                  /* the count in force (cli_partitions; 0: not read) */
    /* Partition 0 may still answer for ids and unique keys from before the
     * tenant was partitioned (read with nparts; cli_known_before). */
    int legacy;
    /* Retention and events cap from the registry, else our flags: only the
     * scripts' fallback while no worker published the tenant's settings. */
    lw_tenant_settings set;
} cli_tenant;

/* ---- messages ---- */

/* Prints "lanework: WHAT: WHY\n" to stderr as one write(2), after flushing
 * stdout so the two keep their order. Control characters become spaces (one
 * line whatever WHY quotes), a message past about 1 KiB is cut. Cannot fail
 * visibly: a failed write is dropped. */
void cli_err(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "lanework: redis: URL: WHY" (the URL redacted) for a connection
 * error or an error reply and returns CLI_REDIS. `r` may be NULL (then `why`
 * is used; NULL or "": "connection lost"); a reply that is not an error is
 * reported as unexpected. Borrows its arguments; frees nothing. */
int cli_redis_err(const cli_conn *k, const redisReply *r, const char *why);
/* 0 when r is an array reply; else prints it as cli_redis_err does, frees
 * it (the caller's no more) and returns the exit status. */
int cli_not_array(const cli_conn *k, redisReply *r);
/* Says on stderr that an enqueue returned existing job `id` instead of a
 * new one; `why` is enqueue.lua's "held STATUS" or "exists STATUS", `key`
 * the unique key when the caller knows it (NULL: not named). One cli_err
 * line under `what`; not an error status (an existing job is an answer). */
void cli_enqueue_existing(const char *what, const char *key, const char *id, const char *why);

/* ---- options ---- */

/* One option a command accepts. `value`: where a value option stores its
 * argument (borrowed from argv; the last one given wins); `flag`: where a
 * switch counts its occurrences. `list`/`nlist`: a repeatable value option
 * (an array the caller sized to argc). Exactly one of them is set. */
typedef struct cli_opt {
    const char *name; /* "--kind" */
    const char **value;
    int *flag;
    const char **list;
    size_t *nlist;
} cli_opt;

/* The positional arguments a command takes (they are job ids when any), and
 * so the error cli_args_parse prints for a wrong number of them. */
typedef enum cli_args_rule {
    CLI_ARGS_NONE,   /* none: `unexpected argument "X"` */
    CLI_ARGS_ONE_ID, /* exactly one: `expected one job id (see ...)` */
    CLI_ARGS_IDS,    /* one or more: `expected at least one job id (see ...)` */
    CLI_ARGS_ANY,    /* any number: the command judges them itself */
} cli_args_rule;

/* A command's positional arguments. */
typedef struct cli_args {
    const char **pos; /* owned array (cli_args_free); the strings are argv's */
    size_t npos;
} cli_args;

/* The start of every command. Parses argv[1..argc) (argv[0] is the
 * command): its options `opts` ("--opt VALUE" or "--opt=VALUE"), the shared
 * flags of config.h, -h/--help, and positionals into *args; "--" ends the
 * options. Prints `usage` and the shared flags for --help, and one error
 * line for a bad option or a number of positionals that `rule` refuses.
 * Returns 1 when the command goes on, with *args to be freed by
 * cli_args_free (`args` may be NULL with CLI_ARGS_NONE: there is nothing in
 * it); else 0 with the exit status in *rc (CLI_OK after --help) and nothing
 * to free. */
int cli_args_parse(cli *c, int argc, char **argv, const cli_opt *opts, const char *usage,
                   cli_args_rule rule, cli_args *args, int *rc);

/* Frees what cli_args_parse allocated in `a` (the argv strings stay) and
 * empties it: a second call is harmless. */
void cli_args_free(cli_args *a);

/* Number parsing with the contract's messages (lw_parse_seconds_ms, at most
 * ten years; lw_parse_int): each returns 0 with the value stored, or
 * CLI_USAGE after printing `lanework: CMD: --opt: "v" is not ...` (the output
 * is then not to be used). */
int cli_seconds(cli *c, const char *opt, const char *v, int allow_zero, int64_t *ms);
int cli_int(cli *c, const char *opt, const char *v, int64_t min, int64_t max, int64_t *out);

/* ---- tenants and Redis ---- */

/* Loads the registry when one is configured, into c->reg (owned by `c`,
 * freed by cli_clear); c->reg stays NULL without --registry. Only the first
 * call loads: a failed load is printed once and every later call returns
 * CLI_USAGE again without retrying. Returns 0 or CLI_USAGE. */
int cli_registry(cli *c);

/* Resolves tenant `name` into *out (zeroed first): a safe name, known to the
 * registry when there is one; picks its Redis (the registry's `redis`, else
 * the default) without connecting, and its settings and key prefix. out
 * borrows `name` (which must outlive it) and points into `c`. Returns 0 or
 * CLI_USAGE (printed: a missing, unknown, unsafe or too long name, a registry
 * or Redis URL that does not load, OOM). */
int cli_tenant_get(cli *c, const char *name, cli_tenant *out);

/* The start of a command about jobs ids[0..nids) of tenant `name` (none:
 * NULL, 0): checks every id (cli_check_id), resolves the tenant into *out
 * (cli_tenant_get) and connects to its Redis. The ids come first: a bad id
 * is the user's mistake whatever the registry or Redis say. Returns 0, or
 * CLI_USAGE or CLI_REDIS (printed). */
int cli_tenant_open(cli *c, const char *name, const char *const *ids, size_t nids, cli_tenant *out);

/* The start of a command `CMD --tenant T ID` about one job: parses its
 * arguments (cli_args_parse) and opens the tenant for ID (cli_tenant_open).
 * Returns 1 when the command goes on, with *id (borrowed from argv) and *t
 * set; else 0 with the exit status in *rc (CLI_OK after --help). */
int cli_one_job_open(cli *c, int argc, char **argv, const char *usage, const char **id,
                     cli_tenant *t, int *rc);

/* ---- partitions (partitions.c; partition.h) ---- */

/* Reads the partition count in force for tenant t (partition 0's settings)
 * into t->nparts, once, on t's connection (nothing pipelined on it may be
 * waiting: the reply would be taken out of turn) / on a connection of its
 * own (--batch, whose connections carry pipelined calls). Returns 0, or
 * CLI_REDIS (printed). */
int cli_partitions(cli *c, cli_tenant *t);
int cli_partitions_apart(cli *c, cli_tenant *t);
/* cli_partitions for a command that gives a partial answer: connects
 * quietly, and a failed read is CLI_REDIS with why[0..whylen) set, not
 * printed (the caller names the tenant). */
int cli_partitions_quiet(cli *c, cli_tenant *t, char *why, size_t whylen);
/* Bounds the replies on k (CLI_PART_REPLY_MS) unless a bound is set: a
 * frozen server makes the command exit 3, not hang. Returns 0 or CLI_REDIS
 * (printed). */
int cli_bound_replies(cli_conn *k);
/* Whether job s, going to partition `part` of t (its id its own when
 * own_id, not one lw_job_spec_place drew), must be asked about in partition
 * 0 first: while t->legacy, a job with its own id or a unique key routed
 * elsewhere (known.lua, DESIGN.md "Partitions"). Pure. */
int cli_known_needed(const cli_tenant *t, int part, const lw_job_spec *s, int own_id);
/* Asks partition 0 of t (t itself) whether it answers for job s from before
 * the tenant was partitioned (known.lua), on t's connection. Returns 0 with
 * *existing NULL (enqueue it), or set (owned by the caller: free) and `why`
 * ("exists STATUS" / "held STATUS") filled: s is that job; clears t->legacy
 * once the window has passed. Else CLI_REDIS (printed, or, when `fail` is
 * not NULL, written there: --spool falls back to its file) or CLI_USAGE
 * (printed). */
int cli_known_before(cli_tenant *t, const lw_job_spec *s, char **existing, char *why, size_t whylen,
                     char *fail, size_t faillen);
/* The pieces of cli_known_before, for a pipeline (--batch): the call
 * asking about job s in partition 0 (t) into a (emptied first), and its
 * reply r read as cli_known_before says -- 0, -1 for a failed or refused
 * call (nothing printed), -2 out of memory (printed). */
void cli_known_args(lw_argv *a, const cli_tenant *t, const lw_job_spec *s);
int cli_known_read(cli_tenant *t, const redisReply *r, char **existing, char *why, size_t whylen);
/* Fills *out with partition p of tenant t (t of any partition; nparts
 * read): its prefix and connection (not connected). Returns 0 or CLI_USAGE
 * (printed: too many servers, OOM). */
int cli_tenant_part(cli *c, const cli_tenant *t, int p, cli_tenant *out);
/* Finds the partition of t holding job `id`: the id's own partition first
 * (lw_partition_of), then the others. Returns 0 with it in *out; CLI_NOJOB
 * (not printed) with the id's own partition in *out when none holds it; or
 * CLI_REDIS / CLI_USAGE (printed). Reads t's partition count first. */
int cli_job_partition(cli *c, cli_tenant *t, const char *id, cli_tenant *out);

/* Commands that read every partition (stats, events, retry --all-failed)
 * give what the partitions they could read hold when some master is down
 * or frozen (DESIGN.md section 11): each unreadable partition is named on
 * stderr and the exit status is CLI_REDIS. The bound on a partition's
 * replies while it is read, unless the command set one. */
#define CLI_PART_REPLY_MS (2 * CLI_CONNECT_TIMEOUT_MS)
/* Fills *out with partition p of t (cli_tenant_part) and connects it,
 * bounding its replies (CLI_PART_REPLY_MS). Returns 0; CLI_REDIS, not
 * printed, with why[0..whylen) set (the caller names the partition:
 * cli_part_unreadable); or CLI_USAGE (printed). */
int cli_part_open(cli *c, const cli_tenant *t, int p, cli_tenant *out, char *why, size_t whylen);
/* Why partition pt failed during a read: its connection's error, else
 * that the server refused a command (that error line was printed). */
void cli_part_why(const cli_tenant *pt, char *why, size_t whylen);
/* Prints `lanework: CMD: tenant "T" partition P (PREFIX) unreadable: WHY;
 * TAIL` -- TAIL says what the command's answer lacks for it. */
void cli_part_unreadable(const cli *c, const char *tenant, int p, const char *why,
                         const char *tail);

/* The partitions a partial answer leaves out, with why (the dashboard's
 * banner and flash messages; the *_partial functions below). */
typedef struct cli_gaps {
    int n;
    int part[LW_PARTITIONS_MAX];
    char why[LW_PARTITIONS_MAX][200];
} cli_gaps;
/* Notes partition p in g (once: a second note of p is dropped). */
void cli_gap_add(cli_gaps *g, int p, const char *why);
/* 1 when g notes partition p. */
int cli_gap_has(const cli_gaps *g, int p);

/* What a command does with the ids of one partition (pt: that partition,
 * connected), returning an exit status; ud is the caller's. */
typedef int (*cli_ids_fn)(cli *c, cli_tenant *pt, const char *const *ids, size_t n, void *ud);
/* Runs fn once per partition of t that holds some of ids[0..n) (an id none
 * holds goes with its own partition, where fn finds no such job), in
 * partition order, each partition's ids in their order; an unpartitioned
 * tenant is one call with every id and no lookup. Stops at CLI_REDIS or
 * CLI_TIMEOUT and returns it; else returns the first status other than
 * CLI_OK (as one call over every id would). */
int cli_each_partition(cli *c, cli_tenant *t, const char *const *ids, size_t n, cli_ids_fn fn,
                       void *ud);

/* The connection for a URL (the default when url_text is NULL), created on
 * first use but not connected; the same one for the same URL text -- and,
 * on a Cluster URL, for keys in the same hash slot as `key` (the node
 * serving that slot; NULL: any node, for commands that name no key of a
 * tenant; after cli_cluster_map, the node serving the key's master).
 * Owned by `c` (at most CLI_CONNS_MAX; the pointer stays valid until
 * cli_clear). Returns NULL after printing why (exit 2: a bad URL, too many
 * servers, OOM). */
cli_conn *cli_conn_for(cli *c, const char *url_text, const char *key);

/* On a Cluster URL (the default when url_text is NULL), reads which
 * master serves which slot (CLUSTER SLOTS through any node), once per
 * process: from then on cli_conn_for gives every key of one master the
 * same connection, so a command reading keys in many slots (a worker's
 * NS:worker:NAME each has its own) holds one connection per master, not
 * one per slot. A slot no master serves keeps its own. Another URL: 0, at
 * once. Returns 0, CLI_USAGE (a bad URL, OOM) or CLI_REDIS (printed). */
int cli_cluster_map(cli *c, const char *url_text);

/* The connections to every server behind a URL (the default when url_text
 * is NULL), for commands that look at all of its keys (SCAN): on a Cluster
 * URL one per master (cli_cluster_map first), else the one server. Fills
 * out[0..*n) (room for CLI_CONNS_MAX; the connections are c's, not
 * connected yet). Returns 0, CLI_USAGE or CLI_REDIS (printed). */
int cli_nodes(cli *c, const char *url_text, cli_conn **out, size_t *n);

/* Connects `k` if needed (CLI_CONNECT_TIMEOUT_MS), applying its reply
 * timeout. Returns 0, or CLI_REDIS after printing why unless `quiet` (`why`
 * gets the reason, when not NULL). A connection that already failed is not
 * replaced here: CLI_REDIS, not printed (cli_reconnect makes a new one). */
int cli_connect(cli_conn *k, int quiet, char *why, size_t whylen);
/* ---- holds.c: a breaker shared by threads (the dashboard) ---- */

/* After a failure a server is not connected again for hold_ms, by any
 * connection of the cli's sharing the holds: a Redis that does not answer
 * costs one timeout per hold_ms, not one per page. Thread-safe. */
struct cli_holds *cli_holds_new(int hold_ms);
void cli_holds_free(struct cli_holds *h);
/* Holds k's server after a failure why that was a timeout ("timed out";
 * nothing else holds, nothing without k->holds). */
void cli_hold(cli_conn *k, const char *why);
/* 1 with why set when k's server is held (its failure, the time left). */
int cli_held(const cli_conn *k, char *why, size_t whylen);
/* cli_connect (not quiet) taking no longer than until `deadline` (mono ms;
 * -1: the usual connect timeout). */
int cli_connect_within(cli_conn *k, int64_t deadline);

/* Bounds how long any reply on `k` may take (0: no bound), now and after
 * every (re)connect: a command that blocks on purpose sets its block time
 * plus a margin, so a silent server (a network cut, a frozen primary)
 * becomes a failed connection rather than a hang. Returns 0 or CLI_REDIS
 * (printed). */
int cli_set_reply_timeout(cli_conn *k, int ms);

/* ---- outages (reconnect.c) ---- */

/* A connection's outage as one command lives through it. Zeroed at the
 * start and by the caller after each good reply. */
typedef struct cli_outage {
    int tries;  /* reconnects tried in this outage */
    int warned; /* its warning line was printed */
} cli_outage;

/* 1 when reply `r` (NULL: the connection failed) is an outage worth waiting
 * out (lw_redis_error_is_transient); 0 for a refusal. */
int cli_is_outage(const redisReply *r);
/* Writes what went wrong into why (r's error text, else k's connection
 * error, else "connection lost"), as one line cut to fit. */
void cli_outage_why(const cli_conn *k, const redisReply *r, char *why, size_t whylen);
/* Sleeps ms milliseconds (signals do not cut it short). */
void cli_sleep_ms(int64_t ms);
/* Drops k's connection and connects again, pausing between tries with
 * capped, jittered backoff. Prints one warning line per outage (`lanework:
 * CMD: warning: redis URL: WHY; reconnecting`). Returns 0 once connected;
 * CLI_REDIS (printed) when the server refuses the handshake (WRONGPASS,
 * NOPERM: not an outage); CLI_TIMEOUT (not printed), having slept until
 * then, when deadline_ms (lw_mono_ms; < 0: none) would pass first. `why` is
 * for the warning (cli_outage_why). The scripts count as not loaded after
 * it (a restarted server has none); after CLI_TIMEOUT or a refusal k has
 * no connection. */
int cli_reconnect(cli *c, cli_conn *k, const char *why, int64_t deadline_ms, cli_outage *o);

/* --min-replicas (CONTRACT section 12): WAIT on k for what this connection
 * wrote, after a PUBLISH on `prefix`'s channel "sync" (replicated: it
 * takes the connection's offset past every earlier write, so a repeat that
 * wrote nothing is not confirmed before the first try's write is; DESIGN.md
 * section 11). Returns 0 when at least cfg.min_replicas replicas hold it (at
 * once when that is 0); 1 when fewer did within LW_MIN_REPLICAS_WAIT_MS, or
 * -1 when the connection failed -- each with why in why[0..whylen) ("only 0
 * of 1 replicas confirmed it within 1000 ms: it may be lost in a
 * failover"). Prints nothing. */
int cli_confirm(const cli *c, cli_conn *k, const char *prefix, char *why, size_t whylen);
/* The PUBLISH and WAIT cli_confirm sends, for a pipeline: appends them to k
 * (two replies: read the PUBLISH's and hand the WAIT's to cli_confirmed).
 * Returns 0 or CLI_REDIS (printed). */
int cli_append_wait(const cli *c, cli_conn *k, const char *prefix);
/* Reads a WAIT reply (cli_append_wait's); same results as cli_confirm.
 * Borrows r (NULL: the connection failed). */
int cli_confirmed(const cli *c, const cli_conn *k, const redisReply *r, char *why, size_t whylen);

/* Makes sure every script is cached on `k`'s server, for pipelined EVALSHA;
 * connects first if needed, and loads once per connection. Returns 0 or
 * CLI_REDIS (printed). */
int cli_load_scripts(cli_conn *k);

/* Runs script `s` on connected `k` (lw_redis_script_sync: its reply or NULL
 * with err). On a Cluster URL a `MOVED SLOT HOST:PORT` reply means the slot
 * moved since k connected, or the seed asked then had an old map, and that
 * the script did not run (Redis routes a script by its declared keys before running it): k is
 * then connected to the node named and the script sent once more there --
 * that second reply is the answer. When that node cannot be reached, the
 * MOVED reply is returned (the caller's exit 3). ASK is not followed:
 * our scripts touch several keys of the slot, and the importing node
 * answers TRYAGAIN to those until every key has moved. */
redisReply *cli_script(cli_conn *k, const lw_script *s, int nkeys, lw_argv *a, char *err,
                       size_t errlen);

/* Runs a command given as strings (argc of them; borrowed), connecting first
 * if needed, and returns its reply, or NULL after printing the connection
 * error. The reply may be an error reply; the caller frees it
 * (freeReplyObject). */
redisReply *cli_cmd(cli_conn *k, int argc, const char **argv);

/* cli_cmd for a one-key read, following one MOVED as cli_script does (a
 * read that moved did not run). */
redisReply *cli_cmd_moved(cli_conn *k, int argc, const char **argv);

/* Appends a command to `k`'s pipeline (connecting first if needed; the
 * strings are copied), 0 or CLI_REDIS (printed) / reads the next reply of a
 * connected `k`: the caller frees it (freeReplyObject), NULL after printing
 * the error. */
int cli_append(cli_conn *k, int argc, const char **argv);
redisReply *cli_next_reply(cli_conn *k);

/* ---- changes (cli_change.c) ---- */

/* Runs state-change script s on partition pt (cli_script) and confirms it
 * on the replicas (--min-replicas: cli_confirm). Returns the reply (not an
 * error reply; the caller frees it), or NULL after printing why: the
 * connection failed, Redis refused, or the replicas did not confirm
 * ("WHAT recorded on the primary, but ..."). */
redisReply *cli_change(cli *c, cli_tenant *pt, const lw_script *s, int nkeys, lw_argv *a,
                       const char *what);
/* The `lanework status` JSON of a job record read with HGETALL (reply r,
 * borrowed), or NULL when r holds none (empty, not a hash, no id) or on
 * OOM. Caller frees. */
char *cli_job_json(const char *tenant, const redisReply *r);

/* Flushes stdout. Returns 0; on EPIPE (the reader went away) exits the
 * process quietly with status 0; on another error prints it and returns
 * CLI_USAGE. */
int cli_flush(cli *c);

/* Frees everything `c` owns -- connections, registry, config -- so every
 * cli_conn, cli_tenant and registry pointer taken from it dies. */
void cli_clear(cli *c);
/* Makes view a cli for another thread: c's configuration and registry,
 * borrowed (read only; c outlives view), and connections of its own.
 * cli_view_clear frees what view owns (its connections). */
void cli_view(cli *view, const cli *c);
void cli_view_clear(cli *view);

/* ---- helpers ---- */

/* Reads all of a file ("-": stdin) up to max bytes (more is an error,
 * reported as EFBIG). Returns a malloc'ed NUL-terminated buffer the caller
 * frees, its length in *len, or NULL with errno set (open's or read's,
 * EFBIG, ENOMEM; *len untouched). Prints nothing. */
char *cli_read_all(const char *path, size_t max, size_t *len);

/* 1 when `r` is a string or status reply equal to s, else 0 (NULL r
 * included). */
int cli_reply_is(const redisReply *r, const char *s);

/* Copies s[0..len) into out as one printable line: control characters
 * become spaces, and it is cut (with "...") to fit outlen bytes, NUL
 * included. Returns out. Cannot fail. */
char *cli_oneline(const char *s, size_t len, char *out, size_t outlen);

/* Checks that `id` is a safe job id. Returns 0 or CLI_USAGE (printed). */
int cli_check_id(cli *c, const char *id);

/* A printable, bounded rendering (cli_oneline, 127 bytes) of user input `s`
 * (not NULL) for messages; borrowed from one of two rotating static buffers,
 * so one message may show two, and the third call overwrites the first.
 * Not thread-safe. */
const char *cli_show(const char *s);

/* strdup (NULL copies as "") that exits with status 2 after a message on
 * OOM (the CLI cannot go on): never returns NULL. The caller frees. */
char *cli_strdup(const char *s);

/* ---- kinds (kinds.c) ---- */

/* 0 when tenant `t` may be given jobs of `kind`: there is no registry, an
 * exec key of the tenant is `kind`, or its workers published that their
 * module serves it (or every kind; or nothing was published, or Redis
 * cannot tell). Else CLI_USAGE after printing `lanework: CMD: tenant T has
 * no handler for kind K (...)`. `shared`: may ask on t's own connection
 * (nothing pipelined on it); else on a connection of its own. */
int cli_check_kind(cli *c, const cli_tenant *t, const char *kind, int shared);

/* ---- what the commands and the dashboard share ---- */

/* The text of the latest cli_err line (without "lanework: " and the
 * newline), "" before any; a static buffer, overwritten by the next. The
 * dashboard shows it after an action failed. */
const char *cli_last_err(void);
void cli_last_err_clear(void);

/* pause.lua in every partition of t (opened), partition 0 first; *any:
 * some partition changed. Returns 0 or an exit status (printed, with the
 * partitions done when it stopped part-way). */
int cli_pause_queue(cli *c, cli_tenant *t, const char *queue, int pause, int *any);
/* cli_pause_queue that goes on past a partition >= 1 it cannot open or
 * change, noting it in g (nothing printed for it); *done: the partitions
 * changed or already so. Partition 0 failing is an exit status as above. */
int cli_pause_queue_partial(cli *c, cli_tenant *t, const char *queue, int pause, int *any,
                            int *done, cli_gaps *g);
/* Cancels job id in partition t (connected; cli_job_partition), as
 * `lanework cancel` does (its stdout line and status). */
int cli_cancel_job(cli *c, cli_tenant *t, const char *id);
/* Deletes ids[0..n) of t (opened) as `lanework delete` does. */
int cli_delete_jobs(cli *c, cli_tenant *t, const char *const *ids, size_t n);
/* Retries ids[0..n) of t (opened) as `lanework retry ID...` does; the
 * array is reordered (repeated ids dropped). */
int cli_retry_jobs(cli *c, cli_tenant *t, const char **ids, size_t n);
/* Jobs of t (opened) as `lanework list` finds them (NULL filters: any),
 * newest first, at most limit: *out[0..*n) the JSON objects of `lanework
 * status`, freed with cli_list_free. Returns 0 or an exit status (printed;
 * then nothing to free). */
int cli_list_jobs(cli *c, cli_tenant *t, const char *status, const char *queue, const char *lane,
                  long limit, char ***out, size_t *n);
void cli_list_free(char **jobs, size_t n);
/* cli_list_jobs over the partitions that can be read: one that cannot be
 * opened, or whose read fails, is left out whole and noted in g (not
 * printed). Returns 0 or an exit status (printed; nothing to free). */
int cli_list_jobs_partial(cli *c, cli_tenant *t, const char *status, const char *queue,
                          const char *lane, long limit, char ***out, size_t *n, cli_gaps *g);
/* The tenants `lanework stats` shows without --tenant: the registry's,
 * else those SCAN finds. *names[0..*n) malloc'ed (caller frees each and
 * the array; also after an error). Returns 0 or an exit status (printed). */
int cli_stats_tenants(cli *c, char ***names, size_t *n);
struct cJSON;
/* The object `lanework stats --json` prints for tenants[0..n), into *out
 * (caller frees with cJSON_Delete). Returns 0; CLI_REDIS with *out set when
 * some partitions were left out (named on stderr); or another status
 * (printed) with *out NULL. */
int cli_stats_json(cli *c, const char *const *tenants, size_t n, struct cJSON **out);
/* cli_stats_json that also notes in g the partitions of tenants[0] left
 * out, with why (g may be NULL). */
int cli_stats_json_gaps(cli *c, const char *const *tenants, size_t n, struct cJSON **out,
                        cli_gaps *g);
/* The array `lanework workers --json` prints, into *out (caller frees),
 * with *more (when not NULL) the directory's entries left out (past the
 * 1,000 newest heartbeats; said on stderr too). Returns 0 or an exit
 * status (printed; *out NULL). */
int cli_workers_json(cli *c, struct cJSON **out, long long *more);
/* 1 when e is a stream entry as XRANGE gives it: [id, [f, v...]]. */
int cli_is_entry(const redisReply *e);
/* The `lanework events` JSON object of entry e (cli_is_entry) of partition
 * part (< 1: its id without "#P"): malloc'ed, the caller frees; NULL on OOM. */
char *cli_event_json(const redisReply *e, int part);

/* ---- commands ---- */

/* Each runs one command, argv[0] its name, and returns the process exit
 * status (CLI_*), its errors printed (file header). */
int cmd_enqueue(cli *c, int argc, char **argv);
/* `enqueue --batch`: jobs from file `path` ("-": stdin), one JSON line each;
 * `defaults` (borrowed) holds the command line's job fields. Exit status as
 * cmd_batch.c's header says (2: a bad line, 3: Redis failed). */
int cmd_batch(cli *c, const char *path, const lw_job_spec *defaults);
int cmd_status(cli *c, int argc, char **argv);
int cmd_wait(cli *c, int argc, char **argv);
int cmd_cancel(cli *c, int argc, char **argv);
int cmd_retry(cli *c, int argc, char **argv);
int cmd_stats(cli *c, int argc, char **argv);
int cmd_workers(cli *c, int argc, char **argv);
int cmd_events(cli *c, int argc, char **argv);
int cmd_fsck(cli *c, int argc, char **argv);
int cmd_pause(cli *c, int argc, char **argv);
int cmd_delete(cli *c, int argc, char **argv);
int cmd_list(cli *c, int argc, char **argv);
int cmd_purge(cli *c, int argc, char **argv);
int cmd_resume(cli *c, int argc, char **argv);
int cmd_dashboard(cli *c, int argc, char **argv);

/* Waits until every job of `ids` (all of tenant `t`) is terminal, or until
 * timeout_ms (< 0: forever) passes. Prints one stderr line per job that is
 * missing or ended other than succeeded; `ids` are borrowed. Rides out
 * Redis outages until the timeout. Returns CLI_OK, CLI_JOB, CLI_NOJOB,
 * CLI_TIMEOUT or CLI_REDIS (printed); CLI_USAGE on OOM. */
int cli_wait_jobs(cli *c, cli_tenant *t, const char *const *ids, size_t n, int64_t timeout_ms);

#endif

/*
 * cmd_fsck.c — `lanework fsck --tenant T [--repair]`: checks the invariants
 * of docs/DESIGN.md section 4 in one tenant's keys and, with --repair, fixes
 * what it found (fsck.lua does both).
 *
 * Why no false positives while the fleet runs: the tenant is read with SCAN
 * and ranges in bounded, pipelined batches, which is not one instant, so what
 * that read shows is only a *suspect*. Each suspect is checked again by
 * fsck.lua, atomically, i.e. between two scripts, where every invariant must
 * hold; only what it confirms is reported, and a repair runs in that same
 * script call right after its check. The one check that cannot be redone
 * inside a script is a counter (it needs every record): counters are compared
 * only when the read saw a quiet tenant — its last event id was the same
 * before and after the read, and every status change appends an event in the
 * same script — and fsck.lua confirms the last event id is still that one.
 * On a tenant busy during every read the counters are left unchecked (said on
 * an info line). The price: a problem that appears while fsck reads may be
 * missed until the next run; a reported one is real.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "partition.h"
#include "keys.h"
#include "redis_sync.h"
#include "script_args.h"
#include "script_replies.h"

#define SCAN_COUNT "1000"
#define RANGE_CHUNK 1000    /* members per LRANGE/ZRANGE */
#define PIPE_MAX 256        /* keys per pipelined batch of range reads */
#define ITEMS_PER_CALL 100  /* suspects per fsck.lua call: short script runs */
#define FSCK_LEASE_MS 15000 /* lease for a running head found without one (--lease default) */
#define QUIET_TRIES 3       /* reads of the tenant looking for a quiet one */
#define REPAIR_ROUNDS 4     /* a repair can reveal the next (counters after statuses) */

static const char USAGE[] =
    "Usage: lanework fsck --tenant T [--repair]\n"
    "\n"
    "Checks every invariant of the tenant's Redis keys (docs/DESIGN.md, section 4):\n"
    "every job record readable with a known status; every unfinished job in its\n"
    "lane exactly once, a running one at its head; every lane headed by a live\n"
    "job, which is in exactly its structure (queued: ready:Q, scheduled: the\n"
    "schedule, active: a lease in active:Q); no lease, schedule or expiry entry\n"
    "without its job; failed jobs in the failed index and only they; unique keys\n"
    "naming the job that holds them; every queue in the queues set; the queued\n"
    "and scheduled counters equal to the jobs in those statuses.\n"
    "Prints one line per problem, `info:` lines for what is harmless (tombstones:\n"
    "stale ready-list and lane entries every reader skips), then\n"
    "`fsck: tenant T: N jobs, M lanes, K problems`.\n"
    "\n"
    "Safe while workers run: each problem is confirmed by an atomic re-check in\n"
    "Redis before it is reported. Counters are checked only when the tenant was\n"
    "quiet during the read (else an info line says so).\n"
    "\n"
    "  --repair   fix each problem found, each fix one atomic script that checks\n"
    "             the problem again first; prints `repaired: PROBLEM: WHAT WAS\n"
    "             DONE` (or `not repaired: PROBLEM: WHY`), then checks again and\n"
    "             prints the remaining problems and `fsck: tenant T: after\n"
    "             repair: ...`.\n"
    "\n"
    "Exit status: 0 consistent (with --repair: after the repairs); 1 problems\n"
    "found (with --repair: some remain); 2 usage error or unknown tenant; 3 Redis\n"
    "unreachable or refused.\n";

/* ---- suspects ---- */

/* The checks of fsck.lua, in the order repairs must run: the record itself,
 * lane membership, lane heads, head placement, the indexes, unique keys, and
 * the counters last, after everything that changes a status. */
typedef enum {
    K_TYPE,
    K_JOB_CORRUPT,
    K_JOB_LANE,
    K_LANE_FOREIGN,
    K_LANE_HEAD,
    K_JOB_PLACE,
    K_SCHEDULE,
    K_ACTIVE,
    K_EXPIRING,
    K_FAILED,
    K_JOB_FAILIDX,
    K_UNIQUE,
    K_JOB_UNIQUE,
    K_QUEUE_SET,
    K_COUNT,
    K_NKINDS
} check_kind;

static const char *const KIND_NAME[K_NKINDS] = {
    "type",        "job_corrupt", "job_lane",   "lane_foreign", "lane_head",
    "job_place",   "schedule",    "active",     "expiring",     "failed",
    "job_failidx", "unique",      "job_unique", "queue_set",    "count",
};

typedef struct suspect {
    check_kind kind;
    char *a, *b, *c; /* owned; "" when unused */
} suspect;

/* ---- the tenant as read ---- */

typedef struct fjob {
    char *id, *status, *queue, *lane, *unique; /* owned; NULL when absent */
    int corrupt;                               /* fails the record checks of lib.lua's job_get */
    unsigned lane_count;                       /* entries in its own lane */
    unsigned char is_head, in_ready, in_sched, in_active, in_failed;
} fjob;

typedef struct fuq { /* P unique:KEY */
    char *key, *val; /* owned; val NULL when not a string */
    long long pttl;
} fuq;

typedef struct fqueue {
    char *name; /* owned */
    int known;  /* in the queues set */
    long long queued, scheduled;
} fqueue;

typedef struct strv {
    char **v; /* owned strings */
    size_t n, cap;
} strv;

typedef struct fsck {
    cli *c;
    cli_tenant *t;
    size_t plen; /* strlen(t->prefix) */
    fjob *jobs;
    size_t njobs, capjobs;
    fuq *uq;
    size_t nuq, capuq;
    fqueue *qs;
    size_t nqs, capqs;
    strv lanes, queue_keys; /* names from lane:* keys; queues from ready:* / active:* keys */
    suspect *sus;
    size_t nsus, capsus;
    char *version;     /* owned: the last event id after the read ("" none) */
    redisReply *stats; /* owned: HGETALL stats after the read; NULL if unreadable */
    int quiet;         /* no event between the start and the end of the read */
    long long tomb_ready, tomb_lane, stale_failed;
} fsck;

/* Counts of what fsck.lua answered. */
typedef struct tally {
    long long problems, repaired, cannot, changed;
} tally;

enum { SHOW_PROBLEMS = 1, SHOW_INFO = 2, SHOW_REPAIRS = 4, SHOW_CANNOT = 8 };

/* ---- small helpers ---- */

/* Makes room for `need` elements; the CLI cannot go on without memory. */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * size);
    if (!q) {
        cli_err("fsck", "out of memory");
        exit(CLI_USAGE);
    }
    *cap = n;
    return q;
}

static char *dup_or_null(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING ? cli_strdup(r->str) : NULL;
}

static int str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static void strv_push(strv *s, const char *v)
{
    s->v = grow(s->v, &s->cap, s->n + 1, sizeof *s->v);
    s->v[s->n++] = cli_strdup(v);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and drops repeats (SCAN may return a key twice). */
static void strv_sort_unique(strv *s)
{
    if (s->n == 0)
        return;
    qsort(s->v, s->n, sizeof *s->v, cmp_strp);
    size_t k = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->v[i], s->v[k - 1]) == 0)
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static void add_suspect(fsck *x, check_kind k, const char *a, const char *b, const char *c)
{
    x->sus = grow(x->sus, &x->capsus, x->nsus + 1, sizeof *x->sus);
    x->sus[x->nsus++] = (suspect){k, cli_strdup(a), cli_strdup(b), cli_strdup(c)};
}

/* A SCAN pattern matching exactly the keys that start with `prefix`. */
static void glob_prefix(char *out, size_t outlen, const char *prefix)
{
    size_t o = 0;
    for (const char *p = prefix; *p && o + 3 < outlen; p++) {
        if (strchr("*?[]\\", *p))
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '*';
    out[o] = '\0';
}

/* ---- reset ---- */

static void fjob_free(fjob *j)
{
    free(j->id);
    free(j->status);
    free(j->queue);
    free(j->lane);
    free(j->unique);
}

/* Forgets everything read, for a new read of the tenant. */
static void fsck_reset(fsck *x)
{
    for (size_t i = 0; i < x->njobs; i++)
        fjob_free(&x->jobs[i]);
    x->njobs = 0;
    for (size_t i = 0; i < x->nuq; i++) {
        free(x->uq[i].key);
        free(x->uq[i].val);
    }
    x->nuq = 0;
    for (size_t i = 0; i < x->nqs; i++)
        free(x->qs[i].name);
    x->nqs = 0;
    for (size_t i = 0; i < x->nsus; i++) {
        free(x->sus[i].a);
        free(x->sus[i].b);
        free(x->sus[i].c);
    }
    x->nsus = 0;
    strv_free(&x->lanes);
    strv_free(&x->queue_keys);
    free(x->version);
    x->version = NULL;
    if (x->stats)
        freeReplyObject(x->stats);
    x->stats = NULL;
    x->quiet = 0;
    x->tomb_ready = x->tomb_lane = x->stale_failed = 0;
}

static void fsck_free(fsck *x)
{
    fsck_reset(x);
    free(x->jobs);
    free(x->uq);
    free(x->qs);
    free(x->sus);
}

/* ---- job records ---- */

/* The fields lib.lua's job_get reads, in the order of the HMGET. */
static const char *const JOB_FIELDS[] = {"status",   "queue",  "lane",    "kind",  "attempt",
                                         "attempts", "run_at", "expires", "unique"};
enum {
    F_STATUS,
    F_QUEUE,
    F_LANE,
    F_KIND,
    F_ATTEMPT,
    F_ATTEMPTS,
    F_RUN_AT,
    F_EXPIRES,
    F_UNIQUE,
    NFIELDS
};

static const char *const STATUSES[] = {"scheduled", "queued",    "active", "succeeded",
                                       "failed",    "cancelled", "expired"};

static int known_status(const char *s)
{
    for (size_t i = 0; i < sizeof STATUSES / sizeof STATUSES[0]; i++)
        if (strcmp(s, STATUSES[i]) == 0)
            return 1;
    return 0;
}

/* What Lua's tonumber accepts, a little stricter (no inf/nan): anything
 * doubtful only becomes a suspect, and fsck.lua decides. */
static int is_number(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || strpbrk(r->str, "iInN"))
        return 0;
    char *end;
    errno = 0;
    (void)strtod(r->str, &end);
    if (end == r->str || errno)
        return 0;
    while (isspace((unsigned char)*end))
        end++;
    return *end == '\0';
}

static int nonempty(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING && r->len > 0;
}

/* 1 when an HMGET reply of JOB_FIELDS passes the checks of job_get. */
static int record_ok(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != NFIELDS)
        return 0;
    redisReply *const *f = r->element;
    if (!nonempty(f[F_STATUS]) || !known_status(f[F_STATUS]->str))
        return 0;
    if (!nonempty(f[F_QUEUE]) || !nonempty(f[F_LANE]) || !nonempty(f[F_KIND]))
        return 0;
    if (!is_number(f[F_ATTEMPT]) || !is_number(f[F_ATTEMPTS]))
        return 0;
    for (int i = F_RUN_AT; i <= F_EXPIRES; i++)
        if (f[i]->type != REDIS_REPLY_NIL && !is_number(f[i]))
            return 0;
    return 1;
}

static void add_job(fsck *x, const char *id, const redisReply *r)
{
    x->jobs = grow(x->jobs, &x->capjobs, x->njobs + 1, sizeof *x->jobs);
    fjob *j = &x->jobs[x->njobs++];
    memset(j, 0, sizeof *j);
    j->id = cli_strdup(id);
    j->corrupt = !record_ok(r);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != NFIELDS)
        return; /* not a hash */
    j->status = dup_or_null(r->element[F_STATUS]);
    j->queue = dup_or_null(r->element[F_QUEUE]);
    j->lane = dup_or_null(r->element[F_LANE]);
    if (nonempty(r->element[F_UNIQUE]))
        j->unique = dup_or_null(r->element[F_UNIQUE]);
}

static int cmp_job(const void *a, const void *b)
{
    return strcmp(((const fjob *)a)->id, ((const fjob *)b)->id);
}

static void sort_jobs(fsck *x)
{
    if (x->njobs == 0)
        return;
    qsort(x->jobs, x->njobs, sizeof *x->jobs, cmp_job);
    size_t k = 1;
    for (size_t i = 1; i < x->njobs; i++) {
        if (strcmp(x->jobs[i].id, x->jobs[k - 1].id) == 0)
            fjob_free(&x->jobs[i]);
        else
            x->jobs[k++] = x->jobs[i];
    }
    x->njobs = k;
}

static fjob *find_job(fsck *x, const char *id)
{
    fjob key = {.id = (char *)id};
    return x->njobs ? bsearch(&key, x->jobs, x->njobs, sizeof *x->jobs, cmp_job) : NULL;
}

static int is_live(const fjob *j) /* waiting: queued or scheduled */
{
    return str_eq(j->status, "queued") || str_eq(j->status, "scheduled");
}

static int holds_lane(const fjob *j) /* live or running */
{
    return is_live(j) || str_eq(j->status, "active");
}

/* ---- unique keys ---- */

static int cmp_uq(const void *a, const void *b)
{
    return strcmp(((const fuq *)a)->key, ((const fuq *)b)->key);
}

static void sort_uniques(fsck *x)
{
    if (x->nuq == 0)
        return;
    qsort(x->uq, x->nuq, sizeof *x->uq, cmp_uq);
    size_t k = 1;
    for (size_t i = 1; i < x->nuq; i++) {
        if (strcmp(x->uq[i].key, x->uq[k - 1].key) == 0) {
            free(x->uq[i].key);
            free(x->uq[i].val);
        } else {
            x->uq[k++] = x->uq[i];
        }
    }
    x->nuq = k;
}

static fuq *find_unique(fsck *x, const char *key)
{
    fuq k = {.key = (char *)key};
    return x->nuq ? bsearch(&k, x->uq, x->nuq, sizeof *x->uq, cmp_uq) : NULL;
}

/* ---- queues ---- */

static fqueue *queue_get(fsck *x, const char *name)
{
    for (size_t i = 0; i < x->nqs; i++)
        if (strcmp(x->qs[i].name, name) == 0)
            return &x->qs[i];
    x->qs = grow(x->qs, &x->capqs, x->nqs + 1, sizeof *x->qs);
    fqueue *q = &x->qs[x->nqs++];
    memset(q, 0, sizeof *q);
    q->name = cli_strdup(name);
    return q;
}

/* ---- reading ---- */

static int is_wrongtype(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0;
}

/* Reads the reply of a pipelined command; an error reply other than
 * WRONGTYPE is Redis refusing us. Returns NULL after printing why. */
static redisReply *next_reply(fsck *x)
{
    redisReply *r = cli_next_reply(x->t->conn);
    if (r && r->type == REDIS_REPLY_ERROR && !is_wrongtype(r)) {
        cli_redis_err(x->t->conn, r, NULL);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* The last event id and the stats hash, in one MULTI. Returns 0 or
 * CLI_REDIS; *ver is malloc'ed ("" without events, "?" unreadable). */
static int read_version(fsck *x, char **ver, redisReply **stats)
{
    char ke[CLI_KEY_MAX], ks[CLI_KEY_MAX];
    lw_key(ke, sizeof ke, x->t->prefix, "events", NULL);
    lw_key(ks, sizeof ks, x->t->prefix, "stats", NULL);
    const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
    const char *xrev[6] = {"XREVRANGE", ke, "+", "-", "COUNT", "1"};
    const char *hgetall[2] = {"HGETALL", ks};
    if (cli_append(x->t->conn, 1, multi) || cli_append(x->t->conn, 6, xrev) ||
        cli_append(x->t->conn, 2, hgetall) || cli_append(x->t->conn, 1, exec))
        return CLI_REDIS;
    redisReply *r[4] = {NULL, NULL, NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 4; i++)
        if (!rc && !(r[i] = next_reply(x)))
            rc = CLI_REDIS;
    if (!rc && (r[3]->type != REDIS_REPLY_ARRAY || r[3]->elements != 2))
        rc = cli_redis_err(x->t->conn, r[3], NULL);
    if (!rc) {
        redisReply *ev = r[3]->element[0], *st = r[3]->element[1];
        if (ev->type == REDIS_REPLY_ARRAY && ev->elements == 0)
            *ver = cli_strdup("");
        else if (ev->type == REDIS_REPLY_ARRAY && ev->element[0]->type == REDIS_REPLY_ARRAY &&
                 ev->element[0]->elements > 0 &&
                 ev->element[0]->element[0]->type == REDIS_REPLY_STRING)
            *ver = cli_strdup(ev->element[0]->element[0]->str);
        else {
            *ver = cli_strdup("?");
            add_suspect(x, K_TYPE, "events", "stream", "");
        }
        if (st->type == REDIS_REPLY_ARRAY) {
            r[3]->element[1] = NULL; /* taken: freeReplyObject skips NULL elements */
            *stats = st;
        } else {
            *stats = NULL;
            add_suspect(x, K_TYPE, "stats", "hash", "");
        }
    }
    for (int i = 0; i < 4; i++)
        if (r[i])
            freeReplyObject(r[i]);
    return rc;
}

/* The part of a SCAN key after the tenant prefix, or NULL. */
static const char *our_key(const fsck *x, const redisReply *k)
{
    if (k->type != REDIS_REPLY_STRING || k->len <= x->plen)
        return NULL;
    return k->str + x->plen;
}

static int starts(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int add_unique(fsck *x, const char *key)
{
    redisReply *v = next_reply(x), *ttl = v ? next_reply(x) : NULL;
    if (ttl) {
        x->uq = grow(x->uq, &x->capuq, x->nuq + 1, sizeof *x->uq);
        x->uq[x->nuq++] = (fuq){cli_strdup(key), dup_or_null(v),
                                ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -1};
    }
    if (v)
        freeReplyObject(v);
    if (!ttl)
        return CLI_REDIS;
    freeReplyObject(ttl);
    return 0;
}

/* Fetches the records of the job keys and the values of the unique keys of
 * one SCAN page, pipelined; remembers lanes and queues. */
static int read_page(fsck *x, const redisReply *keys)
{
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        const char *s = our_key(x, k);
        if (starts(s, "job:")) {
            const char *argv[2 + NFIELDS] = {"HMGET", k->str};
            memcpy(argv + 2, JOB_FIELDS, sizeof JOB_FIELDS);
            if (cli_append(x->t->conn, 2 + NFIELDS, argv))
                return CLI_REDIS;
        } else if (starts(s, "unique:")) {
            const char *get[2] = {"GET", k->str}, *pttl[2] = {"PTTL", k->str};
            if (cli_append(x->t->conn, 2, get) || cli_append(x->t->conn, 2, pttl))
                return CLI_REDIS;
        } else if (starts(s, "lane:")) {
            strv_push(&x->lanes, s + 5);
        } else if (starts(s, "ready:")) {
            strv_push(&x->queue_keys, s + 6);
        } else if (starts(s, "active:")) {
            strv_push(&x->queue_keys, s + 7);
        }
    }
    /* The replies, in the order the commands went. A failure leaves replies
     * unread: the caller gives up on the connection then. */
    for (size_t i = 0; i < keys->elements; i++) {
        const char *s = our_key(x, keys->element[i]);
        if (starts(s, "job:")) {
            redisReply *r = next_reply(x);
            if (!r)
                return CLI_REDIS;
            add_job(x, s + 4, r);
            freeReplyObject(r);
        } else if (starts(s, "unique:") && add_unique(x, s + 7)) {
            return CLI_REDIS;
        }
    }
    return 0;
}

/* One SCAN over the tenant's keys. */
static int scan_tenant(fsck *x)
{
    char pattern[CLI_KEY_MAX * 2 + 2];
    glob_prefix(pattern, sizeof pattern, x->t->prefix);
    char cursor[32] = "0";
    do {
        const char *scan[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
        redisReply *r = cli_cmd(x->t->conn, 6, scan);
        if (!r)
            return CLI_REDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            int rc = cli_redis_err(x->t->conn, r, NULL);
            freeReplyObject(r);
            return rc;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        int rc = read_page(x, r->element[1]);
        freeReplyObject(r);
        if (rc)
            return rc;
    } while (strcmp(cursor, "0") != 0);
    sort_jobs(x);
    sort_uniques(x);
    strv_sort_unique(&x->lanes);
    strv_sort_unique(&x->queue_keys);
    return 0;
}

/* Reads the tenant until a read sees no event from its start to its end
 * (then the counters can be compared), QUIET_TRIES times at most; keeps the
 * last read. */
static int read_tenant(fsck *x)
{
    for (int i = 0; i < QUIET_TRIES; i++) {
        fsck_reset(x);
        char *v0 = NULL;
        redisReply *s0 = NULL;
        int rc = read_version(x, &v0, &s0);
        if (s0)
            freeReplyObject(s0);
        if (!rc)
            rc = scan_tenant(x);
        if (!rc)
            rc = read_version(x, &x->version, &x->stats);
        x->quiet = !rc && strcmp(v0, x->version) == 0 && strcmp(v0, "?") != 0;
        free(v0);
        if (rc || x->quiet)
            return rc;
    }
    return 0;
}

/* ---- structures: lanes, ready lists, leases, indexes ---- */

typedef void (*member_fn)(fsck *x, const char *owner, size_t pos, const char *member);

/* Hands every member of one range reply to fn, `pos` counting from `base`. */
static void each_in(fsck *x, const redisReply *r, const char *owner, size_t base, member_fn fn)
{
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            fn(x, owner, base + i, r->element[i]->str);
}

/* Reads the rest of a key whose first chunk was full, one chunk at a time. */
static int read_rest(fsck *x, const char *cmd, const char *key, const char *owner, member_fn fn)
{
    for (size_t start = RANGE_CHUNK;; start += RANGE_CHUNK) {
        char s0[24], s1[24];
        snprintf(s0, sizeof s0, "%zu", start);
        snprintf(s1, sizeof s1, "%zu", start + RANGE_CHUNK - 1);
        const char *argv[4] = {cmd, key, s0, s1};
        redisReply *r = cli_cmd(x->t->conn, 4, argv);
        if (!r)
            return CLI_REDIS;
        if (r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r); /* the key changed type or went: the check will see */
            return 0;
        }
        each_in(x, r, owner, start, fn);
        size_t got = r->elements;
        freeReplyObject(r);
        if (got < RANGE_CHUNK)
            return 0;
    }
}

/* Reads every member of the keys P+suffix+names[i] (lists with LRANGE, zsets
 * with ZRANGE; by index, RANGE_CHUNK at a time): the first chunk of up to
 * PIPE_MAX keys in one pipeline, then the rest of each long key. A key of
 * the wrong type becomes a `type` suspect. Returns 0 or CLI_REDIS. */
static int each_member(fsck *x, const char *cmd, const char *suffix, const char *type,
                       char *const *names, size_t n, member_fn fn)
{
    char last[24];
    snprintf(last, sizeof last, "%d", RANGE_CHUNK - 1);
    for (size_t b = 0; b < n; b += PIPE_MAX) {
        size_t m = n - b < PIPE_MAX ? n - b : PIPE_MAX;
        char(*keys)[CLI_KEY_MAX] = malloc(m * sizeof *keys);
        redisReply **rs = calloc(m, sizeof *rs);
        int rc = keys && rs ? 0 : CLI_USAGE;
        for (size_t i = 0; !rc && i < m; i++) {
            lw_key(keys[i], CLI_KEY_MAX, x->t->prefix, suffix, names[b + i]);
            const char *argv[4] = {cmd, keys[i], "0", last};
            rc = cli_append(x->t->conn, 4, argv);
        }
        for (size_t i = 0; !rc && i < m; i++)
            if (!(rs[i] = next_reply(x)))
                rc = CLI_REDIS;
        for (size_t i = 0; !rc && i < m; i++) {
            if (rs[i]->type != REDIS_REPLY_ARRAY) {
                char what[CLI_KEY_MAX];
                snprintf(what, sizeof what, "%s%s", suffix, names[b + i]);
                add_suspect(x, K_TYPE, what, type, "");
                continue;
            }
            each_in(x, rs[i], names[b + i], 0, fn);
            if (rs[i]->elements == RANGE_CHUNK)
                rc = read_rest(x, cmd, keys[i], names[b + i], fn);
        }
        for (size_t i = 0; rs && i < m; i++)
            if (rs[i])
                freeReplyObject(rs[i]);
        free(rs);
        free(keys);
        if (rc == CLI_USAGE)
            cli_err("fsck", "out of memory");
        if (rc)
            return rc;
    }
    return 0;
}

/* A lane entry: the head must be live; behind it, finished or missing jobs
 * are tombstones (cancel and expiry leave them); live jobs count towards
 * "in its lane exactly once". */
static void on_lane(fsck *x, const char *lane, size_t pos, const char *id)
{
    fjob *j = find_job(x, id);
    if (!j || j->corrupt) {
        if (pos == 0)
            add_suspect(x, K_LANE_HEAD, lane, "", "");
        else if (!j)
            x->tomb_lane++; /* a corrupt one is reported as such */
        return;
    }
    if (!str_eq(j->lane, lane)) {
        if (holds_lane(j))
            add_suspect(x, K_LANE_FOREIGN, lane, id, "");
        else if (pos == 0)
            add_suspect(x, K_LANE_HEAD, lane, "", "");
        else
            x->tomb_lane++;
        return;
    }
    j->lane_count++;
    if (pos == 0) {
        j->is_head = 1;
        if (!holds_lane(j))
            add_suspect(x, K_LANE_HEAD, lane, "", "");
    } else if (!holds_lane(j)) {
        x->tomb_lane++;
    }
}

/* A ready-list entry counts for a queued head of that queue; any other is a
 * tombstone every claim skips (DESIGN 4.3), not a problem. */
static void on_ready(fsck *x, const char *queue, size_t pos, const char *id)
{
    (void)pos;
    fjob *j = find_job(x, id);
    if (j && !j->corrupt && j->is_head && !j->in_ready && str_eq(j->status, "queued") &&
        str_eq(j->queue, queue))
        j->in_ready = 1;
    else
        x->tomb_ready++;
}

static void on_active(fsck *x, const char *queue, size_t pos, const char *id)
{
    (void)pos;
    fjob *j = find_job(x, id);
    if (j && !j->corrupt && str_eq(j->status, "active") && str_eq(j->queue, queue))
        j->in_active = 1;
    else
        add_suspect(x, K_ACTIVE, queue, id, "");
}

static void on_schedule(fsck *x, const char *unused, size_t pos, const char *id)
{
    (void)unused, (void)pos;
    fjob *j = find_job(x, id);
    if (j && !j->corrupt && j->is_head && str_eq(j->status, "scheduled"))
        j->in_sched = 1;
    else
        add_suspect(x, K_SCHEDULE, id, "", "");
}

static void on_expiring(fsck *x, const char *unused, size_t pos, const char *id)
{
    (void)unused, (void)pos;
    fjob *j = find_job(x, id);
    if (!j || j->corrupt || !is_live(j))
        add_suspect(x, K_EXPIRING, id, "", "");
}

/* Failed-index members whose record is gone are stale entries: the index is
 * trimmed lazily, by the next failure after their retention. */
static void on_failed(fsck *x, const char *unused, size_t pos, const char *id)
{
    (void)unused, (void)pos;
    fjob *j = find_job(x, id);
    if (!j)
        x->stale_failed++;
    else if (j->corrupt)
        return; /* job_corrupt */
    else if (str_eq(j->status, "failed"))
        j->in_failed = 1;
    else
        add_suspect(x, K_FAILED, id, "", "");
}

/* Every queue anyone names: the queues set, the paused set, ready/active
 * keys, records, the counters. The queues set's members are marked known. */
static int collect_queues(fsck *x)
{
    char kq[CLI_KEY_MAX];
    lw_key(kq, sizeof kq, x->t->prefix, "queues", NULL);
    const char *smembers[2] = {"SMEMBERS", kq};
    redisReply *r = cli_cmd(x->t->conn, 2, smembers);
    if (!r)
        return CLI_REDIS;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                queue_get(x, r->element[i]->str)->known = 1;
    } else if (is_wrongtype(r)) {
        add_suspect(x, K_TYPE, "queues", "set", "");
    } else {
        int rc = cli_redis_err(x->t->conn, r, NULL);
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    /* Paused queues (pause.lua puts them in the queues set too, so stats
     * and the dashboard show a queue paused before its first job). */
    lw_key(kq, sizeof kq, x->t->prefix, "paused", NULL);
    if (!(r = cli_cmd(x->t->conn, 2, smembers)))
        return CLI_REDIS;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                queue_get(x, r->element[i]->str);
    } else if (is_wrongtype(r)) {
        add_suspect(x, K_TYPE, "paused", "set", "");
    } else {
        int rc = cli_redis_err(x->t->conn, r, NULL);
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    for (size_t i = 0; i < x->queue_keys.n; i++)
        queue_get(x, x->queue_keys.v[i]);
    for (size_t i = 0; i < x->njobs; i++)
        if (x->jobs[i].queue && x->jobs[i].queue[0])
            queue_get(x, x->jobs[i].queue);
    for (size_t i = 0; x->stats && i + 1 < x->stats->elements; i += 2) {
        const redisReply *f = x->stats->element[i];
        if (f->type != REDIS_REPLY_STRING)
            continue;
        if (strncmp(f->str, "queued:", 7) == 0 && f->str[7])
            queue_get(x, f->str + 7);
        else if (strncmp(f->str, "scheduled:", 10) == 0 && f->str[10])
            queue_get(x, f->str + 10);
    }
    return 0;
}

static int read_structures(fsck *x)
{
    int rc = collect_queues(x);
    if (rc)
        return rc;
    char **qn = malloc((x->nqs + 1) * sizeof *qn);
    if (!qn) {
        cli_err("fsck", "out of memory");
        return CLI_USAGE;
    }
    for (size_t i = 0; i < x->nqs; i++)
        qn[i] = x->qs[i].name;
    static char *const none[1] = {""};
    /* Lanes first: the other checks need to know each lane's head. */
    if (!rc)
        rc = each_member(x, "LRANGE", "lane:", "list", x->lanes.v, x->lanes.n, on_lane);
    if (!rc)
        rc = each_member(x, "LRANGE", "ready:", "list", qn, x->nqs, on_ready);
    if (!rc)
        rc = each_member(x, "ZRANGE", "active:", "zset", qn, x->nqs, on_active);
    if (!rc)
        rc = each_member(x, "ZRANGE", "schedule", "zset", none, 1, on_schedule);
    if (!rc)
        rc = each_member(x, "ZRANGE", "expiring", "zset", none, 1, on_expiring);
    if (!rc)
        rc = each_member(x, "ZRANGE", "failed", "zset", none, 1, on_failed);
    free(qn);
    return rc;
}

/* ---- judging what was read ---- */

static int placed(const fjob *j)
{
    if (str_eq(j->status, "queued"))
        return j->in_ready;
    if (str_eq(j->status, "scheduled"))
        return j->in_sched;
    return j->in_active;
}

/* Counts by the raw status and queue, as the scripts counted when they set
 * them, corrupt records included. */
static void count_status(fsck *x, const fjob *j)
{
    if (!j->queue || !j->queue[0])
        return;
    if (str_eq(j->status, "queued"))
        queue_get(x, j->queue)->queued++;
    else if (str_eq(j->status, "scheduled"))
        queue_get(x, j->queue)->scheduled++;
}

static void judge_job(fsck *x, const fjob *j)
{
    if (j->corrupt) {
        add_suspect(x, K_JOB_CORRUPT, j->id, "", "");
        return;
    }
    if (holds_lane(j)) {
        int running = str_eq(j->status, "active");
        if (j->lane_count != 1 || (running && !j->is_head))
            add_suspect(x, K_JOB_LANE, j->id, "", "");
        if ((j->is_head || running) && !placed(j))
            add_suspect(x, K_JOB_PLACE, j->id, "", "");
        if (j->unique) {
            const fuq *u = find_unique(x, j->unique);
            if (!u || !str_eq(u->val, j->id) || u->pttl >= 0)
                add_suspect(x, K_JOB_UNIQUE, j->id, "", "");
        }
    }
    if (str_eq(j->status, "failed") && !j->in_failed)
        add_suspect(x, K_JOB_FAILIDX, j->id, "", "");
}

/* A unique key must name a job that has it; one naming a job whose record
 * is gone, or a finished job, is a leftover when it has no expiry of its
 * own (a finished job frees its key, or lets it expire at unique_until). */
static void judge_unique(fsck *x, const fuq *u)
{
    const fjob *j = u->val ? find_job(x, u->val) : NULL;
    if (!u->val || (!j && u->pttl == -1) || (j && !str_eq(j->unique, u->key)) ||
        (j && !holds_lane(j) && u->pttl == -1))
        add_suspect(x, K_UNIQUE, u->key, "", "");
}

static const char *stats_field(const fsck *x, const char *field)
{
    for (size_t i = 0; x->stats && i + 1 < x->stats->elements; i += 2) {
        const redisReply *f = x->stats->element[i], *v = x->stats->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, field) == 0)
            return v->type == REDIS_REPLY_STRING ? v->str : "?";
    }
    return "0"; /* HINCRBY starts from nothing */
}

static void judge_counter(fsck *x, const char *status, const char *queue, long long counted)
{
    char field[CLI_KEY_MAX], num[24];
    snprintf(field, sizeof field, "%s:%s", status, queue);
    snprintf(num, sizeof num, "%lld", counted);
    const char *have = stats_field(x, field);
    char *end;
    errno = 0;
    long long v = strtoll(have, &end, 10);
    if (errno || end == have || *end || v != counted)
        add_suspect(x, K_COUNT, field, num, x->version);
}

static void judge(fsck *x)
{
    for (size_t i = 0; i < x->njobs; i++) {
        count_status(x, &x->jobs[i]);
        judge_job(x, &x->jobs[i]);
    }
    for (size_t i = 0; i < x->nuq; i++)
        judge_unique(x, &x->uq[i]);
    for (size_t i = 0; i < x->nqs; i++) {
        const fqueue *q = &x->qs[i];
        if (!q->known)
            add_suspect(x, K_QUEUE_SET, q->name, "", "");
        if (x->quiet && x->stats) {
            judge_counter(x, "queued", q->name, q->queued);
            judge_counter(x, "scheduled", q->name, q->scheduled);
        }
    }
}

/* ---- confirming (and repairing) with fsck.lua ---- */

static int cmp_suspect(const void *pa, const void *pb)
{
    const suspect *a = pa, *b = pb;
    int d;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if ((d = strcmp(a->a, b->a)) != 0 || (d = strcmp(a->b, b->b)) != 0)
        return d;
    return strcmp(a->c, b->c);
}

/* Sorts the suspects into repair order and drops repeats. */
static void sort_suspects(fsck *x)
{
    if (x->nsus == 0)
        return;
    qsort(x->sus, x->nsus, sizeof *x->sus, cmp_suspect);
    size_t k = 1;
    for (size_t i = 1; i < x->nsus; i++) {
        if (cmp_suspect(&x->sus[i], &x->sus[k - 1]) == 0) {
            free(x->sus[i].a);
            free(x->sus[i].b);
            free(x->sus[i].c);
        } else {
            x->sus[k++] = x->sus[i];
        }
    }
    x->nsus = k;
}

/* Prints and counts one answer of fsck.lua. */
static void report(const char *st, const char *text, size_t len, int show, tally *t)
{
    char line[2048];
    cli_oneline(text, len, line, sizeof line);
    if (strcmp(st, "problem") == 0) {
        t->problems++;
        if (show & SHOW_PROBLEMS)
            printf("%s\n", line);
    } else if (strcmp(st, "error") == 0) {
        t->problems++;
        if (show & SHOW_PROBLEMS)
            printf("could not check %s\n", line);
    } else if (strcmp(st, "info") == 0) {
        if (show & SHOW_INFO)
            printf("info: %s\n", line);
    } else if (strcmp(st, "changed") == 0) {
        t->changed++;
    } else if (strcmp(st, "repaired") == 0) {
        t->repaired++;
        if (show & SHOW_REPAIRS)
            printf("repaired: %s\n", line);
    } else if (strcmp(st, "cannot") == 0) {
        t->cannot++;
        if (show & SHOW_CANNOT)
            printf("not repaired: %s\n", line);
    }
}

/* Runs fsck.lua on suspects [from, from+n). */
static int verify_some(fsck *x, const char *mode, size_t from, size_t n, int show, tally *t)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_fsck_keys(&a, x->t->prefix);
    lw_fsck_argv_add(&a, &(lw_fsck_argv){.prefix = x->t->prefix,
                                         .events_cap = x->t->set.events_max,
                                         .mode = mode,
                                         .keep_failed_s = x->t->set.keep_failed_s,
                                         .lease_ms = FSCK_LEASE_MS,
                                         .n = (int64_t)n});
    for (size_t i = from; i < from + n; i++)
        lw_fsck_item_argv_add(&a, &(lw_fsck_item_argv){.check = KIND_NAME[x->sus[i].kind],
                                                       .a = x->sus[i].a,
                                                       .b = x->sus[i].b,
                                                       .c = x->sus[i].c});
    char err[256];
    redisReply *r = lw_redis_script_sync(x->t->conn->ctx, &x->t->conn->evalsha_only,
                                         &lw_script_fsck, LW_FSCK_NKEYS, &a, err, sizeof err);
    lw_argv_clear(&a);
    if (!r)
        return cli_redis_err(x->t->conn, NULL, err);
    int rc = 0;
    lw_fsck_reply got;
    if (lw_fsck_reply_read(r, &got, err, sizeof err) != 0 || got.n_item != n)
        rc = cli_redis_err(x->t->conn, r, NULL);
    for (size_t i = 0; !rc && i < n; i++) {
        lw_fsck_item item;
        lw_fsck_item_at(&got, i, &item);
        report(item.status.s, item.text.s, item.text.len, show, t);
    }
    freeReplyObject(r);
    return rc;
}

static int verify(fsck *x, const char *mode, int show, tally *t)
{
    sort_suspects(x);
    for (size_t i = 0; i < x->nsus; i += ITEMS_PER_CALL) {
        size_t n = x->nsus - i < ITEMS_PER_CALL ? x->nsus - i : ITEMS_PER_CALL;
        int rc = verify_some(x, mode, i, n, show, t);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- passes ---- */

static void print_info(const fsck *x, const tally *t)
{
    if (x->tomb_ready)
        printf("info: %lld ready-list entries are tombstones (claims skip them)\n", x->tomb_ready);
    if (x->tomb_lane)
        printf("info: %lld lane entries behind a head are finished or gone (tombstones: dropped "
               "when they reach the head)\n",
               x->tomb_lane);
    if (x->stale_failed)
        printf("info: %lld failed-index entries name expired jobs (trimmed at the next failure)\n",
               x->stale_failed);
    if (!x->quiet)
        printf("info: counters not checked: the tenant changed during each of %d reads (run fsck "
               "again when it is quieter)\n",
               QUIET_TRIES);
    else if (t->changed)
        printf("info: counters not checked: the tenant changed before they were confirmed\n");
}

/* Reads the tenant, judges it, and has fsck.lua confirm (mode "check") or
 * confirm and repair (mode "repair") every suspect. */
static int pass(fsck *x, const char *mode, int show, tally *t)
{
    int rc = read_tenant(x);
    if (!rc)
        rc = read_structures(x);
    if (rc)
        return rc;
    judge(x);
    rc = verify(x, mode, show, t);
    if (!rc && (show & SHOW_INFO))
        print_info(x, t);
    return rc;
}

static void summary(const fsck *x, const char *when, long long problems)
{
    char part[32] = "";
    if (x->t->nparts > 1)
        snprintf(part, sizeof part, " partition %d", x->t->part);
    printf("fsck: tenant %s%s: %s%zu jobs, %zu lanes, %lld problems\n", x->t->name, part, when,
           x->njobs, x->lanes.n, problems);
}

/* A partitioned tenant: each lane must be in the partition its name routes
 * to (partition.h), or two partitions may run one lane at once. A lane
 * that is its only job's own id may have been routed by the job's unique
 * key instead, and is not judged. Not repairable here: moving a lane is a
 * change across slots. Returns the problems found (printed). */
static long long judge_partitions(fsck *x)
{
    long long bad = 0;
    int n = x->t->nparts;
    for (size_t i = 0; n > 1 && i < x->lanes.n; i++) {
        const char *lane = x->lanes.v[i];
        const fjob *j = find_job(x, lane);
        if (j && str_eq(j->lane, lane))
            continue;
        int want = lw_partition_of(lane, n);
        if (want != x->t->part) {
            printf("lane %s is in partition %d, but its name routes to partition %d of %d (jobs "
                   "enqueued with another partition count? drain the lane, then enqueue again)\n",
                   lane, x->t->part, want, n);
            bad++;
        }
    }
    return bad;
}

/* Check; with `repair`, repair in rounds until a round finds nothing more it
 * can do (a repair can reveal the next: counters are re-counted after the
 * statuses they count were fixed), then check again. */
static int run(fsck *x, int repair)
{
    tally t = {0};
    int rc = pass(x, "check", SHOW_PROBLEMS | SHOW_INFO, &t);
    if (rc)
        return rc;
    long long misplaced = judge_partitions(x);
    t.problems += misplaced;
    summary(x, "", t.problems);
    if (!repair || t.problems == 0)
        return t.problems ? CLI_JOB : CLI_OK;
    for (int i = 0; i < REPAIR_ROUNDS; i++) {
        tally r = {0};
        rc = pass(x, "repair", SHOW_REPAIRS | (i == 0 ? SHOW_CANNOT : 0), &r);
        if (rc)
            return rc;
        if (r.repaired == 0 && r.changed == 0)
            break;
    }
    tally f = {0};
    rc = pass(x, "check", SHOW_PROBLEMS, &f);
    if (rc)
        return rc;
    f.problems += misplaced;
    summary(x, "after repair: ", f.problems);
    return f.problems ? CLI_JOB : CLI_OK;
}

/* A partitioned tenant's queue is paused in every partition or in none
 * (pause.lua runs in each): one paused in some only is a pause or resume
 * that stopped part-way. Not repaired -- which way is the operator's. Returns
 * the number of such queues, or -1 when a partition could not be read
 * (printed). */
static long judge_pauses(cli *c, cli_tenant *t)
{
    char *q[256];
    int in[256];
    size_t nq = 0;
    long bad = 0;
    for (int p = 0; p < t->nparts && bad >= 0; p++) {
        cli_tenant pt;
        char key[CLI_KEY_MAX];
        if (cli_tenant_part(c, t, p, &pt) != 0 ||
            lw_key(key, sizeof key, pt.prefix, "paused", NULL) != 0) {
            bad = -1;
            break;
        }
        const char *cmd[2] = {"SMEMBERS", key};
        redisReply *r = cli_cmd(pt.conn, 2, cmd);
        if (!r) {
            bad = -1;
            break;
        }
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            const char *name = r->element[i]->str;
            size_t k = 0;
            while (name && k < nq && strcmp(q[k], name))
                k++;
            if (!name || (k == nq && (nq == 256 || !(q[nq] = strdup(name)))))
                continue; /* past what one tenant pauses, or OOM: unjudged */
            if (k == nq)
                in[nq++] = 0;
            in[k]++;
        }
        freeReplyObject(r); /* a key of another type: said by the partition's own check */
    }
    for (size_t k = 0; k < nq; k++) {
        if (bad >= 0 && in[k] != t->nparts) {
            printf("queue %s is paused in %d of %d partitions: a pause or resume stopped part-way "
                   "(run lanework pause or lanework resume again)\n",
                   q[k], in[k], t->nparts);
            bad++;
        }
        free(q[k]);
    }
    return bad;
}

int cmd_fsck(cli *c, int argc, char **argv)
{
    const char *tenant = NULL;
    int repair = 0;
    const cli_opt opts[] = {{"--tenant", &tenant, NULL, NULL, NULL},
                            {"--repair", NULL, &repair, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        return rc;
    cli_tenant t;
    if ((rc = cli_tenant_open(c, tenant, NULL, 0, &t)) != 0 || (rc = cli_partitions(c, &t)) != 0)
        return rc;
    /* Each partition is a keyspace of its own, checked as one. */
    int worst = CLI_OK;
    for (int p = 0; p < t.nparts; p++) {
        cli_tenant pt;
        if ((rc = cli_tenant_part(c, &t, p, &pt)) != 0 ||
            (rc = cli_connect(pt.conn, 0, NULL, 0)) != 0)
            return rc;
        fsck x;
        memset(&x, 0, sizeof x);
        x.c = c;
        x.t = &pt;
        x.plen = strlen(pt.prefix);
        rc = run(&x, repair);
        fsck_free(&x);
        if (rc != CLI_OK && rc != CLI_JOB)
            return rc;
        if (rc)
            worst = rc;
    }
    long split = t.nparts > 1 ? judge_pauses(c, &t) : 0;
    if (split < 0)
        return CLI_REDIS;
    return split ? CLI_JOB : worst;
}

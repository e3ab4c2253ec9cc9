/*
 * cmd_batch.c — `lanework enqueue --batch FILE|-`: one JSON job per line,
 * pipelined.
 *
 * Lines are read into windows of up to WINDOW accepted jobs. Within a window
 * jobs are grouped by tenant into enqueue.lua calls of up to CALL_JOBS jobs
 * (a call holds one tenant: its keys share one slot), appended to the
 * tenant's connection without waiting. When a window is full it is sent,
 * and only then are the replies of the window before it read: while we parse
 * and send window k+1, Redis runs window k, so neither side waits for the
 * other. Output slots keep input order: each accepted line owns a slot that
 * names its call and its place in the call; ids are printed slot by slot once
 * the window's replies are in. When the input would block (a slow pipe), the
 * window is ended early and everything pending collected, so streamed jobs
 * are not held back waiting for a full window.
 *
 * Failures: a bad line is reported and skipped (exit 2 at the end). A Redis
 * failure (connection lost, error reply) stops the reading of input; what is
 * in flight is still collected, every confirmed id printed, and the final
 * line says how many lines were enqueued (exit 3). Nothing the user sees as
 * accepted was dropped: an id is printed only from Redis's reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "enqueue_args.h"
#include "partition.h"
#include "redis_sync.h"
#include "script_replies.h"
#include "seams.h"

#define CALL_JOBS 256
#define WINDOW 8192

typedef struct slot {
    uint32_t call; /* index into the window's calls */
    uint32_t pos;  /* the job's place in that call */
    size_t line;   /* its input line, for "batch line N: ..." */
    /* owned, or NULL: "ID\0WHY", the job partition 0 answered with from
     * before the tenant was partitioned (known.lua); no call then */
    char *known;
} slot;

typedef struct call {
    cli_conn *conn;
    uint32_t njobs;
    const char *prefix; /* the tenant's (borrowed from its group) */
    int is_wait;        /* --min-replicas: the WAIT after the window's calls on conn */
    int is_publish;     /* ...and the PUBLISH before it */
    redisReply *reply;  /* NULL until read, or when it could not be */
} call;

typedef struct window {
    slot *slots;
    size_t nslots;
    call *calls;
    size_t ncalls, capcalls;
} window;

/* One tenant met in the input, and the call being built for it. */
typedef struct tgroup {
    char *name;
    int part; /* the tenant's partition its calls go to */
    cli_tenant t;
    lw_argv a;
    uint32_t n;                /* jobs in a */
    uint32_t slots[CALL_JOBS]; /* the window slot of each job in a */
    /* Partition 0's group: a connection of its own for known.lua (owned;
     * NULL until needed), its calls pipelined through the window. */
    lw_sconn *apart;
    int apart_evalsha;
    /* Another partition's group: a job of it waits for partition 0's answer
     * this window, so every later one waits too (a lane keeps its order). */
    int deferring;
} tgroup;

/* A job held back until partition 0 has answered about it (known.lua)
 * or about an earlier job of its group. */
typedef struct deferred {
    tgroup *g;     /* the group it goes to */
    tgroup *base;  /* partition 0's group, asked about this job; NULL: not asked */
    lw_job_spec s; /* owned, resolved */
    uint32_t slot; /* its window slot */
} deferred;

typedef struct batch {
    cli *c;
    tgroup **groups;
    size_t ngroups, capgroups;
    tgroup *last;
    window w[2];
    int cur;
    long enqueued; /* ids printed */
    long accepted; /* lines handed to Redis */
    deferred *dq;  /* owned: the current window's held-back jobs, in input order */
    size_t ndq, capdq;
    int redis_failed;
    int oom;
} batch;

static void oom(batch *b)
{
    if (!b->oom)
        cli_err("batch", "out of memory");
    b->oom = 1;
    b->redis_failed = 1;
}

static tgroup *group_find(batch *b, const char *name, int part)
{
    for (size_t i = 0; i < b->ngroups; i++)
        if (b->groups[i]->part == part && strcmp(b->groups[i]->name, name) == 0)
            return b->groups[i];
    return NULL;
}

/* Makes the group of partition `part` of tenant `name` (base: its partition
 * 0's group, NULL for partition 0 itself, which reads the count in force);
 * NULL when the tenant is refused (reported with the line's WHAT) or its
 * Redis fails (*redis_rc set). */
static tgroup *group_make(batch *b, const char *name, int part, const tgroup *base, int *redis_rc)
{
    tgroup *g = calloc(1, sizeof *g);
    if (!g) {
        oom(b);
        return NULL;
    }
    g->name = cli_strdup(name);
    g->part = part;
    int rc =
        base ? cli_tenant_part(b->c, &base->t, part, &g->t) : cli_tenant_get(b->c, g->name, &g->t);
    if (rc != 0) {
        free(g->name);
        free(g);
        return NULL;
    }
    g->t.name = g->name;
    if (cli_load_scripts(g->t.conn) != 0 || (!base && cli_partitions_apart(b->c, &g->t) != 0)) {
        *redis_rc = CLI_REDIS;
        free(g->name);
        free(g);
        return NULL;
    }
    lw_argv_init(&g->a);
    if (b->ngroups == b->capgroups) {
        size_t cap = b->capgroups ? b->capgroups * 2 : 8;
        tgroup **ng = realloc(b->groups, cap * sizeof *ng);
        if (!ng) {
            lw_argv_clear(&g->a);
            free(g->name);
            free(g);
            oom(b);
            return NULL;
        }
        b->groups = ng;
        b->capgroups = cap;
    }
    b->groups[b->ngroups++] = g;
    return g;
}

/* The group of tenant `name`'s partition 0 (b->last: lines of one tenant
 * come in runs); NULL as group_make. */
static tgroup *group_get(batch *b, const char *name, int *redis_rc)
{
    if (b->last && strcmp(b->last->name, name) == 0)
        return b->last;
    tgroup *g = group_find(b, name, 0);
    if (!g)
        g = group_make(b, name, 0, NULL, redis_rc);
    return g ? b->last = g : NULL;
}

/* The group job `s` goes to among base's partitions (partition.h), with an
 * id made for it when it has none; NULL as group_make. */
static tgroup *group_place(batch *b, tgroup *base, lw_job_spec *s, int *redis_rc)
{
    int part = lw_job_spec_place(s, base->t.nparts);
    if (part < 0) {
        oom(b);
        return NULL;
    }
    if (part == 0)
        return base;
    tgroup *g = group_find(b, base->name, part);
    return g ? g : group_make(b, base->name, part, base, redis_rc);
}

/* Appends g's pending jobs as one call of the current window. */
static void emit_call(batch *b, tgroup *g)
{
    window *w = &b->w[b->cur];
    if (g->n == 0)
        return;
    if (w->ncalls == w->capcalls) {
        size_t cap = w->capcalls ? w->capcalls * 2 : 64;
        call *nc = realloc(w->calls, cap * sizeof *nc);
        if (!nc) {
            oom(b);
            return;
        }
        w->calls = nc;
        w->capcalls = cap;
    }
    if (lw_redis_append_script(g->t.conn->ctx, g->t.conn->evalsha_only, &lw_script_enqueue,
                               LW_ENQUEUE_NKEYS, &g->a) != 0) {
        oom(b);
        return;
    }
    uint32_t ci = (uint32_t)w->ncalls++;
    w->calls[ci].conn = g->t.conn;
    w->calls[ci].njobs = g->n;
    w->calls[ci].prefix = g->t.prefix;
    w->calls[ci].is_wait = w->calls[ci].is_publish = 0;
    w->calls[ci].reply = NULL;
    for (uint32_t i = 0; i < g->n; i++) {
        w->slots[g->slots[i]].call = ci;
        w->slots[g->slots[i]].pos = i;
    }
    b->accepted += g->n;
    g->n = 0;
    lw_argv_reset(&g->a);
}

/* Writes out what every connection has buffered. A connection that fails
 * is reported here, once; its calls count as not confirmed in collect. */
static void send_all(batch *b)
{
    for (size_t i = 0; i < b->c->nconns; i++) {
        cli_conn *k = &b->c->conns[i];
        if (!k->ctx || k->ctx->err)
            continue;
        if (lw_sconn_flush(k->ctx) != 0) {
            cli_redis_err(k, NULL, k->ctx->errstr);
            b->redis_failed = 1;
        }
    }
}

/* --min-replicas: one WAIT per connection the window wrote to, after its
 * calls there (replies come in order, so collect reads it last). */
static void emit_waits(batch *b)
{
    window *w = &b->w[b->cur];
    size_t n = w->ncalls;
    if (b->c->cfg.min_replicas <= 0)
        return;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = w->calls[j].conn == w->calls[i].conn;
        if (seen)
            continue;
        if (w->ncalls + 2 > w->capcalls) {
            call *nc = realloc(w->calls, w->capcalls * 2 * sizeof *nc);
            if (!nc) {
                oom(b);
                return;
            }
            w->calls = nc;
            w->capcalls *= 2;
        }
        if (cli_append_wait(b->c, w->calls[i].conn, w->calls[i].prefix) != 0) {
            b->redis_failed = 1;
            return;
        }
        w->calls[w->ncalls++] = (call){w->calls[i].conn, 0, w->calls[i].prefix, 0, 1, NULL};
        w->calls[w->ncalls++] = (call){w->calls[i].conn, 0, w->calls[i].prefix, 1, 0, NULL};
    }
}

/* A WAIT said the replicas do not hold what the window wrote on k's
 * connection: none of those jobs is acknowledged (no id printed). */
static void unconfirmed(batch *b, window *w, const call *k)
{
    char why[256];
    if (cli_confirmed(b->c, k->conn, k->reply, why, sizeof why) == 0)
        return;
    if (!b->redis_failed) {
        char line[600];
        snprintf(line, sizeof line, "enqueued on the primary, but %s", why);
        cli_redis_err(k->conn, NULL, line);
    }
    b->redis_failed = 1;
    for (size_t i = 0; i < w->ncalls; i++)
        if (!w->calls[i].is_wait && !w->calls[i].is_publish && w->calls[i].conn == k->conn &&
            w->calls[i].reply) {
            freeReplyObject(w->calls[i].reply);
            w->calls[i].reply = NULL;
        }
}

/* Reads k's reply into *got; 1 when it is one well-formed entry per job. */
static int reply_ok(const call *k, lw_enqueue_reply *got)
{
    return k->reply && lw_enqueue_reply_read(k->reply, got, NULL, 0) == 0 &&
           got->n_job == (size_t)k->njobs;
}

/* Reads the replies of window w, prints its ids in input order, and empties
 * it. */
static void collect(batch *b, window *w)
{
    lw_enqueue_reply got;
    for (size_t i = 0; i < w->ncalls; i++) {
        call *k = &w->calls[i];
        if (!k->conn->ctx || k->conn->ctx->err) {
            b->redis_failed = 1; /* reported when the connection failed */
            continue;
        }
        k->reply = cli_next_reply(k->conn);
        if (k->is_publish) {
            /* nothing to read in it: a refusal shows in the WAIT after */
        } else if (k->is_wait) {
            unconfirmed(b, w, k);
        } else if (!k->reply) {
            b->redis_failed = 1;
        } else if (!reply_ok(k, &got)) {
            if (!b->redis_failed) /* the first refusal says why; the summary counts */
                cli_redis_err(k->conn, k->reply, NULL);
            b->redis_failed = 1;
        }
    }
    for (size_t s = 0; s < w->nslots; s++) {
        if (w->slots[s].known) {
            const char *id = w->slots[s].known;
            char what[48];
            snprintf(what, sizeof what, "batch line %zu", w->slots[s].line);
            cli_enqueue_existing(what, NULL, id, id + strlen(id) + 1);
            printf("%s\n", id);
            b->enqueued++;
            free(w->slots[s].known);
            continue;
        }
        if (w->slots[s].call >= w->ncalls)
            continue; /* never sent (out of memory) */
        const call *k = &w->calls[w->slots[s].call];
        if (!reply_ok(k, &got))
            continue;
        lw_enqueue_job job;
        lw_enqueue_job_at(&got, (size_t)w->slots[s].pos, &job);
        const lw_rstr *id = &job.id, *why = &job.why;
        if (why->len > 0) {
            char what[48];
            snprintf(what, sizeof what, "batch line %zu", w->slots[s].line);
            cli_enqueue_existing(what, NULL, id->s, why->s);
        }
        fwrite(id->s, 1, id->len, stdout);
        putchar('\n');
        b->enqueued++;
    }
    for (size_t i = 0; i < w->ncalls; i++)
        if (w->calls[i].reply)
            freeReplyObject(w->calls[i].reply);
    w->ncalls = 0;
    w->nslots = 0;
}

/* Appends the known.lua call about job s to partition 0's own connection
 * (made at first use: its replies are read at the window's end, while the
 * tenant's connection carries the enqueue calls). 0, or -1 (printed). */
static int ask_known(batch *b, tgroup *base, const lw_job_spec *s)
{
    char err[256];
    if (!base->apart) {
        base->apart = lw_redis_connect_sync(base->t.conn->url, base->t.conn->slot,
                                            CLI_CONNECT_TIMEOUT_MS, NULL, err, sizeof err);
        if (!base->apart) {
            cli_redis_err(base->t.conn, NULL, err);
            return -1;
        }
        lw_sconn_set_timeout(base->apart, CLI_CONNECT_TIMEOUT_MS);
        int fn = lw_redis_load_functions(base->apart, err, sizeof err);
        base->apart_evalsha = fn != 1;
        if (fn < 0 || (fn == 0 &&
                       lw_redis_load_script(base->apart, &lw_script_known, err, sizeof err) != 0)) {
            cli_redis_err(base->t.conn, NULL, err);
            return -1;
        }
    }
    lw_argv a;
    lw_argv_init(&a);
    cli_known_args(&a, &base->t, s);
    int rc = lw_redis_append_script(base->apart, base->apart_evalsha, &lw_script_known,
                                    LW_KNOWN_NKEYS, &a);
    lw_argv_clear(&a);
    if (rc)
        oom(b);
    return rc;
}

/* Holds job *s (taken: *s is emptied) back in window slot `at` until the
 * window's end, asking partition 0 (base) about it when ask. 0 or -1. */
static int defer_job(batch *b, tgroup *g, tgroup *base, int ask, lw_job_spec *s, uint32_t at)
{
    if (b->ndq == b->capdq) {
        size_t cap = b->capdq ? b->capdq * 2 : 64;
        deferred *nd = realloc(b->dq, cap * sizeof *nd);
        if (!nd) {
            oom(b);
            return -1;
        }
        b->dq = nd;
        b->capdq = cap;
    }
    if (ask && ask_known(b, base, s) != 0)
        return -1;
    b->dq[b->ndq++] = (deferred){g, ask ? base : NULL, *s, at};
    lw_job_spec_init(s);
    g->deferring = 1;
    return 0;
}

/* Adds resolved job s to its group's call, in window slot `at`. */
static void add_job(batch *b, tgroup *g, const lw_job_spec *s, uint32_t at)
{
    if (g->n == 0)
        lw_enqueue_begin(&g->a, g->t.prefix, g->t.set.events_max, g->t.nparts);
    lw_enqueue_add(&g->a, s);
    if (g->a.oom) {
        oom(b);
        return;
    }
    g->slots[g->n++] = at;
    if (g->n == CALL_JOBS)
        emit_call(b, g);
}

/* Partition 0's answers about the window's held-back jobs: each it answers
 * for is that job (its slot says so), the others join their groups' calls
 * in input order. After a failure nothing more joins (not accepted). */
static void settle_deferred(batch *b)
{
    window *w = &b->w[b->cur];
    for (size_t i = 0; i < b->ngroups; i++) {
        tgroup *g = b->groups[i];
        g->deferring = 0;
        if (g->apart && lw_sconn_flush(g->apart) != 0 && !b->redis_failed) {
            cli_redis_err(g->t.conn, NULL, g->apart->errstr);
            b->redis_failed = 1;
        }
    }
    for (size_t i = 0; i < b->ndq; i++) {
        deferred *d = &b->dq[i];
        char *known = NULL, why[256];
        if (d->base && !(d->base->apart->err)) {
            redisReply *r = NULL;
            int got = lw_sconn_get_reply(d->base->apart, &r) == 0
                          ? cli_known_read(&d->base->t, r, &known, why, sizeof why)
                          : -1;
            if (got != 0 && !b->redis_failed) {
                if (got == -1)
                    cli_redis_err(d->base->t.conn, r, r ? NULL : d->base->apart->errstr);
                b->redis_failed = 1;
            }
            if (r)
                freeReplyObject(r);
        } else if (d->base) {
            b->redis_failed = 1;
        }
        if (known) {
            size_t n = strlen(known) + 1, m = strlen(why) + 1;
            char *both = malloc(n + m);
            if (both) {
                memcpy(both, known, n);
                memcpy(both + n, why, m);
                w->slots[d->slot].known = both;
                b->accepted++;
            } else {
                oom(b);
            }
            free(known);
        } else if (!b->redis_failed) {
            add_job(b, d->g, &d->s, d->slot);
        }
        lw_job_spec_clear(&d->s);
    }
    b->ndq = 0;
}

/* Ends the current window: its calls go out, then the previous window's
 * replies are read. */
static void window_end(batch *b)
{
    settle_deferred(b);
    for (size_t i = 0; i < b->ngroups; i++)
        emit_call(b, b->groups[i]);
    emit_waits(b);
    send_all(b);
    b->cur ^= 1;
    collect(b, &b->w[b->cur]);
}

/* Copies the command line's defaults into s. */
static void spec_defaults(lw_job_spec *s, const lw_job_spec *d)
{
    if (d->tenant)
        s->tenant = cli_strdup(d->tenant);
    if (d->kind)
        s->kind = cli_strdup(d->kind);
    if (d->queue)
        s->queue = cli_strdup(d->queue);
    if (d->lane)
        s->lane = cli_strdup(d->lane);
    s->attempts = d->attempts;
    s->timeout_ms = d->timeout_ms;
    s->backoff_ms = d->backoff_ms;
    s->delay_ms = d->delay_ms;
    s->expires_ms = d->expires_ms;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* A line reader over a file descriptor that knows when it is about to
 * block: input that arrives slowly (a pipe fed as jobs come up) must not
 * wait in a half-full window, so before a read that would block, what is
 * pending is sent and its ids printed. */
typedef struct lreader {
    int fd;
    char *buf;
    size_t cap, start, end;
    size_t max_line; /* longer lines are skipped and reported */
    int eof, err;    /* err: errno of a failed read */
    int skipping;    /* inside an over-long line */
} lreader;

/* Returns the next line (without its newline; borrowed until the next call)
 * and its length, or NULL at the end of input or on a read error (r->err).
 * *too_long is set for a line longer than max_line, returned empty. `idle`
 * is called before a read that would block. */
static const char *next_line(lreader *r, size_t *len, int *too_long, void (*idle)(void *), void *ud)
{
    *too_long = 0;
    for (;;) {
        char *nl = r->end > r->start ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
        if (nl) {
            const char *line = r->buf + r->start;
            *len = (size_t)(nl - line);
            r->start += *len + 1;
            if (r->skipping || *len > r->max_line) {
                r->skipping = 0;
                *too_long = 1;
                *len = 0;
            }
            return line;
        }
        if (r->eof) {
            if (r->start == r->end && !r->skipping)
                return NULL;
            const char *line = r->buf + r->start;
            *len = r->end - r->start;
            r->start = r->end;
            if (r->skipping || *len > r->max_line) {
                r->skipping = 0;
                *too_long = 1;
                *len = 0;
            }
            return line;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end >= r->max_line) {
            r->skipping = 1; /* drop what we hold of this line */
            r->end = 0;
        }
        if (r->end == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 1 << 16;
            char *nb = realloc(r->buf, cap);
            if (!nb) {
                r->err = ENOMEM;
                return NULL;
            }
            r->buf = nb;
            r->cap = cap;
        }
        struct pollfd p = {r->fd, POLLIN, 0};
        if (idle && poll(&p, 1, 0) == 0)
            idle(ud);
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->err = errno;
            return NULL;
        }
        if (n == 0)
            r->eof = 1;
        r->end += (size_t)n;
    }
}

/* Input stalls: send the current window and print every id so far. */
static void batch_idle(void *ud)
{
    batch *b = ud;
    if (b->w[b->cur].nslots == 0 && b->w[b->cur ^ 1].ncalls == 0)
        return;
    window_end(b);
    window_end(b);
    fflush(stdout);
}

int cmd_batch(cli *c, const char *path, const lw_job_spec *defaults)
{
    int rc = cli_registry(c);
    if (rc)
        return rc;
    lreader in;
    memset(&in, 0, sizeof in);
    in.fd = strcmp(path, "-") == 0 ? 0 : lw_open(path, O_RDONLY | O_CLOEXEC);
    if (in.fd < 0) {
        cli_err(c->cmd, "--batch: %s: %s", cli_show(path), strerror(errno));
        return CLI_USAGE;
    }
    /* A line holds a payload and some fields around it. */
    in.max_line = c->cfg.max_payload > 0 ? (size_t)c->cfg.max_payload * 2 + (1 << 20) : SIZE_MAX;
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    batch b;
    memset(&b, 0, sizeof b);
    b.c = c;
    for (int i = 0; i < 2; i++) {
        b.w[i].slots = malloc(WINDOW * sizeof(slot));
        if (!b.w[i].slots)
            oom(&b);
    }
    const char *cmd = c->cmd;
    char what[64], err[512];
    const char *line;
    size_t len;
    long lineno = 0, bad = 0;
    int redis_rc = 0, too_long;
    while (!b.redis_failed && (line = next_line(&in, &len, &too_long, batch_idle, &b)) != NULL) {
        lineno++;
        snprintf(what, sizeof what, "batch line %ld", lineno);
        if (too_long) {
            cli_err(what, "longer than %zu bytes", in.max_line);
            bad++;
            continue;
        }
        if (is_blank(line, len))
            continue;
        c->cmd = what;
        lw_job_spec s;
        lw_job_spec_init(&s);
        spec_defaults(&s, defaults);
        tgroup *g = NULL, *base = NULL;
        int own_id = 0; /* the line gave its id (group_place draws one otherwise) */
        if (lw_job_spec_from_json(&s, line, len, err, sizeof err) != 0 ||
            lw_job_spec_validate(&s, c->cfg.max_payload, err, sizeof err) != 0) {
            cli_err(what, "%s", err);
        } else if (!s.tenant) {
            cli_err(what, "tenant: missing (give it in the line or with --tenant)");
        } else if ((g = group_get(&b, s.tenant, &redis_rc)) == NULL) {
            /* reported: an unknown tenant, or its Redis failing */
            if (redis_rc)
                b.redis_failed = 1;
        } else if (cli_check_kind(c, &g->t, s.kind, 0) != 0) {
            g = NULL; /* reported, with the line's WHAT */
        } else if ((own_id = s.id != NULL, g = group_place(&b, base = g, &s, &redis_rc)) == NULL) {
            if (redis_rc)
                b.redis_failed = 1;
        } else if (lw_job_spec_resolve(&s, g->t.reg ? &g->t.reg->defaults : NULL) != 0) {
            oom(&b);
            g = NULL;
        }
        if (!g) {
            if (!b.redis_failed)
                bad++;
            lw_job_spec_clear(&s);
            continue;
        }
        window *w = &b.w[b.cur];
        uint32_t at = (uint32_t)w->nslots++;
        w->slots[at].line = (size_t)lineno;
        w->slots[at].known = NULL;
        w->slots[at].call = UINT32_MAX; /* set when its call is appended */
        /* Partition 0 may answer for it from before the tenant was
         * partitioned: held back until it has (settle_deferred). */
        int ask = cli_known_needed(&base->t, g->part, &s, own_id);
        if (ask || g->deferring) {
            if (defer_job(&b, g, base, ask, &s, at) != 0)
                b.redis_failed = 1;
        } else {
            add_job(&b, g, &s, at);
        }
        lw_job_spec_clear(&s);
        if (b.oom)
            break;
        if (w->nslots == WINDOW)
            window_end(&b);
    }
    c->cmd = cmd;
    int read_failed = in.err != 0;
    int read_errno = in.err;
    free(in.buf);
    if (in.fd != 0)
        close(in.fd);
    window_end(&b); /* sends the last window, collects the one before */
    window_end(&b); /* collects the last window */

    if (read_failed && !b.redis_failed)
        cli_err(c->cmd, "--batch: %s: %s", cli_show(path), strerror(read_errno));
    if (b.redis_failed)
        cli_err("batch",
                "stopped at line %ld: %ld of %ld line(s) sent were enqueued (their ids are on "
                "stdout); the others were not, or may not have been, and no later line was read",
                lineno, b.enqueued, b.accepted);
    for (size_t i = 0; i < b.ngroups; i++) {
        if (b.groups[i]->apart)
            lw_sconn_free(b.groups[i]->apart);
        lw_argv_clear(&b.groups[i]->a);
        free(b.groups[i]->name);
        free(b.groups[i]);
    }
    free(b.groups);
    free(b.dq); /* emptied by the last window_end */
    for (int i = 0; i < 2; i++) {
        free(b.w[i].slots);
        free(b.w[i].calls);
    }
    rc = cli_flush(c);
    if (b.redis_failed)
        return CLI_REDIS;
    if (read_failed || bad)
        return CLI_USAGE;
    return rc;
}

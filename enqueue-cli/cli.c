/*
 * cli.c — helpers shared by the `lanework` commands: messages, option
 * parsing, tenants, connections, stdout.
 */
#include "cli.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discovery.h"
#include "keys.h"
#include "names.h"
#include "slot.h"
#include "redis_sync.h"
#include "seams.h"
#include "timefmt.h"

/* Ten years: the largest number of seconds any option takes. */
#define MAX_SECONDS (10LL * 365 * 24 * 3600)

/* parse_args's answer to -h/--help; not an exit status. */
#define CLI_HELP (-1)

/* Per thread: the dashboard runs commands in several (dash_pool.c). */
static _Thread_local char last_err[1200];

const char *cli_last_err(void) { return last_err; }

void cli_last_err_clear(void) { last_err[0] = '\0'; }

void cli_err(const char *what, const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(last_err, sizeof last_err, "%s: %s", what, why);
    /* One write, so the line cannot interleave with other output. */
    char line[1200];
    int n = snprintf(line, sizeof line, "lanework: %s: %s\n", what, why);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    /* One line whatever the message carries (user input, server text). */
    for (int i = 0; i < n - 1; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = ' ';
    line[n - 1] = '\n';
    fflush(stdout);
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}

char *cli_oneline(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return out;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[o] = '\0';
    if (o + 1 >= outlen && len > o && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
    return out;
}

/* A printable, bounded rendering of user input for messages. Two rotating
 * buffers, so a message can show two values. */
const char *cli_show(const char *s)
{
    static _Thread_local char buf[2][128];
    static _Thread_local int k;
    k ^= 1;
    return cli_oneline(s, strlen(s), buf[k], sizeof buf[k]);
}

void cli_enqueue_existing(const char *what, const char *key, const char *id, const char *why)
{
    if (strncmp(why, "held ", 5) == 0) {
        if (key)
            cli_err(what, "%s is held by job %s (%s)", cli_show(key), id, why + 5);
        else
            cli_err(what, "its unique key is held by job %s (%s)", id, why + 5);
    } else {
        cli_err(what, "job %s exists (%s)", id, strncmp(why, "exists ", 7) == 0 ? why + 7 : why);
    }
}

int cli_not_array(const cli_conn *k, redisReply *r)
{
    if (r->type == REDIS_REPLY_ARRAY)
        return 0;
    int rc = cli_redis_err(k, r, NULL);
    freeReplyObject(r);
    return rc;
}

int cli_redis_err(const cli_conn *k, const redisReply *r, const char *why)
{
    /* "lanework: redis: URL: why": WHAT stays free of ':' (the URL is part
     * of WHY), so the line splits on the first ": " like every other. */
    const char *url = k && k->url ? k->url->redacted : "?";
    char line[512];
    if (r && r->type == REDIS_REPLY_ERROR)
        cli_err("redis", "%s: %s", url, cli_oneline(r->str, r->len, line, sizeof line));
    else if (r)
        cli_err("redis", "%s: unexpected reply (type %d)", url, r->type);
    else
        cli_err("redis", "%s: %s", url, why && *why ? why : "connection lost");
    return CLI_REDIS;
}

char *cli_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) {
        cli_err("error", "out of memory");
        exit(CLI_USAGE);
    }
    return d;
}

/* ---- options ---- */

static const cli_opt *find_opt(const cli_opt *opts, const char *a, size_t len)
{
    for (; opts && opts->name; opts++)
        if (strlen(opts->name) == len && memcmp(opts->name, a, len) == 0)
            return opts;
    return NULL;
}

/* Fills pos (sized to argc) with the positionals and counts them in *npos.
 * Returns 0, CLI_HELP, or CLI_USAGE after printing why. */
static int parse_args(cli *c, int argc, char **argv, const cli_opt *opts, const char **pos,
                      size_t *npos)
{
    int only_pos = 0;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return CLI_HELP;
        const char *eq = strchr(a, '=');
        const cli_opt *o = find_opt(opts, a, eq ? (size_t)(eq - a) : strlen(a));
        if (o) {
            if (o->flag) {
                if (eq) {
                    cli_err(c->cmd, "%s takes no value", o->name);
                    return CLI_USAGE;
                }
                (*o->flag)++;
                continue;
            }
            const char *v;
            if (eq) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                cli_err(c->cmd, "%s: missing value", o->name);
                return CLI_USAGE;
            }
            if (o->value)
                *o->value = v;
            else
                o->list[(*o->nlist)++] = v;
            continue;
        }
        char err[512];
        int r = lw_config_take_flag(&c->cfg, argc, argv, i, err, sizeof err);
        if (r < 0) {
            cli_err(c->cmd, "%s", err);
            return CLI_USAGE;
        }
        if (r > 0) {
            i += r - 1;
            continue;
        }
        cli_err(c->cmd, "unknown option %s (see lanework %s --help)", cli_show(a), c->cmd);
        return CLI_USAGE;
    }
    return 0;
}

static void print_usage(const char *text)
{
    fputs(text, stdout);
    fputs("\nShared options (also accepted before the command):\n", stdout);
    fputs(LW_CONFIG_USAGE, stdout);
}

/* Returns 0 when `rule` accepts a's positionals, else CLI_USAGE (printed). */
static int check_args(cli *c, cli_args_rule rule, const cli_args *a)
{
    switch (rule) {
    case CLI_ARGS_NONE:
        if (a->npos == 0)
            return 0;
        cli_err(c->cmd, "unexpected argument \"%s\"", cli_show(a->pos[0]));
        return CLI_USAGE;
    case CLI_ARGS_ONE_ID:
        if (a->npos == 1)
            return 0;
        cli_err(c->cmd, "expected one job id (see lanework %s --help)", c->cmd);
        return CLI_USAGE;
    case CLI_ARGS_IDS:
        if (a->npos > 0)
            return 0;
        cli_err(c->cmd, "expected at least one job id (see lanework %s --help)", c->cmd);
        return CLI_USAGE;
    case CLI_ARGS_ANY: break;
    }
    return 0;
}

int cli_args_parse(cli *c, int argc, char **argv, const cli_opt *opts, const char *usage,
                   cli_args_rule rule, cli_args *args, int *rc)
{
    /* argc + 1: never a zero-sized calloc, whose NULL would read as OOM. */
    cli_args a = {calloc((size_t)argc + 1, sizeof *a.pos), 0};
    if (!a.pos) {
        cli_err(c->cmd, "out of memory");
        *rc = CLI_USAGE;
        return 0;
    }
    *rc = parse_args(c, argc, argv, opts, a.pos, &a.npos);
    if (*rc == 0)
        *rc = check_args(c, rule, &a);
    int go_on = *rc == 0;
    if (*rc == CLI_HELP) {
        print_usage(usage);
        *rc = CLI_OK;
    }
    if (go_on && args)
        *args = a;
    else
        cli_args_free(&a);
    return go_on;
}

void cli_args_free(cli_args *a)
{
    free(a->pos);
    a->pos = NULL;
    a->npos = 0;
}

int cli_seconds(cli *c, const char *opt, const char *v, int allow_zero, int64_t *ms)
{
    if (lw_parse_seconds_ms(v, MAX_SECONDS, ms) != 0 || (!allow_zero && *ms <= 0)) {
        cli_err(c->cmd, "%s: \"%s\" is not a number of seconds%s", opt, cli_show(v),
                allow_zero ? "" : " > 0");
        return CLI_USAGE;
    }
    return 0;
}

int cli_int(cli *c, const char *opt, const char *v, int64_t min, int64_t max, int64_t *out)
{
    if (lw_parse_int(v, min, max, out) != 0) {
        if (max >= INT32_MAX)
            cli_err(c->cmd, "%s: \"%s\" is not an integer >= %" PRId64, opt, cli_show(v), min);
        else
            cli_err(c->cmd, "%s: \"%s\" is not an integer from %" PRId64 " to %" PRId64, opt,
                    cli_show(v), min, max);
        return CLI_USAGE;
    }
    return 0;
}

/* ---- tenants and Redis ---- */

int cli_registry(cli *c)
{
    if (c->reg_loaded)
        return c->reg || !c->cfg.registry_path ? 0 : CLI_USAGE;
    c->reg_loaded = 1;
    if (!c->cfg.registry_path)
        return 0;
    char err[1024];
    c->reg = lw_registry_load(c->cfg.registry_path, err, sizeof err);
    if (!c->reg) {
        cli_err("registry", "%s", err);
        return CLI_USAGE;
    }
    return 0;
}

int cli_tenant_get(cli *c, const char *name, cli_tenant *out)
{
    memset(out, 0, sizeof *out);
    if (!name) {
        cli_err(c->cmd, "--tenant is required");
        return CLI_USAGE;
    }
    int rc = cli_registry(c);
    if (rc)
        return rc;
    if (c->reg) {
        out->reg = lw_registry_find(c->reg, name);
        if (!out->reg) {
            cli_err(c->cmd, "unknown tenant \"%s\" (not in registry %s)", cli_show(name),
                    cli_show(c->reg->path ? c->reg->path : c->cfg.registry_path));
            return CLI_USAGE;
        }
    } else if (!lw_name_is_safe(name)) {
        cli_err(c->cmd, "tenant \"%s\" is not a safe name (letters, digits, '-', '_', '.')",
                cli_show(name));
        return CLI_USAGE;
    }
    out->name = name;
    lw_settings_resolve(&out->set, out->reg, &c->cfg);
    if (lw_key_prefix(out->prefix, sizeof out->prefix, c->cfg.ns, name) != 0) {
        cli_err(c->cmd, "tenant \"%s\": name too long", cli_show(name));
        return CLI_USAGE;
    }
    out->conn = cli_conn_for(c, out->reg ? out->reg->redis_url : NULL, out->prefix);
    return out->conn ? 0 : CLI_USAGE;
}

int cli_tenant_open(cli *c, const char *name, const char *const *ids, size_t nids, cli_tenant *out)
{
    int rc;
    for (size_t i = 0; i < nids; i++)
        if ((rc = cli_check_id(c, ids[i])) != 0)
            return rc;
    if ((rc = cli_tenant_get(c, name, out)) != 0)
        return rc;
    return cli_connect(out->conn, 0, NULL, 0);
}

int cli_one_job_open(cli *c, int argc, char **argv, const char *usage, const char **id,
                     cli_tenant *t, int *rc)
{
    const char *tenant = NULL;
    const cli_opt opts[] = {{"--tenant", &tenant, NULL, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    cli_args args;
    if (!cli_args_parse(c, argc, argv, opts, usage, CLI_ARGS_ONE_ID, &args, rc))
        return 0;
    *id = args.pos[0];
    cli_args_free(&args);
    cli_tenant base;
    if ((*rc = cli_tenant_open(c, tenant, id, 1, &base)) != 0)
        return 0;
    /* The partition that holds it (none: the id's own, where the command
     * finds no job and says so). */
    *rc = cli_job_partition(c, &base, *id, t);
    if (*rc == CLI_NOJOB)
        *rc = 0;
    return *rc == 0 && (*rc = cli_connect(t->conn, 0, NULL, 0)) == 0;
}

/* A Cluster URL's masters, as read once (cli_cluster_map): for each slot,
 * the first slot of the master serving it (the slot that master's one
 * connection is for), -1 when no master serves it. */
struct cli_slotmap {
    char *url_text; /* owned */
    int16_t first[LW_SLOTS];
};

static const struct cli_slotmap *slotmap_of(const cli *c, const char *text)
{
    for (size_t i = 0; i < c->nmaps; i++)
        if (strcmp(c->maps[i].url_text, text) == 0)
            return &c->maps[i];
    return NULL;
}

/* The connection for `text` (parsed: u, owned and taken) serving `slot`.
 * A command asks for a few connections: a linear look is enough. */
static cli_conn *conn_for_slot(cli *c, const char *text, lw_url *u, int slot)
{
    for (size_t i = 0; i < c->nconns; i++)
        if (strcmp(c->conns[i].url_text, text) == 0 && c->conns[i].slot == slot) {
            lw_url_free(u);
            return &c->conns[i];
        }
    /* Handed out by pointer: the array is allocated once with room for
     * them all, never moved. */
    if (!c->conns) {
        c->conns = calloc(CLI_CONNS_MAX, sizeof *c->conns);
        if (!c->conns) {
            lw_url_free(u);
            cli_err("error", "out of memory");
            return NULL;
        }
    }
    if (c->nconns == CLI_CONNS_MAX) {
        lw_url_free(u);
        cli_err("redis", "too many different Redis servers (%d at most)", CLI_CONNS_MAX);
        return NULL;
    }
    cli_conn *k = &c->conns[c->nconns++];
    k->url_text = cli_strdup(text);
    k->url = u;
    k->slot = slot;
    k->holds = c->holds;
    k->reply_timeout_ms = c->new_reply_ms;
    k->connect_ms = c->new_connect_ms;
    return k;
}

/* url_text (NULL: the default) parsed, or NULL after printing why. */
static lw_url *parse_url(const cli *c, const char *url_text)
{
    char err[512];
    lw_url *u = lw_url_parse(url_text ? url_text : c->cfg.redis_url, err, sizeof err);
    if (!u)
        cli_err("redis", "%s", err);
    return u;
}

cli_conn *cli_conn_for(cli *c, const char *url_text, const char *key)
{
    const char *text = url_text ? url_text : c->cfg.redis_url;
    /* Parsed first: the URL's kind says whether the slot matters (only
     * url.c knows the schemes). */
    lw_url *u = parse_url(c, text);
    if (!u)
        return NULL;
    int slot = u->kind == LW_URL_CLUSTER && key ? lw_key_slot(key, strlen(key)) : -1;
    const struct cli_slotmap *m = slot >= 0 ? slotmap_of(c, text) : NULL;
    if (m && m->first[slot] >= 0)
        slot = m->first[slot];
    return conn_for_slot(c, text, u, slot);
}

/* Reads `text`'s masters through any of its nodes into a new c->maps
 * entry. */
static int slotmap_load(cli *c, const char *text)
{
    cli_conn *any = cli_conn_for(c, text, NULL);
    if (!any)
        return CLI_USAGE;
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    redisReply *r = cli_cmd(any, 2, argv);
    if (!r)
        return CLI_REDIS;
    struct cli_slotmap *maps = realloc(c->maps, (c->nmaps + 1) * sizeof *maps);
    if (!maps) {
        freeReplyObject(r);
        cli_err("error", "out of memory");
        return CLI_USAGE;
    }
    c->maps = maps;
    struct cli_slotmap *m = &maps[c->nmaps];
    char why[256];
    int rc = CLI_OK;
    if (lw_cluster_read_masters(r, m->first, why, sizeof why) < 0)
        rc = cli_redis_err(any, NULL, why);
    else {
        m->url_text = cli_strdup(text);
        c->nmaps++;
    }
    freeReplyObject(r);
    return rc;
}

int cli_cluster_map(cli *c, const char *url_text)
{
    const char *text = url_text ? url_text : c->cfg.redis_url;
    lw_url *u = parse_url(c, text);
    if (!u)
        return CLI_USAGE;
    int cluster = u->kind == LW_URL_CLUSTER;
    lw_url_free(u);
    return cluster && !slotmap_of(c, text) ? slotmap_load(c, text) : CLI_OK;
}

int cli_nodes(cli *c, const char *url_text, cli_conn **out, size_t *n)
{
    *n = 0;
    int rc = cli_cluster_map(c, url_text);
    if (rc)
        return rc;
    const char *text = url_text ? url_text : c->cfg.redis_url;
    const struct cli_slotmap *m = slotmap_of(c, text);
    if (!m) {
        out[0] = cli_conn_for(c, text, NULL);
        *n = out[0] != NULL;
        return out[0] ? CLI_OK : CLI_USAGE;
    }
    /* A master's slots all name its first one: that slot is the master. */
    for (int s = 0; s < LW_SLOTS; s++) {
        if (m->first[s] != s)
            continue;
        lw_url *u = parse_url(c, text);
        cli_conn *k = u ? conn_for_slot(c, text, u, s) : NULL;
        if (!k)
            return CLI_USAGE;
        out[(*n)++] = k;
    }
    return CLI_OK;
}

static int connect_ms(cli_conn *k, int quiet, char *why, size_t whylen, int ms)
{
    if (k->ctx)
        return k->ctx->err ? CLI_REDIS : 0;
    char err[256], held[320];
    if (cli_held(k, held, sizeof held)) {
        if (why)
            snprintf(why, whylen, "%s", held);
        if (!quiet)
            cli_redis_err(k, NULL, held);
        return CLI_REDIS;
    }
    k->ctx = lw_redis_connect_sync(k->url, k->slot, ms, NULL, err, sizeof err);
    k->evalsha_only = 0; /* a new connection tries FCALL again */
    if (!k->ctx) {
        cli_hold(k, err);
        if (why)
            snprintf(why, whylen, "%s", err);
        if (!quiet)
            cli_redis_err(k, NULL, err);
        return CLI_REDIS;
    }
    char warning[512];
    if (!k->warned && lw_tls_insecure_warning(k->url, warning, sizeof warning)) {
        k->warned = 1; /* once per server, whatever the reconnects */
        cli_err("redis", "warning: %s", warning);
    }
    return cli_set_reply_timeout(k, k->reply_timeout_ms);
}

int cli_connect(cli_conn *k, int quiet, char *why, size_t whylen)
{
    return connect_ms(k, quiet, why, whylen,
                      k->connect_ms > 0 ? k->connect_ms : CLI_CONNECT_TIMEOUT_MS);
}

int cli_connect_within(cli_conn *k, int64_t deadline)
{
    int64_t ms = k->connect_ms > 0 ? k->connect_ms : CLI_CONNECT_TIMEOUT_MS;
    if (deadline >= 0 && deadline - lw_mono_ms() < ms)
        ms = deadline - lw_mono_ms();
    return connect_ms(k, 0, NULL, 0, ms < 1 ? 1 : (int)ms);
}

int cli_set_reply_timeout(cli_conn *k, int ms)
{
    k->reply_timeout_ms = ms;
    if (!k->ctx)
        return 0;
    lw_sconn_set_timeout(k->ctx, ms);
    return 0;
}

int cli_load_scripts(cli_conn *k)
{
    if (cli_connect(k, 0, NULL, 0))
        return CLI_REDIS;
    if (k->scripts_loaded)
        return 0;
    char err[256];
    int fn = k->evalsha_only ? 0 : lw_redis_load_functions(k->ctx, err, sizeof err);
    if (fn < 0) {
        cli_redis_err(k, NULL, err);
        return CLI_REDIS;
    }
    k->evalsha_only = !fn;
    for (const lw_script *const *s = lw_scripts_all; !fn && *s; s++) {
        if (lw_redis_load_script(k->ctx, *s, err, sizeof err) != 0) {
            cli_redis_err(k, NULL, err);
            return CLI_REDIS;
        }
    }
    k->scripts_loaded = 1;
    return 0;
}

/* The channel of cli_confirm's PUBLISH: PREFIXsync. */
static void sync_channel(const char *prefix, char *out, size_t outlen)
{
    snprintf(out, outlen, "%ssync", prefix);
}

int cli_append_wait(const cli *c, cli_conn *k, const char *prefix)
{
    char n[24], ms[24], ch[CLI_PREFIX_MAX + 8];
    sync_channel(prefix, ch, sizeof ch);
    const char *pub[3] = {"PUBLISH", ch, ""};
    if (cli_append(k, 3, pub) != 0)
        return CLI_REDIS;
    snprintf(n, sizeof n, "%lld", (long long)c->cfg.min_replicas);
    snprintf(ms, sizeof ms, "%d", LW_MIN_REPLICAS_WAIT_MS);
    const char *argv[3] = {"WAIT", n, ms};
    return cli_append(k, 3, argv);
}

int cli_confirmed(const cli *c, const cli_conn *k, const redisReply *r, char *why, size_t whylen)
{
    if (!r) {
        snprintf(why, whylen, "%s",
                 k->ctx && k->ctx->errstr[0] ? k->ctx->errstr : "connection lost");
        return -1;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(why, whylen, "WAIT: %.*s", (int)(r->len > 200 ? 200 : r->len),
                 r->str ? r->str : "unexpected reply");
        return 1;
    }
    if (r->integer >= c->cfg.min_replicas)
        return 0;
    snprintf(why, whylen,
             "only %lld of %lld replicas confirmed it within %d ms: it may be lost in a failover",
             r->integer, (long long)c->cfg.min_replicas, LW_MIN_REPLICAS_WAIT_MS);
    return 1;
}

int cli_confirm(const cli *c, cli_conn *k, const char *prefix, char *why, size_t whylen)
{
    if (c->cfg.min_replicas <= 0)
        return 0;
    redisReply *pub = NULL, *r = NULL;
    if (k->ctx && cli_append_wait(c, k, prefix) == 0 && lw_sconn_get_reply(k->ctx, &pub) == 0)
        lw_sconn_get_reply(k->ctx, &r);
    int rc = cli_confirmed(c, k, r, why, whylen);
    if (pub)
        freeReplyObject(pub);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Replaces k's connection by one to host:port, the node a MOVED reply
 * named. Returns 0, or -1 with err (k keeps its connection). */
static int move_to(cli_conn *k, const char *host, int port, char *err, size_t errlen)
{
    lw_url *nu = lw_cluster_node_url(k->url, host, port);
    if (!nu) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    lw_sconn *n = lw_redis_connect_sync(nu, -1, CLI_CONNECT_TIMEOUT_MS, NULL, err, errlen);
    lw_url_free(nu);
    if (!n)
        return -1;
    /* k->slot stays: a reconnect asks the seeds for it again. */
    lw_sconn_free(k->ctx);
    k->ctx = n;
    k->scripts_loaded = 0;
    k->evalsha_only = 0;
    lw_sconn_set_timeout(k->ctx, k->reply_timeout_ms);
    return 0;
}

redisReply *cli_script(cli_conn *k, const lw_script *s, int nkeys, lw_argv *a, char *err,
                       size_t errlen)
{
    redisReply *r = lw_redis_script_sync(k->ctx, &k->evalsha_only, s, nkeys, a, err, errlen);
    char host[256];
    int port;
    if (!r || k->url->kind != LW_URL_CLUSTER || r->type != REDIS_REPLY_ERROR ||
        !lw_cluster_read_moved(r->str, r->len, host, sizeof host, &port))
        return r;
    char why[256];
    if (move_to(k, host, port, why, sizeof why) != 0)
        return r;
    freeReplyObject(r);
    return lw_redis_script_sync(k->ctx, &k->evalsha_only, s, nkeys, a, err, errlen);
}

redisReply *cli_cmd_moved(cli_conn *k, int argc, const char **argv)
{
    redisReply *r = cli_cmd(k, argc, argv);
    char host[256], why[256];
    int port;
    if (!r || k->url->kind != LW_URL_CLUSTER || r->type != REDIS_REPLY_ERROR ||
        !lw_cluster_read_moved(r->str, r->len, host, sizeof host, &port) ||
        move_to(k, host, port, why, sizeof why) != 0)
        return r;
    freeReplyObject(r);
    return cli_cmd(k, argc, argv);
}

redisReply *cli_cmd(cli_conn *k, int argc, const char **argv)
{
    if (cli_connect(k, 0, NULL, 0))
        return NULL;
    redisReply *r = lw_sconn_command(k->ctx, argc, argv, NULL);
    if (!r)
        cli_redis_err(k, NULL, k->ctx->errstr);
    return r;
}

int cli_append(cli_conn *k, int argc, const char **argv)
{
    if (cli_connect(k, 0, NULL, 0))
        return CLI_REDIS;
    if (lw_sconn_append(k->ctx, argc, argv, NULL) != 0)
        return cli_redis_err(k, NULL, k->ctx->errstr);
    return 0;
}

redisReply *cli_next_reply(cli_conn *k)
{
    void *r = NULL;
    if (lw_sconn_get_reply(k->ctx, (redisReply **)&r) != 0 || !r) {
        cli_redis_err(k, NULL, k->ctx->errstr);
        return NULL;
    }
    return r;
}

int cli_flush(cli *c)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    if (errno == EPIPE)
        exit(CLI_OK); /* the reader went away (`| head`): nothing left to say */
    cli_err(c->cmd, "stdout: %s", strerror(errno));
    return CLI_USAGE;
}

static void clear_conns(cli *c)
{
    for (size_t i = 0; i < c->nconns; i++) {
        if (c->conns[i].ctx)
            lw_sconn_free(c->conns[i].ctx);
        lw_url_free(c->conns[i].url);
        free(c->conns[i].url_text);
    }
    free(c->conns);
    c->conns = NULL;
    c->nconns = 0;
    for (size_t i = 0; i < c->nmaps; i++)
        free(c->maps[i].url_text);
    free(c->maps);
    c->maps = NULL;
    c->nmaps = 0;
}

void cli_view(cli *view, const cli *c)
{
    memset(view, 0, sizeof *view);
    view->cfg = c->cfg;
    view->cmd = c->cmd;
    view->env_failed = c->env_failed;
    view->reg = c->reg;
    view->reg_loaded = c->reg_loaded;
    view->holds = c->holds;
}

void cli_view_clear(cli *view) { clear_conns(view); }

void cli_clear(cli *c)
{
    clear_conns(c);
    if (c->reg)
        lw_registry_free(c->reg);
    c->reg = NULL;
    lw_config_clear(&c->cfg);
}

/* ---- helpers ---- */

char *cli_read_all(const char *path, size_t max, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? 0 : lw_open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            buf = NULL;
            errno = e;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            free(buf);
            buf = NULL;
            errno = EFBIG;
            break;
        }
    }
    if (fd != 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

int cli_check_id(cli *c, const char *id)
{
    if (lw_name_is_safe(id))
        return 0;
    cli_err(c->cmd,
            "job id \"%s\" is not a safe name (letters, digits, '-', '_', '.'; not "
            "starting with '.')",
            cli_show(id));
    return CLI_USAGE;
}

int cli_reply_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len == n &&
           memcmp(r->str, s, n) == 0;
}

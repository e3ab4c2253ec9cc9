/*
 * redis_sync.c — blocking Redis access for the CLI.
 *
 * A context from lw_redis_connect_sync() has finished its handshake (AUTH,
 * SELECT) and has no read/write timeout any more: the connect timeout bounds
 * connecting and the handshake only, so a command that blocks on purpose
 * (XREAD BLOCK) is not cut short by a socket timeout.
 *
 * Scripts run by FCALL of the function library (scripts.h) while the server
 * has it, else by EVALSHA. "Function not found" (the server restarted
 * empty, FUNCTION FLUSH) is answered by FUNCTION LOAD and one more FCALL; a
 * refused FUNCTION LOAD or FCALL (an ACL user without them, a Redis before
 * 7) turns the connection to EVALSHA for good. A NOSCRIPT error reply is
 * answered by SCRIPT LOAD and one more EVALSHA. Each of these errors means
 * the script did not run, so the retry cannot run it twice.
 *
 * The connection is resp_sync.h's (plain, unix or TLS); its socket is
 * close-on-exec: a program started from this process must not inherit an
 * authenticated connection.
 */
#include "redis_sync.h"

#include "redis_errors.h"
#include "discovery.h"
#include "timefmt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies a connection's error string into err, naming an OOM when there is none. */
static void set_err(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why && *why ? why : "out of memory");
}

static void set_reply_err(char *err, size_t errlen, const char *what, const redisReply *r)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %.*s", what, (int)(r->len > 400 ? 400 : r->len), r->str);
}

/* Runs a command given as plain strings during the handshake. Returns 0, or
 * -1 with "WHAT: why" in err (never the arguments: AUTH carries the
 * password). */
static int handshake_cmd(lw_sconn *c, const char *what, int argc, const char **argv, int *refused,
                         char *err, size_t errlen)
{
    redisReply *r = lw_sconn_command(c, argc, argv, NULL);
    if (!r) {
        set_err(err, errlen, c->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (refused)
            *refused = !lw_redis_error_is_transient(r->str, r->len);
        set_reply_err(err, errlen, what, r);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

int lw_redis_error_is_transient(const char *s, size_t len)
{
    /* MOVED and ASK: a cluster slot moving; a new connection asks the seeds
     * where it is (the command did not run). */
    static const char *const words[] = {"LOADING",     "BUSY",  "MASTERDOWN", "TRYAGAIN",
                                        "CLUSTERDOWN", "MOVED", "ASK",        NULL};
    for (const char *const *w = words; *w; w++) {
        size_t n = strlen(*w);
        if (len >= n && memcmp(s, *w, n) == 0 && (len == n || s[n] == ' '))
            return 1;
    }
    /* maxclients: a reconnect storm after a failover meets it, and it
     * passes as other clients leave. */
    static const char FULL[] = "ERR max number of clients reached";
    return len >= sizeof FULL - 1 && memcmp(s, FULL, sizeof FULL - 1) == 0;
}

static lw_sconn *connect_one(const lw_url *u, int timeout_ms, int *refused, char *err,
                             size_t errlen)
{
    if (refused)
        *refused = 0;
    /* The timeout bounds connecting, TLS and the handshake below; then it
     * is lifted. */
    lw_sconn *c = lw_sconn_open(u, timeout_ms, refused, err, errlen);
    if (!c)
        return NULL;
    if (u->password) {
        const char *argv[3] = {"AUTH", u->user ? u->user : u->password, u->password};
        if (handshake_cmd(c, "AUTH", u->user ? 3 : 2, argv, refused, err, errlen) != 0)
            goto fail;
    }
    if (u->db != 0) {
        char db[24];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        if (handshake_cmd(c, "SELECT", 2, argv, refused, err, errlen) != 0)
            goto fail;
    }
    if (!u->password && u->db == 0) {
        /* Nothing was asked yet: a PING turns "this server wants a
         * password" into a clear NOAUTH now, rather than a protocol error
         * at the first large command. */
        const char *argv[1] = {"PING"};
        if (handshake_cmd(c, "PING", 1, argv, refused, err, errlen) != 0)
            goto fail;
    }
    lw_sconn_set_timeout(c, 0);
    return c;
fail:
    lw_sconn_free(c);
    return NULL;
}

/* The argument vector of "FCALL function nkeys <a...>" (fcall) or "EVALSHA
 * sha nkeys <a...>", in one allocation the caller frees (*pv). Returns the
 * argument count, or -1 on OOM. */
static int script_argv(const lw_script *s, int fcall, int nkeys, lw_argv *a, const char ***pv,
                       size_t **lv, char nk[24])
{
    const size_t *lens = NULL;
    const char **ptrs = lw_argv_ptrs(a, &lens);
    /* NULL only when an append failed: what is there is not the command the
     * caller built (even with nothing in it), so nothing is sent. */
    if (!ptrs)
        return -1;
    size_t n = a->n + 3;
    void *mem = malloc(n * (sizeof(char *) + sizeof(size_t)));
    if (!mem)
        return -1;
    const char **v = mem;
    size_t *l = (size_t *)(v + n);
    snprintf(nk, 24, "%d", nkeys);
    v[0] = fcall ? "FCALL" : "EVALSHA";
    l[0] = strlen(v[0]);
    v[1] = fcall ? s->function : s->sha1;
    l[1] = strlen(v[1]);
    v[2] = nk;
    l[2] = strlen(nk);
    for (size_t i = 0; i < a->n; i++) {
        v[i + 3] = ptrs[i];
        l[i + 3] = lens[i];
    }
    *pv = v;
    *lv = l;
    return (int)n;
}

static int is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

/* An FCALL refused as a command (not by what the function ran): an ACL user
 * without +fcall, or a server without FCALL. */
static int fcall_refused(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           ((strncmp(r->str, "NOPERM", 6) == 0 && strstr(r->str, "'fcall' command")) ||
            strncmp(r->str, "ERR unknown command", 19) == 0);
}

int lw_redis_load_functions(lw_sconn *c, char *err, size_t errlen)
{
    const char *argv[3] = {"FUNCTION", "LOAD", lw_library.text};
    size_t lens[3] = {8, 4, lw_library.len};
    redisReply *r = lw_sconn_command(c, 3, argv, lens);
    if (!r) {
        set_err(err, errlen, c->errstr);
        return -1;
    }
    int rc = 1;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = lw_redis_library_taken(r->str) ? 1 : 0;
        if (rc == 0 && lw_redis_error_is_transient(r->str, r->len)) {
            set_reply_err(err, errlen, "FUNCTION LOAD", r);
            rc = -1;
        }
    }
    freeReplyObject(r);
    if (rc != 0)
        return rc;
    /* Refused: an operator may have loaded it (a tenant's ACL user may
     * FCALL but not FUNCTION LOAD). */
    const char *probe[3] = {"FCALL", lw_library.probe, "0"};
    r = lw_sconn_command(c, 3, probe, NULL);
    if (!r) {
        set_err(err, errlen, c->errstr);
        return -1;
    }
    rc = lw_redis_probe_says_loaded(r->type == REDIS_REPLY_STRING, r->str, r->len);
    freeReplyObject(r);
    return rc;
}

int lw_redis_load_script(lw_sconn *c, const lw_script *s, char *err, size_t errlen)
{
    const char *argv[3] = {"SCRIPT", "LOAD", s->body};
    size_t lens[3] = {6, 4, s->len};
    redisReply *r = lw_sconn_command(c, 3, argv, lens);
    if (!r) {
        set_err(err, errlen, c->errstr);
        return -1;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        set_reply_err(err, errlen, "SCRIPT LOAD", r);
        rc = -1;
    } else if (r->type != REDIS_REPLY_STRING || r->len != 40 || memcmp(r->str, s->sha1, 40) != 0) {
        /* The embedded SHA1 must be the server's: otherwise every EVALSHA
         * would fail with NOSCRIPT. */
        if (err && errlen)
            snprintf(err, errlen, "SCRIPT LOAD %s: unexpected reply", s->name);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* EVALSHA, and SCRIPT LOAD and EVALSHA again on NOSCRIPT. */
static redisReply *evalsha_sync(lw_sconn *c, const lw_script *s, int n, const char **v,
                                const size_t *l, char *err, size_t errlen)
{
    redisReply *r = lw_sconn_command(c, n, v, l);
    if (is_noscript(r)) {
        freeReplyObject(r);
        r = NULL;
        const char *argv[3] = {"SCRIPT", "LOAD", s->body};
        size_t lens[3] = {6, 4, s->len};
        redisReply *lr = lw_sconn_command(c, 3, argv, lens);
        if (!lr) {
            set_err(err, errlen, c->errstr);
        } else if (lr->type == REDIS_REPLY_ERROR) {
            r = lr; /* the caller sees why the server refused */
            lr = NULL;
        } else {
            r = lw_sconn_command(c, n, v, l);
            if (!r)
                set_err(err, errlen, c->errstr);
        }
        if (lr)
            freeReplyObject(lr);
    } else if (!r) {
        set_err(err, errlen, c->errstr);
    }
    return r;
}

/* FCALL; FUNCTION LOAD and FCALL again when the function is missing.
 * Returns the reply, or NULL: with *evalsha_only set when the server will
 * not take FCALL or the library (run it by EVALSHA), else with err. */
static redisReply *fcall_sync(lw_sconn *c, int *evalsha_only, int n, const char **v,
                              const size_t *l, char *err, size_t errlen)
{
    redisReply *r = lw_sconn_command(c, n, v, l);
    if (r && r->type == REDIS_REPLY_ERROR && lw_redis_no_function(r->str)) {
        freeReplyObject(r);
        r = NULL;
        int loaded = lw_redis_load_functions(c, err, errlen);
        if (loaded == 0)
            *evalsha_only = 1;
        if (loaded != 1)
            return NULL;
        r = lw_sconn_command(c, n, v, l);
    }
    /* Still no function where the library was said to be (another library
     * answering for ours): refused as much as a refused FCALL. */
    if (fcall_refused(r) || (r && r->type == REDIS_REPLY_ERROR && lw_redis_no_function(r->str))) {
        freeReplyObject(r);
        *evalsha_only = 1;
        return NULL;
    }
    if (!r)
        set_err(err, errlen, c->errstr);
    return r;
}

redisReply *lw_redis_script_sync(lw_sconn *c, int *evalsha_only, const lw_script *s, int nkeys,
                                 lw_argv *a, char *err, size_t errlen)
{
    const char **v;
    size_t *l;
    char nk[24];
    redisReply *r = NULL;
    if (!*evalsha_only) {
        int n = script_argv(s, 1, nkeys, a, &v, &l, nk);
        if (n < 0) {
            set_err(err, errlen, NULL);
            return NULL;
        }
        r = fcall_sync(c, evalsha_only, n, v, l, err, errlen);
        free(v);
        if (r || !*evalsha_only)
            return r;
    }
    int n = script_argv(s, 0, nkeys, a, &v, &l, nk);
    if (n < 0) {
        set_err(err, errlen, NULL);
        return NULL;
    }
    r = evalsha_sync(c, s, n, v, l, err, errlen);
    free(v);
    return r;
}

int lw_redis_append_script(lw_sconn *c, int evalsha_only, const lw_script *s, int nkeys, lw_argv *a)
{
    const char **v;
    size_t *l;
    char nk[24];
    int n = script_argv(s, !evalsha_only, nkeys, a, &v, &l, nk);
    if (n < 0)
        return -1;
    int rc = lw_sconn_append(c, n, v, l);
    free(v);
    return rc;
}

redisReply *lw_redis_argv(lw_sconn *c, lw_argv *a, char *err, size_t errlen)
{
    const size_t *lens = NULL;
    const char **ptrs = lw_argv_ptrs(a, &lens);
    if (!ptrs || a->n == 0) {
        set_err(err, errlen, a->n == 0 && ptrs ? "empty command" : NULL);
        return NULL;
    }
    redisReply *r = lw_sconn_command(c, (int)a->n, ptrs, lens);
    if (!r)
        set_err(err, errlen, c->errstr);
    return r;
}

/* 1 when ROLE on c says it is a replica (an ACL user may not ask: then 0,
 * and a write there is refused with READONLY anyway). */
static int is_replica(lw_sconn *c, char *role, size_t rolelen)
{
    const char *argv[1] = {"ROLE"};
    redisReply *r = lw_sconn_command(c, 1, argv, NULL);
    int replica = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                  r->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[0]->str, "master") != 0;
    if (replica)
        snprintf(role, rolelen, "%s", r->element[0]->str);
    if (r)
        freeReplyObject(r);
    return replica;
}

/* Sentinel i's answer: the master's address in host and *port, or 0 in *port
 * with why. */
static void ask_sentinel(const lw_url *u, size_t i, int timeout_ms, char *host, size_t hostlen,
                         int *port, char *why, size_t whylen)
{
    *port = 0;
    lw_url *su = lw_sentinel_url(u, i);
    lw_sconn *s = su ? connect_one(su, timeout_ms, NULL, why, whylen) : NULL;
    if (!su)
        set_err(why, whylen, NULL);
    if (s) {
        const char *argv[3] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", u->master_name};
        redisReply *r = lw_sconn_command(s, 3, argv, NULL);
        if (!r)
            set_err(why, whylen, s->errstr);
        else if (lw_sentinel_read_addr(r, u->master_name, host, hostlen, port, why, whylen) != 0)
            *port = 0;
        if (r)
            freeReplyObject(r);
        lw_sconn_free(s);
    }
    lw_url_free(su);
}

/* Asks the sentinels of u in turn for the master, connects to it and checks
 * it is one. The timeout bounds each step. */
static lw_sconn *connect_via_sentinels(const lw_url *u, int timeout_ms, int *refused, char *err,
                                       size_t errlen)
{
    char why[400] = "no sentinel", host[256];
    for (size_t i = 0; i < u->nnodes; i++) {
        int port;
        ask_sentinel(u, i, timeout_ms, host, sizeof host, &port, why, sizeof why);
        if (port) {
            lw_url *mu = lw_sentinel_master_url(u, host, port);
            lw_sconn *c = mu ? connect_one(mu, timeout_ms, refused, why, sizeof why) : NULL;
            char role[32];
            if (c && is_replica(c, role, sizeof role)) {
                /* The sentinels have not finished a failover yet. */
                snprintf(why, sizeof why, "%s:%d, named by the sentinel, is a %s", host, port,
                         role);
                lw_sconn_free(c);
                c = NULL;
            }
            lw_url_free(mu);
            if (c)
                return c;
        }
        if (err && errlen)
            snprintf(err, errlen, "sentinel %s:%d: %s", u->nodes[i].host, u->nodes[i].port, why);
    }
    return NULL;
}

/* Cluster nodes whose connect or reply timed out lately are asked last,
 * for SLOW_NODE_MS: a frozen node (it accepts connections and never
 * answers) first among the seeds would otherwise cost every new connection
 * of the process a timeout before the next seed is asked -- 7 of them for
 * one `lanework stats` of a partitioned tenant. Process-wide (the
 * dashboard's threads share it), SLOW_NODES at most (the oldest goes). */
#define SLOW_NODE_MS 30000
#define SLOW_NODES 16

static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char host[256];
    int port;
    int64_t until; /* lw_mono_ms; 0: a free entry */
} slow[SLOW_NODES];

static void node_timed_out(const char *host, int port, const char *why)
{
    if (!host || !strstr(why, "timed out"))
        return;
    pthread_mutex_lock(&slow_mu);
    int at = 0;
    for (int i = 0; i < SLOW_NODES; i++) {
        if (slow[i].until && slow[i].port == port && strcmp(slow[i].host, host) == 0) {
            at = i;
            break;
        }
        if (slow[i].until < slow[at].until)
            at = i;
    }
    snprintf(slow[at].host, sizeof slow[at].host, "%s", host);
    slow[at].port = port;
    slow[at].until = lw_mono_ms() + SLOW_NODE_MS;
    pthread_mutex_unlock(&slow_mu);
}

static int node_is_slow(const char *host, int port)
{
    int found = 0;
    int64_t now = lw_mono_ms();
    pthread_mutex_lock(&slow_mu);
    for (int i = 0; i < SLOW_NODES && !found; i++)
        found =
            slow[i].until > now && slow[i].port == port && host && strcmp(slow[i].host, host) == 0;
    pthread_mutex_unlock(&slow_mu);
    return found;
}

/* Asks seed i of u which master serves `slot` and connects to it; slot -1:
 * the seed itself. NULL with why; *owner_slow set when the seed answered
 * and the master it named timed out (every seed names the same one). */
static lw_sconn *via_seed(const lw_url *u, size_t i, int slot, int timeout_ms, int *refused,
                          int *owner_slow, char *why, size_t whylen)
{
    char host[256];
    lw_url *su = lw_cluster_seed_url(u, i);
    lw_sconn *s = su ? connect_one(su, timeout_ms, refused, why, whylen) : NULL;
    lw_url_free(su);
    if (!s)
        node_timed_out(u->nodes[i].host, u->nodes[i].port, why);
    if (s && slot < 0)
        return s;
    int port = 0;
    if (s) {
        const char *argv[2] = {"CLUSTER", "SLOTS"};
        redisReply *r = lw_sconn_command(s, 2, argv, NULL);
        if (!r) {
            set_err(why, whylen, s->errstr);
            node_timed_out(u->nodes[i].host, u->nodes[i].port, why);
        } else if (lw_cluster_read_owner(r, slot, u->nodes[i].host, host, sizeof host, &port, why,
                                         whylen) != 0) {
            port = 0;
        }
        if (r)
            freeReplyObject(r);
        lw_sconn_free(s);
    }
    if (!port)
        return NULL;
    lw_url *nu = lw_cluster_node_url(u, host, port);
    char owner_why[256] = "out of memory";
    lw_sconn *c = nu ? connect_one(nu, timeout_ms, refused, owner_why, sizeof owner_why) : NULL;
    lw_url_free(nu);
    if (!c) {
        node_timed_out(host, port, owner_why);
        *owner_slow = strstr(owner_why, "timed out") != NULL;
        snprintf(why, whylen, "its master for the slot, %s:%d: %s", host, port, owner_why);
    }
    return c;
}

/* Asks the seeds of u in turn which master serves `slot` and connects to
 * it; slot -1: the first seed that answers. Seeds that timed out lately go
 * last. A refusal of a seed (WRONGPASS) is the same at every node: it ends
 * the search; so does a master that timed out (another seed would name it
 * again: a refused one may have failed over, and the next seed is asked). */
static lw_sconn *connect_via_seeds(const lw_url *u, int slot, int timeout_ms, int *refused,
                                   char *err, size_t errlen)
{
    char why[400] = "no seed";
    int late[LW_URL_MAX_NODES];
    for (size_t i = 0; i < u->nnodes; i++)
        late[i] = node_is_slow(u->nodes[i].host, u->nodes[i].port);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < u->nnodes; i++) {
            if (late[i] != pass)
                continue;
            int owner_slow = 0;
            lw_sconn *c = via_seed(u, i, slot, timeout_ms, refused, &owner_slow, why, sizeof why);
            if (c)
                return c;
            if (err && errlen)
                snprintf(err, errlen, "seed %s:%d: %s", u->nodes[i].host, u->nodes[i].port, why);
            if ((refused && *refused) || owner_slow)
                return NULL;
        }
    return NULL;
}

lw_sconn *lw_redis_connect_sync(const lw_url *u, int slot, int timeout_ms, int *refused, char *err,
                                size_t errlen)
{
    if (refused)
        *refused = 0;
    if (u->kind == LW_URL_SENTINEL)
        return connect_via_sentinels(u, timeout_ms, refused, err, errlen);
    if (u->kind == LW_URL_CLUSTER)
        return connect_via_seeds(u, slot, timeout_ms, refused, err, errlen);
    return connect_one(u, timeout_ms, refused, err, errlen);
}

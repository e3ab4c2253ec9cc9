/*
 * discovery.c — Sentinel's and Cluster's URLs and answers (discovery.h).
 */
#include "discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slot.h"

/* u's TLS settings and nothing else, as a TCP URL for host:port. */
static lw_url *tcp_like(const lw_url *u, const char *host, int port)
{
    lw_url *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->kind = LW_URL_TCP;
    d->port = port;
    d->tls = u->tls;
    d->tls_insecure = u->tls_insecure;
    if (!(d->host = strdup(host)) || (u->tls_ca && !(d->tls_ca = strdup(u->tls_ca))) ||
        (u->tls_cert && !(d->tls_cert = strdup(u->tls_cert))) ||
        (u->tls_key && !(d->tls_key = strdup(u->tls_key))) ||
        (u->tls_sni && !(d->tls_sni = strdup(u->tls_sni)))) {
        lw_url_free(d);
        return NULL;
    }
    return d;
}

lw_url *lw_sentinel_url(const lw_url *u, size_t i)
{
    lw_url *d = tcp_like(u, u->nodes[i].host, u->nodes[i].port);
    char shown[600];
    snprintf(shown, sizeof shown, "%s (sentinel %s:%d)", u->redacted, u->nodes[i].host,
             u->nodes[i].port);
    if (d && ((u->sentinel_user && !(d->user = strdup(u->sentinel_user))) ||
              (u->sentinel_password && !(d->password = strdup(u->sentinel_password))) ||
              !(d->redacted = strdup(shown)))) {
        lw_url_free(d);
        return NULL;
    }
    return d;
}

static lw_url *with_credentials(const lw_url *u, const char *host, int port, const char *what);

lw_url *lw_sentinel_master_url(const lw_url *u, const char *host, int port)
{
    return with_credentials(u, host, port, "master");
}

int lw_sentinel_read_addr(const redisReply *r, const char *master, char *host, size_t hostlen,
                          int *port, char *why, size_t whylen)
{
    if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && r->elements == 0)) {
        snprintf(why, whylen, "the sentinel knows no master named \"%s\"", master);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "SENTINEL GET-MASTER-ADDR-BY-NAME: %.200s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= hostlen) {
        snprintf(why, whylen, "the sentinel's answer for \"%s\" is not an address", master);
        return -1;
    }
    char *end = NULL;
    long p = strtol(r->element[1]->str, &end, 10);
    if (!end || *end || p < 1 || p > 65535) {
        snprintf(why, whylen, "the sentinel's port for \"%s\" is not a port", master);
        return -1;
    }
    memcpy(host, r->element[0]->str, r->element[0]->len + 1);
    *port = (int)p;
    return 0;
}

/* A TCP URL for host:port with u's credentials, TLS settings and db, shown
 * as "URL (WHAT host:port)". */
static lw_url *with_credentials(const lw_url *u, const char *host, int port, const char *what)
{
    lw_url *d = tcp_like(u, host, port);
    char shown[600];
    snprintf(shown, sizeof shown, "%s (%s %s:%d)", u->redacted, what, host, port);
    if (d) {
        d->db = u->db;
        if ((u->user && !(d->user = strdup(u->user))) ||
            (u->password && !(d->password = strdup(u->password))) ||
            !(d->redacted = strdup(shown))) {
            lw_url_free(d);
            return NULL;
        }
    }
    return d;
}

lw_url *lw_cluster_seed_url(const lw_url *u, size_t i)
{
    return with_credentials(u, u->nodes[i].host, u->nodes[i].port, "seed");
}

lw_url *lw_cluster_node_url(const lw_url *u, const char *host, int port)
{
    return with_credentials(u, host, port, "node");
}

static int is_int(const redisReply *r) { return r->type == REDIS_REPLY_INTEGER; }

/* 1 when r can be a CLUSTER SLOTS answer (an array); else 0 with why. */
static int slots_reply(const redisReply *r, char *why, size_t whylen)
{
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, whylen, "CLUSTER SLOTS: %.200s", r->str);
    else if (r->type != REDIS_REPLY_ARRAY)
        snprintf(why, whylen, "CLUSTER SLOTS: not an array");
    return r->type == REDIS_REPLY_ARRAY;
}

int lw_cluster_read_owner(const redisReply *r, int slot, const char *asked_host, char *host,
                          size_t hostlen, int *port, char *why, size_t whylen)
{
    if (!slots_reply(r, why, whylen))
        return -1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) ||
            !is_int(e->element[1]) || e->element[2]->type != REDIS_REPLY_ARRAY ||
            e->element[2]->elements < 2)
            continue;
        if (slot < e->element[0]->integer || slot > e->element[1]->integer)
            continue;
        const redisReply *m = e->element[2];
        if (m->element[0]->type != REDIS_REPLY_STRING || !is_int(m->element[1]) ||
            m->element[1]->integer < 1 || m->element[1]->integer > 65535)
            break;
        /* "" or "?": the node does not know its own address; the seed's
         * host reaches it. */
        const char *h =
            m->element[0]->len && strcmp(m->element[0]->str, "?") ? m->element[0]->str : asked_host;
        if (strlen(h) >= hostlen)
            break;
        snprintf(host, hostlen, "%s", h);
        *port = (int)m->element[1]->integer;
        return 0;
    }
    snprintf(why, whylen, "no node serves slot %d (the cluster is incomplete or resharding)", slot);
    return -1;
}

/* Range e of CLUSTER SLOTS, when well formed: its slots and its master
 * (element 2: host, port and, since Redis 4, the node id). */
static const redisReply *range_master(const redisReply *e, int *lo, int *hi)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) ||
        !is_int(e->element[1]) || e->element[2]->type != REDIS_REPLY_ARRAY ||
        e->element[2]->elements < 2 || e->element[0]->integer < 0 ||
        e->element[1]->integer >= LW_SLOTS || e->element[0]->integer > e->element[1]->integer)
        return NULL;
    *lo = (int)e->element[0]->integer;
    *hi = (int)e->element[1]->integer;
    return e->element[2];
}

/* 1 when two masters of CLUSTER SLOTS are one node: the same id when both
 * have one, else the same host and port. */
static int same_master(const redisReply *a, const redisReply *b)
{
    const redisReply *ia = a->elements > 2 ? a->element[2] : NULL;
    const redisReply *ib = b->elements > 2 ? b->element[2] : NULL;
    if (ia && ib && ia->type == REDIS_REPLY_STRING && ib->type == REDIS_REPLY_STRING)
        return strcmp(ia->str, ib->str) == 0;
    const redisReply *ha = a->element[0], *hb = b->element[0];
    return ha->type == REDIS_REPLY_STRING && hb->type == REDIS_REPLY_STRING &&
           strcmp(ha->str, hb->str) == 0 && is_int(a->element[1]) && is_int(b->element[1]) &&
           a->element[1]->integer == b->element[1]->integer;
}

int lw_cluster_read_masters(const redisReply *r, int16_t *first, char *why, size_t whylen)
{
    if (!slots_reply(r, why, whylen))
        return -1;
    for (int s = 0; s < LW_SLOTS; s++)
        first[s] = -1;
    int masters = 0;
    for (size_t i = 0; i < r->elements; i++) {
        int lo, hi;
        const redisReply *m = range_master(r->element[i], &lo, &hi);
        if (!m)
            continue;
        /* The lowest slot among this master's ranges (seen so far or this
         * one): ranges are few (one per master after a plain create), so
         * a quadratic look is cheap. */
        int name = lo, known = 0;
        for (size_t j = 0; j < r->elements; j++) {
            int jlo, jhi;
            const redisReply *mj = j == i ? NULL : range_master(r->element[j], &jlo, &jhi);
            if (mj && same_master(m, mj)) {
                known |= j < i;
                if (jlo < name)
                    name = jlo;
            }
        }
        masters += !known;
        for (int s = lo; s <= hi; s++)
            first[s] = (int16_t)name;
    }
    return masters;
}

int lw_cluster_read_moved(const char *s, size_t len, char *host, size_t hostlen, int *port)
{
    static const char MOVED[] = "MOVED ";
    if (len < sizeof MOVED - 1 || memcmp(s, MOVED, sizeof MOVED - 1) != 0)
        return 0;
    const char *end = s + len;
    const char *addr = memchr(s + sizeof MOVED - 1, ' ', (size_t)(end - s) - (sizeof MOVED - 1));
    if (!addr)
        return 0;
    addr++;
    /* The port is after the last ':' (an IPv6 host has more). */
    const char *colon = NULL;
    for (const char *p = addr; p < end; p++)
        if (*p == ':')
            colon = p;
    if (!colon || colon == addr || (size_t)(colon - addr) >= hostlen || colon + 1 == end)
        return 0;
    long p = 0;
    for (const char *d = colon + 1; d < end; d++) {
        if (*d < '0' || *d > '9' || p > 65535)
            return 0;
        p = p * 10 + (*d - '0');
    }
    if (p < 1 || p > 65535)
        return 0;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (int)p;
    return 1;
}

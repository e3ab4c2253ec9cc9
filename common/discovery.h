/*
 * discovery.h — which node to talk to, for the URLs that name more than
 * one: Sentinel (redis-sentinel://: ask a sentinel for the master) and
 * Cluster (redis-cluster://: ask a seed which node serves a slot). The URLs
 * of the node asked and of the node named, and reading the answers. What
 * both Redis layers share; each asks in its own way (redis_async.c on the
 * loop, redis_sync.c blocking).
 */
#ifndef LW_DISCOVERY_H
#define LW_DISCOVERY_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

/* A plain TCP URL for sentinel i of u (u->kind LW_URL_SENTINEL): its host
 * and port, the sentinel credentials (sentinel_user/sentinel_password), db
 * 0, and u's TLS settings. Caller frees; NULL on OOM. */
lw_url *lw_sentinel_url(const lw_url *u, size_t i);

/* A plain TCP URL for the master at host:port: u's credentials, db and TLS
 * settings; its `redacted` names u and the address ("URL (master
 * 10.0.0.5:6379)"). Caller frees; NULL on OOM. */
lw_url *lw_sentinel_master_url(const lw_url *u, const char *host, int port);

/* Reads the reply to SENTINEL GET-MASTER-ADDR-BY-NAME: 0 with the address
 * in host[0..hostlen) and *port; -1 with one line in why (the sentinel does
 * not know the master, refused, or answered something else). */
int lw_sentinel_read_addr(const redisReply *r, const char *master, char *host, size_t hostlen,
                          int *port, char *why, size_t whylen);

/* A plain TCP URL for seed i of a cluster URL u: its host and port, u's
 * credentials and TLS settings. Caller frees; NULL on OOM. */
lw_url *lw_cluster_seed_url(const lw_url *u, size_t i);

/* A plain TCP URL for the cluster node at host:port: u's credentials and
 * TLS settings; `redacted` names u and the node ("URL (node
 * 10.0.0.5:7000)"). Caller frees; NULL on OOM. */
lw_url *lw_cluster_node_url(const lw_url *u, const char *host, int port);

/* Reads the reply to CLUSTER SLOTS: 0 with the address of the master serving
 * `slot` in host[0..hostlen) and *port (a node announced without an address
 * is `asked_host`, the seed that answered); -1 with one line in why (no
 * node serves it: the cluster is incomplete; an error reply; something
 * else). */
int lw_cluster_read_owner(const redisReply *r, int slot, const char *asked_host, char *host,
                          size_t hostlen, int *port, char *why, size_t whylen);

/* Reads the reply to CLUSTER SLOTS into first[0..LW_SLOTS): for each slot,
 * the first slot its master serves (the lowest of its ranges; so every slot
 * of one master has the same value, naming that master), or -1 when no node
 * serves it. A master is told by its node id, else by its address. Returns
 * the number of masters, or -1 with one line in why (an error reply,
 * something else than CLUSTER SLOTS' answer). */
int lw_cluster_read_masters(const redisReply *r, int16_t *first, char *why, size_t whylen);

/* Reads an error reply s[0..len) "MOVED SLOT HOST:PORT": 1 with the node
 * named in host[0..hostlen) and *port; 0 for any other text, or a node
 * announced without an address (":PORT"). */
int lw_cluster_read_moved(const char *s, size_t len, char *host, size_t hostlen, int *port);

#endif

/*
 * sentinel.h — Redis Sentinel (redis-sentinel://, rediss-sentinel://): the
 * URLs of one sentinel and of the master it names, and reading its answer.
 * What both Redis layers share; each asks in its own way (redis_async.c on
 * the loop, redis_sync.c blocking).
 */
#ifndef LW_SENTINEL_H
#define LW_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

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

#endif

/*
 * url.h — Redis URLs (CONTRACT section 2).
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   rediss://[[user]:password@]host[:port][/db][?ca=FILE&cert=FILE&key=FILE&sni=NAME&insecure=1]
 *   unix://[[user]:password@]/path/to.sock[?db=N]
 *   redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER
 *       [?db=N&sentinel_user=U&sentinel_password=P]   (sentinel port default 26379)
 *   rediss-sentinel://... the same over TLS, with the rediss:// parameters
 *   redis-cluster://[[user]:password@]host[:port][,host[:port]...]   (seed nodes)
 *   rediss-cluster://... the same over TLS, with the rediss:// parameters
 *
 * rediss:// is TLS (CONTRACT section 12): the server's certificate is
 * verified against `ca` (else the system's store) and must name the host
 * (or `sni`, which is also sent as the TLS server name); cert and key, given
 * together, are a client certificate; insecure=1 skips verification.
 *
 * The password is kept only in `password`; `redacted` is the text to show in
 * any log line, error or metric.
 */
#ifndef LW_URL_H
#define LW_URL_H

#include <stddef.h>

typedef enum {
    LW_URL_TCP,  /* redis://, rediss:// */
    LW_URL_UNIX, /* unix:// */
    LW_URL_SENTINEL, /* redis-sentinel://, rediss-sentinel://: host/port unset; nodes are the sentinels */
    LW_URL_CLUSTER /* redis-cluster://, rediss-cluster://: host/port unset; nodes are the seeds */
} lw_url_kind;

#define LW_URL_MAX_NODES 16

typedef struct lw_node {
    char *host;
    int port;
} lw_node;

typedef struct lw_url {
    lw_url_kind kind;
    char *host;       /* TCP: host name or address (IPv6 without brackets); UNIX: NULL */
    int port;         /* TCP: 1..65535, default 6379; UNIX: 0 */
    char *path;       /* UNIX: socket path; TCP: NULL */
    char *user;       /* NULL when absent (AUTH with password only) */
    char *password;   /* NULL when absent; never printed */
    int db;           /* 0..(INT_MAX) */
    int tls;          /* rediss:// */
    char *tls_ca;     /* CA file; NULL: the system's store */
    char *tls_cert;   /* client certificate file, or NULL (then tls_key is NULL too) */
    char *tls_key;    /* its private key file */
    char *tls_sni;    /* server name to send and verify; NULL: the host */
    int tls_insecure; /* 1: the server's certificate is not verified */
    lw_node nodes[LW_URL_MAX_NODES]; /* SENTINEL: the sentinels; CLUSTER: the seeds; in order */
    size_t nnodes;
    char *master_name;       /* SENTINEL: the master the sentinels are asked for */
    char *sentinel_user;     /* SENTINEL: the sentinels' own credentials, or NULL */
    char *sentinel_password; /* never printed */
    char *redacted;          /* the URL with the password shown as "***" */
} lw_url;

/* Parses `text` (borrowed; NULL reads as ""). Returns a new lw_url the caller
 * frees with lw_url_free(), owning every string in it, or NULL with a
 * one-line reason in err[0..errlen) ("bad Redis URL \"REDACTED\": why", or
 * "out of memory"): the password never appears in it. */
lw_url *lw_url_parse(const char *text, char *err, size_t errlen);

/* Returns a newly allocated copy of `text` (NULL reads as "") with any
 * password replaced by "***"; for showing a URL that failed to parse. Works
 * on text that is not a valid URL. Caller frees; NULL on OOM. */
char *lw_url_redact(const char *text);

/* Overwrites, in place, the part of `text` lw_url_redact() hides with '*'
 * (the length stays): for the copies of a URL the process cannot free --
 * its argv and environment, which `ps` and /proc/PID/environ show. NULL is
 * ignored. Cannot fail. */
void lw_url_scrub(char *text);

/* Returns a deep copy of `u` the caller frees with lw_url_free(), or NULL
 * on OOM. */
lw_url *lw_url_dup(const lw_url *u);

/* Frees `u` and its strings, zeroing the password's bytes first so the
 * secret does not linger in freed heap memory. NULL is ignored. */
void lw_url_free(lw_url *u);

#endif

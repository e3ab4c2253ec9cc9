/*
 * url.h — Redis URLs (CONTRACT section 2).
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   unix://[[user]:password@]/path/to.sock[?db=N]
 *
 * The password is kept only in `password`; `redacted` is the text to show in
 * any log line, error or metric.
 */
#ifndef LW_URL_H
#define LW_URL_H

#include <stddef.h>

typedef enum {
    LW_URL_TCP,  /* redis:// */
    LW_URL_UNIX  /* unix:// */
} lw_url_kind;

typedef struct lw_url {
    lw_url_kind kind;
    char *host;     /* TCP: host name or address (IPv6 without brackets); UNIX: NULL */
    int port;       /* TCP: 1..65535, default 6379; UNIX: 0 */
    char *path;     /* UNIX: socket path; TCP: NULL */
    char *user;     /* NULL when absent (AUTH with password only) */
    char *password; /* NULL when absent; never printed */
    int db;         /* 0..(INT_MAX) */
    char *redacted; /* the URL with the password shown as "***" */
} lw_url;

/* Parses `text`. Returns a new lw_url the caller frees with lw_url_free(), or
 * NULL with a one-line reason (without the password) in err[0..errlen). */
lw_url *lw_url_parse(const char *text, char *err, size_t errlen);

/* Returns a newly allocated copy of `text` with any password replaced by
 * "***"; for showing a URL that failed to parse. Caller frees. */
char *lw_url_redact(const char *text);

/* Overwrites, in place, the part of `text` lw_url_redact() hides with '*'
 * (the length stays): for the copies of a URL the process cannot free --
 * its argv and environment, which `ps` and /proc/PID/environ show. */
void lw_url_scrub(char *text);

void lw_url_free(lw_url *u);

#endif

/*
 * url.c — Redis URLs (url.h).
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   rediss://[[user]:password@]host[:port][/db][?ca=FILE&cert=FILE&key=FILE&sni=NAME&insecure=1]
 *   unix://[[user]:password@]/path/to.sock[?db=N]
 *
 * Where the user info ends: for redis:// at the last '@' (a host, port or db
 * never holds one, a password may); for unix:// at the last "@/" (the socket
 * path is absolute). Both choices err on the side of hiding: a password is
 * never mistaken for part of a host or path that messages show. The price:
 * a socket path containing "@/" cannot be combined with user info.
 *
 * User info without ':' is refused rather than guessed at (redis-py reads it
 * as a user, other clients as a password); in messages it is hidden
 * entirely, as it may well be a password.
 */
#include "url.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "fail.h"

#define DEFAULT_PORT 6379

/* Where the user info of `text` lies: [*ui, *ui_end) (before the '@'), or
 * *ui = NULL when there is none. `rest` is the text after the scheme. */
static void find_userinfo(const char *rest, int unix_kind, const char **ui, const char **ui_end)
{
    const char *at = NULL;
    *ui = *ui_end = NULL;
    if (unix_kind) {
        if (rest[0] == '/')
            return;
        /* The last "@/": a path holding "@/" then fails to parse, but a
         * password holding it is never shown as part of a path. */
        for (const char *f = strstr(rest, "@/"); f; f = strstr(f + 1, "@/"))
            at = f;
        /* No "@/": the URL is bad (the path must be absolute), but what
         * precedes an '@' is still hidden in the message. */
        if (!at)
            at = strrchr(rest, '@');
    } else {
        at = strrchr(rest, '@');
    }
    if (at) {
        *ui = rest;
        *ui_end = at;
    }
}

/* The schemes, longest first where one is a prefix of another. */
static const struct {
    const char *prefix;
    lw_url_kind kind;
    int tls;
} schemes[] = {
    {"redis://", LW_URL_TCP, 0},
    {"rediss://", LW_URL_TCP, 1},
    {"unix://", LW_URL_UNIX, 0},
    {"redis-sentinel://", LW_URL_SENTINEL, 0},
    {"rediss-sentinel://", LW_URL_SENTINEL, 1},
    {"redis-cluster://", LW_URL_CLUSTER, 0},
    {"rediss-cluster://", LW_URL_CLUSTER, 1},
};

/* The text after the scheme, with its kind and TLS flag; NULL for a scheme
 * we do not know. */
static const char *scheme_of(const char *text, lw_url_kind *kind, int *tls)
{
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncmp(text, schemes[i].prefix, n) == 0) {
            *kind = schemes[i].kind;
            *tls = schemes[i].tls;
            return text + n;
        }
    }
    return NULL;
}

static const char *scheme_rest(const char *text, int *unix_kind)
{
    lw_url_kind kind;
    int tls;
    const char *rest = scheme_of(text, &kind, &tls);
    *unix_kind = rest && kind == LW_URL_UNIX;
    return rest;
}

/* Where the user info and the parameters of `text` lie: ui and ui_end as
 * find_userinfo says, *params at the first '?' or '#' after the user info
 * (NULL when none). */
static void url_parts(const char *text, int first, const char **ui, const char **ui_end,
                      const char **params)
{
    int unix_kind = 0;
    const char *rest = scheme_rest(text, &unix_kind);
    if (!rest) {
        /* Unknown scheme: still hide anything that looks like user info. */
        const char *sep = strstr(text, "://");
        rest = sep ? sep + 3 : text;
        unix_kind = 0;
    }
    if (first) /* the other reading: no user info, parameters from the first '?' */
        *ui = *ui_end = NULL;
    else
        find_userinfo(rest, unix_kind, ui, ui_end);
    const char *after = *ui ? *ui_end + 1 : rest;
    after += strcspn(after, "?#");
    *params = *after ? after : NULL;
}

/* The next part of `text` at or after `pos` that may hide a secret, as
 * [*from, *to); returns 0 when there is none. The secrets: the password of
 * the user info (after "user:"; without a colon, the whole user info), and
 * every URL parameter's value but those of the parameters we know to hold
 * none (db and the TLS file names: an operator reading a log needs to see
 * which CA was used). `?password=...`: other clients take a password there;
 * a parameter without '=' may be a secret alone, and is hidden whole.
 * Parameter names stay: they say what was wrong. */
static int param_is_public(const char *p, size_t name_len)
{
    static const char *const names[] = {"db",  "ca",       "cert",          "key",
                                        "sni", "insecure", "sentinel_user", NULL};
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == name_len && memcmp(p, names[i], name_len) == 0)
            return 1;
    return 0;
}

static int next_secret(const char *text, int first, const char *pos, const char **from,
                       const char **to)
{
    const char *ui, *ui_end, *params;
    url_parts(text, first, &ui, &ui_end, &params);
    if (ui && pos <= ui) {
        const char *colon = memchr(ui, ':', (size_t)(ui_end - ui));
        *from = colon ? colon + 1 : ui;
        *to = ui_end;
        return 1;
    }
    for (const char *p = params; p && *p; p += strcspn(p, "&")) {
        p++; /* past '?', '#' or '&' */
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        const char *f = eq ? eq + 1 : p;
        if (n == 0 || f >= p + n || f < pos || (eq && param_is_public(p, (size_t)(eq - p))))
            continue;
        *from = f;
        *to = p + n;
        return 1;
    }
    return 0;
}

/* Marks in hide[] the bytes of text that may be secret, and in empty[] the
 * places of empty secrets (shown as "***" all the same). Two readings,
 * both hidden: the user info ending at the last '@' (a password may hold
 * '@'), and no user info at all, the parameters starting at the first '?'
 * (a secret parameter may hold an '@' -- sentinel_password=P@ss -- whose
 * tail the first reading alone would show as a host). */
static void mark_secrets(const char *text, unsigned char *hide, unsigned char *empty)
{
    for (int first = 0; first < 2; first++) {
        const char *pos = text, *from, *to;
        while (next_secret(text, first, pos, &from, &to)) {
            if (to > from)
                memset(hide + (from - text), 1, (size_t)(to - from));
            else
                empty[from - text] = 1;
            pos = to;
        }
    }
}

char *lw_url_redact(const char *text)
{
    if (!text)
        text = "";
    size_t len = strlen(text);
    /* Each secret becomes "***": never longer than 3 + what it replaces. */
    char *out = malloc(len * 4 + 4);
    unsigned char *hide = calloc(len + 1, 2);
    if (!out || !hide) {
        free(out);
        free(hide);
        return NULL;
    }
    unsigned char *empty = hide + len + 1;
    mark_secrets(text, hide, empty);
    size_t o = 0;
    for (size_t i = 0; i <= len;) {
        if (empty[i] && !hide[i] && (i == 0 || !hide[i - 1])) {
            memcpy(out + o, "***", 3);
            o += 3;
        }
        if (i == len)
            break;
        if (hide[i]) {
            memcpy(out + o, "***", 3);
            o += 3;
            while (i < len && hide[i])
                i++;
            continue;
        }
        out[o++] = text[i++];
    }
    out[o] = '\0';
    free(hide);
    return out;
}

void lw_url_scrub(char *text)
{
    if (!text)
        return;
    size_t len = strlen(text);
    unsigned char *hide = calloc(len + 1, 2);
    if (!hide) {
        /* Cannot fail: without memory, hide everything after the scheme. */
        char *sep = strstr(text, "://");
        for (char *p = sep ? sep + 3 : text; *p; p++)
            *p = '*';
        return;
    }
    /* The same parts lw_url_redact hides, overwritten where they lie. */
    mark_secrets(text, hide, hide + len + 1);
    for (size_t i = 0; i < len; i++)
        if (hide[i])
            text[i] = '*';
    free(hide);
}

/* Zeroes a secret's bytes, then frees it. */
static void wipe_free(char *secret)
{
    if (!secret)
        return;
    volatile char *p = secret;
    while (*p)
        *p++ = '\0';
    free(secret);
}

void lw_url_free(lw_url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->path);
    free(u->user);
    free(u->tls_ca);
    free(u->tls_cert);
    free(u->tls_key);
    free(u->tls_sni);
    for (size_t i = 0; i < u->nnodes; i++)
        free(u->nodes[i].host);
    free(u->master_name);
    free(u->sentinel_user);
    wipe_free(u->sentinel_password);
    if (u->password) {
        /* Do not leave the secret lying in freed heap memory. */
        volatile char *p = u->password;
        while (*p)
            *p++ = '\0';
        free(u->password);
    }
    free(u->redacted);
    free(u);
}

static int dup_field(char **to, const char *from) { return from && !(*to = strdup(from)) ? -1 : 0; }

lw_url *lw_url_dup(const lw_url *u)
{
    lw_url *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->kind = u->kind;
    d->port = u->port;
    d->db = u->db;
    d->tls = u->tls;
    d->tls_insecure = u->tls_insecure;
    if (dup_field(&d->host, u->host) || dup_field(&d->path, u->path) ||
        dup_field(&d->user, u->user) || dup_field(&d->password, u->password) ||
        dup_field(&d->redacted, u->redacted ? u->redacted : "redis") ||
        dup_field(&d->tls_ca, u->tls_ca) || dup_field(&d->tls_cert, u->tls_cert) ||
        dup_field(&d->tls_key, u->tls_key) || dup_field(&d->tls_sni, u->tls_sni) ||
        dup_field(&d->master_name, u->master_name) ||
        dup_field(&d->sentinel_user, u->sentinel_user) ||
        dup_field(&d->sentinel_password, u->sentinel_password)) {
        lw_url_free(d);
        return NULL;
    }
    for (size_t i = 0; i < u->nnodes; i++, d->nnodes++) {
        d->nodes[i].port = u->nodes[i].port;
        if (!(d->nodes[i].host = strdup(u->nodes[i].host))) {
            lw_url_free(d);
            return NULL;
        }
    }
    return d;
}

__attribute__((format(printf, 4, 5))) static lw_url *fail(lw_url *u, char *err, size_t errlen,
                                                          const char *fmt, ...)
{
    /* Every message names the URL, its secrets hidden. */
    int n = err && errlen
                ? snprintf(err, errlen, "bad Redis URL \"%s\": ", u->redacted ? u->redacted : "***")
                : 0;
    if (n > 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        lw_vfail_at(err + n, errlen - (size_t)n, NULL, fmt, ap);
        va_end(ap);
    }
    lw_url_free(u);
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string. Returns NULL with *bad set when
 * a %XX is malformed or decodes to NUL; NULL with *bad clear on OOM. */
static char *pct_decode(const char *s, size_t n, int *bad)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    *bad = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            *bad = 1;
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* A database number: decimal digits only, at most INT_MAX. */
static int parse_db(const char *s, size_t n, int *out)
{
    long long v = 0;
    if (n == 0 || strspn(s, "0123456789") < n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > INT_MAX)
            return -1;
    }
    *out = (int)v;
    return 0;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* The inside of [...]: hex digits, ':' and '.' (an embedded IPv4), then an
 * optional "%zone" (fe80::1%eth0). */
static int ipv6_ok(const char *h, size_t n)
{
    size_t i = 0;
    int colons = 0;
    for (; i < n && h[i] != '%'; i++) {
        char c = h[i];
        if (c == ':')
            colons++;
        else if (!(hexval(c) >= 0 || c == '.'))
            return 0;
    }
    if (colons < 2)
        return 0;
    if (i < n) {
        if (++i == n)
            return 0;
        for (; i < n; i++) {
            if (!host_char(h[i]))
                return 0;
        }
    }
    return 1;
}

/* Parameters each scheme takes. */
enum { P_TLS = 1, P_DB = 2, P_SENTINEL = 4 };

/* The parameters after '?': for rediss* the TLS ones -- ca, cert, key, sni
 * (file names and a host name, %-decoded), insecure (0 or 1) --, for the
 * sentinel schemes db, sentinel_user and sentinel_password too. `known`
 * lists them for the message about one we do not know. */
static lw_url *parse_params(lw_url *u, const char *q, int allowed, const char *known, char *err,
                            size_t errlen)
{
    static const struct {
        const char *name;
        int need;
        size_t field; /* offsetof the char * in lw_url; 0: special */
    } names[] = {
        {"ca", P_TLS, offsetof(lw_url, tls_ca)},
        {"cert", P_TLS, offsetof(lw_url, tls_cert)},
        {"key", P_TLS, offsetof(lw_url, tls_key)},
        {"sni", P_TLS, offsetof(lw_url, tls_sni)},
        {"insecure", P_TLS, 0},
        {"db", P_DB, 0},
        {"sentinel_user", P_SENTINEL, offsetof(lw_url, sentinel_user)},
        {"sentinel_password", P_SENTINEL, offsetof(lw_url, sentinel_password)},
    };
    while (q) {
        const char *param = q;
        q = strchr(param, '&');
        size_t plen = q ? (size_t)(q - param) : strlen(param);
        if (q)
            q++;
        if (!plen)
            continue;
        const char *eq = memchr(param, '=', plen);
        if (!eq) /* not named: a bare word may be a secret */
            return fail(u, err, errlen, "a parameter without a value %s", known);
        size_t nl = (size_t)(eq - param), vl = plen - nl - 1;
        const char *v = eq + 1;
        size_t k = 0;
        while (k < sizeof names / sizeof names[0] &&
               !((names[k].need & allowed) && strlen(names[k].name) == nl &&
                 memcmp(param, names[k].name, nl) == 0))
            k++;
        if (k == sizeof names / sizeof names[0])
            return fail(u, err, errlen, "unknown parameter \"%.*s\" %s", (int)(nl > 40 ? 40 : nl),
                        param, known);
        if (strcmp(names[k].name, "insecure") == 0) {
            if (vl != 1 || (v[0] != '0' && v[0] != '1'))
                return fail(u, err, errlen, "insecure must be 0 or 1");
            u->tls_insecure = v[0] == '1';
            continue;
        }
        if (strcmp(names[k].name, "db") == 0) {
            if (parse_db(v, vl, &u->db) != 0)
                return fail(u, err, errlen, "db must be a non-negative integer");
            continue;
        }
        char **field = (char **)(void *)((char *)u + names[k].field);
        int bad = 0;
        if (vl == 0)
            return fail(u, err, errlen, "%.*s= is empty", (int)nl, param);
        if (*field)
            return fail(u, err, errlen, "%.*s= is given twice", (int)nl, param);
        if (!(*field = pct_decode(v, vl, &bad)))
            return fail(u, err, errlen, bad ? "bad %%-encoding in %.*s=" : "out of memory", (int)nl,
                        param);
    }
    if (!u->tls_cert != !u->tls_key)
        return fail(u, err, errlen, "%s",
                    u->tls_cert ? "cert= needs key= (the client certificate's private key)"
                                : "key= needs cert= (the client certificate)");
    return u;
}

/* One host[:port] at *pp (stopping at any of `stops`), into *host / *port
 * (default_port when absent). Returns NULL, or the reason it is bad. *pp is
 * moved past it. *host is new (caller frees) on success. */
static const char *parse_hostport(const char **pp, const char *stops, int default_port, char **host,
                                  int *port, char *why, size_t whylen)
{
    const char *p = *pp, *h, *hend;
    char stopset[16];
    snprintf(stopset, sizeof stopset, ":%s", stops);
    if (*p == '[') {
        h = p + 1;
        hend = strchr(h, ']');
        if (!hend)
            return "unterminated IPv6 address (missing \"]\")";
        if (!ipv6_ok(h, (size_t)(hend - h))) {
            snprintf(why, whylen, "bad IPv6 address \"%.*s\"", (int)(hend - h), h);
            return why;
        }
        p = hend + 1;
    } else {
        h = p;
        hend = p + strcspn(p, stopset);
        if (hend == h)
            return *hend == ':' && hend[1] == ':'
                       ? "host is missing (an IPv6 address goes in brackets: [::1])"
                       : "host is missing";
        for (const char *c = h; c < hend; c++) {
            if (!host_char(*c)) {
                snprintf(why, whylen, "bad host name \"%.*s\"", (int)(hend - h), h);
                return why;
            }
        }
        p = hend;
    }
    *port = default_port;
    if (*p == ':') {
        size_t n = strspn(++p, "0123456789");
        int v = 0;
        if (n == 0 || n > 5 || (p[n] && !strchr(stops, p[n])))
            return "port must be 1..65535";
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (p[i] - '0');
        if (v < 1 || v > 65535)
            return "port must be 1..65535";
        *port = v;
        p += n;
    }
    if (!(*host = strndup(h, (size_t)(hend - h))))
        return "out of memory";
    *pp = p;
    return NULL;
}

static lw_url *parse_tcp(lw_url *u, const char *p, char *err, size_t errlen)
{
    char why[128];
    const char *bad = parse_hostport(&p, "/?#", DEFAULT_PORT, &u->host, &u->port, why, sizeof why);
    if (bad)
        return fail(u, err, errlen, "%s", bad);
    if (*p == '/') {
        p++;
        size_t n = strcspn(p, "?#");
        if (n && parse_db(p, n, &u->db) != 0)
            return fail(u, err, errlen, "db must be a non-negative integer");
        p += n;
    }
    if (*p == '?' && u->tls)
        return parse_params(u, p + 1, P_TLS,
                            "(rediss:// knows ca=, cert=, key=, sni= and insecure=1)", err, errlen);
    if (*p == '?' || *p == '#')
        return fail(u, err, errlen,
                    "redis:// URLs take no parameters (the db goes in the path: "
                    "redis://[[user]:password@]host[:port][/db]; ca=, cert=, key=, sni= and "
                    "insecure= need rediss://)");
    if (*p) {
        /* Never past a '?' or '#': what follows may be a secret. */
        int n = (int)strcspn(p, "?#");
        return fail(u, err, errlen, "unexpected \"%.*s\" after the host (redis://host:port/db)",
                    n > 40 ? 40 : n, p);
    }
    return u;
}

/* host[:port][,host[:port]...] at *pp into u->nodes, stopping at any of
 * `stops`. Returns NULL, or the reason it is bad (naming the node by its
 * place: `what` "sentinel" or "seed"). */
static const char *parse_nodes(lw_url *u, const char **pp, const char *stops, int default_port,
                               const char *what, char *why, size_t whylen)
{
    char sub[128], all[16];
    snprintf(all, sizeof all, ",%s", stops);
    for (;;) {
        if (u->nnodes == LW_URL_MAX_NODES) {
            snprintf(why, whylen, "more than %d %ss", LW_URL_MAX_NODES, what);
            return why;
        }
        lw_node *n = &u->nodes[u->nnodes];
        const char *bad =
            parse_hostport(pp, all, default_port, &n->host, &n->port, sub, sizeof sub);
        if (bad) {
            snprintf(why, whylen, "%s %zu: %s", what, u->nnodes + 1, bad);
            return why;
        }
        u->nnodes++;
        if (**pp != ',')
            return NULL;
        (*pp)++;
    }
}

/* redis-cluster://[[user]:password@]host[:port][,host[:port]...] (and
 * rediss-cluster://, with the TLS parameters). A cluster has database 0
 * only: no path. */
static lw_url *parse_cluster(lw_url *u, const char *p, char *err, size_t errlen)
{
    char why[160];
    if (parse_nodes(u, &p, "/?#", DEFAULT_PORT, "seed", why, sizeof why))
        return fail(u, err, errlen, "%s", why);
    if (*p == '/' && p[1] && !strchr("?#", p[1]))
        return fail(u, err, errlen,
                    "a cluster has no databases: no /db (redis-cluster://host:port,...)");
    if (*p == '/')
        p++;
    if (*p == '?' && u->tls)
        return parse_params(u, p + 1, P_TLS,
                            "(rediss-cluster:// knows ca=, cert=, key=, sni= and insecure=1)", err,
                            errlen);
    if (*p == '?' || *p == '#')
        return fail(u, err, errlen,
                    "redis-cluster:// URLs take no parameters (TLS ones need "
                    "rediss-cluster://)");
    if (*p)
        return fail(u, err, errlen, "unexpected text after the seeds");
    return u;
}

/* redis-sentinel://[[user]:password@]host:port[,host:port...]/MASTER[?db=N&sentinel_user=U&
 * sentinel_password=P] (and rediss-sentinel://, with the TLS parameters). */
static lw_url *parse_sentinel(lw_url *u, const char *p, char *err, size_t errlen)
{
    char why[160];
    if (parse_nodes(u, &p, "/?#", 26379, "sentinel", why, sizeof why))
        return fail(u, err, errlen, "%s", why);
    if (*p != '/' || !p[1] || strchr("?#", p[1]))
        return fail(u, err, errlen,
                    "the master's name is missing (redis-sentinel://host:port/MASTER)");
    p++;
    size_t n = strcspn(p, "?#");
    for (size_t i = 0; i < n; i++)
        if (!host_char(p[i]))
            return fail(u, err, errlen, "bad master name \"%.*s\"", (int)(n > 40 ? 40 : n), p);
    if (!(u->master_name = strndup(p, n)))
        return fail(u, err, errlen, "out of memory");
    p += n;
    if (*p == '#')
        return fail(u, err, errlen, "unexpected \"#\"");
    if (*p == '?')
        return parse_params(u, p + 1, P_DB | P_SENTINEL | (u->tls ? P_TLS : 0),
                            u->tls ? "(rediss-sentinel:// knows db=, sentinel_user=, "
                                     "sentinel_password=, ca=, cert=, key=, sni= and insecure=1)"
                                   : "(redis-sentinel:// knows db=, sentinel_user= and "
                                     "sentinel_password=)",
                            err, errlen);
    return u;
}

static lw_url *parse_unix(lw_url *u, const char *p, char *err, size_t errlen)
{
    if (*p != '/')
        return fail(u, err, errlen, "the socket path must be absolute (unix:///path/to.sock)");
    const char *q = strchr(p, '?');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (n > max)
        return fail(u, err, errlen, "the socket path is longer than %zu bytes", max);
    u->path = strndup(p, n);
    if (!u->path)
        return fail(u, err, errlen, "out of memory");
    while (q) {
        const char *param = q + 1;
        q = strchr(param, '&');
        size_t plen = q ? (size_t)(q - param) : strlen(param);
        if (plen > 3 && strncmp(param, "db=", 3) == 0) {
            if (parse_db(param + 3, plen - 3, &u->db) != 0)
                return fail(u, err, errlen, "db must be a non-negative integer");
        } else if (plen) {
            /* The name only: the value (or a bare word) may be a secret. */
            const char *eq = memchr(param, '=', plen);
            if (!eq)
                return fail(u, err, errlen,
                            "unknown parameter without a value (only db=N is known)");
            int nl = (int)(eq - param);
            return fail(u, err, errlen, "unknown parameter \"%.*s\" (only db=N is known)",
                        nl > 40 ? 40 : nl, param);
        }
    }
    return u;
}

lw_url *lw_url_parse(const char *text, char *err, size_t errlen)
{
    lw_url *u = calloc(1, sizeof *u);
    if (!u) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!text)
        text = "";
    u->redacted = lw_url_redact(text);
    if (!u->redacted)
        return fail(u, err, errlen, "out of memory");
    int unix_kind = 0, bad = 0;
    const char *rest = scheme_of(text, &u->kind, &u->tls);
    if (!rest)
        return fail(u, err, errlen,
                    "the URL must start with redis://, rediss://, unix://, redis-sentinel://, "
                    "rediss-sentinel://, redis-cluster:// or rediss-cluster://");
    unix_kind = u->kind == LW_URL_UNIX;
    const char *ui, *ui_end;
    find_userinfo(rest, unix_kind, &ui, &ui_end);
    if (ui) {
        const char *colon = memchr(ui, ':', (size_t)(ui_end - ui));
        if (!colon)
            return fail(
                u, err, errlen,
                "user info must be [user]:password (a password alone is written :password@)");
        if (colon > ui && !(u->user = pct_decode(ui, (size_t)(colon - ui), &bad)))
            return fail(u, err, errlen, bad ? "bad %%-encoding in the user name" : "out of memory");
        if (colon + 1 == ui_end)
            return fail(u, err, errlen, "the password is empty");
        if (!(u->password = pct_decode(colon + 1, (size_t)(ui_end - colon - 1), &bad)))
            return fail(u, err, errlen, bad ? "bad %%-encoding in the password" : "out of memory");
        rest = ui_end + 1;
    }
    /* User info holding '?' or '#': a password may, but so may a secret
     * parameter holding an '@' (sentinel_password=P@ss), and then what
     * follows that '@' -- the secret's tail -- would be quoted as a host. */
    int ambiguous = ui && strcspn(ui, "?#") < (size_t)(ui_end - ui);
    lw_url *res;
    if (u->kind == LW_URL_SENTINEL)
        res = parse_sentinel(u, rest, err, errlen);
    else if (u->kind == LW_URL_CLUSTER)
        res = parse_cluster(u, rest, err, errlen);
    else
        res = unix_kind ? parse_unix(u, rest, err, errlen) : parse_tcp(u, rest, err, errlen);
    if (!res && ambiguous && err && errlen) {
        char *shown = lw_url_redact(text);
        snprintf(err, errlen,
                 "bad Redis URL \"%s\": it does not parse with the user info ending at the last "
                 "'@' (an '@' in a parameter is written %%40)",
                 shown ? shown : "***");
        free(shown);
    }
    return res;
}

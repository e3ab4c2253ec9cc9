/*
 * dash_server.c — `lanework dashboard [--http HOST:PORT] [--token-file FILE]
 * [--read-only]`: flags, the evhttp server and its limits, authentication,
 * routing.
 *
 * Limits. libevent 2.1's evhttp bounds a request's head and body
 * (evhttp_set_max_headers_size / _body_size) and times out each read and
 * write (evhttp_set_timeout), but a client that dribbles a byte at a time
 * would keep its connection for ever, and it has no connection cap. So
 * every connection's bufferevent is made here (evhttp_set_bevcb) and given
 * a deadline: DASH_CONN_DEADLINE_S after accept its socket is shut down
 * (evhttp then sees the end and frees the connection itself: we hold a
 * reference to the bufferevent, never free what evhttp owns). At most
 * DASH_MAX_CONNS have a deadline running; a newcomer at the cap ends the
 * oldest. A connection evhttp closes leaves the list at once (its close
 * callback), so the cap counts open connections only. An event stream is exempted (dash_conn_keep): DASH_MAX_STREAMS
 * bound those, each for DASH_STREAM_S at most.
 *
 * Authentication (--token-file). Every request but the stylesheet, the
 * script and POST /login needs the token: `Authorization: Bearer TOKEN`, or
 * the session cookie a good POST /login sets (random per process, HttpOnly,
 * SameSite=Strict). Compared in constant time. The file must not be empty
 * and must not be readable or writable by others (chmod 600 or 640).
 */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dash.h"
#include "timefmt.h"

#define DASH_MAX_CONNS 64
#define DASH_CONN_DEADLINE_S 30
#define DASH_IO_TIMEOUT_S 10
#define DASH_MAX_HEADERS 16384
#define DASH_MAX_BODY 16384
#define DASH_TOKEN_MAX 4096

static const char USAGE[] =
    "Usage: lanework dashboard [--http HOST:PORT] [--token-file FILE] [--read-only]\n"
    "\n"
    "Serves the web dashboard: tenants and their queues, lanes with work, failed\n"
    "jobs with their errors, each job's payload, result and event timeline, the\n"
    "workers, and a live view of a tenant's events; with buttons to retry,\n"
    "cancel and delete jobs and to pause and resume queues. Plain HTML pages\n"
    "(no JavaScript needed but for the live view's updates); every asset is in\n"
    "the binary. Pages read bounded ranges of Redis only.\n"
    "\n"
    "  --http HOST:PORT   where to listen (default 127.0.0.1:7117; [::1]:PORT for\n"
    "                     IPv6; port 0: any free port). The address it listens\n"
    "                     on is printed on stdout: `listening on http://...`\n"
    "  --token-file FILE  every request needs the token held in FILE (its first\n"
    "                     line; not empty; FILE not readable or writable by\n"
    "                     others): `Authorization: Bearer TOKEN`, or the cookie\n"
    "                     the login form sets\n"
    "  --read-only        no buttons; every POST is refused (403)\n"
    "\n"
    "Actions are POST forms carrying a CSRF token (random per process): a POST\n"
    "without it, or with another, is refused (403). Each action runs what the\n"
    "command of its name runs (retry, cancel, delete, pause, resume); their\n"
    "output lines go to the dashboard's stdout and stderr.\n"
    "\n"
    "Exit status: 0 stopped by SIGINT or SIGTERM; 2 usage error (a bad flag,\n"
    "registry or token file, an address it cannot listen on). Redis down is\n"
    "shown by the pages (502), not an exit.\n";

/* A connection with a deadline (file header). */
struct dash_conn {
    dash *d;
    struct bufferevent *bev; /* a reference of ours */
    struct event *timer;
    int watched;                   /* conn_closed will unlink it */
    struct dash_conn *prev, *next; /* accept order: d->conns oldest first */
};

static void conn_unlink(struct dash_conn *k)
{
    dash *d = k->d;
    if (k->prev)
        k->prev->next = k->next;
    else
        d->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    d->nconns--;
    event_free(k->timer);
    bufferevent_decref(k->bev);
    free(k);
}

/* The deadline passed (or the cap evicts it): shut the socket down. When
 * evhttp had freed the connection already, this only drops our reference. */
static void conn_end(struct dash_conn *k)
{
    evutil_socket_t fd = bufferevent_getfd(k->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    conn_unlink(k);
}

static void conn_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_end(arg);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    dash *d = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    if (d->nconns >= DASH_MAX_CONNS && d->conns)
        conn_end(d->conns);
    struct dash_conn *k = calloc(1, sizeof *k);
    if (!k)
        return bev;
    k->d = d;
    k->bev = bev;
    k->timer = evtimer_new(base, conn_deadline, k);
    if (!k->timer) {
        free(k);
        return bev;
    }
    struct timeval tv = {DASH_CONN_DEADLINE_S, 0};
    evtimer_add(k->timer, &tv);
    bufferevent_incref(bev);
    struct dash_conn *last = d->conns;
    while (last && last->next)
        last = last->next;
    k->prev = last;
    if (last)
        last->next = k;
    else
        d->conns = k;
    d->nconns++;
    return bev;
}

/* The entry of req's connection, or NULL. */
static struct dash_conn *conn_of(dash *d, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (struct dash_conn *k = d->conns; bev && k; k = k->next)
        if (k->bev == bev)
            return k;
    return NULL;
}

void dash_conn_keep(dash *d, struct evhttp_request *req)
{
    struct dash_conn *k = conn_of(d, req);
    if (!k)
        return;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
    conn_unlink(k);
}

/* evhttp frees the connection: its entry goes now, not at its deadline,
 * or under many requests the cap would end live connections to make room
 * for entries of closed ones. Found by its bufferevent (an entry the
 * deadline ended is simply not found). */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    dash *d = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    for (struct dash_conn *k = d->conns; bev && k; k = k->next)
        if (k->bev == bev) {
            conn_unlink(k);
            return;
        }
}

/* At a connection's first request: its entry goes when it closes. */
static void conn_watch(dash *d, struct evhttp_request *req)
{
    struct dash_conn *k = conn_of(d, req);
    if (k && !k->watched) {
        k->watched = 1;
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), conn_closed, d);
    }
}

/* ---- authentication ---- */

/* Reads the token (first line of path) into d, refusing an empty one or a
 * file others may read or write. Returns 0 or -1 (printed). */
static int load_token(dash *d, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cli_err("dashboard", "--token-file %s: %s", cli_show(path), strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_err("dashboard", "--token-file %s: not a regular file", cli_show(path));
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        cli_err("dashboard",
                "--token-file %s: readable or writable by others (mode %03o): chmod 600 it",
                cli_show(path), (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    char buf[DASH_TOKEN_MAX + 1];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cli_err("dashboard", "--token-file %s: %s", cli_show(path), strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0 || (n += (size_t)r) == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (len == 0) {
        cli_err("dashboard", "--token-file %s: empty (the token is its first line)",
                cli_show(path));
        return -1;
    }
    d->token = cli_strdup(buf);
    d->token_len = len;
    memset(buf, 0, sizeof buf);
    return 0;
}

int dash_guess_allowed(dash *d)
{
    int64_t now = lw_mono_ms();
    int recent = 0;
    for (int i = 0; i < DASH_GUESSES; i++)
        recent += d->guess_at[i] && now - d->guess_at[i] < DASH_GUESS_WINDOW_MS;
    return recent < DASH_GUESSES;
}

void dash_guess_failed(dash *d)
{
    d->guess_at[d->guess_next] = lw_mono_ms();
    d->guess_next = (d->guess_next + 1) % DASH_GUESSES;
}

/* 1 when req carries the token or the session cookie; -1 when it carries
 * a wrong token past the guesses allowed (429). */
static int authorized(dash *d, struct evhttp_request *req)
{
    if (!d->token)
        return 1;
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *auth = evhttp_find_header(h, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        if (!dash_guess_allowed(d))
            return -1;
        if (dash_equal(t, strlen(t), d->token, d->token_len))
            return 1;
        dash_guess_failed(d);
    }
    const char *cookie = evhttp_find_header(h, "Cookie");
    for (const char *p = cookie; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n > 11 && strncmp(p, "lw_session=", 11) == 0 &&
            dash_equal(p + 11, n - 11, d->session, strlen(d->session)))
            return 1;
        p += n;
    }
    return 0;
}

static void send_login(const dash *d, struct evhttp_request *req, const char *why)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    dash_page_begin(d, b, "Sign in", NULL, why);
    dash_raw(b, "<p>This dashboard needs its token (<code>--token-file</code>).</p>"
                "<form method=\"post\" action=\"/login\"><label>Token <input type=\"password\" "
                "name=\"token\" autocomplete=\"current-password\" autofocus></label> "
                "<button type=\"submit\">Sign in</button></form>");
    dash_page_end(b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"lanework\"");
    dash_send_html(req, 401, "Unauthorized", b);
}

/* ---- routing ---- */

/* Splits the path of req into decoded segments (owned: free each). Returns
 * their count, or -1 for a path we do not serve (too deep, a NUL, ..). */
static int split_path(struct evhttp_request *req, char **parts)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    if (!path || path[0] != '/')
        return -1;
    int n = 0;
    for (const char *p = path + 1; *p;) {
        size_t len = strcspn(p, "/");
        if (len > 0) {
            if (n == DASH_MAX_PARTS)
                goto bad;
            char *seg = strndup(p, len);
            size_t dlen = 0;
            char *dec = seg ? evhttp_uridecode(seg, 0, &dlen) : NULL;
            free(seg);
            if (!dec || dlen != strlen(dec) || dlen == 0) {
                free(dec);
                goto bad;
            }
            parts[n++] = dec;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
bad:
    for (int i = 0; i < n; i++)
        free(parts[i]);
    return -1;
}

static void send_asset(struct evhttp_request *req, const char *type, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(b, body, strlen(body));
    dash_headers(req, type);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* In a page thread: the pages. */
static void route_page(dash *d, struct evhttp_request *req, char **p, int n)
{
    if (n == 0) {
        dash_page_overview(d, req);
        return;
    }
    if (n == 1 && !strcmp(p[0], "workers")) {
        dash_page_workers(d, req);
        return;
    }
    if (n >= 2 && !strcmp(p[0], "t")) {
        const char *t = p[1];
        if (n == 2) {
            dash_page_tenant(d, req, t);
            return;
        }
        if (n == 3 && !strcmp(p[2], "lanes")) {
            dash_page_lanes(d, req, t);
            return;
        }
        if (n == 3 && !strcmp(p[2], "failed")) {
            dash_page_failed(d, req, t);
            return;
        }
        if (n == 3 && !strcmp(p[2], "events")) {
            dash_page_events(d, req, t);
            return;
        }
        if (n == 4 && !strcmp(p[2], "q")) {
            dash_page_queue(d, req, t, p[3]);
            return;
        }
        if (n == 4 && !strcmp(p[2], "job")) {
            dash_page_job(d, req, t, p[3]);
            return;
        }
    }
    dash_send_error(d, req, 404, "Not Found", "no such page");
}

static void page_run(dash *td, struct dash_job *j)
{
    int n;
    char **p = dash_job_parts(j, &n);
    route_page(td, dash_job_req(j), p, n);
}

static void post_run(dash *td, struct dash_job *j)
{
    int n;
    char **p = dash_job_parts(j, &n);
    dash_post(td, dash_job_req(j), p, n);
}

/* On the loop: what needs no Redis is answered here, the rest is a job.
 * Returns 1 when a job took p, 0 when answered here. */
static int route(dash *d, struct evhttp_request *req, char **p, int n)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    int get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    if (get && n == 2 && !strcmp(p[0], "static")) {
        if (!strcmp(p[1], "dash.css")) {
            send_asset(req, "text/css; charset=utf-8", dash_css);
            return 0;
        }
        if (!strcmp(p[1], "live.js")) {
            send_asset(req, "text/javascript; charset=utf-8", dash_live_js);
            return 0;
        }
    }
    if (m == EVHTTP_REQ_POST && n == 1 && !strcmp(p[0], "login")) {
        dash_post(d, req, p, n);
        return 0;
    }
    int auth = authorized(d, req);
    if (auth < 0) {
        dash_send_error(d, req, 429, "Too Many Requests",
                        "too many wrong tokens lately: try again in a few seconds");
        return 0;
    }
    if (!auth) {
        send_login(d, req, NULL);
        return 0;
    }
    if (!get && m != EVHTTP_REQ_POST) {
        dash_send_error(d, req, 405, "Method Not Allowed", "GET or POST only");
        return 0;
    }
    if (get && n == 4 && !strcmp(p[0], "t") && !strcmp(p[2], "events") && !strcmp(p[3], "stream")) {
        /* HEAD would start a stream that sends nothing (evhttp writes no
         * body for it) and holds a stream slot for DASH_STREAM_S. */
        if (m == EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
            dash_send_error(d, req, 405, "Method Not Allowed", "a live stream is GET only");
            return 0;
        }
        return dash_stream_start(d, req, p, n);
    }
    if (dash_pool_submit(d, req, p, n, get ? page_run : post_run, NULL, NULL) == 0)
        return 1;
    dash_send_error(d, req, 503, "Service Unavailable", "the dashboard is busy: try again");
    return 0;
}

/* ---- who may ask ---- */

/* 1 when h[0..n) names this machine's loopback: localhost, 127.0.0.0/8,
 * ::1 (in brackets or not). */
static int loopback_name(const char *h, size_t n)
{
    char name[256];
    if (n >= sizeof name)
        return 0;
    memcpy(name, h, n);
    name[n] = '\0';
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
        memmove(name, name + 1, n - 2);
        name[n - 2] = '\0';
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(name, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* DNS rebinding: another site's page whose name resolves to 127.0.0.1
 * reaches a loopback dashboard with that name as its Host. So a dashboard
 * listening on loopback answers requests for loopback names only. One
 * listening beyond is reached by names it cannot know; --token-file
 * protects it (the session cookie is its own origin's, and another site
 * cannot know the token). A request without Host (HTTP/1.0) is no
 * browser's. */
static int host_ok(const dash *d, struct evhttp_request *req)
{
    if (!d->loopback)
        return 1;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (!h)
        return 1;
    size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":");
    if (n > strlen(h) || (h[n] && h[n] != ':'))
        return 0;
    return loopback_name(h, n);
}

/* A request framed two ways (two Content-Lengths, or one with a
 * Transfer-Encoding) is one a proxy in front may have framed the other
 * way: what we read as its body would be a second, smuggled request to
 * it (RFC 9112 6.3). evhttp takes the first header; we refuse. */
static int framing_ok(struct evhttp_request *req)
{
    int cl = 0, te = 0;
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    for (const struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        cl += strcasecmp(kv->key, "Content-Length") == 0;
        te += strcasecmp(kv->key, "Transfer-Encoding") == 0;
    }
    return cl <= 1 && !(cl && te);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    dash *d = arg;
    char *parts[DASH_MAX_PARTS];
    cli_last_err_clear();
    conn_watch(d, req);
    if (!framing_ok(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        dash_send_error(d, req, 400, "Bad Request", "the request's length is given twice");
        return;
    }
    if (!host_ok(d, req)) {
        dash_send_error(d, req, 421, "Misdirected Request",
                        "this dashboard listens on loopback and answers for localhost names only");
        return;
    }
    int n = split_path(req, parts);
    if (n < 0) {
        dash_send_error(d, req, 404, "Not Found", "no such page");
        return;
    }
    if (!route(d, req, parts, n))
        for (int i = 0; i < n; i++)
            free(parts[i]);
}

/* ---- the command ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    dash *d = arg;
    event_base_loopexit(d->base, NULL);
}

static int random_bytes(unsigned char *r, size_t bytes)
{
    size_t got = 0;
    while (got < bytes) {
        ssize_t k = getrandom(r + got, bytes - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static int random_hex(char *out, size_t bytes)
{
    unsigned char r[32];
    if (bytes > sizeof r || random_bytes(r, bytes) != 0)
        return -1;
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return 0;
}

/* Splits HOST:PORT ([V6]:PORT) into host and port. Returns 0 or -1. */
static int split_addr(const char *addr, char *host, size_t hlen, unsigned short *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1])
        return -1;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return -1;
        h++;
        n -= 2;
    }
    if (n >= hlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (*end || errno || p < 0 || p > 65535 || colon[1] == '-' || colon[1] == '+')
        return -1;
    *port = (unsigned short)p;
    return 0;
}

int cmd_dashboard(cli *c, int argc, char **argv)
{
    const char *addr = NULL, *token_file = NULL;
    int read_only = 0;
    const cli_opt opts[] = {{"--http", &addr, NULL, NULL, NULL},
                            {"--token-file", &token_file, NULL, NULL, NULL},
                            {"--read-only", NULL, &read_only, NULL, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    int rc;
    if (!cli_args_parse(c, argc, argv, opts, USAGE, CLI_ARGS_NONE, NULL, &rc))
        return rc;
    if (!addr)
        addr = DASH_DEFAULT_ADDR;
    char host[256];
    unsigned short port;
    if (split_addr(addr, host, sizeof host, &port) != 0) {
        cli_err(c->cmd, "--http: \"%s\" is not HOST:PORT (e.g. 127.0.0.1:7117)", cli_show(addr));
        return CLI_USAGE;
    }
    dash d;
    memset(&d, 0, sizeof d);
    d.c = c;
    d.loopback = loopback_name(host, strlen(host));
    d.read_only = read_only > 0;
    if (token_file && load_token(&d, token_file) != 0)
        return CLI_USAGE;
    if (random_hex(d.csrf, 32) != 0 || random_hex(d.session, 32) != 0 ||
        random_bytes(d.flash_key, sizeof d.flash_key) != 0) {
        cli_err(c->cmd, "no random bytes for the CSRF token: %s", strerror(errno));
        free(d.token);
        return CLI_USAGE;
    }
    /* The registry loads now: a bad one is a usage error at the start,
     * not a broken page later. */
    if ((rc = cli_registry(c)) != 0) {
        free(d.token);
        return rc;
    }
    rc = CLI_USAGE;
    struct event *sigs[2] = {NULL, NULL};
    /* The page threads make the loop's wake-up event active. */
    if (evthread_use_pthreads() != 0) {
        cli_err(c->cmd, "libevent has no thread support");
        goto out;
    }
    c->holds = cli_holds_new(DASH_HOLD_MS);
    d.base = c->holds ? event_base_new() : NULL;
    d.http = d.base ? evhttp_new(d.base) : NULL;
    if (!d.http) {
        cli_err(c->cmd, "out of memory");
        goto out;
    }
    if (dash_pool_start(&d) != 0) {
        cli_err(c->cmd, "cannot start its page threads: %s", strerror(errno ? errno : ENOMEM));
        goto out;
    }
    evhttp_set_allowed_methods(d.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_max_headers_size(d.http, DASH_MAX_HEADERS);
    evhttp_set_max_body_size(d.http, DASH_MAX_BODY);
    evhttp_set_timeout(d.http, DASH_IO_TIMEOUT_S);
    evhttp_set_bevcb(d.http, make_bev, &d);
    evhttp_set_gencb(d.http, on_request, &d);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(d.http, host, port);
    if (!bound) {
        cli_err(c->cmd, "--http %s: cannot listen there: %s", cli_show(addr),
                strerror(errno ? errno : EADDRNOTAVAIL));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    unsigned short real_port = port;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            real_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            real_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    sigs[0] = evsignal_new(d.base, SIGINT, on_signal, &d);
    sigs[1] = evsignal_new(d.base, SIGTERM, on_signal, &d);
    if (!sigs[0] || !sigs[1] || event_add(sigs[0], NULL) || event_add(sigs[1], NULL)) {
        cli_err(c->cmd, "out of memory");
        goto out;
    }
    if (!d.loopback && !d.token)
        cli_err(c->cmd, "warning: listening on %s without --token-file: whoever reaches it may %s",
                cli_show(addr), d.read_only ? "read every job" : "retry, delete and pause");
    printf("listening on http://%s%s%s:%u%s\n", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", real_port, d.read_only ? " (read-only)" : "");
    if ((rc = cli_flush(c)) != 0)
        goto out;
    event_base_dispatch(d.base);
    rc = CLI_OK;
out:
    dash_pool_stop(&d);
    dash_streams_close(&d);
    while (d.conns)
        conn_unlink(d.conns);
    for (int i = 0; i < 2; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (d.poll)
        event_free(d.poll);
    if (d.http)
        evhttp_free(d.http);
    if (d.base)
        event_base_free(d.base);
    cli_holds_free(c->holds);
    c->holds = NULL;
    if (d.token)
        memset(d.token, 0, d.token_len);
    free(d.token);
    return rc;
}

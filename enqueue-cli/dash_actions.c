/*
 * dash_actions.c — the dashboard's POST forms: the login form of
 * --token-file, and the actions (retry, cancel, delete a job; pause,
 * resume a queue).
 *
 * An action needs the process's CSRF token in its `csrf` field (a page of
 * ours put it there; another site's form cannot know it), compared in
 * constant time: without it, or with another, 403 and nothing is done.
 * --read-only refuses every action (403). An action runs the CLI's own
 * function for its command (cli.h: cli_retry_jobs, cli_cancel_job,
 * cli_delete_jobs, cli_pause_queue), so it changes Redis exactly as the
 * command does, then answers 303 to the page it came from (`back`, a path
 * of ours) with what happened in ?msg=, signed (&ms=, dash_flash_mac) so
 * that no link of another's shows its own words as ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "names.h"
#include "siphash.h"

void dash_flash_mac(const dash *d, const char *msg, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)lw_siphash(d->flash_key, msg, strlen(msg)));
}

int dash_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < blen; i++)
        diff |= (unsigned char)((i < alen ? a[i] : 0) ^ b[i]);
    return diff == 0 && blen > 0;
}

/* The form fields of req's body (application/x-www-form-urlencoded; the
 * body is bounded by evhttp_set_max_body_size) into kv. Returns 0 or -1. */
static int read_form(struct evhttp_request *req, struct evkeyvalq *kv)
{
    memset(kv, 0, sizeof *kv);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *body = malloc(n + 1);
    if (!body)
        return -1;
    evbuffer_copyout(in, body, n);
    body[n] = '\0';
    int rc = memchr(body, '\0', n) ? -1 : evhttp_parse_query_str(body, kv);
    free(body);
    return rc;
}

/* A path of ours to come back to: "/..." but not "//host" or a backslash
 * (browsers read "/\host" as another site), no control characters. */
static int is_local(const char *p)
{
    if (!p || p[0] != '/' || p[1] == '/' || p[1] == '\\')
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return 0;
    return 1;
}

/* 303 to back (a local path, its old ?msg= and what follows dropped)
 * with msg and its signature. */
static void redirect(const dash *d, struct evhttp_request *req, const char *back, const char *msg)
{
    struct evbuffer *loc = evbuffer_new();
    if (!loc) {
        dash_reply(req, 500, "Internal Server Error", NULL);
        return;
    }
    size_t keep = strlen(back);
    const char *m = strstr(back, "?msg=");
    if (!m)
        m = strstr(back, "&msg=");
    if (m)
        keep = (size_t)(m - back);
    evbuffer_add(loc, back, keep);
    if (msg) {
        char mac[17];
        dash_flash_mac(d, msg, mac);
        evbuffer_add(loc, memchr(back, '?', keep) ? "&msg=" : "?msg=", 5);
        dash_url(loc, msg);
        evbuffer_add_printf(loc, "&ms=%s", mac);
    }
    evbuffer_add(loc, "", 1);
    dash_headers(req, "text/plain; charset=utf-8");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
                      (const char *)evbuffer_pullup(loc, -1));
    dash_reply(req, 303, "See Other", NULL);
    evbuffer_free(loc);
}

static void login(dash *d, struct evhttp_request *req, struct evkeyvalq *kv)
{
    const char *tok = evhttp_find_header(kv, "token");
    if (!d->token) {
        redirect(d, req, "/", NULL);
        return;
    }
    if (!dash_guess_allowed(d)) {
        dash_send_error(d, req, 429, "Too Many Requests",
                        "too many wrong tokens lately: try again in a few seconds");
        return;
    }
    if (!tok || !dash_equal(tok, strlen(tok), d->token, d->token_len)) {
        dash_guess_failed(d);
        dash_send_error(d, req, 401, "Unauthorized", "wrong token");
        return;
    }
    char cookie[128];
    snprintf(cookie, sizeof cookie, "lw_session=%s; Path=/; HttpOnly; SameSite=Strict", d->session);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
    redirect(d, req, "/", "signed in");
}

/* Runs one action; returns the exit status of its command, with what it
 * did in msg. On a partitioned tenant with partitions that cannot be
 * reached, pause and resume change the others and msg names those it
 * could not change; a job's action runs in the partition found to hold it,
 * and when none read does, msg names those that could not be read. */
static int act(dash *d, struct evhttp_request *req, const char *tenant, const char *kind,
               const char *name, const char *what, char *msg, size_t msglen)
{
    cli *c = d->c;
    cli_tenant t, pt;
    if (dash_tenant(d, req, tenant, &t) != 0)
        return -1; /* answered */
    const char *ids[1] = {name};
    int rc;
    cli_gaps g = {0};
    char gaps[1000] = "";
    c->cmd = what;
    if (!strcmp(kind, "q")) {
        int any = 0, done = 0, pause = !strcmp(what, "pause");
        rc = cli_pause_queue_partial(c, &t, name, pause, &any, &done, &g);
        dash_gaps_text(d, tenant, &g, gaps, sizeof gaps);
        if (rc == 0 && g.n > 0)
            snprintf(msg, msglen,
                     "queue %s %s in %d of %d partitions only; not changed: %s -- run it again "
                     "once they are back",
                     name, pause ? "paused" : "resumed", done, t.nparts, gaps);
        else if (rc == 0)
            snprintf(msg, msglen, "queue %s %s", name,
                     pause ? (any ? "paused" : "was already paused")
                           : (any ? "resumed" : "was not paused"));
    } else {
        rc = dash_job_part(d, &t, name, &pt, &g);
        if (rc == CLI_NOJOB)
            rc = 0; /* its own partition: the command says "no such job" */
        if (rc == 0)
            rc = cli_connect(pt.conn, 0, NULL, 0);
        /* The partition holding it, as a tenant of one: the command's
         * function does not look for the job again (past partitions that
         * cannot be read). */
        pt.nparts = 1;
        if (rc == 0 && !strcmp(what, "retry")) {
            if ((rc = cli_retry_jobs(c, &pt, ids, 1)) == 0)
                snprintf(msg, msglen, "job %s retried", name);
        } else if (rc == 0 && !strcmp(what, "delete")) {
            if ((rc = cli_delete_jobs(c, &pt, ids, 1)) == 0)
                snprintf(msg, msglen, "job %s deleted", name);
        } else if (rc == 0) {
            if ((rc = cli_cancel_job(c, &pt, name)) == 0)
                snprintf(msg, msglen, "job %s: cancel done or requested", name);
        } else if (rc == CLI_REDIS && g.n > 0) {
            dash_gaps_text(d, tenant, &g, gaps, sizeof gaps);
            snprintf(msg, msglen,
                     "%s %s failed: the job is in none of the partitions read, and these could "
                     "not be read: %s",
                     what, name, gaps);
            c->cmd = "dashboard";
            return rc;
        }
    }
    c->cmd = "dashboard";
    if (rc)
        snprintf(msg, msglen, "%s %s failed: %s%s%s", what, name,
                 cli_last_err()[0] ? cli_last_err() : "see the dashboard's stderr",
                 gaps[0] ? "; not reached: " : "", gaps);
    return rc;
}

void dash_post(dash *d, struct evhttp_request *req, char **p, int n)
{
    struct evkeyvalq kv;
    if (read_form(req, &kv) != 0) {
        evhttp_clear_headers(&kv);
        dash_send_error(d, req, 400, "Bad Request", "not a form");
        return;
    }
    if (n == 1 && !strcmp(p[0], "login")) {
        login(d, req, &kv);
        evhttp_clear_headers(&kv);
        return;
    }
    const char *csrf = evhttp_find_header(&kv, "csrf");
    const char *back = evhttp_find_header(&kv, "back");
    if (d->read_only) {
        dash_send_error(d, req, 403, "Forbidden", "this dashboard is read-only");
    } else if (!csrf || !dash_equal(csrf, strlen(csrf), d->csrf, strlen(d->csrf))) {
        dash_send_error(d, req, 403, "Forbidden",
                        "missing or wrong CSRF token: reload the page and try again");
    } else if (n == 5 && !strcmp(p[0], "t") &&
               ((!strcmp(p[2], "job") &&
                 (!strcmp(p[4], "retry") || !strcmp(p[4], "cancel") || !strcmp(p[4], "delete"))) ||
                (!strcmp(p[2], "q") && (!strcmp(p[4], "pause") || !strcmp(p[4], "resume"))))) {
        if (!lw_name_is_safe(p[3])) {
            dash_send_error(d, req, 404, "Not Found", "not a job id or queue name");
        } else {
            char msg[1400];
            if (act(d, req, p[1], p[2], p[3], p[4], msg, sizeof msg) != -1)
                redirect(d, req, is_local(back) ? back : "/", msg);
        }
    } else {
        dash_send_error(d, req, 404, "Not Found", "no such action");
    }
    evhttp_clear_headers(&kv);
}

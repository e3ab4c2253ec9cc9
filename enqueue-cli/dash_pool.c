/*
 * dash_pool.c — the dashboard's page threads.
 *
 * A page reads Redis with the CLI's own synchronous functions. On the
 * event loop, a Redis slow to connect or frozen would hold every other
 * page, every live stream and even the stylesheet for seconds. So the loop
 * only accepts, authenticates and routes; a page, an action or a streams'
 * poll runs as a job in one of DASH_THREADS threads, each with its own
 * `cli` (cli_view: the process's configuration and registry, read only,
 * and connections of its own), and the loop sends its answer.
 *
 * evhttp is not thread-safe, so a thread never sends: it reads the request
 * (URI, headers, body: the loop leaves a handed-out request alone) and
 * dash_reply records its answer in the job; output headers are added to
 * the request from the thread, which is safe for the same reason. A client
 * that leaves meanwhile is no danger: evhttp 2.1 then detaches a request
 * whose reply was not sent and leaves it to us, and sending frees it.
 *
 * Bounds: DASH_QUEUE_MAX jobs wait at most (503 past it). The threads
 * share a breaker (holds.c): a Redis that does not answer costs one
 * timeout per DASH_HOLD_MS, not one per page.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"

#define DASH_QUEUE_MAX 64
/* Jobs of one tenant's pages that may wait: a burst at a tenant whose
 * Redis is frozen fills its share, not the queue other tenants need. */
#define DASH_TENANT_QUEUE_MAX (DASH_QUEUE_MAX / 4)

struct dash_job {
    struct evhttp_request *req; /* NULL for a job of no request (a poll) */
    dash_job_fn run;
    dash_job_fn done;
    void *arg;
    char *parts[DASH_MAX_PARTS]; /* owned */
    int nparts;
    const char *tenant; /* parts[1] of a /t/TENANT/... job, else NULL */
    /* The answer dash_reply recorded (replied), sent by the loop. */
    int replied;
    int code;
    char reason[48];
    struct evbuffer *body; /* owned; NULL: no body */
    struct dash_job *next;
};

struct dash_pool {
    dash *d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct dash_job *todo, *todo_tail; /* waiting, oldest first */
    int ntodo;
    struct dash_job *done; /* finished, for the loop (any order) */
    int stopping;
    pthread_t threads[DASH_THREADS];
    int nthreads;
    struct event *wake; /* made active by a thread that finished a job */
};

/* The job the calling thread runs (NULL on the loop). */
static _Thread_local struct dash_job *current;

void *dash_job_arg(const struct dash_job *j) { return j->arg; }

void dash_job_set_arg(struct dash_job *j, void *arg) { j->arg = arg; }

struct evhttp_request *dash_job_req(const struct dash_job *j) { return j->req; }

char **dash_job_parts(struct dash_job *j, int *n)
{
    *n = j->nparts;
    return j->parts;
}

void dash_reply(struct evhttp_request *req, int code, const char *reason, struct evbuffer *body)
{
    struct dash_job *j = current;
    if (!j || j->req != req) {
        evhttp_send_reply(req, code, reason, body);
        return;
    }
    if (j->replied)
        return; /* the first answer is the answer */
    j->replied = 1;
    j->code = code;
    snprintf(j->reason, sizeof j->reason, "%s", reason ? reason : "");
    if (body && evbuffer_get_length(body) > 0) {
        j->body = evbuffer_new();
        if (!j->body || evbuffer_add_buffer(j->body, body) != 0) {
            j->code = 500;
            snprintf(j->reason, sizeof j->reason, "Internal Server Error");
        }
    }
}

static void job_free(struct dash_job *j)
{
    for (int i = 0; i < j->nparts; i++)
        free(j->parts[i]);
    if (j->body)
        evbuffer_free(j->body);
    free(j);
}

/* On the loop: what a finished job sends. */
static void job_finish(dash *d, struct dash_job *j)
{
    if (j->done)
        j->done(d, j); /* it answers, or leaves what run answered */
    if (j->req && j->replied)
        evhttp_send_reply(j->req, j->code, j->reason, j->body);
    else if (j->req && !j->done)
        evhttp_send_error(j->req, 500, "the page gave no answer");
    job_free(j);
}

/* Before and after every job: connections that failed are dropped (a
 * timeout held first, holds.c), so a later use reconnects and a dashboard
 * outlives Redis restarts and failovers. */
static void heal(dash *d)
{
    cli *c = d->c;
    for (size_t i = 0; i < c->nconns; i++) {
        cli_conn *k = &c->conns[i];
        if (k->ctx && k->ctx->err) {
            cli_hold(k, k->ctx->errstr);
            lw_sconn_free(k->ctx);
            k->ctx = NULL;
            k->scripts_loaded = 0;
            k->evalsha_only = 0;
        }
        k->part_failed = 0;
        if (k->reply_timeout_ms == 0 || k->reply_timeout_ms > DASH_REPLY_MS)
            cli_set_reply_timeout(k, DASH_REPLY_MS);
    }
}

static void *thread_main(void *arg)
{
    struct dash_pool *pl = arg;
    cli view;
    cli_view(&view, pl->d->c);
    /* Every connection a page makes starts with the dashboard's bounds
     * (cli_part_open and cli_bound_replies keep a bound already set);
     * heal() brings back to it one a command raised. */
    view.new_reply_ms = DASH_REPLY_MS;
    view.new_connect_ms = DASH_CONNECT_MS;
    /* The thread's dash: the process's settings, its own cli; nothing of
     * the loop's (streams, connections, the base). */
    dash td;
    memset(&td, 0, sizeof td);
    td.c = &view;
    td.read_only = pl->d->read_only;
    td.token = pl->d->token;
    td.token_len = pl->d->token_len;
    memcpy(td.csrf, pl->d->csrf, sizeof td.csrf);
    memcpy(td.session, pl->d->session, sizeof td.session);
    memcpy(td.flash_key, pl->d->flash_key, sizeof td.flash_key);
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        while (!pl->stopping && !pl->todo)
            pthread_cond_wait(&pl->cv, &pl->mu);
        struct dash_job *j = pl->stopping ? NULL : pl->todo;
        if (j) {
            pl->todo = j->next;
            if (!pl->todo)
                pl->todo_tail = NULL;
            pl->ntodo--;
        }
        pthread_mutex_unlock(&pl->mu);
        if (!j)
            break;
        current = j;
        heal(&td);
        cli_last_err_clear();
        j->run(&td, j);
        current = NULL;
        heal(&td); /* a failure is held for the other threads now */
        pthread_mutex_lock(&pl->mu);
        j->next = pl->done;
        pl->done = j;
        pthread_mutex_unlock(&pl->mu);
        event_active(pl->wake, EV_READ, 1);
    }
    cli_view_clear(&view);
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dash_pool *pl = arg;
    pthread_mutex_lock(&pl->mu);
    struct dash_job *j = pl->done;
    pl->done = NULL;
    pthread_mutex_unlock(&pl->mu);
    while (j) {
        struct dash_job *next = j->next;
        job_finish(pl->d, j);
        j = next;
    }
}

int dash_pool_start(dash *d)
{
    struct dash_pool *pl = calloc(1, sizeof *pl);
    if (!pl)
        return -1;
    pl->d = d;
    if (pthread_mutex_init(&pl->mu, NULL) != 0) {
        free(pl);
        return -1;
    }
    if (pthread_cond_init(&pl->cv, NULL) != 0 ||
        !(pl->wake = event_new(d->base, -1, 0, on_wake, pl))) {
        pthread_mutex_destroy(&pl->mu);
        free(pl);
        return -1;
    }
    d->pool = pl;
    int e = 0;
    for (int i = 0; i < DASH_THREADS && !e; i++)
        if (!(e = pthread_create(&pl->threads[i], NULL, thread_main, pl)))
            pl->nthreads++;
    if (pl->nthreads == 0) {
        dash_pool_stop(d);
        errno = e; /* pthread_create's answer, for the caller's message */
        return -1;
    }
    return 0;
}

int dash_pool_submit(dash *d, struct evhttp_request *req, char **parts, int nparts, dash_job_fn run,
                     dash_job_fn done, void *arg)
{
    struct dash_pool *pl = d->pool;
    struct dash_job *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    j->req = req;
    j->run = run;
    j->done = done;
    j->arg = arg;
    for (int i = 0; i < nparts && i < DASH_MAX_PARTS; i++)
        j->parts[j->nparts++] = parts[i];
    if (req && j->nparts >= 2 && strcmp(j->parts[0], "t") == 0)
        j->tenant = j->parts[1];
    pthread_mutex_lock(&pl->mu);
    int full = pl->ntodo >= DASH_QUEUE_MAX;
    if (!full && j->tenant) {
        int same = 0;
        for (const struct dash_job *w = pl->todo; w; w = w->next)
            same += w->tenant && strcmp(w->tenant, j->tenant) == 0;
        full = same >= DASH_TENANT_QUEUE_MAX;
    }
    if (!full) {
        if (pl->todo_tail)
            pl->todo_tail->next = j;
        else
            pl->todo = j;
        pl->todo_tail = j;
        pl->ntodo++;
        pthread_cond_signal(&pl->cv);
    }
    pthread_mutex_unlock(&pl->mu);
    if (full) {
        j->nparts = 0; /* still the caller's */
        job_free(j);
        return -1;
    }
    return 0;
}

void dash_pool_stop(dash *d)
{
    struct dash_pool *pl = d->pool;
    if (!pl)
        return;
    pthread_mutex_lock(&pl->mu);
    pl->stopping = 1;
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
    for (int i = 0; i < pl->nthreads; i++)
        pthread_join(pl->threads[i], NULL);
    /* What finished is sent (a poll's streams get their last events);
     * what never ran is refused. Both before evhttp goes. */
    on_wake(-1, 0, pl);
    for (struct dash_job *j = pl->todo, *next; j; j = next) {
        next = j->next;
        if (j->req)
            evhttp_send_error(j->req, 503, "shutting down");
        else if (j->done)
            j->done(d, j); /* a poll that never ran: its streams are freed */
        job_free(j);
    }
    event_free(pl->wake);
    pthread_cond_destroy(&pl->cv);
    pthread_mutex_destroy(&pl->mu);
    free(pl);
    d->pool = NULL;
}

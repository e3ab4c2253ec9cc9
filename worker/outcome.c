/*
 * outcome.c — from "the handler ended" to finish.lua.
 *
 * attempt_finished() turns how a handler ended, and why the worker may have
 * stopped it, into finish.lua's word for it:
 *
 *   stop reason   handler ended OK   handler ended otherwise
 *   none          ok                 retry (backoff) / fail
 *   timeout       ok                 retry ("timed out after N s")
 *   cancel        ok                 cancelled
 *   handback      ok                 handback (no attempt counted)
 *   lost          (nothing: another worker owns the job now)
 *
 * It also moves a spooled job's job.json (processing -> done / failed)
 * before Redis hears of the outcome, so a job whose file says done is never
 * run again even if the worker dies right after.
 */
#include "outcome.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "backoff.h"
#include "log.h"
#include "runners.h"
#include "scripts.h"
#include "spool.h"
#include "timefmt.h"
#include "worker.h"

#define FINISH_BATCH 1000
#define BACKOFF_CAP_MS (3600LL * 1000)

typedef struct batch {
    tenant *t;
    outcome *head;
    size_t n;
} batch;

static void outcome_free(outcome *o)
{
    free(o->id);
    free(o->token);
    free(o->text);
    free(o->event_type);
    free(o);
}

static outcome *outcome_new(const attempt *a, const char *word, const char *text)
{
    outcome *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->word = word;
    o->id = strdup(a->id);
    o->token = strdup(a->token);
    o->text = strdup(text ? text : "");
    if (!o->id || !o->token || !o->text) {
        outcome_free(o);
        return NULL;
    }
    return o;
}

static void push(tenant *t, outcome *o)
{
    *t->out_tail = o;
    t->out_tail = &o->next;
    t->nout++;
}

void send_handler_event(attempt *a, const char *type, const char *data)
{
    if (attempt_stop_reason(a) == STOP_LOST) return;
    outcome *o = outcome_new(a, "event", data ? data : "");
    if (!o || !(o->event_type = strdup(type))) {
        if (o) outcome_free(o);
        lw_log(LW_LOG_ERROR, "event.dropped", "job %s: out of memory, event %s dropped", a->id, type);
        return;
    }
    push(a->tenant, o);
    worker_kick(a->tenant->w);
}

/* Moves job.json of a spooled job to its state after this attempt. */
static void update_spool(const attempt *a, const char *word, const char *error)
{
    const char *status = NULL;
    if (!strcmp(word, "ok"))
        status = "done";
    else if (!strcmp(word, "fail") || !strcmp(word, "cancelled") ||
             (!strcmp(word, "retry") && a->attempt >= a->attempts))
        status = "failed";
    if (!status) return;
    char err[512];
    if (lw_spool_set_status(a->spool_dir, status, !strcmp(status, "failed") ? error : NULL, err,
                            sizeof err))
        lw_log(LW_LOG_ERROR, "spool.write", "job %s: cannot mark %s %s: %s", a->id, a->spool_dir,
               status, err);
}

static const char *metric_label(const char *word)
{
    if (!strcmp(word, "ok")) return "succeeded";
    if (!strcmp(word, "retry")) return "retried";
    if (!strcmp(word, "fail")) return "failed";
    if (!strcmp(word, "cancelled")) return "cancelled";
    return "handed_back";
}

/* Decides the record for the attempt, queues it, updates spool and metrics.
 * Does not touch the running list or free anything. */
static void record_end(attempt *a, end_kind how, const char *text)
{
    tenant *t = a->tenant;
    worker *w = t->w;
    stop_reason why = attempt_stop_reason(a);
    w->ended_total++;
    double secs = (double)(lw_mono_ms() - a->started_mono) / 1000.0;
    const char *word;
    char msg[600];
    int64_t delay = 0;

    if (why == STOP_LOST) {
        lw_log(LW_LOG_WARN, "job.lost_lease",
               "job %s: our lease was taken over (Redis unreachable for longer than --lease?); its outcome is discarded",
               a->id);
        metrics_attempt(&w->m, t->cfg->name, a->kind, "lost", secs);
        return;
    }
    if (how == END_OK) {
        word = "ok";
        if (!text) text = "null";
    } else if (why == STOP_HANDBACK) {
        word = "handback";
        text = "handed back at shutdown";
    } else if (why == STOP_CANCEL) {
        word = "cancelled";
        text = "cancelled while running";
    } else if (why == STOP_TIMEOUT) {
        word = "retry";
        snprintf(msg, sizeof msg, "timed out after %.3g s", (double)a->timeout_ms / 1000.0);
        text = msg;
    } else if (how == END_FAIL) {
        word = "fail";
        if (!text) text = "handler returned LW_FAIL";
    } else {
        word = "retry";
        if (!text) text = "handler returned LW_RETRY";
    }
    if (!strcmp(word, "retry"))
        delay = lw_backoff_ms(a->backoff_ms, a->attempt, BACKOFF_CAP_MS, lw_random64());

    if (a->spool_dir) update_spool(a, word, text);
    metrics_attempt(&w->m, t->cfg->name, a->kind, metric_label(word), secs);
    if (!strcmp(word, "ok"))
        lw_log(LW_LOG_DEBUG, "job.done", "job %s kind=%s attempt=%d succeeded in %.3f s", a->id,
               a->kind, a->attempt, secs);
    else
        lw_log(!strcmp(word, "handback") ? LW_LOG_INFO : LW_LOG_WARN, "job.done",
               "job %s kind=%s attempt=%d/%d %s after %.3f s: %s", a->id, a->kind, a->attempt,
               a->attempts, word, secs, text);

    outcome *o = outcome_new(a, word, text);
    if (!o) {
        /* Without memory for the record the lease will expire and the reaper
         * will retry the job: nothing is lost, an attempt is. */
        lw_log(LW_LOG_ERROR, "job.unrecorded", "job %s: out of memory recording its outcome", a->id);
        return;
    }
    o->delay_ms = delay;
    push(t, o);
}

static void unlink_running(attempt *a)
{
    worker *w = a->tenant->w;
    if (a->prev) a->prev->next = a->next;
    else w->running = a->next;
    if (a->next) a->next->prev = a->prev;
    a->next = a->prev = NULL;
}

void attempt_finished(attempt *a, end_kind how, const char *text)
{
    tenant *t = a->tenant;
    worker *w = t->w;
    record_end(a, how, text);
    unlink_running(a);
    w->nrunning--;
    t->running--;
    tenant *keep = t;
    tenant_ref(keep); /* the tenant must outlive attempt_free for the kick */
    attempt_free(a);
    worker_kick(w);
    tenant_unref(keep);
}

void attempt_abandon(attempt *a, end_kind how, const char *text)
{
    a->timed_out_hard = 1;
    record_end(a, how, text);
    /* Still in the running list (the thread holds it) and still a slot. */
    a->tenant->running--;
    worker_kick(a->tenant->w);
}

void attempt_release_abandoned(attempt *a)
{
    worker *w = a->tenant->w;
    unlink_running(a);
    w->nrunning--;
    attempt_free(a);
    worker_kick(w);
}

int outcomes_pending(const worker *w)
{
    for (const tenant *t = w->tenants; t; t = t->next)
        if (t->nout || t->finish_inflight) return 1;
    for (const tenant *t = w->retired; t; t = t->next)
        if (t->nout || t->finish_inflight) return 1;
    return 0;
}

/* Puts a batch back at the front of its tenant's FIFO, order kept. */
static void requeue(tenant *t, batch *b)
{
    outcome *last = b->head;
    while (last->next) last = last->next;
    last->next = t->out_head;
    if (!t->out_head) t->out_tail = &last->next;
    t->out_head = b->head;
    t->nout += b->n;
}

static void finish_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    batch *b = ud;
    tenant *t = b->t;
    t->finish_inflight = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != b->n) {
        if (reply) tenant_redis_error(t, "recording outcomes", reply);
        requeue(t, b); /* sent again when Redis is ready */
        /* An error reply would repeat at once: pace the resends. */
        if (reply) t->finish_retry_at = lw_mono_ms() + 1000;
    } else {
        size_t i = 0;
        for (outcome *o = b->head, *next; o; o = next, i++) {
            next = o->next;
            redisReply *e = reply->element[i];
            if (e->type == REDIS_REPLY_STRING && !strcmp(e->str, "stale") && strcmp(o->word, "event"))
                lw_log(LW_LOG_WARN, "job.fenced",
                       "job %s: outcome %s refused: the attempt no longer holds the job (lease lost)",
                       o->id, o->word);
            outcome_free(o);
        }
        /* Lanes may have moved on: the next claim may find work. */
        t->idle = 0;
    }
    free(b);
    worker_kick(t->w);
    tenant_unref(t);
}

void outcome_flush(tenant *t)
{
    worker *w = t->w;
    if (!t->nout || t->finish_inflight || !lw_redis_is_ready(t->link->r)) return;
    if (t->finish_retry_at && lw_mono_ms() < t->finish_retry_at) return;
    batch *b = calloc(1, sizeof *b);
    if (!b) return;
    lw_argv a;
    lw_argv_init(&a);
    char key[400];
    const char *keys[4] = {"events", "schedule", "stats", "failed"};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s%s", t->prefix, keys[i]);
        lw_argv_adds(&a, key);
    }
    lw_argv_adds(&a, t->prefix);
    lw_argv_addi(&a, w->opt->common.events_max);
    lw_argv_adds(&a, w->opt->name);
    lw_argv_addi(&a, w->opt->common.keep_succeeded_s);
    lw_argv_addi(&a, w->opt->common.keep_failed_s);
    lw_argv_addi(&a, 0); /* n, set below */
    outcome **tail = &b->head;
    while (t->out_head && b->n < FINISH_BATCH) {
        outcome *o = t->out_head;
        t->out_head = o->next;
        o->next = NULL;
        *tail = o;
        tail = &o->next;
        b->n++;
        lw_argv_adds(&a, o->id);
        lw_argv_adds(&a, o->token);
        lw_argv_adds(&a, o->word);
        lw_argv_adds(&a, o->text);
        lw_argv_addi(&a, o->delay_ms);
        lw_argv_adds(&a, o->event_type ? o->event_type : "");
    }
    if (!t->out_head) t->out_tail = &t->out_head;
    t->nout -= b->n;
    lw_argv_seti(&a, 9, (int64_t)b->n);
    b->t = t;
    tenant_ref(t);
    t->finish_inflight = 1;
    if (lw_redis_script(t->link->r, &lw_script_finish, 4, &a, finish_reply, b)) {
        /* Not ready after all (or OOM): undo; the next pump retries. */
        t->finish_inflight = 0;
        requeue(t, b);
        free(b);
        tenant_unref(t);
    }
    lw_argv_clear(&a);
}

/*
 * outcome.c — from "the handler ended" to finish.lua.
 *
 * outcome_finished() turns how a handler ended, and why the worker may have
 * stopped it, into finish.lua's word for it:
 *
 *   stop reason   handler ended OK   handler ended otherwise
 *   none          ok                 retry (backoff) / fail
 *   timeout       ok                 retry ("timed out after N s")
 *   cancel        ok                 cancelled
 *   handback      ok                 handback (no attempt counted)
 *   fence         ok                 handback (thread isolation: the lease
 *                                    went unproven, the handler was asked
 *                                    to stop; not the job's fault)
 *   lost          (nothing: another worker owns the job now)
 *
 * Sending: one finish.lua call in flight per tenant, at most FINISH_BATCH
 * entries and about FINISH_BYTES of arguments. An error reply for a whole
 * batch (other than an ACL refusal, which no split can cure) halves the
 * batch until the one entry Redis refuses is alone; that entry's outcome is
 * then replaced by a small failure ("Redis refused the outcome: ..."), and
 * if even that is refused it is dropped with a log line (its lease expires
 * and the reaper retries the job). So one outcome Redis cannot take never
 * blocks the others.
 *
 * It also moves a spooled job's job.json (processing -> done / failed)
 * before Redis hears of the outcome, so a job whose file says done is never
 * run again even if the worker dies right after: the file is written on a
 * spool I/O thread and the outcome queued only once that write returned.
 */
#include "outcome.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "attempt.h"
#include "backoff.h"
#include "invariant.h"
#include "keys.h"
#include "kick.h"
#include "log.h"
#include "script_args.h"
#include "script_replies.h"
#include "scripts.h"
#include "slots.h"
#include "spool.h"
#include "spool_io.h"
#include "state.h"
#include "tenants.h"
#include "timefmt.h"

#define FINISH_BATCH 1000
#define FINISH_BYTES (8 * 1024 * 1024)
/* An outcome this big may be what makes Redis drop the connection. */
#define SUSPECT_BYTES (512 * 1024)
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
    if (!o)
        return NULL;
    o->word = word;
    o->id = strdup(a->id);
    LW_ASSERT(a->token && a->token[0]); /* claim.lua always issues one: no finish without it */
    o->token = strdup(a->token);
    o->text = strdup(text ? text : "");
    if (!o->id || !o->token || !o->text) {
        outcome_free(o);
        return NULL;
    }
    o->bytes = strlen(o->id) + strlen(o->token) + strlen(o->text) + 32;
    return o;
}

static void push(tenant *t, outcome *o)
{
    *t->out_tail = o;
    t->out_tail = &o->next;
    t->nout++;
}

void outcome_event(attempt *a, const char *type, const char *data)
{
    if (attempt_stop_reason(a) == STOP_LOST)
        return;
    outcome *o = outcome_new(a, "event", data ? data : "");
    if (!o || !(o->event_type = strdup(type))) {
        if (o)
            outcome_free(o);
        lw_log_about(LW_LOG_ERROR, "event.dropped", attempt_facts(a, 0),
                     "out of memory, event %s dropped", type);
        return;
    }
    o->bytes += strlen(type);
    /* Numbered: a batch sent again (a lost reply, a replica shortfall)
     * does not append it twice (finish.lua). */
    o->delay_ms = ++a->event_seq;
    push(a->tenant, o);
    worker_kick(a->tenant->w);
}

/* The order of truth (DESIGN section 12): job.json is written, fsynced and
 * renamed on a spool I/O thread, and only then is the outcome queued for
 * finish.lua -- the async version of writing the file before the call.
 * Meanwhile t->spool_writes keeps the tenant's outcomes "pending" (exit
 * conditions, retirement). */
typedef struct status_task {
    spool_io_task io;
    tenant *t;                               /* holds a reference */
    outcome *o;                              /* owned until queued; NULL: out of memory for it */
    char *job_dir, *status, *error, *job_id; /* owned copies */
    int rc;
    char err[512];
} status_task;

static void status_task_free(status_task *st)
{
    free(st->job_dir);
    free(st->status);
    free(st->error);
    free(st->job_id);
    free(st);
}

static void status_work(spool_io_task *task)
{
    status_task *st = (status_task *)task;
    st->rc = lw_spool_set_status(st->job_dir, st->status, st->error, st->err, sizeof st->err);
}

static void status_done(spool_io_task *task, int discarded)
{
    status_task *st = (status_task *)task;
    tenant *t = st->t;
    t->spool_writes--;
    LW_ASSERT(t->spool_writes >= 0);
    if (discarded) {
        if (st->o)
            outcome_free(st->o);
    } else {
        if (st->rc) {
            lw_log_facts f = {.job = st->job_id, .tenant = t->cfg->name};
            lw_log_about(LW_LOG_ERROR, "spool.write", f, "cannot mark %s %s: %s", st->job_dir,
                         st->status, st->err);
        }
        if (st->o)
            push(t, st->o);
        worker_kick(t->w);
    }
    status_task_free(st);
    tenant_unref(t);
}

/* Writes job.json's new status, then queues `o` (may be NULL). */
static void spool_then_push(attempt *a, const char *status, const char *error, outcome *o)
{
    tenant *t = a->tenant;
    status_task *st = calloc(1, sizeof *st);
    if (st) {
        st->job_dir = strdup(a->spool_dir);
        st->status = strdup(status);
        st->error = error ? strdup(error) : NULL;
        st->job_id = strdup(a->id);
    }
    if (!st || !st->job_dir || !st->status || (error && !st->error) || !st->job_id) {
        /* No memory for the task: write it here, the order kept. */
        char err[512];
        if (st)
            status_task_free(st);
        if (lw_spool_set_status(a->spool_dir, status, error, err, sizeof err))
            lw_log_about(LW_LOG_ERROR, "spool.write", attempt_facts(a, 0), "cannot mark %s %s: %s",
                         a->spool_dir, status, err);
        if (o)
            push(t, o);
        return;
    }
    st->io.work = status_work;
    st->io.done = status_done;
    st->t = t;
    st->o = o;
    tenant_ref(t);
    t->spool_writes++;
    spool_io_submit(t->w->spool_io, &st->io, 1);
}

void outcome_handback_unstarted(attempt *a)
{
    outcome *o = outcome_new(a, "handback", "handed back at shutdown before it started");
    if (!o) {
        lw_log_about(LW_LOG_ERROR, "job.unrecorded", attempt_facts(a, 0),
                     "out of memory handing it back; its lease will expire");
        return;
    }
    push(a->tenant, o);
    worker_kick(a->tenant->w);
}

/* Decides the record for the attempt, queues it, updates spool and metrics.
 * Does not touch the running list or free anything. */
static void record_end(attempt *a, end_kind how, const char *text)
{
    tenant *t = a->tenant;
    worker *w = t->w;
    w->ended_total++;
    double secs = (double)(lw_mono_ms() - a->started_mono) / 1000.0;
    char msg[600];
    verdict v = attempt_verdict(attempt_stop_reason(a), how, text, a->attempt, a->attempts,
                                a->timeout_ms, msg, sizeof msg);
    metrics_attempt(&w->m, t->cfg->name, a->queue, a->kind, v.metric, secs);
    if (v.kind == VERDICT_DISCARD) {
        lw_log_about(
            LW_LOG_WARN, "job.lost_lease", attempt_facts(a, 1),
            "our lease was taken over (Redis unreachable for longer than --lease?); its outcome is discarded");
        return;
    }
    const char *word = v.word;
    text = v.text;
    int64_t delay = 0;
    if (v.kind == VERDICT_RETRY)
        delay = lw_backoff_ms(a->backoff_ms, a->attempt, BACKOFF_CAP_MS, lw_random64());

    lw_log_facts facts = attempt_facts(a, 0);
    facts.has_duration = 1;
    facts.duration_s = secs;
    if (v.kind == VERDICT_OK)
        lw_log_about(LW_LOG_DEBUG, "job.done", facts, "succeeded in %.3f s", secs);
    else
        lw_log_about(v.kind == VERDICT_HANDBACK ? LW_LOG_INFO : LW_LOG_WARN, "job.done", facts,
                     "%s after %.3f s: %s", word, secs, text);

    outcome *o = outcome_new(a, word, text);
    if (!o)
        /* Without memory for the record the lease will expire and the reaper
         * will retry the job: nothing is lost, an attempt is. */
        lw_log_about(LW_LOG_ERROR, "job.unrecorded", attempt_facts(a, 0),
                     "out of memory recording its outcome");
    else
        o->delay_ms = delay;
    const char *status = a->spool_dir ? v.spool_status : NULL;
    if (status)
        spool_then_push(a, status, !strcmp(status, "failed") ? text : NULL, o);
    else if (o)
        push(t, o);
}

static void unlink_running(attempt *a)
{
    worker *w = a->tenant->w;
    if (a->prev)
        a->prev->next = a->next;
    else
        w->running = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->next = a->prev = NULL;
}

void outcome_finished(attempt *a, end_kind how, const char *text)
{
    tenant *t = a->tenant;
    worker *w = t->w;
    record_end(a, how, text);
    unlink_running(a);
    slots_release(a);
    w->nrunning--;
    t->running--;
    LW_ASSERT(w->nrunning >= 0 && t->running >= 0);
    /* attempt_free may drop the tenant's last reference: nothing below
     * reads the tenant (w was read above), so no pin is needed. */
    attempt_free(a);
    worker_kick(w);
}

void outcome_abandon(attempt *a, end_kind how, const char *text)
{
    attempt_set_phase(a, PHASE_ABANDONED);
    record_end(a, how, text);
    /* Still in the running list (the thread holds it) and still a slot. */
    a->tenant->running--;
    LW_ASSERT(a->tenant->running >= 0);
    worker_kick(a->tenant->w);
}

void outcome_release_abandoned(attempt *a)
{
    worker *w = a->tenant->w;
    unlink_running(a);
    slots_release(a);
    w->nrunning--;
    attempt_free(a);
    worker_kick(w);
}

int outcomes_pending(const worker *w)
{
    for (const tenant *t = w->tenants; t; t = t->next)
        if (t->nout || t->finish_inflight || t->spool_writes)
            return 1;
    for (const tenant *t = w->retired; t; t = t->next)
        if (t->nout || t->finish_inflight || t->spool_writes)
            return 1;
    return 0;
}

/* Puts a batch back at the front of its tenant's FIFO, order kept. */
static void requeue(tenant *t, batch *b)
{
    outcome *last = b->head;
    while (last->next)
        last = last->next;
    last->next = t->out_head;
    if (!t->out_head)
        t->out_tail = &last->next;
    t->out_head = b->head;
    t->nout += b->n;
}

/* ACL refusals come back for every entry: splitting cannot help, and the
 * outcomes must wait for the operator to fix the grant. */
static int refusal_for_all(const redisReply *reply)
{
    const char *e = reply->str;
    return strncmp(e, "NOPERM", 6) == 0 ||
           strstr(e, "The user executing the script can't") != NULL || strncmp(e, "OOM", 3) == 0;
}

/* Redis refused a batch of one entry. An outcome is replaced by a small
 * failure saying so (the job must end, and its lane move on); an event, or
 * an outcome whose replacement was refused too, is dropped with a line in
 * the log: Redis will not take it. Returns 1 when `o` was consumed. */
static int refused_alone(tenant *t, outcome *o, const char *why)
{
    if (strcmp(o->word, "event") != 0 && !o->replaced) {
        char text[400];
        snprintf(text, sizeof text, "Redis refused the outcome (%s): %.300s", o->word, why);
        char *copy = strdup(text);
        if (copy) {
            lw_log_about(LW_LOG_ERROR, "job.refused",
                         (lw_log_facts){.job = o->id, .tenant = t->cfg->name},
                         "Redis refused its outcome %s: %s; recording it as failed", o->word, why);
            free(o->text);
            o->text = copy;
            o->word = "fail";
            o->replaced = 1;
            o->bytes = strlen(o->id) + strlen(o->token) + strlen(copy) + 32;
            return 0;
        }
    }
    if (strcmp(o->word, "event") == 0)
        lw_log_about(
            LW_LOG_ERROR, "event.dropped", (lw_log_facts){.job = o->id, .tenant = t->cfg->name},
            "Redis refused event %s: %s; dropped", o->event_type ? o->event_type : "?", why);
    else
        lw_log_about(
            LW_LOG_ERROR, "job.unrecorded", (lw_log_facts){.job = o->id, .tenant = t->cfg->name},
            "Redis refused even its failure record: %s; its lease will expire and the reaper will retry it",
            why);
    outcome_free(o);
    return 1;
}

static void finish_reply(lw_redis *r, redisReply *reply, void *ud)
{
    batch *b = ud;
    tenant *t = b->t;
    t->finish_inflight = 0;
    lw_finish_reply got;
    if (!reply) {
        /* Lost with the connection: sent again when Redis is ready. A batch
         * that keeps losing its connection may be what breaks it (Redis
         * closes the connection on an argument over proto-max-bulk-len,
         * often before its error reply can be read): try smaller ones; and
         * an entry too big to be anything but that (no limit of Redis is
         * below 1 MiB), alone and lost three times, is refused. */
        if (lw_redis_unconfirmed(r)) {
            /* Recorded, but not yet on --min-replicas replicas: sent again
             * until they confirm; the link and the batch are fine. The
             * repeat of an outcome the primary took finds the job ended:
             * finish.lua answers 'stale', which is then no lost lease. */
            for (outcome *o = b->head; o; o = o->next)
                o->resent = 1;
            requeue(t, b);
            t->finish_retry_at = lw_mono_ms() + (lw_redis_unconfirmed(r) == 2 ? 5000 : 200);
            return;
        }
        t->finish_nulls++;
        if (b->n > 1 && t->finish_nulls >= 2) {
            t->finish_limit = (int)((b->n + 1) / 2);
            t->finish_nulls = 0;
        } else if (b->n == 1 && t->finish_nulls >= 3 && b->head->bytes > SUSPECT_BYTES) {
            t->finish_nulls = 0;
            if (refused_alone(
                    t, b->head,
                    "Redis closed the connection each time it was sent (larger than proto-max-bulk-len?)"))
                b->head = NULL, b->n = 0;
        }
        if (b->n)
            requeue(t, b);
    } else if (lw_finish_reply_read(reply, &got, NULL, 0) != 0 || got.n_entry != b->n) {
        tenant_redis_error(t, "recording outcomes", reply);
        if (reply->type == REDIS_REPLY_ERROR && !refusal_for_all(reply) && b->n > 1) {
            /* Find the entry Redis refuses: halve, and go on at once. */
            t->finish_limit = (int)((b->n + 1) / 2);
            requeue(t, b);
        } else if (reply->type == REDIS_REPLY_ERROR && !refusal_for_all(reply)) {
            if (refused_alone(t, b->head, reply->str))
                b->head = NULL, b->n = 0;
            if (b->n)
                requeue(t, b);
            t->finish_retry_at = 0;
        } else {
            requeue(t, b);
            /* An error reply would repeat at once: pace the resends. */
            t->finish_retry_at = lw_mono_ms() + 1000;
        }
    } else {
        t->finish_nulls = 0;
        /* Back to full batches once Redis takes them again. */
        if (t->finish_limit) {
            t->finish_limit *= 2;
            if (t->finish_limit >= FINISH_BATCH)
                t->finish_limit = 0;
        }
        size_t i = 0;
        for (outcome *o = b->head, *next; o; o = next, i++) {
            next = o->next;
            lw_finish_entry e;
            lw_finish_entry_at(&got, i, &e);
            if (!strcmp(e.status.s, "stale") && strcmp(o->word, "event"))
                lw_log_about(o->resent ? LW_LOG_DEBUG : LW_LOG_WARN, "job.fenced",
                             (lw_log_facts){.job = o->id, .tenant = t->cfg->name},
                             "outcome %s refused: the attempt no longer holds the job (lease lost)",
                             o->word);
            outcome_free(o);
        }
        /* Lanes may have moved on: the next claim may find work. */
        tenant_work_maybe(t);
    }
    free(b);
    worker_kick(t->w);
    tenant_unref(t);
}

void outcome_flush(tenant *t)
{
    worker *w = t->w;
    if (!t->nout || t->finish_inflight || !lw_redis_is_ready(t->link->r))
        return;
    if (t->finish_retry_at && lw_mono_ms() < t->finish_retry_at)
        return;
    batch *b = calloc(1, sizeof *b);
    if (!b)
        return;
    lw_argv a;
    lw_argv_init(&a);
    lw_finish_keys(&a, t->prefix);
    lw_finish_argv_add(&a, &(lw_finish_argv){.prefix = t->prefix,
                                             .events_cap = t->set.events_max,
                                             .worker = w->opt->name,
                                             .keep_succeeded_s = t->set.keep_succeeded_s,
                                             .keep_failed_s = t->set.keep_failed_s,
                                             .n = 0 /* set below */});
    size_t limit = t->finish_limit > 0 ? (size_t)t->finish_limit : FINISH_BATCH, bytes = 0;
    outcome **tail = &b->head;
    while (t->out_head && b->n < limit &&
           (b->n == 0 || bytes + t->out_head->bytes <= FINISH_BYTES)) {
        outcome *o = t->out_head;
        t->out_head = o->next;
        o->next = NULL;
        *tail = o;
        tail = &o->next;
        b->n++;
        bytes += o->bytes;
        lw_finish_entry_argv_add(&a, &(lw_finish_entry_argv){.id = o->id,
                                                             .token = o->token,
                                                             .outcome = o->word,
                                                             .text = o->text,
                                                             .delay_ms = o->delay_ms,
                                                             .event_type = o->event_type});
    }
    if (!t->out_head)
        t->out_tail = &t->out_head;
    t->nout -= b->n;
    lw_finish_argv_set_n(&a, (int64_t)b->n);
    b->t = t;
    tenant_ref(t);
    t->finish_inflight = 1;
    if (lw_redis_script_durable(t->link->r, &lw_script_finish, LW_FINISH_NKEYS, &a, finish_reply,
                                b)) {
        /* Not ready after all (or OOM): undo; the next pump retries. */
        t->finish_inflight = 0;
        requeue(t, b);
        free(b);
        tenant_unref(t);
    }
    lw_argv_clear(&a);
}

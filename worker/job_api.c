/*
 * job_api.c — the lw_job_* functions of lanework/module.h. They are exported
 * from the worker executable (linked with --export-dynamic) and resolved by
 * modules at dlopen time. They run on whatever thread or process runs the
 * handler, so they only touch the attempt they are given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "state.h"

const char *lw_job_id(const lw_job *job) { return job->id; }
const char *lw_job_kind(const lw_job *job) { return job->kind; }
const char *lw_job_tenant(const lw_job *job) { return job->tenant_name; }
const char *lw_job_lane(const lw_job *job) { return job->lane; }
const char *lw_job_payload(const lw_job *job) { return job->payload; }
int lw_job_attempt(const lw_job *job) { return job->attempt; }
const char *lw_job_spool_dir(const lw_job *job) { return job->spool_dir; }

int lw_job_cancelled(const lw_job *job) { return atomic_load(&((lw_job *)job)->stop) != STOP_NONE; }

/* Results, errors and event data are bounded by --max-payload like
 * payloads: a bigger one could not be stored (Redis refuses huge
 * arguments), and retrying the whole batch of outcomes it is in would block
 * every other outcome of the tenant. Said here, where the handler hands it
 * over, so every runner gets the same answer. */

void lw_job_set_result(lw_job *job, const char *json)
{
    char *copy;
    if (!json)
        json = "null";
    size_t len = strlen(json);
    if (job->max_payload && len > job->max_payload) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "result too large: %zu bytes, more than --max-payload (%zu bytes)", len,
                 job->max_payload);
        if (!(copy = strdup(msg)))
            return;
        free(job->result);
        job->result = NULL;
        free(job->error);
        job->error = copy;
        job->oversize = 1;
        return;
    }
    /* A result must be JSON (status prints it as a value): anything else is
     * kept as a JSON string rather than refused. */
    if (lw_json_valid(json, strlen(json)))
        copy = strdup(json);
    else
        copy = lw_json_quote(json, strlen(json));
    if (!copy)
        return;
    free(job->result);
    job->result = copy;
}

void lw_job_set_error(lw_job *job, const char *message)
{
    if (job->oversize)
        return; /* keep saying why the result was dropped */
    if (!message)
        message = "";
    size_t len = strlen(message);
    static const char cut[] = " ... (error truncated at --max-payload)";
    char *copy;
    if (job->max_payload && len > job->max_payload) {
        /* The note fits only in a limit larger than itself. */
        const char *note = job->max_payload > sizeof cut ? cut : "";
        size_t keep = job->max_payload - strlen(note);
        /* Not in the middle of a UTF-8 sequence. */
        while (keep > 0 && ((unsigned char)message[keep] & 0xC0) == 0x80)
            keep--;
        if (!(copy = malloc(keep + strlen(note) + 1)))
            return;
        memcpy(copy, message, keep);
        memcpy(copy + keep, note, strlen(note) + 1);
    } else if (!(copy = strdup(message))) {
        return;
    }
    free(job->error);
    job->error = copy;
}

/* Handler events are a timeline, not a data channel: each is bounded, and
 * so is what one attempt may append in all (Redis's event stream is capped
 * by entries, not bytes, and the outcomes of every tenant wait behind a
 * flood in the finish batches). */
#define EVENT_DATA_MAX (64 * 1024)
#define EVENTS_PER_ATTEMPT 1000
#define EVENT_BYTES_PER_ATTEMPT (1024 * 1024)

void lw_job_event(lw_job *job, const char *type, const char *json_data)
{
    if (!type || !*type || !job->emit)
        return;
    if (job->events_dropped) {
        job->events_dropped++;
        return;
    }
    if (strnlen(type, 201) > 200) {
        job->emit(job, "event.refused", "{\"error\":\"event type longer than 200 bytes\"}");
        return;
    }
    size_t len = json_data ? strlen(json_data) : 0;
    size_t limit =
        job->max_payload && job->max_payload < EVENT_DATA_MAX ? job->max_payload : EVENT_DATA_MAX;
    if (job->events_sent >= EVENTS_PER_ATTEMPT ||
        job->event_bytes + (len < limit ? len : 0) > EVENT_BYTES_PER_ATTEMPT) {
        /* Said once, in the timeline; the rest of this attempt's events go. */
        char note[200];
        snprintf(
            note, sizeof note,
            "{\"error\":\"more events than one attempt may add (%d, or %d bytes of data); the rest are dropped\"}",
            EVENTS_PER_ATTEMPT, EVENT_BYTES_PER_ATTEMPT);
        job->emit(job, "event.limit", note);
        job->events_dropped = 1;
        return;
    }
    job->events_sent++;
    if (len > limit) {
        /* The event stays in the timeline; its data says why it is gone. */
        char repl[160];
        snprintf(repl, sizeof repl,
                 "{\"error\":\"event data too large\",\"bytes\":%zu,\"limit\":%zu}", len, limit);
        job->emit(job, type, repl);
        return;
    }
    job->event_bytes += len;
    job->emit(job, type, json_data);
}

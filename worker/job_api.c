/*
 * job_api.c — the lw_job_* functions of lanework/module.h. They are exported
 * from the worker executable (linked with --export-dynamic) and resolved by
 * modules at dlopen time. They run on whatever thread or process runs the
 * handler, so they only touch the attempt they are given.
 */
#include <stdlib.h>
#include <string.h>

#include "attempt.h"
#include "jsonx.h"

const char *lw_job_id(const lw_job *job) { return job->id; }
const char *lw_job_kind(const lw_job *job) { return job->kind; }
const char *lw_job_tenant(const lw_job *job) { return job->tenant_name; }
const char *lw_job_lane(const lw_job *job) { return job->lane; }
const char *lw_job_payload(const lw_job *job) { return job->payload; }
int lw_job_attempt(const lw_job *job) { return job->attempt; }
const char *lw_job_spool_dir(const lw_job *job) { return job->spool_dir; }

int lw_job_cancelled(const lw_job *job)
{
    return atomic_load(&((lw_job *)job)->stop) != STOP_NONE;
}

void lw_job_set_result(lw_job *job, const char *json)
{
    char *copy;
    if (!json) json = "null";
    /* A result must be JSON (status prints it as a value): anything else is
     * kept as a JSON string rather than refused. */
    if (lw_json_valid(json, strlen(json)))
        copy = strdup(json);
    else
        copy = lw_json_quote(json, strlen(json));
    if (!copy) return;
    free(job->result);
    job->result = copy;
}

void lw_job_set_error(lw_job *job, const char *message)
{
    char *copy = strdup(message ? message : "");
    if (!copy) return;
    free(job->error);
    job->error = copy;
}

void lw_job_event(lw_job *job, const char *type, const char *json_data)
{
    if (!type || !*type || !job->emit) return;
    job->emit(job, type, json_data);
}

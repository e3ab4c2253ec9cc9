/*
 * module_stubs.c — the job API of lanework/module.h, as the CLI exports it.
 *
 * A module resolves these functions against the program that loads it; a
 * module linked with -z now (ours are) cannot even be dlopen()ed where they
 * are missing. The CLI loads modules only to read their kinds list
 * (kinds.c) and never calls `handle`, so none of these can be reached:
 * each aborts rather than pretend to be a job.
 */
#include <stdlib.h>

#include "lanework/module.h"

const char *lw_job_id(const lw_job *job) { (void)job; abort(); }
const char *lw_job_kind(const lw_job *job) { (void)job; abort(); }
const char *lw_job_tenant(const lw_job *job) { (void)job; abort(); }
const char *lw_job_lane(const lw_job *job) { (void)job; abort(); }
const char *lw_job_payload(const lw_job *job) { (void)job; abort(); }
int lw_job_attempt(const lw_job *job) { (void)job; abort(); }
const char *lw_job_spool_dir(const lw_job *job) { (void)job; abort(); }
int lw_job_cancelled(const lw_job *job) { (void)job; abort(); }
void lw_job_set_result(lw_job *job, const char *json) { (void)job; (void)json; abort(); }
void lw_job_set_error(lw_job *job, const char *message) { (void)job; (void)message; abort(); }
void lw_job_event(lw_job *job, const char *type, const char *json_data)
{
    (void)job;
    (void)type;
    (void)json_data;
    abort();
}

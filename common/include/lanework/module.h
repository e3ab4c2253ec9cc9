/*
 * lanework/module.h — the one public interface for lanework tenant modules.
 *
 * A tenant module is a shared object that exports
 *
 *     const lw_module *lanework_module(void);
 *
 * The worker dlopen()s it once, checks `abi` against LW_MODULE_ABI and calls
 * `init` once per tenant that names it in the registry, `handle` once per
 * attempt, and `fini` when the tenant is removed or the worker stops.
 *
 * Isolation: with `--isolation fork` (the default) `handle` runs in a child
 * process forked for that attempt, so a crash or a runaway handler costs that
 * attempt only; anything `handle` changes in `state` is lost when the child
 * exits. With `--isolation thread`, `handle` runs on one of `--concurrency`
 * threads of the worker at once, so it must be thread-safe with respect to
 * `state`, and a timeout can only be honoured cooperatively (poll
 * lw_job_cancelled()). With `--isolation pool`, `handle` runs in a
 * pre-forked child that serves one attempt after another: each such child
 * calls `init` once itself (as the tenant's registry "user"; the worker's
 * own call at load still checks the config), keeps what
 * `handle` changes in `state` for its next attempts, and calls `fini`
 * when it is retired; a crash or a timeout kill still costs that attempt
 * only, and the next one gets a fresh child.
 *
 * Build against it with `pkg-config --cflags lanework-module`.
 */
#ifndef LANEWORK_MODULE_H
#define LANEWORK_MODULE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change of this header. */
#define LW_MODULE_ABI 1

typedef enum {
    LW_OK = 0,    /* the attempt succeeded */
    LW_RETRY = 1, /* the attempt failed; retried with backoff while attempts remain */
    LW_FAIL = 2   /* the job failed now; no further attempt */
} lw_status;

/* One attempt of one job. Opaque; owned by the worker and valid only during
 * the `handle` call that received it. */
typedef struct lw_job lw_job;

typedef struct lw_module {
    int abi;          /* must be LW_MODULE_ABI */
    const char *name; /* for logs */
    /* Called once per tenant. `config_json` is the tenant's "config" value as
     * JSON text ("null" when absent). Store per-tenant state in *state.
     * Return 0 on success; anything else refuses the tenant. May be NULL. */
    int (*init)(void **state, const char *tenant, const char *config_json);
    /* Releases what init made. May be NULL. */
    void (*fini)(void *state);
    /* Runs one attempt. Required. */
    lw_status (*handle)(void *state, lw_job *job);
    /* NULL-terminated list of the kinds this module handles; NULL: all kinds. */
    const char *const *kinds;
} lw_module;

/* The symbol every module exports. */
typedef const lw_module *(*lw_module_entry_fn)(void);
#define LW_MODULE_ENTRY "lanework_module"

/* Accessors. Strings are borrowed from the job and valid until `handle`
 * returns. */
const char *lw_job_id(const lw_job *job);
const char *lw_job_kind(const lw_job *job);
const char *lw_job_tenant(const lw_job *job);
const char *lw_job_lane(const lw_job *job);
const char *lw_job_payload(const lw_job *job);   /* JSON text */
int lw_job_attempt(const lw_job *job);           /* 1-based */
const char *lw_job_spool_dir(const lw_job *job); /* SPOOL/ID, or NULL unless spooled */
/* Nonzero once the job was cancelled, timed out or is being handed back,
 * or (thread isolation) once its worker could not renew the job's lease
 * for 3/4 of --lease: long handlers poll it and return early. */
int lw_job_cancelled(const lw_job *job);

/* Outcome details. Both copy their argument; a later call replaces the
 * earlier value. `json` must be valid JSON text (otherwise it is stored as a
 * JSON string). Both are bounded by the worker's --max-payload: a larger
 * result fails the attempt without retry ("result too large"), a larger
 * error is cut. */
void lw_job_set_result(lw_job *job, const char *json);
void lw_job_set_error(lw_job *job, const char *message);

/* Appends an event of the handler's own `type` (e.g. "step.created") to the
 * tenant's event stream, after the job's job.started event and before its
 * outcome event. `json_data` is JSON text or NULL, at most 64 KiB (or
 * --max-payload when smaller; larger data is replaced by an object saying
 * its size); `type` at most 200 bytes. One attempt may add at most 1000
 * events and 1 MiB of event data: past that one "event.limit" event says
 * so and the rest are dropped. */
void lw_job_event(lw_job *job, const char *type, const char *json_data);

#ifdef __cplusplus
}
#endif
#endif /* LANEWORK_MODULE_H */

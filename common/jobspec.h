/*
 * jobspec.h — a job as an enqueuer describes it (CLI flags, a --batch line,
 * a spool job.json), before it exists in Redis. Validation happens here, in
 * one place, so every entry point refuses the same bad input with the same
 * message.
 */
#ifndef LW_JOBSPEC_H
#define LW_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

typedef struct lw_job_spec {
    char *tenant;     /* owned; required */
    char *kind;       /* owned; required */
    char *queue;      /* owned; NULL: "default" */
    char *lane;       /* owned; NULL: the job's own id */
    char *id;         /* owned; NULL: a new id is made at enqueue */
    char *unique;     /* owned; NULL: none */
    char *payload;    /* owned; JSON text, NULL: "null" */
    char *spool_dir;  /* owned; the job's SPOOL/ID directory when spooled */
    int attempts;     /* 0: tenant default */
    int64_t timeout_ms;  /* 0: tenant default */
    int64_t backoff_ms;  /* -1: tenant default */
    int64_t delay_ms;    /* 0: run now */
    int64_t expires_ms;  /* 0: never expires */
    int64_t unique_for_ms; /* 0: the unique key is free once the job finished;
                              else held that long after the enqueue */
} lw_job_spec;

/* Sets every field to its "not given" value. */
void lw_job_spec_init(lw_job_spec *s);
/* Frees the owned strings and re-initialises. */
void lw_job_spec_clear(lw_job_spec *s);

/* Fills `s` from one --batch line (a JSON object with the flag names as
 * fields: tenant, kind, lane, queue, id, unique, payload (any JSON value),
 * delay, attempts, timeout, expires, unique_for (seconds)). Fields given in `s` already
 * (e.g. --tenant from the command line) are kept when the line lacks them.
 * Returns 0, or -1 with "why" in err. Unknown fields are an error. */
int lw_job_spec_from_json(lw_job_spec *s, const char *line, size_t len, char *err, size_t errlen);

/* Checks names (safe), payload (valid JSON, at most max_payload bytes),
 * numbers. Returns 0 or -1 with "what: why" in err. */
int lw_job_spec_validate(const lw_job_spec *s, int64_t max_payload, char *err, size_t errlen);

/* Takes ownership of `payload` (malloc'ed JSON text) into s->payload,
 * normalising nothing; convenience for the CLI. */
void lw_job_spec_set_payload(lw_job_spec *s, char *payload);

/* Fills attempts/timeout/backoff not given from `d` (may be NULL: built-in
 * defaults), and makes an id when there is none. Returns 0 or -1 (OOM). */
int lw_job_spec_resolve(lw_job_spec *s, const lw_job_defaults *d);

#endif

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
    char *tenant;          /* owned; required */
    char *kind;            /* owned; required */
    char *queue;           /* owned; NULL: "default" */
    char *lane;            /* owned; NULL: the job's own id */
    char *id;              /* owned; NULL: a new id is made at enqueue */
    char *unique;          /* owned; NULL: none */
    char *payload;         /* owned; JSON text, NULL: "null" */
    char *spool_dir;       /* owned; the job's SPOOL/ID directory when spooled */
    int attempts;          /* 0: tenant default */
    int64_t timeout_ms;    /* 0: tenant default */
    int64_t backoff_ms;    /* -1: tenant default */
    int64_t delay_ms;      /* 0: run now */
    int64_t expires_ms;    /* 0: never expires */
    int64_t unique_for_ms; /* 0: the unique key is free once the job finished;
                              else held that long after the enqueue */
} lw_job_spec;

/* Sets every field to its "not given" value; frees nothing (a spec that
 * owns strings goes through lw_job_spec_clear). Cannot fail. */
void lw_job_spec_init(lw_job_spec *s);
/* Frees the owned strings and re-initialises: `s` can be filled again. */
void lw_job_spec_clear(lw_job_spec *s);

/* Fills `s` from one --batch line (a JSON object with the flag names as
 * fields: tenant, kind, lane, queue, id, unique, payload (any JSON value),
 * delay, attempts, timeout, expires, unique_for (seconds)). Fields given in `s` already
 * (e.g. --tenant from the command line) are kept when the line lacks them
 * or gives them as null; the strings are copied into `s`, `line` is only
 * borrowed. Returns 0, or -1 with "why" in err: unknown or repeated fields,
 * a \u0000 in a name or field, bad JSON or types, OOM. On -1, `s` may
 * already hold some of the line's fields: the caller clears it. */
int lw_job_spec_from_json(lw_job_spec *s, const char *line, size_t len, char *err, size_t errlen);

/* Checks names (safe), payload (valid JSON, at most max_payload bytes),
 * numbers; changes nothing. Returns 0 or -1 with "what: why" in err. */
int lw_job_spec_validate(const lw_job_spec *s, int64_t max_payload, char *err, size_t errlen);

/* Takes ownership of `payload` (malloc'ed JSON text, or NULL) into
 * s->payload, freeing the one there before; checks and normalises nothing
 * (lw_job_spec_validate does). Cannot fail. */
void lw_job_spec_set_payload(lw_job_spec *s, char *payload);

/* Fills attempts/timeout/backoff not given from `d` (borrowed; NULL: the
 * built-in defaults), makes an id when there is none, and sets queue
 * ("default"), payload ("null") and lane (the id) when not given, as owned
 * copies. Returns 0 or -1 (OOM; the fields filled so far stay, owned by
 * `s`). */
int lw_job_spec_resolve(lw_job_spec *s, const lw_job_defaults *d);

#endif

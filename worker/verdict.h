/*
 * verdict.h — what an ended attempt means for its job: a pure decision,
 * from why the worker stopped it (if it did) and how its handler ended, to
 * the record finish.lua is asked to make, the text it keeps, the metric,
 * and the spool file's status. No worker state, no I/O: unit-tested alone
 * (tests/unit/test_verdict.c).
 *
 * Types only below this line's users: attempt.h takes stop_reason and
 * end_kind from here.
 */
#ifndef LW_VERDICT_H
#define LW_VERDICT_H

#include <stddef.h>
#include <stdint.h>

/* Why the worker stops an attempt before its handler ends by itself. */
typedef enum {
    STOP_NONE = 0,
    STOP_TIMEOUT,  /* the job's timeout passed: failed attempt, retried */
    STOP_CANCEL,   /* `lanework cancel`: ends cancelled */
    STOP_HANDBACK, /* worker shutdown: back to the lane head, no attempt counted */
    STOP_LOST,     /* our lease was taken over: the outcome no longer counts */
    STOP_FENCE,    /* thread isolation: the lease went unproven (fence.h); the
                      job is handed back unless the handler still succeeds */
    STOP_RESOURCE  /* the handler could not start for want of fds, processes
                      or memory: handed back, no attempt counted */
} stop_reason;

/* How the handler ended, as the runner saw it. */
typedef enum {
    END_OK,    /* LW_OK / exit 0 */
    END_RETRY, /* LW_RETRY, crash, other exit status: a failed attempt */
    END_FAIL,  /* LW_FAIL / exit 65 / no handler: failed without retry */
} end_kind;

typedef enum {
    VERDICT_DISCARD,   /* the lease went to another attempt: nothing to record */
    VERDICT_OK,        /* succeeded */
    VERDICT_HANDBACK,  /* back to its lane's head, no attempt counted */
    VERDICT_CANCELLED, /* ended cancelled */
    VERDICT_RETRY,     /* a failed attempt: retried while attempts remain */
    VERDICT_FAIL       /* failed now, no retry */
} verdict_kind;

typedef struct verdict {
    verdict_kind kind;
    const char *word;         /* finish.lua's name of it ("ok", "handback", ...); NULL: discard */
    const char *metric;       /* the outcome label of lanework_jobs_total */
    const char *text;         /* the result (ok) or the error kept: the handler's,
                           else a default; may point into the caller's buffer */
    const char *spool_status; /* job.json's status after it: "done", "failed",
                                 or NULL (a retry or hand-back leaves "processing") */
} verdict;

/* The verdict on an attempt that ended as `how` (with the handler's text,
 * may be NULL) after the worker asked it to stop for `why` (STOP_NONE: it
 * did not). attempt/attempts: the attempt's number and the job's maximum;
 * timeout_ms: the job's timeout, for the message. `buf` holds a message
 * the verdict may point to. */
verdict attempt_verdict(stop_reason why, end_kind how, const char *text, int attempt, int attempts,
                        int64_t timeout_ms, char *buf, size_t buflen);

#endif

/*
 * verdict.c — what an ended attempt means for its job (verdict.h).
 *
 * The order of the checks is the decision: a lost lease overrides
 * everything (another attempt owns the job now); a success stands even if
 * a stop was asked meanwhile (the work is done); then the worker's reason
 * to stop; then the handler's own word.
 */
#include "verdict.h"

#include <stdio.h>

static verdict make(verdict_kind kind, const char *text, int last_attempt)
{
    static const char *const WORD[] = {NULL, "ok", "handback", "cancelled", "retry", "fail"};
    static const char *const METRIC[] = {"lost",      "succeeded", "handed_back",
                                         "cancelled", "retried",   "failed"};
    verdict v = {kind, WORD[kind], METRIC[kind], text, NULL};
    if (kind == VERDICT_OK)
        v.spool_status = "done";
    else if (kind == VERDICT_FAIL || kind == VERDICT_CANCELLED ||
             (kind == VERDICT_RETRY && last_attempt))
        v.spool_status = "failed"; /* the last retry fails the job */
    return v;
}

verdict attempt_verdict(stop_reason why, end_kind how, const char *text, int attempt, int attempts,
                        int64_t timeout_ms, char *buf, size_t buflen)
{
    int last = attempt >= attempts;
    if (why == STOP_LOST)
        return make(VERDICT_DISCARD, NULL, 0);
    if (how == END_OK)
        return make(VERDICT_OK, text ? text : "null", last);
    switch (why) {
    case STOP_HANDBACK: return make(VERDICT_HANDBACK, "handed back at shutdown", last);
    case STOP_FENCE:
        return make(VERDICT_HANDBACK,
                    "stopped: its lease could not be renewed (Redis unreachable); handed back",
                    last);
    case STOP_RESOURCE:
        return make(VERDICT_HANDBACK, text ? text : "the worker could not start it; handed back",
                    last);
    case STOP_CANCEL: return make(VERDICT_CANCELLED, "cancelled while running", last);
    case STOP_TIMEOUT:
        snprintf(buf, buflen, "timed out after %.3g s", (double)timeout_ms / 1000.0);
        return make(VERDICT_RETRY, buf, last);
    case STOP_NONE:
    case STOP_LOST: break;
    }
    if (how == END_FAIL)
        return make(VERDICT_FAIL, text ? text : "handler returned LW_FAIL", last);
    return make(VERDICT_RETRY, text ? text : "handler returned LW_RETRY", last);
}

/* phase.c — the moves an attempt's phase may make (phase.h). */
#include "phase.h"

int attempt_phase_allowed(attempt_phase from, attempt_phase to)
{
    switch (to) {
    case PHASE_STARTING: return 0;
    case PHASE_RUNNING: return from == PHASE_STARTING;
    /* GRACE again: a stop's grace re-armed (the fence's request gave way
     * to a timeout). */
    case PHASE_GRACE: return from == PHASE_RUNNING || from == PHASE_GRACE;
    case PHASE_ABANDONED: return from == PHASE_RUNNING || from == PHASE_GRACE;
    }
    return 0;
}

const char *attempt_phase_name(attempt_phase p)
{
    switch (p) {
    case PHASE_STARTING: return "starting";
    case PHASE_RUNNING: return "running";
    case PHASE_GRACE: return "grace";
    case PHASE_ABANDONED: return "abandoned";
    }
    return "?";
}

/*
 * slots.h — the worker's --concurrency slots (slots.c). A slot number names
 * the attempt in renewals (with its serial) and its entry in the fence
 * table; the free ones are a stack in state.h's worker.
 */
#ifndef LW_SLOTS_H
#define LW_SLOTS_H

#include "state.h"

/* Gives a free slot to `a` (the fence slot of the same number) and a fresh
 * serial. The caller checked w->nfree > 0. */
void slots_take(worker *w, attempt *a);
/* Gives a's slot back (the attempt is leaving the running list); its fence
 * entry is cleared if its process was not reaped. No-op without a slot. */
void slots_release(attempt *a);

#endif

/* slots.c — taking and giving back --concurrency slots (slots.h). */
#include "slots.h"

#include "fence.h"
#include "invariant.h"

void slots_take(worker *w, attempt *a)
{
    LW_ASSERT(w->nfree > 0 && w->nfree <= w->opt->concurrency);
    a->slot = w->free_slots[--w->nfree];
    w->slots[a->slot] = a;
    a->serial = ++w->next_serial;
}

void slots_release(attempt *a)
{
    worker *w = a->tenant->w;
    if (a->slot < 0)
        return;
    LW_ASSERT(w->slots[a->slot] == a && w->nfree < w->opt->concurrency); /* each slot freed once */
    if (w->fence && a->pid > 0 && !a->reaped)
        fence_clear(w->fence, a->slot);
    w->slots[a->slot] = NULL;
    w->free_slots[w->nfree++] = a->slot;
    a->slot = -1;
}

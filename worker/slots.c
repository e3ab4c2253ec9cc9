/* slots.c — taking and giving back --concurrency slots (slots.h). */
#include "slots.h"

#include "fence.h"

void slots_take(worker *w, attempt *a)
{
    a->slot = w->free_slots[--w->nfree];
    w->slots[a->slot] = a;
    a->serial = ++w->next_serial;
}

void slots_release(attempt *a)
{
    worker *w = a->tenant->w;
    if (a->slot < 0) return;
    if (w->fence && a->pid > 0 && !a->reaped) fence_clear(w->fence, a->slot);
    w->slots[a->slot] = NULL;
    w->free_slots[w->nfree++] = a->slot;
    a->slot = -1;
}

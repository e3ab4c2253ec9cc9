/* grow.c — doubling arrays (grow.h). */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

int lw_grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    /* A count that could not be multiplied out is an OOM, not a wrap. */
    if (size && c > SIZE_MAX / size)
        return -1;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

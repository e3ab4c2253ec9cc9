/*
 * grow.h — growing a malloc'd array by doubling (grow.c).
 */
#ifndef LW_GROW_H
#define LW_GROW_H

#include <stddef.h>

/* Makes room in *p (an array of *cap elements of `size` bytes, or NULL with
 * *cap 0) for element number n: doubles *cap (16 at first) when n == *cap.
 * Returns 0, or -1 on OOM with *p and *cap unchanged (still the caller's). */
int lw_grow(void **p, size_t *cap, size_t n, size_t size);

#endif

/*
 * runners.h — the runners the worker has, in the order they are asked
 * whether they handle a kind (runners.c). The interface is runner.h.
 */
#ifndef LW_RUNNERS_H
#define LW_RUNNERS_H

#include <stddef.h>

#include "runner.h"

/* The runner for a's kind (borrowed, static), or NULL: no handler. */
const runner *runners_find(const attempt *a);
/* Opens every runner's worker-wide resources. 0, or -1 with err. */
int runners_open(worker *w, char *err, size_t errlen);
/* Closes them (worker_free). */
void runners_close(worker *w);

#endif

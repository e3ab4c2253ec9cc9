/*
 * presence.h — the worker's entry in the fleet's directory (presence.c).
 */
#ifndef LW_PRESENCE_H
#define LW_PRESENCE_H

#include "state.h"

/* Writes the entry now (after asking Redis for its time, which scores
 * it); nothing when the home Redis is away or the worker is exiting. */
void presence_update(worker *w);
/* The counts or the state differ from what the directory shows: write them
 * within a quarter second (one write for a burst of changes), not at the
 * next heartbeat. Cheap to call on every loop pass. */
void presence_soon(worker *w);
/* Removes this worker from the directory; returns 1 when a reply will
 * call worker_exit_ready(), 0 when nothing was sent (Redis away, or no
 * memory for the command). */
int presence_remove(worker *w);

#endif

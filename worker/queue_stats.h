/*
 * queue_stats.h — the queue gauges of /metrics, read from Redis by this
 * worker for the tenants and queues it serves (queue_stats.c):
 *   lanework_queue_jobs{tenant,queue,state}    queued, scheduled, active; paused 0/1
 *   lanework_queue_oldest_seconds{tenant,queue} age of the oldest runnable job
 * A partitioned tenant is one series per (tenant, queue), summed over its
 * partitions.
 */
#ifndef LW_QUEUE_STATS_H
#define LW_QUEUE_STATS_H

#include <stddef.h>

#include "state.h"

/* Starts the reader (a timer; reads happen only while /metrics is
 * scraped). 0, or -1 when out of memory. */
int queue_stats_start(worker *w);
/* Stops it; reads in flight complete without effect. Call before the
 * links are closed. */
void queue_stats_free(worker *w);
/* GET /metrics arrived: keeps the reads going (or starts them again). */
void queue_stats_scraped(worker *w);
/* Appends the gauges' text exposition; 0, or -1 when out of memory. */
int queue_stats_render(worker *w, char **buf, size_t *len, size_t *cap);

#endif

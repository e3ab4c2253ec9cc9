/*
 * metrics.h — the worker's counters, rendered in Prometheus text format by
 * http.c:
 *   lanework_jobs_total{tenant,kind,outcome}      attempts by how they ended
 *   lanework_attempt_duration_seconds{tenant}     histogram
 *   lanework_active_jobs                          attempts running now
 *   lanework_redis_errors_total{redis}            connection failures, error replies
 *   lanework_claims_total, lanework_claimed_jobs_total
 * Only the loop thread touches them.
 */
#ifndef LW_METRICS_H
#define LW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_NBUCKETS 15
extern const double metrics_buckets[METRICS_NBUCKETS];

typedef struct metric_jobs {
    char *tenant, *kind, *outcome; /* owned */
    uint64_t n;
    struct metric_jobs *next;
} metric_jobs;

typedef struct metric_hist {
    char *tenant;                       /* owned */
    uint64_t buckets[METRICS_NBUCKETS]; /* cumulative counts are made at render time */
    uint64_t count;
    double sum;
    struct metric_hist *next;
} metric_hist;

typedef struct metrics {
    metric_jobs *jobs;
    metric_hist *hists;
    uint64_t claims, claimed;
} metrics;

/* Counts one attempt that ended with `outcome` after `seconds`. */
void metrics_attempt(metrics *m, const char *tenant, const char *kind, const char *outcome,
                     double seconds);
/* Appends the text exposition of m (not the gauges the worker adds) to a
 * growing buffer; returns 0 or -1 on OOM. */
int metrics_render(const metrics *m, char **buf, size_t *len, size_t *cap);
/* Frees every series of m (m itself is the caller's). */
void metrics_clear(metrics *m);

/* printf into a growing buffer (used by the renderers). */
int metrics_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

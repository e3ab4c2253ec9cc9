/*
 * metrics.h — the worker's counters, rendered in Prometheus text format by
 * http.c:
 *   lanework_jobs_total{tenant,queue,kind,outcome}   attempts by how they ended
 *   lanework_attempt_duration_seconds{tenant,queue}  histogram
 *   lanework_queue_wait_seconds{tenant,queue}        histogram: runnable to start
 *   lanework_active_jobs                             attempts running now
 *   lanework_redis_errors_total{redis}               connection failures, error replies
 *   lanework_claims_total, lanework_claimed_jobs_total
 * and the queue gauges read from Redis (queue_stats.c), which use
 * metrics_appendf and metrics_esc. Only the loop thread touches them.
 */
#ifndef LW_METRICS_H
#define LW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_NBUCKETS 15
extern const double metrics_buckets[METRICS_NBUCKETS];
#define METRICS_WAIT_NBUCKETS 16
extern const double metrics_wait_buckets[METRICS_WAIT_NBUCKETS];
#define METRICS_MAX_BUCKETS 16

typedef struct metric_jobs {
    char *tenant, *queue, *kind, *outcome; /* owned */
    uint64_t n;
    struct metric_jobs *next;  /* render order */
    struct metric_jobs *hnext; /* the same hash bucket */
} metric_jobs;

typedef struct metric_hist {
    char *tenant, *queue;                  /* owned */
    uint64_t buckets[METRICS_MAX_BUCKETS]; /* cumulative counts are made at render time */
    uint64_t count;
    double sum;
    struct metric_hist *next;  /* render order */
    struct metric_hist *hnext; /* the same hash bucket */
} metric_hist;

/* Kinds with a label of their own, per tenant: a kind comes from the job,
 * which a tenant writes (enqueue.lua takes any string), so past this many,
 * and for a kind that is not a safe name (common/names.h: no quote, no
 * newline, no invalid UTF-8, at most 200 bytes), lanework_jobs_total
 * counts under kind="_other" -- a tenant enqueuing a million kinds cannot
 * grow the worker's memory and every scrape without bound, nor break the
 * page's format for every tenant. */
#define METRICS_MAX_KINDS 64
#define METRICS_OTHER_KIND "_other"

typedef struct metric_kinds {
    char *tenant; /* owned */
    size_t n;
    char *kinds[METRICS_MAX_KINDS]; /* owned: those with their own label */
    struct metric_kinds *next;      /* every tenant's */
    struct metric_kinds *hnext;     /* the same hash bucket */
} metric_kinds;

/* Buckets of the series' hash tables: an attempt's series is found in O(1)
 * however many tenants x queues a worker serves (a list walk per attempt
 * was thousands of strcmp with 1,000 tenants). */
#define METRICS_HASH 1024

typedef struct metrics {
    metric_jobs *jobs;
    metric_hist *hists; /* attempt durations */
    metric_hist *waits; /* queue waits */
    /* Hash tables over the three lists, allocated at first use (NULL
     * before; if that fails, the lists are walked). */
    metric_jobs **jobs_h;
    metric_hist **hists_h, **waits_h;
    metric_kinds *kinds, **kinds_h; /* the kinds labelled, per tenant */
    uint64_t claims, claimed;
    int64_t scraped_mono; /* lw_mono_ms() of the latest GET /metrics; 0: never */
} metrics;

/* Counts one attempt of (tenant, queue) that ended with `outcome` after
 * `seconds` (kind: labelled as itself or METRICS_OTHER_KIND, above). */
void metrics_attempt(metrics *m, const char *tenant, const char *queue, const char *kind,
                     const char *outcome, double seconds);
/* Counts one attempt that started `seconds` after its job became runnable
 * (claim.lua's wait_ms). */
void metrics_wait(metrics *m, const char *tenant, const char *queue, double seconds);
/* Appends the text exposition of m (not the gauges the worker adds) to a
 * growing buffer; returns 0 or -1 on OOM. */
int metrics_render(const metrics *m, char **buf, size_t *len, size_t *cap);
/* Frees every series of m (m itself is the caller's). */
void metrics_clear(metrics *m);

/* printf into a growing buffer (used by the renderers). */
int metrics_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* s as a label value (backslash, double quote and newline escaped) in
 * out[0..outlen), cut short if need be; returns out. */
const char *metrics_esc(char *out, size_t outlen, const char *s);

#endif

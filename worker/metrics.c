/* metrics.c — counters and the histogram, and their text exposition. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_buckets[METRICS_NBUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                  1,     2.5,   5,    10,    30,   60,  300};

static metric_jobs *jobs_entry(metrics *m, const char *tenant, const char *kind,
                               const char *outcome)
{
    for (metric_jobs *e = m->jobs; e; e = e->next)
        if (!strcmp(e->tenant, tenant) && !strcmp(e->kind, kind) && !strcmp(e->outcome, outcome))
            return e;
    metric_jobs *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->tenant = strdup(tenant);
    e->kind = strdup(kind);
    e->outcome = strdup(outcome);
    if (!e->tenant || !e->kind || !e->outcome) {
        free(e->tenant), free(e->kind), free(e->outcome), free(e);
        return NULL;
    }
    e->next = m->jobs;
    m->jobs = e;
    return e;
}

static metric_hist *hist_entry(metrics *m, const char *tenant)
{
    for (metric_hist *h = m->hists; h; h = h->next)
        if (!strcmp(h->tenant, tenant))
            return h;
    metric_hist *h = calloc(1, sizeof *h);
    if (!h || !(h->tenant = strdup(tenant))) {
        free(h);
        return NULL;
    }
    h->next = m->hists;
    m->hists = h;
    return h;
}

void metrics_attempt(metrics *m, const char *tenant, const char *kind, const char *outcome,
                     double seconds)
{
    metric_jobs *e = jobs_entry(m, tenant, kind, outcome);
    if (e)
        e->n++;
    metric_hist *h = hist_entry(m, tenant);
    if (!h)
        return;
    for (int i = 0; i < METRICS_NBUCKETS; i++)
        if (seconds <= metrics_buckets[i]) {
            h->buckets[i]++;
            break;
        }
    h->count++;
    h->sum += seconds;
}

int metrics_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if (*buf && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return 0;
        }
        size_t want = *cap ? *cap * 2 : 4096;
        while (want < *len + (size_t)n + 1)
            want *= 2;
        char *grown = realloc(*buf, want);
        if (!grown)
            return -1;
        *buf = grown;
        *cap = want;
    }
}

int metrics_render(const metrics *m, char **buf, size_t *len, size_t *cap)
{
    int rc = 0;
    rc |=
        metrics_appendf(buf, len, cap,
                        "# HELP lanework_jobs_total Attempts ended, by tenant, kind and outcome.\n"
                        "# TYPE lanework_jobs_total counter\n");
    for (const metric_jobs *e = m->jobs; e; e = e->next)
        rc |= metrics_appendf(
            buf, len, cap, "lanework_jobs_total{tenant=\"%s\",kind=\"%s\",outcome=\"%s\"} %llu\n",
            e->tenant, e->kind, e->outcome, (unsigned long long)e->n);
    rc |= metrics_appendf(buf, len, cap,
                          "# HELP lanework_attempt_duration_seconds Duration of attempts.\n"
                          "# TYPE lanework_attempt_duration_seconds histogram\n");
    for (const metric_hist *h = m->hists; h; h = h->next) {
        uint64_t cum = 0;
        for (int i = 0; i < METRICS_NBUCKETS; i++) {
            cum += h->buckets[i];
            rc |= metrics_appendf(
                buf, len, cap,
                "lanework_attempt_duration_seconds_bucket{tenant=\"%s\",le=\"%g\"} %llu\n",
                h->tenant, metrics_buckets[i], (unsigned long long)cum);
        }
        rc |= metrics_appendf(
            buf, len, cap,
            "lanework_attempt_duration_seconds_bucket{tenant=\"%s\",le=\"+Inf\"} %llu\n"
            "lanework_attempt_duration_seconds_sum{tenant=\"%s\"} %.6f\n"
            "lanework_attempt_duration_seconds_count{tenant=\"%s\"} %llu\n",
            h->tenant, (unsigned long long)h->count, h->tenant, h->sum, h->tenant,
            (unsigned long long)h->count);
    }
    rc |= metrics_appendf(buf, len, cap,
                          "# HELP lanework_claims_total Claim calls sent to Redis.\n"
                          "# TYPE lanework_claims_total counter\n"
                          "lanework_claims_total %llu\n"
                          "# HELP lanework_claimed_jobs_total Jobs claimed.\n"
                          "# TYPE lanework_claimed_jobs_total counter\n"
                          "lanework_claimed_jobs_total %llu\n",
                          (unsigned long long)m->claims, (unsigned long long)m->claimed);
    return rc ? -1 : 0;
}

void metrics_clear(metrics *m)
{
    while (m->jobs) {
        metric_jobs *e = m->jobs;
        m->jobs = e->next;
        free(e->tenant), free(e->kind), free(e->outcome), free(e);
    }
    while (m->hists) {
        metric_hist *h = m->hists;
        m->hists = h->next;
        free(h->tenant), free(h);
    }
}

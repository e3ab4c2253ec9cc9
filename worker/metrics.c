/* metrics.c — counters and the histograms, and their text exposition. */
#include "metrics.h"

#include "names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_buckets[METRICS_NBUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                  1,     2.5,   5,    10,    30,   60,  300};
/* Queue waits run from milliseconds (a worker with free slots) to hours (a
 * backlog nobody scales for). */
const double metrics_wait_buckets[METRICS_WAIT_NBUCKETS] = {
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600};

/* Label values longer than this are cut (names are short in practice). */
#define LABEL_MAX 512

/* FNV-1a over the label values, each followed by a 0 byte. */
static size_t hash_labels(const char *const *v, int n)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)v[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h *= 1099511628211ULL;
    }
    return (size_t)(h % METRICS_HASH);
}

static metric_jobs *jobs_find(metrics *m, const char *tenant, const char *queue, const char *kind,
                              const char *outcome, size_t *bucket)
{
    const char *v[4] = {tenant, queue, kind, outcome};
    size_t b = *bucket = hash_labels(v, 4);
    if (!m->jobs_h && !m->jobs) /* at first use only: every entry is in it or none */
        m->jobs_h = calloc(METRICS_HASH, sizeof *m->jobs_h);
    for (metric_jobs *e = m->jobs_h ? m->jobs_h[b] : m->jobs; e; e = m->jobs_h ? e->hnext : e->next)
        if (!strcmp(e->tenant, tenant) && !strcmp(e->queue, queue) && !strcmp(e->kind, kind) &&
            !strcmp(e->outcome, outcome))
            return e;
    return NULL;
}

/* The label of `kind` for a series tenant does not have yet: the kind
 * itself while the tenant has fewer than METRICS_MAX_KINDS of them and it
 * is a safe name, else METRICS_OTHER_KIND. */
static const char *kind_label(metrics *m, const char *tenant, const char *kind)
{
    if (!lw_name_is_safe(kind))
        return METRICS_OTHER_KIND;
    const char *v[1] = {tenant};
    size_t b = hash_labels(v, 1);
    if (!m->kinds_h && !m->kinds)
        m->kinds_h = calloc(METRICS_HASH, sizeof *m->kinds_h);
    metric_kinds *k = m->kinds_h ? m->kinds_h[b] : m->kinds;
    for (; k; k = m->kinds_h ? k->hnext : k->next)
        if (!strcmp(k->tenant, tenant))
            break;
    if (!k) {
        if (!(k = calloc(1, sizeof *k)) || !(k->tenant = strdup(tenant))) {
            free(k);
            return METRICS_OTHER_KIND;
        }
        k->next = m->kinds;
        m->kinds = k;
        if (m->kinds_h) {
            k->hnext = m->kinds_h[b];
            m->kinds_h[b] = k;
        }
    }
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->kinds[i], kind))
            return kind;
    if (k->n == METRICS_MAX_KINDS || !(k->kinds[k->n] = strdup(kind)))
        return METRICS_OTHER_KIND;
    k->n++;
    return kind;
}

static metric_jobs *jobs_entry(metrics *m, const char *tenant, const char *queue, const char *kind,
                               const char *outcome)
{
    size_t b;
    metric_jobs *e = jobs_find(m, tenant, queue, kind, outcome, &b);
    if (e)
        return e;
    const char *label = kind_label(m, tenant, kind);
    if (label != kind && (e = jobs_find(m, tenant, queue, label, outcome, &b)))
        return e;
    kind = label;
    if (!(e = calloc(1, sizeof *e)))
        return NULL;
    e->tenant = strdup(tenant);
    e->queue = strdup(queue);
    e->kind = strdup(kind);
    e->outcome = strdup(outcome);
    if (!e->tenant || !e->queue || !e->kind || !e->outcome) {
        free(e->tenant), free(e->queue), free(e->kind), free(e->outcome), free(e);
        return NULL;
    }
    e->next = m->jobs;
    m->jobs = e;
    if (m->jobs_h) {
        e->hnext = m->jobs_h[b];
        m->jobs_h[b] = e;
    }
    return e;
}

static metric_hist *hist_entry(metric_hist **list, metric_hist ***index, const char *tenant,
                               const char *queue)
{
    const char *v[2] = {tenant, queue};
    size_t b = hash_labels(v, 2);
    if (!*index && !*list) /* at first use only: every entry is in it or none */
        *index = calloc(METRICS_HASH, sizeof **index);
    for (metric_hist *h = *index ? (*index)[b] : *list; h; h = *index ? h->hnext : h->next)
        if (!strcmp(h->tenant, tenant) && !strcmp(h->queue, queue))
            return h;
    metric_hist *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->tenant = strdup(tenant);
    h->queue = strdup(queue);
    if (!h->tenant || !h->queue) {
        free(h->tenant), free(h->queue), free(h);
        return NULL;
    }
    h->next = *list;
    *list = h;
    if (*index) {
        h->hnext = (*index)[b];
        (*index)[b] = h;
    }
    return h;
}

static void observe(metric_hist *h, const double *bounds, int nb, double v)
{
    if (!h)
        return;
    for (int i = 0; i < nb; i++)
        if (v <= bounds[i]) {
            h->buckets[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

void metrics_attempt(metrics *m, const char *tenant, const char *queue, const char *kind,
                     const char *outcome, double seconds)
{
    metric_jobs *e = jobs_entry(m, tenant, queue, kind, outcome);
    if (e)
        e->n++;
    observe(hist_entry(&m->hists, &m->hists_h, tenant, queue), metrics_buckets, METRICS_NBUCKETS,
            seconds);
}

void metrics_wait(metrics *m, const char *tenant, const char *queue, double seconds)
{
    observe(hist_entry(&m->waits, &m->waits_h, tenant, queue), metrics_wait_buckets,
            METRICS_WAIT_NBUCKETS, seconds < 0 ? 0 : seconds);
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

const char *metrics_esc(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < outlen; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    if (outlen)
        out[o < outlen ? o : outlen - 1] = '\0';
    return out;
}

static int render_hists(const metric_hist *list, const char *name, const char *help,
                        const double *bounds, int nb, char **buf, size_t *len, size_t *cap)
{
    int rc =
        metrics_appendf(buf, len, cap, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    char tq[LABEL_MAX], qq[LABEL_MAX];
    for (const metric_hist *h = list; h; h = h->next) {
        metrics_esc(tq, sizeof tq, h->tenant);
        metrics_esc(qq, sizeof qq, h->queue);
        uint64_t cum = 0;
        for (int i = 0; i < nb; i++) {
            cum += h->buckets[i];
            rc |= metrics_appendf(buf, len, cap,
                                  "%s_bucket{tenant=\"%s\",queue=\"%s\",le=\"%g\"} %llu\n", name,
                                  tq, qq, bounds[i], (unsigned long long)cum);
        }
        rc |= metrics_appendf(buf, len, cap,
                              "%s_bucket{tenant=\"%s\",queue=\"%s\",le=\"+Inf\"} %llu\n"
                              "%s_sum{tenant=\"%s\",queue=\"%s\"} %.6f\n"
                              "%s_count{tenant=\"%s\",queue=\"%s\"} %llu\n",
                              name, tq, qq, (unsigned long long)h->count, name, tq, qq, h->sum,
                              name, tq, qq, (unsigned long long)h->count);
    }
    return rc;
}

int metrics_render(const metrics *m, char **buf, size_t *len, size_t *cap)
{
    int rc = 0;
    rc |= metrics_appendf(
        buf, len, cap,
        "# HELP lanework_jobs_total Attempts ended, by tenant, queue, kind and outcome.\n"
        "# TYPE lanework_jobs_total counter\n");
    char tq[LABEL_MAX], qq[LABEL_MAX], kq[LABEL_MAX], oq[LABEL_MAX];
    for (const metric_jobs *e = m->jobs; e; e = e->next)
        rc |= metrics_appendf(
            buf, len, cap,
            "lanework_jobs_total{tenant=\"%s\",queue=\"%s\",kind=\"%s\",outcome=\"%s\"} %llu\n",
            metrics_esc(tq, sizeof tq, e->tenant), metrics_esc(qq, sizeof qq, e->queue),
            metrics_esc(kq, sizeof kq, e->kind), metrics_esc(oq, sizeof oq, e->outcome),
            (unsigned long long)e->n);
    rc |= render_hists(m->hists, "lanework_attempt_duration_seconds", "Duration of attempts.",
                       metrics_buckets, METRICS_NBUCKETS, buf, len, cap);
    rc |= render_hists(
        m->waits, "lanework_queue_wait_seconds",
        "Time from a job becoming runnable (enqueue, retry, hand-back, lost lease, end of its delay or backoff) to the start of the attempt, per attempt started here.",
        metrics_wait_buckets, METRICS_WAIT_NBUCKETS, buf, len, cap);
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

static void hists_free(metric_hist **list)
{
    while (*list) {
        metric_hist *h = *list;
        *list = h->next;
        free(h->tenant), free(h->queue), free(h);
    }
}

void metrics_clear(metrics *m)
{
    while (m->jobs) {
        metric_jobs *e = m->jobs;
        m->jobs = e->next;
        free(e->tenant), free(e->queue), free(e->kind), free(e->outcome), free(e);
    }
    hists_free(&m->hists);
    hists_free(&m->waits);
    while (m->kinds) {
        metric_kinds *k = m->kinds;
        m->kinds = k->next;
        for (size_t i = 0; i < k->n; i++)
            free(k->kinds[i]);
        free(k->tenant), free(k);
    }
    free(m->jobs_h), free(m->hists_h), free(m->waits_h), free(m->kinds_h);
    m->jobs_h = NULL;
    m->hists_h = m->waits_h = NULL;
    m->kinds_h = NULL;
}

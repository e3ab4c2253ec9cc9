/*
 * holds.c — the dashboard's breaker: servers that failed lately.
 *
 * A page thread that met a Redis that does not answer (a connect or a
 * reply past its time bound) holds that server here: for
 * hold_ms no connection of any thread sharing the table connects to it
 * again, and each says why at once. Without it every page, in every
 * thread, would wait its own timeout. Only timeouts hold: a refused
 * connect or a closed connection is quick to meet again, and is often a
 * restart that should be seen back at once. One entry per URL and Cluster slot,
 * HOLDS_MAX at most (the oldest goes); guarded by a mutex.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "timefmt.h"

#define HOLDS_MAX 64

typedef struct hold {
    char *url_text; /* owned */
    int slot;
    int64_t until; /* lw_mono_ms */
    char why[256];
} hold;

struct cli_holds {
    pthread_mutex_t mu;
    int hold_ms;
    hold h[HOLDS_MAX];
    int n;
};

struct cli_holds *cli_holds_new(int hold_ms)
{
    struct cli_holds *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return NULL;
    }
    t->hold_ms = hold_ms;
    return t;
}

void cli_holds_free(struct cli_holds *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++)
        free(t->h[i].url_text);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* The entry of k's server, or NULL. Under t->mu. */
static hold *find(struct cli_holds *t, const cli_conn *k)
{
    for (int i = 0; i < t->n; i++)
        if (t->h[i].slot == k->slot && strcmp(t->h[i].url_text, k->url_text) == 0)
            return &t->h[i];
    return NULL;
}

void cli_hold(cli_conn *k, const char *why)
{
    struct cli_holds *t = k->holds;
    if (!t || !k->url_text || !why || !strstr(why, "timed out"))
        return;
    pthread_mutex_lock(&t->mu);
    hold *e = find(t, k);
    if (!e) {
        char *u = strdup(k->url_text);
        if (u) {
            if (t->n == HOLDS_MAX) { /* the oldest hold goes */
                int old = 0;
                for (int i = 1; i < t->n; i++)
                    if (t->h[i].until < t->h[old].until)
                        old = i;
                free(t->h[old].url_text);
                t->h[old] = t->h[--t->n];
            }
            e = &t->h[t->n++];
            e->url_text = u;
            e->slot = k->slot;
        }
    }
    if (e) {
        e->until = lw_mono_ms() + t->hold_ms;
        snprintf(e->why, sizeof e->why, "%s", why);
    }
    pthread_mutex_unlock(&t->mu);
}

int cli_held(const cli_conn *k, char *why, size_t whylen)
{
    struct cli_holds *t = k->holds;
    if (!t || !k->url_text)
        return 0;
    int held = 0;
    pthread_mutex_lock(&t->mu);
    hold *e = find(t, k);
    int64_t now = lw_mono_ms();
    if (e && now < e->until) {
        held = 1;
        snprintf(why, whylen, "%s (not tried again for %llds)", e->why,
                 (long long)((e->until - now + 999) / 1000));
    }
    pthread_mutex_unlock(&t->mu);
    return held;
}

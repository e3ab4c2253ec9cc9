/*
 * spool_watch.c — inotify on the spools and the periodic rescan
 * (spool_watch.h).
 *
 * One inotify descriptor (non-blocking, close-on-exec) on the loop. The
 * table maps watch descriptors to what they watch: a spool (by path; the
 * tenants that use it are looked up per event, so a reload needs no
 * bookkeeping here beyond spool_watch_sync) or a job directory waiting for
 * its job.json. inotify_add_watch is a path lookup of a directory that was
 * just created or configured, not file I/O; the reading stays on the spool
 * I/O threads.
 */
#include "spool_watch.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"
#include "spool_pending.h"
#include "state.h"

/* MOVE_SELF / DELETE_SELF: the spool directory itself was renamed away or
 * removed (an operator's `mv spool spool.old; mkdir spool`): the watch
 * would stay on the old inode, which no job reaches any more. */
#define SPOOL_MASK (IN_MOVED_TO | IN_CREATE | IN_ONLYDIR | IN_MOVE_SELF | IN_DELETE_SELF)
#define JOBDIR_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW)
/* Job directories watched for their job.json at once, at most. */
#define JOBDIRS_MAX 1024

typedef struct watch_entry {
    int wd;
    int used;    /* spools: still wanted by a tenant (sync) */
    char *spool; /* owned */
    char *name;  /* owned: the job directory's name; NULL: the spool itself */
    dev_t dev;   /* spools: the directory watched (a path may come to name another) */
    ino_t ino;
} watch_entry;

struct spool_watch {
    struct worker *w;
    int fd; /* -1: no inotify */
    struct event *ev;
    struct event *rescan;
    watch_entry *e;
    size_t n, cap;
    size_t njobdirs;
    lw_log_gate gate;
};

static void entry_drop(spool_watch *sw, size_t i)
{
    if (sw->e[i].name)
        sw->njobdirs--;
    free(sw->e[i].spool);
    free(sw->e[i].name);
    sw->e[i] = sw->e[--sw->n];
}

static int wd_shared(const spool_watch *sw, size_t skip, int wd)
{
    for (size_t i = 0; i < sw->n; i++)
        if (i != skip && sw->e[i].wd == wd)
            return 1;
    return 0;
}

static int entry_add(spool_watch *sw, int wd, const char *spool, const char *name)
{
    if (sw->n == sw->cap) {
        size_t c = sw->cap ? sw->cap * 2 : 16;
        watch_entry *g = realloc(sw->e, c * sizeof *g);
        if (!g)
            return -1;
        sw->e = g;
        sw->cap = c;
    }
    watch_entry *x = &sw->e[sw->n];
    x->wd = wd;
    x->used = 1;
    x->dev = 0;
    x->ino = 0;
    x->spool = strdup(spool);
    x->name = name ? strdup(name) : NULL;
    if (!x->spool || (name && !x->name)) {
        free(x->spool), free(x->name);
        return -1;
    }
    if (name)
        sw->njobdirs++;
    sw->n++;
    return 0;
}

static void on_event(spool_watch *sw, const struct inotify_event *ev)
{
    worker *w = sw->w;
    if (ev->mask & IN_Q_OVERFLOW) {
        lw_log(lw_log_gate_level(&sw->gate, "overflow", LW_LOG_WARN, 60000), "spool.watch",
               "spool watch: inotify's event queue overflowed; rescanning every spool");
        spool_pending_rescan_all(w, SPOOL_RESCAN);
        return;
    }
    for (size_t i = 0; i < sw->n; i++) {
        watch_entry *x = &sw->e[i];
        if (x->wd != ev->wd)
            continue;
        if (ev->mask & IN_IGNORED) {
            /* Its directory is gone (or the watch removed): spools are
             * watched again by the next sync. */
            entry_drop(sw, i);
            i--;
            continue;
        }
        if (!x->name && (ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF))) {
            /* The spool's path may name a new directory already: watch
             * what it names now, and read it whole. */
            if (!wd_shared(sw, i, x->wd))
                inotify_rm_watch(sw->fd, x->wd);
            entry_drop(sw, i);
            spool_watch_sync(sw);
            spool_pending_rescan_all(w, SPOOL_RESCAN);
            return;
        }
        if (!ev->len)
            continue;
        if (!x->name) {
            spool_pending_name_all(w, x->spool, ev->name);
        } else if (!strcmp(ev->name, "job.json")) {
            spool_pending_name_all(w, x->spool, x->name);
            if (!wd_shared(sw, i, x->wd))
                inotify_rm_watch(sw->fd, x->wd);
            entry_drop(sw, i);
            i--;
        }
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    spool_watch *sw = arg;
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            on_event(sw, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

void spool_watch_sync(spool_watch *sw)
{
    if (!sw || sw->fd < 0)
        return;
    for (size_t i = 0; i < sw->n; i++)
        if (!sw->e[i].name)
            sw->e[i].used = 0;
    for (tenant *t = sw->w->tenants; t; t = t->next)
        for (size_t k = 0; k < tenant_nspools(t); k++) {
            const char *dir = t->cfg->spools[k].dir;
            size_t i = 0;
            struct stat st;
            int have = stat(dir, &st) == 0;
            while (i < sw->n && (sw->e[i].name || strcmp(sw->e[i].spool, dir)))
                i++;
            if (i < sw->n && have && (sw->e[i].dev != st.st_dev || sw->e[i].ino != st.st_ino)) {
                /* The path names another directory now: re-watch. */
                if (!wd_shared(sw, i, sw->e[i].wd))
                    inotify_rm_watch(sw->fd, sw->e[i].wd);
                entry_drop(sw, i);
                i = sw->n;
            }
            if (i < sw->n) {
                sw->e[i].used = 1;
                continue;
            }
            int wd = inotify_add_watch(sw->fd, dir, SPOOL_MASK);
            if (wd < 0) {
                lw_log(
                    lw_log_gate_level(&sw->gate, dir, LW_LOG_WARN, 3600000), "spool.watch",
                    "tenant %s: spool %s: cannot watch it (%s); new entries are found by the rescan every %.0f s",
                    t->cfg->name, dir, strerror(errno),
                    (double)sw->w->opt->spool_rescan_ms / 1000.0);
                continue;
            }
            if (entry_add(sw, wd, dir, NULL)) {
                if (!wd_shared(sw, sw->n, wd))
                    inotify_rm_watch(sw->fd, wd);
            } else if (have) {
                sw->e[sw->n - 1].dev = st.st_dev;
                sw->e[sw->n - 1].ino = st.st_ino;
            }
        }
    for (size_t i = 0; i < sw->n; i++) {
        if (sw->e[i].name || sw->e[i].used)
            continue;
        if (!wd_shared(sw, i, sw->e[i].wd))
            inotify_rm_watch(sw->fd, sw->e[i].wd);
        entry_drop(sw, i);
        i--;
    }
}

int spool_watch_job_dir(spool_watch *sw, const char *spool, const char *name)
{
    if (!sw || sw->fd < 0)
        return -1;
    for (size_t i = 0; i < sw->n; i++)
        if (sw->e[i].name && !strcmp(sw->e[i].name, name) && !strcmp(sw->e[i].spool, spool))
            return 0;
    if (sw->njobdirs >= JOBDIRS_MAX)
        return -1;
    size_t len = strlen(spool) + strlen(name) + 2;
    char *path = malloc(len);
    if (!path)
        return -1;
    snprintf(path, len, "%s/%s", spool, name);
    int wd = inotify_add_watch(sw->fd, path, JOBDIR_MASK);
    free(path);
    if (wd < 0)
        return -1;
    if (entry_add(sw, wd, spool, name)) {
        if (!wd_shared(sw, sw->n, wd))
            inotify_rm_watch(sw->fd, wd);
        return -1;
    }
    return 1;
}

static void arm_rescan(spool_watch *sw)
{
    int64_t ms = sw->w->opt->spool_rescan_ms;
    if (ms <= 0)
        return;
    /* Jitter: workers started together do not all scan the same spool at
     * the same instant, every time. */
    ms += (int64_t)(lw_random64() % (uint64_t)(ms / 4 + 1));
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(sw->rescan, &tv);
}

static void rescan_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    spool_watch *sw = arg;
    spool_watch_sync(sw);
    spool_pending_rescan_all(sw->w, SPOOL_RESCAN);
    arm_rescan(sw);
}

spool_watch *spool_watch_new(worker *w)
{
    spool_watch *sw = calloc(1, sizeof *sw);
    if (!sw)
        return NULL;
    sw->w = w;
    if (!(sw->rescan = evtimer_new(w->base, rescan_cb, sw))) {
        free(sw);
        return NULL;
    }
    sw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (sw->fd < 0) {
        lw_log(LW_LOG_WARN, "spool.watch",
               "inotify unavailable (%s): new spool entries are found by the rescan every %.0f s",
               strerror(errno), (double)w->opt->spool_rescan_ms / 1000.0);
    } else if (!(sw->ev = event_new(w->base, sw->fd, EV_READ | EV_PERSIST, read_cb, sw)) ||
               event_add(sw->ev, NULL)) {
        if (sw->ev)
            event_free(sw->ev);
        sw->ev = NULL;
        close(sw->fd);
        sw->fd = -1;
    }
    arm_rescan(sw);
    return sw;
}

void spool_watch_free(spool_watch *sw)
{
    if (!sw)
        return;
    if (sw->ev)
        event_free(sw->ev);
    if (sw->fd >= 0)
        close(sw->fd);
    event_free(sw->rescan);
    while (sw->n)
        entry_drop(sw, sw->n - 1);
    free(sw->e);
    free(sw);
}

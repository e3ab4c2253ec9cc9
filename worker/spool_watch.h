/*
 * spool_watch.h — noticing new spool entries while the worker runs.
 *
 * inotify on each spool directory (IN_MOVED_TO: a directory renamed into
 * place, as `enqueue --spool` does; IN_CREATE: one made in place) names
 * the entry, which spool_scan.c then reads. A job directory that appears
 * before its job.json is watched itself (IN_CLOSE_WRITE, IN_MOVED_TO)
 * until job.json is there. The fallbacks for whatever inotify cannot see
 * (a spool created after start, a network file system, a full event
 * queue): a full rescan every --spool-rescan seconds (+0-25 % jitter),
 * and one whenever a tenant's Redis comes back (tenants.c).
 */
#ifndef LW_SPOOL_WATCH_H
#define LW_SPOOL_WATCH_H

struct worker;
typedef struct spool_watch spool_watch;

/* Starts the watcher and the rescan timer of w. NULL only on OOM; without
 * inotify it says so once and relies on the rescan. */
spool_watch *spool_watch_new(struct worker *w);
/* Watches every spool of the serving tenants and drops watches no tenant
 * needs any more (start, SIGHUP, each rescan: a spool that could not be
 * watched is tried again). */
void spool_watch_sync(spool_watch *sw);
/* Watches job directory SPOOL/NAME for its job.json. Returns 1 when the
 * watch is new, 0 when it existed, -1 when it cannot be had (the rescan
 * will find the job). */
int spool_watch_job_dir(spool_watch *sw, const char *spool, const char *name);
/* Closes the inotify fd and the rescan timer. NULL is ignored. */
void spool_watch_free(spool_watch *sw);

#endif

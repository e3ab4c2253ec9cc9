/*
 * spool.h — pending job directories (CONTRACT section 8).
 *
 * A spool is a directory of job directories SPOOL/ID/job.json. The file holds
 * at least {"job_id": ID, "status": "queued"} and optionally "lane", "queue",
 * "payload", and the job's own options as a --batch line names them:
 * "attempts", "timeout", "delay", "expires", "unique", "unique_for"
 * (seconds). `lanework enqueue --spool` writes every option it was given,
 * so that whichever enqueue creates the job -- its own or a worker's scan
 * that saw the entry first -- creates the same job. Every change of the file is a write of
 * SPOOL/ID/.job.json.tmp.PID.N followed by rename(2) over job.json, so a reader sees the old or the new
 * file, never a torn one; fields this code does not know are kept.
 */
#ifndef LW_SPOOL_H
#define LW_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "jobspec.h"

typedef struct lw_spool_job {
    char *job_id;  /* owned; equals the directory name */
    char *status;  /* owned: "queued", "processing", "done", "failed", or another word */
    char *lane;    /* owned or NULL */
    char *queue;   /* owned or NULL */
    char *payload; /* owned JSON text or NULL */
    char *error;   /* owned or NULL */
    char *unique;  /* owned or NULL */
    int attempts;  /* 0: not given */
    int64_t timeout_ms, delay_ms, expires_ms, unique_for_ms; /* 0: not given */
} lw_spool_job;

/* Frees the owned strings and zeroes `j`; safe on a zeroed job. */
void lw_spool_job_clear(lw_spool_job *j);

/* Parses job.json text (borrowed; strict JSON). `expect_id` (may be NULL)
 * must equal "job_id". Returns 0 with *out filled (owned strings: the caller
 * frees them with lw_spool_job_clear), or -1 with "why" in err and *out
 * zeroed (nothing to free). */
int lw_spool_job_parse(const char *text, size_t len, const char *expect_id, lw_spool_job *out,
                       char *err, size_t errlen);

/* The largest job.json the worker reads (the max_bytes of its reads and
 * scans); a bigger file is a bad entry, not a job. */
#define LW_SPOOL_FILE_MAX (16 * 1024 * 1024)

/* Reads SPOOL/ID/job.json with the safety rules: ID a safe name, SPOOL/ID a
 * real directory (not a symlink), job.json a regular file (not a symlink) of
 * at most max_bytes. Returns 0, or -1 with "why" in err and errno ENOENT
 * when SPOOL/ID or its job.json does not exist (yet), EBADMSG when job.json
 * does not parse (it may be half-written), EINVAL otherwise. *out as for
 * lw_spool_job_parse: the caller's to clear on 0, zeroed on -1. */
int lw_spool_read(const char *spool, const char *id, size_t max_bytes, lw_spool_job *out, char *err,
                  size_t errlen);

/* Rewrites SPOOL/ID/job.json with "status" set to `status` and "error" set to
 * `error` (removed when NULL), keeping every other field, by
 * write-temp-and-rename. Returns 0 or -1 with "why" in err and errno the
 * failed write's, rename's or sync's (ENOSPC, EROFS, ...; EINVAL when the
 * file itself is the problem). */
int lw_spool_set_status(const char *job_dir, const char *status, const char *error, char *err,
                        size_t errlen);

/* Creates SPOOL/ID/job.json for `s` (borrowed; s->id required): status
 * "queued", the id, payload (compacted; NULL: null) and the options given
 * (lane, queue, attempts, timeout, delay, expires, unique, unique_for),
 * atomically: the directory is made under a temp name with job.json in it,
 * synced, then renamed to ID (never over an existing one) and the spool
 * synced. Returns 0, or -1 with "why" in err and errno EEXIST when SPOOL/ID
 * exists already, EINVAL for an unsafe id or payload that is not JSON,
 * ENOMEM, or the failed call's errno; nothing is left behind on -1 except
 * when the final sync fails (the entry then exists). */
int lw_spool_create(const char *spool, const lw_job_spec *s, char *err, size_t errlen);

/* Removes SPOOL/ID/job.json and the directory SPOOL/ID (which must hold
 * nothing else), then syncs the spool: for a job lw_spool_create made that
 * was then refused. Returns 0 or -1 with "why" in err (an unsafe id, a
 * missing entry, a directory holding more, a failed sync). */
int lw_spool_remove(const char *spool, const char *id, char *err, size_t errlen);

/* Calls `visit` for every entry of `spool` in name order. Entries whose
 * name is unsafe, that are symlinks, not directories, or whose job.json is
 * missing/malformed are reported through `bad` (with the entry name and why)
 * and not visited; entries that vanish meanwhile and the temp directories of
 * lw_spool_create are skipped silently. `job` is the visitor's until it
 * returns: it may take strings from it (setting the fields NULL), the rest
 * is freed here. Either callback may be NULL. Returns the number of entries
 * visited, or -1 with err when the spool itself cannot be read (or OOM while
 * listing it). */
typedef void (*lw_spool_visit_fn)(void *ud, const char *spool, lw_spool_job *job);
typedef void (*lw_spool_bad_fn)(void *ud, const char *spool, const char *entry, const char *why);
int lw_spool_scan(const char *spool, size_t max_bytes, lw_spool_visit_fn visit, lw_spool_bad_fn bad,
                  void *ud, char *err, size_t errlen);

#endif

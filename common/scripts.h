/*
 * scripts.h — the Lua scripts, one per job state change (common/scripts/).
 * Each is embedded at build time twice: as an EVAL body (lib.lua in front,
 * its SHA1 computed then, so callers can EVALSHA and SCRIPT LOAD on
 * NOSCRIPT) and as a function of the one function library (lib.lua once,
 * then every script: FUNCTION LOAD once per server, then FCALL, which skips
 * building lib.lua's closures on every call). Callers FCALL where the
 * server took the library, and EVALSHA where FUNCTION LOAD is refused (an
 * ACL user without it, a Redis before 7): the same code either way. KEYS/ARGV/reply of each are declared
 * in the "--@" interface block at the top of its .lua file; callers build
 * and read them only through what is generated from it (script_args.h,
 * script_replies.h), never by position.
 */
#ifndef LW_SCRIPTS_H
#define LW_SCRIPTS_H

#include <stddef.h>

typedef struct lw_script {
    const char *name; /* "claim" */
    const char *body; /* Lua source, lib.lua included */
    size_t len;
    const char *sha1;     /* 40 hex digits */
    const char *function; /* its FCALL name in lw_library: "lw_<hash>_claim" */
} lw_script;

/* The function library of every script. Its name and every function's
 * carry the hash of its text: two versions of lanework loaded side by side
 * (an upgrade in progress) never replace each other's functions. */
typedef struct lw_function_library {
    const char *name; /* "lanework_<hash>" */
    const char *text; /* "#!lua name=..." */
    size_t len;
    const char *probe; /* "lw_<hash>_loaded": FCALL probe 0 answers `name` where it is loaded */
} lw_function_library;

extern const lw_function_library lw_library;

extern const lw_script lw_script_enqueue;
extern const lw_script lw_script_claim;
extern const lw_script lw_script_finish;
extern const lw_script lw_script_renew;
extern const lw_script lw_script_reap;
extern const lw_script lw_script_cancel;
extern const lw_script lw_script_retry;
extern const lw_script lw_script_fsck;     /* lanework fsck: checks and repairs */
extern const lw_script lw_script_settings; /* workers publish tenant settings */
extern const lw_script lw_script_known;  /* partition 0 answers for ids from before partitioning */
extern const lw_script lw_script_pause;  /* lanework pause / resume: a queue, fleet-wide */
extern const lw_script lw_script_delete; /* lanework delete, purge: jobs that ended or wait */

/* NULL-terminated list of every script, for SCRIPT LOAD at connect. */
extern const lw_script *const lw_scripts_all[];

#endif

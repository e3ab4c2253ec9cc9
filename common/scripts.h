/*
 * scripts.h — the Lua scripts, one per job state change (common/scripts/).
 * Each is embedded at build time with common/scripts/lib.lua in front of it
 * and its SHA1 computed then, so callers can EVALSHA first and fall back to
 * EVAL (or SCRIPT LOAD) on NOSCRIPT. KEYS/ARGV/reply of each are declared
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
    const char *sha1; /* 40 hex digits */
} lw_script;

extern const lw_script lw_script_enqueue;
extern const lw_script lw_script_claim;
extern const lw_script lw_script_finish;
extern const lw_script lw_script_renew;
extern const lw_script lw_script_reap;
extern const lw_script lw_script_cancel;
extern const lw_script lw_script_retry;
extern const lw_script lw_script_fsck;     /* lanework fsck: checks and repairs */
extern const lw_script lw_script_settings; /* workers publish tenant settings */

/* NULL-terminated list of every script, for SCRIPT LOAD at connect. */
extern const lw_script *const lw_scripts_all[];

#endif

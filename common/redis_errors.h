/*
 * redis_errors.h — what some Redis error replies mean for running the
 * scripts, shared by both Redis layers (redis_sync.c, redis_async.c). Pure:
 * they read the reply's text only.
 */
#ifndef LW_REDIS_ERRORS_H
#define LW_REDIS_ERRORS_H

#include <stddef.h>

/* 1 when error reply s says an FCALL found no such function: the server
 * lost the library (restarted empty, FUNCTION FLUSH or DELETE). The
 * function did not run. */
int lw_redis_no_function(const char *s);

/* 1 when a FUNCTION LOAD of lw_library left the server with it: no error
 * (reply_error NULL), or "Library 'lanework_<hash>' already exists" (loaded
 * before, by us or by an operator). Any other error is a refusal, including
 * "Function ... already exists" (another library holds one of our names):
 * the caller runs EVALSHA. */
int lw_redis_library_taken(const char *reply_error);

/* 1 when a reply to lw_library's probe says the server has the library:
 * its name (a function of the probe's name in another library answers
 * something else). */
int lw_redis_probe_says_loaded(int is_string, const char *str, size_t len);

#endif

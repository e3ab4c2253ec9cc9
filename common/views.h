/*
 * views.h — what users see: a job record or an event entry from Redis turned
 * into the JSON objects of CONTRACT section 4.
 */
#ifndef LW_VIEWS_H
#define LW_VIEWS_H

#include <stddef.h>

/* Builds the `lanework status` object from a job hash given as HGETALL
 * field/value pairs (fv[0]=field, fv[1]=value, ...; nfv strings, lens in
 * fvlen). Fields missing from the record print as null; a payload or result
 * that is not valid JSON prints as a JSON string. Returns malloc'ed compact
 * JSON text (caller frees), or NULL when the record lacks its id or on OOM.
 * The arguments are borrowed for the call. */
char *lw_view_job(const char *tenant, const char *const *fv, const size_t *fvlen, size_t nfv);

/* Builds the `lanework events` object from a stream entry: its id and its
 * field/value pairs (as lw_view_job; borrowed). Returns malloc'ed compact JSON
 * text (caller frees) or NULL on OOM. */
char *lw_view_event(const char *entry_id, const char *const *fv, const size_t *fvlen, size_t nfv);

/* 1 when status is terminal (succeeded, failed, cancelled, expired), else 0
 * (also for NULL). */
int lw_status_is_terminal(const char *status);

#endif

/*
 * names.h — what a safe name is: tenant, job id, spool entry, queue, lane,
 * kind. Letters, digits, '-', '_', '.'; not empty, not starting with '.',
 * at most LW_NAME_MAX bytes. Safe names can be used as file names and inside
 * Redis keys without escaping.
 */
#ifndef LW_NAMES_H
#define LW_NAMES_H

#define LW_NAME_MAX 200

/* 1 when `s` is a safe name, else 0 (also for NULL). Locale-independent. */
int lw_name_is_safe(const char *s);

#endif

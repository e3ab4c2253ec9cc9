/*
 * log.h — one line per event on stderr, as text or as one JSON object.
 *
 *   text: 2026-11-22T08:03:00.123Z info  worker.quiet SIGTSTP: claiming nothing more
 *   json: {"ts":"2026-...","level":"info","event":"worker.quiet","msg":"SIGTSTP: ..."}
 *
 * A line about a job (lw_log_about) carries the job's facts as fields, so a
 * log collector can select by them: `key=value` before the message in text
 * (quoted when the value has a space, a quote, '=' or a control
 * character), members of the object in JSON:
 *
 *   text: ... warn  job.done job=abc tenant=acme kind=exam queue=default
 *             lane=L1 attempt=1 attempts=3 worker=w1 duration_s=2.001 failed: boom
 *   json: {"ts":...,"event":"job.done","job":"abc","tenant":"acme",...,
 *          "attempt":1,"attempts":3,"worker":"w1","duration_s":2.001,"msg":"failed: boom"}
 *
 * Every line is written with a single write(2), so lines from threads and
 * forked children never interleave. Never pass a password: log URLs through
 * lw_url.redacted.
 */
#ifndef LW_LOG_H
#define LW_LOG_H

#include <stdint.h>

typedef enum { LW_LOG_ERROR = 0, LW_LOG_WARN = 1, LW_LOG_INFO = 2, LW_LOG_DEBUG = 3 } lw_log_level;

/* Sets the process-wide level and format (json nonzero: JSON lines); until
 * called, info and text. Atomic: threads logging meanwhile see the old or the
 * new setting. */
void lw_log_setup(lw_log_level level, int json);
/* Parses "error", "warn", "info", "debug" (exactly: lowercase). Returns 0
 * with *out set, or -1 (*out untouched) if unknown or NULL. */
int lw_log_level_parse(const char *s, lw_log_level *out);
/* 1 when a line at `level` would be written. */
int lw_log_enabled(lw_log_level level);

/* Writes one line when `level` is enabled: `event` is a short dotted name
 * ("job.failed", "redis.reconnect"), the message is printf-formatted;
 * control characters in it are escaped. Thread- and fork-safe as the top
 * says. Never fails visibly: out of memory, a shorter line says so; a failed
 * write(2) is dropped (there is nowhere left to report it). */
void lw_log(lw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The facts of the job a line is about. Fields left NULL (strings), 0
 * (attempt, attempts) or without has_duration are not written. All
 * borrowed for the call. */
typedef struct lw_log_facts {
    const char *job, *tenant, *kind, *queue, *lane, *worker;
    int attempt, attempts;
    int has_duration;
    double duration_s;
} lw_log_facts;

/* lw_log with the facts as fields (above; borrowed, copied into the line);
 * the message need not repeat them. */
void lw_log_about(lw_log_level level, const char *event, lw_log_facts facts, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A gate for a message that may repeat every few seconds (a refusal that
 * will not go away by itself, like an ACL denial): the first occurrence is
 * logged at its level, identical repeats within `every_ms` at debug level,
 * so a stuck condition costs one line a period, not one line a retry. */
typedef struct lw_log_gate {
    char last[160]; /* the text last let through */
    int64_t at_ms;  /* mono ms when it was */
} lw_log_gate;

/* The level to log `text` at: `level` when it is news (not the last text let
 * through, or every_ms passed since), LW_LOG_DEBUG otherwise. A zeroed gate
 * has seen nothing. Texts are compared on their first 159 bytes (a copy is
 * kept in the gate); one gate is not for concurrent use by several threads.
 * Cannot fail. */
lw_log_level lw_log_gate_level(lw_log_gate *g, const char *text, lw_log_level level,
                               int64_t every_ms);
/* Forgets the last text (the condition cleared): the next one is news.
 * Cannot fail. */
void lw_log_gate_reset(lw_log_gate *g);

#endif

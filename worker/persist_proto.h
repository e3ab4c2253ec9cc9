/*
 * persist_proto.h — the lines of the persistent-handler protocol (CONTRACT
 * section 11), pure: building what the worker writes, parsing what a
 * handler process answers (persist_proto.c, tests/unit/test_persist_proto.c).
 * The process is tenant code: every line it writes is checked here before
 * anything of it is used.
 */
#ifndef LW_PERSIST_PROTO_H
#define LW_PERSIST_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* What a job line says (all borrowed; spool_dir may be NULL). */
typedef struct persist_job {
    const char *id, *tenant, *kind, *queue, *lane, *payload, *spool_dir;
    int attempt, attempts;
    int64_t timeout_ms;
} persist_job;

/* The job line, '\n'-terminated, malloc'ed (length in *len), or NULL on
 * OOM. The payload (JSON text) is compacted when it holds a newline, so the
 * line stays one line; a payload that is not JSON becomes null. Whole
 * seconds of timeout are written as an integer. */
char *persist_job_line(const persist_job *j, size_t *len);
/* The cancel line for job `id`, malloc'ed ('\n'-terminated), or NULL. */
char *persist_cancel_line(const char *id, size_t *len);

typedef enum { PERSIST_EVENT, PERSIST_RESULT, PERSIST_ERROR } persist_type;

/* One answer line, parsed. Strings are owned (persist_msg_clear). */
typedef struct persist_msg {
    persist_type type;
    char *event;  /* EVENT: its name, non-empty */
    char *data;   /* EVENT: its data as JSON text (byte for byte), NULL for none/null */
    char *result; /* RESULT: JSON text byte for byte ("null" when absent) */
    char *error;  /* ERROR: the text (a non-string value: its JSON text), NULL when absent */
    int retry;    /* ERROR: 1 unless "retry": false */
} persist_msg;

/* Parses line[0..len) (without its '\n'). 0: *m filled; 1: a blank line
 * (ignore it); -1: not the protocol, with a one-line reason in why (it
 * quotes the start of the line). *m needs persist_msg_clear after 0 only. */
int persist_parse_line(const char *line, size_t len, persist_msg *m, char *why, size_t whylen);
/* Frees what persist_parse_line put in *m. */
void persist_msg_clear(persist_msg *m);

#endif

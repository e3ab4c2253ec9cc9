/*
 * fuzz_jobspec.c — job JSON as a --batch line carries it (common/jobspec.c):
 * lw_job_spec_from_json, then lw_job_spec_validate and lw_job_spec_resolve
 * on what it accepted. The span walker of common/jsonx.c that takes the
 * payload's exact text is exercised through it.
 *
 * The input is the line. What must hold when it is accepted:
 *  - the line is a JSON object (cJSON agrees);
 *  - each string field holds the member's value; a field the line lacks (or
 *    gives as null) keeps what the spec held before (--tenant on the
 *    command line);
 *  - the payload is strict JSON, compact (compacting it again changes
 *    nothing), and means the same as the line's payload member;
 *  - names and strings are taken whole: no member name, and no string field
 *    but the payload (kept as text), holds a \u0000 escape, which cJSON
 *    would decode into a NUL byte and so cut the C string short;
 *  - the numbers are in range (0..10 years, attempts >= 1 when given);
 *  - a spec that validates still validates once resolved, with every
 *    default filled in.
 * A refusal leaves a non-empty message.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "jobspec.h"
#include "jsonx.h"

#define TEN_YEARS_MS INT64_C(315360000000)

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What field `name` of `s` must be after a successful parse, given what it
 * held before (`before`). */
static void check_string(const cJSON *root, const char *name, const char *got, const char *before)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) {
        FUZZ_CHECK(same_str(got, before));
    } else {
        FUZZ_CHECK(cJSON_IsString(v));
        FUZZ_CHECK(got != NULL && strcmp(got, v->valuestring) == 0);
    }
}

static void check_payload(const cJSON *root, const char *payload, const char *before)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "payload");
    if (!v) {
        FUZZ_CHECK(same_str(payload, before));
        return;
    }
    FUZZ_CHECK(payload != NULL);
    size_t n = strlen(payload);
    FUZZ_CHECK(lw_json_valid(payload, n));
    char *again = lw_json_compact(payload, n);
    FUZZ_CHECK(again != NULL && strcmp(again, payload) == 0);
    free(again);
    cJSON *p = cJSON_Parse(payload);
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(fuzz_same_json(p, v));
    cJSON_Delete(p);
}

/* No member name and no member value but the payload holds U+0000. */
static void check_whole(const char *line, size_t len)
{
    size_t pos = 0;
    lw_json_member m;
    while (lw_json_next_member(line, len, &pos, &m) == 1) {
        FUZZ_CHECK(fuzz_nul_escape(m.key, m.klen) == NULL);
        if (!lw_json_key_is(&m, "payload"))
            FUZZ_CHECK(fuzz_nul_escape(m.val, m.vlen) == NULL);
    }
}

static void check_accepted(const uint8_t *data, size_t size, const lw_job_spec *s,
                           const lw_job_spec *before)
{
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    FUZZ_CHECK(root != NULL && cJSON_IsObject(root));
    FUZZ_CHECK(lw_json_valid((const char *)data, size));
    check_whole((const char *)data, size);
    check_string(root, "tenant", s->tenant, before->tenant);
    check_string(root, "kind", s->kind, before->kind);
    check_string(root, "queue", s->queue, before->queue);
    check_string(root, "lane", s->lane, before->lane);
    check_string(root, "id", s->id, before->id);
    check_string(root, "unique", s->unique, before->unique);
    check_payload(root, s->payload, before->payload);
    cJSON_Delete(root);
    FUZZ_CHECK(s->attempts == before->attempts || s->attempts >= 1);
    FUZZ_CHECK(s->timeout_ms == before->timeout_ms ||
               (s->timeout_ms > 0 && s->timeout_ms <= TEN_YEARS_MS));
    FUZZ_CHECK(s->delay_ms >= 0 && s->delay_ms <= TEN_YEARS_MS);
    FUZZ_CHECK(s->expires_ms >= 0 && s->expires_ms <= TEN_YEARS_MS);
    FUZZ_CHECK(s->backoff_ms == before->backoff_ms);
}

static void check_resolve(lw_job_spec *s)
{
    char err[256];
    /* A payload over a small limit is refused by size, with a message. */
    if (s->payload && strlen(s->payload) > 8 && lw_job_spec_validate(s, 8, err, sizeof err) == 0)
        FUZZ_CHECK(0);
    if (lw_job_spec_validate(s, 1 << 20, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(lw_job_spec_resolve(s, NULL) == 0);
    if (lw_job_spec_validate(s, 1 << 20, err, sizeof err) != 0) {
        fprintf(stderr, "valid before resolve, not after: %s\n", err);
        FUZZ_CHECK(0);
    }
    FUZZ_CHECK(s->id && s->queue && s->lane && s->payload);
    FUZZ_CHECK(s->attempts >= 1 && s->timeout_ms > 0 && s->backoff_ms >= 0);
}

/* Parses the line into a spec that starts as `before` (copied). */
static void run(const uint8_t *data, size_t size, const lw_job_spec *before)
{
    lw_job_spec s = *before;
    char err[256];
    memset(err, 'x', sizeof err);
#define DUP(f) s.f = before->f ? strdup(before->f) : NULL
    DUP(tenant);
    DUP(kind);
    DUP(queue);
    DUP(lane);
    DUP(id);
    DUP(unique);
    DUP(payload);
    DUP(spool_dir);
#undef DUP
    if (lw_job_spec_from_json(&s, (const char *)data, size, err, sizeof err) == 0) {
        check_accepted(data, size, &s, before);
        check_resolve(&s);
    } else {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
    }
    lw_job_spec_clear(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *raw, size_t size)
{
    char *copy = fuzz_exact(raw, size);
    const uint8_t *data = (const uint8_t *)copy;
    lw_job_spec fresh, given;
    lw_job_spec_init(&fresh);
    run(data, size, &fresh);

    /* As with --tenant on the command line: what the line lacks stays. */
    lw_job_spec_init(&given);
    given.tenant = "cli-tenant";
    given.kind = "cli-kind";
    given.payload = "[1,2]";
    given.attempts = 7;
    given.timeout_ms = 1500;
    run(data, size, &given);
    free(copy);
    return 0;
}

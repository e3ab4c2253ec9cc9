/*
 * pool_wire.c — encoding and reading the job frame of a pool child
 * (pool_wire.h).
 */
#include "pool_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"

#define NUMBERS 6
#define STRINGS 6 /* before the payload */

char *pool_wire_job(const attempt *a, size_t *len)
{
    char nums[NUMBERS][24];
    snprintf(nums[0], sizeof nums[0], "%llu", (unsigned long long)a->serial);
    snprintf(nums[1], sizeof nums[1], "%d", a->attempt);
    snprintf(nums[2], sizeof nums[2], "%d", a->attempts);
    snprintf(nums[3], sizeof nums[3], "%lld", (long long)a->timeout_ms);
    snprintf(nums[4], sizeof nums[4], "%lld", (long long)a->backoff_ms);
    snprintf(nums[5], sizeof nums[5], "%zu", a->max_payload);
    const char *strs[STRINGS] = {a->id,   a->kind,  a->tenant_name,
                                 a->lane, a->queue, a->spool_dir ? a->spool_dir : ""};
    const char *payload = a->payload ? a->payload : "null";
    size_t body = strlen(payload);
    for (int i = 0; i < NUMBERS; i++)
        body += strlen(nums[i]) + 1;
    for (int i = 0; i < STRINGS; i++)
        body += strlen(strs[i] ? strs[i] : "") + 1;
    if (body > UINT32_MAX)
        return NULL;
    char *buf = malloc(LW_FRAME_HEAD + body);
    if (!buf)
        return NULL;
    uint32_t blen = (uint32_t)body;
    buf[0] = 'J';
    memcpy(buf + 1, &blen, sizeof blen);
    char *p = buf + LW_FRAME_HEAD;
    for (int i = 0; i < NUMBERS; i++) {
        size_t n = strlen(nums[i]) + 1;
        memcpy(p, nums[i], n);
        p += n;
    }
    for (int i = 0; i < STRINGS; i++) {
        const char *s = strs[i] ? strs[i] : "";
        size_t n = strlen(s) + 1;
        memcpy(p, s, n);
        p += n;
    }
    memcpy(p, payload, strlen(payload));
    *len = LW_FRAME_HEAD + body;
    return buf;
}

/* The decimal at s (the whole of it), or -1. */
static long long number(const char *s)
{
    if (!*s)
        return -1;
    char *end;
    long long v = strtoll(s, &end, 10);
    return *end || v < 0 ? -1 : v;
}

int pool_wire_read_job(char *body, size_t len, attempt *out, uint64_t *serial)
{
    char *fields[NUMBERS + STRINGS];
    char *p = body, *end = body + len;
    for (int i = 0; i < NUMBERS + STRINGS; i++) {
        char *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul)
            return -1;
        fields[i] = p;
        p = nul + 1;
    }
    body[len] = '\0'; /* the payload's end */
    long long n[NUMBERS];
    for (int i = 0; i < NUMBERS; i++)
        if ((n[i] = number(fields[i])) < 0)
            return -1;
    if (n[1] > INT32_MAX || n[2] > INT32_MAX)
        return -1;
    *serial = (uint64_t)n[0];
    out->attempt = (int)n[1];
    out->attempts = (int)n[2];
    out->timeout_ms = n[3];
    out->backoff_ms = n[4];
    out->max_payload = (size_t)n[5];
    out->id = fields[6];
    out->kind = fields[7];
    out->tenant_name = fields[8];
    out->lane = fields[9];
    out->queue = fields[10];
    out->spool_dir = fields[11][0] ? fields[11] : NULL;
    out->payload = p;
    return 0;
}

/*
 * fuzz.h — what the fuzz harnesses share.
 *
 * Each harness (fuzz_*.c) defines the libFuzzer entry point below. The same
 * object links either with a fuzzing engine (clang -fsanitize=fuzzer, or
 * AFL++'s afl-clang-fast -fsanitize=fuzzer, which supplies its own driver),
 * or with driver.c, a plain main() that replays files, so meson can build
 * every harness with the ordinary compiler and replay the corpus as a test.
 *
 * A harness checks more than "does not crash": FUZZ_CHECK states what must
 * hold of every parse (an accepted input yields consistent fields, what one
 * parser accepts another reads the same way). A broken promise aborts, which
 * every engine reports as a crash, with the input that caused it.
 */
#ifndef LW_FUZZ_H
#define LW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Runs one input; data[0..size) is not NUL-terminated. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A malloc'ed copy of data[0..size) of exactly that size (not terminated):
 * engines may hand over a larger buffer (AFL++ reads from shared memory),
 * and a read past the end must hit an ASan redzone whatever the engine. */
static inline char *fuzz_exact(const uint8_t *data, size_t size)
{
    char *s = calloc(size ? size : 1, 1);
    FUZZ_CHECK(s != NULL);
    if (size)
        memcpy(s, data, size);
    return s;
}

/* A NUL-terminated malloc'ed copy of data[0..size) (aborts on OOM). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

/* Where the first \u0000 escape (U+0000) is in p[0..n), JSON text or a
 * part of it (escapes only occur in strings), or NULL. cJSON decodes it into
 * a NUL byte, which ends its C string there: a string holding one would be
 * read cut short. */
static inline const char *fuzz_nul_escape(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\\')
            continue;
        if (p[i + 1] == 'u' && n - i >= 6 && memcmp(p + i + 2, "0000", 4) == 0)
            return p + i;
        i++; /* the escaped character, which may be a backslash */
    }
    return NULL;
}

/* 1 when two cJSON trees hold the same JSON: same types, numbers equal as
 * doubles (inf too: "1e999" stays "1e999"), same strings, same members in
 * the same order. Unlike cJSON_Compare it does not look members up by name,
 * so an object with a repeated name compares as written. */
static inline int fuzz_same_json(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return a == b;
    if ((a->type & 0xff) != (b->type & 0xff))
        return 0;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (!cJSON_IsArray(a) && !cJSON_IsObject(a))
        return 1;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next) {
        if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0)
            return 0;
        if (!fuzz_same_json(x, y))
            return 0;
    }
    return !x && !y;
}

#endif

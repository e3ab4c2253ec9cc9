/*
 * alloc_seam.c — malloc & co. through the fault seam (fault.h, site alloc).
 *
 * Every program linking lw_core is linked with -Wl,--wrap=malloc,... (see
 * common/meson.build): the linker sends this project's own calls of malloc,
 * calloc, realloc, strdup and strndup here, and __real_X is the C library's
 * (or the sanitizer's) X. No call site changes; free is not wrapped (it
 * cannot fail).
 *
 * What does not pass here: allocations inside shared libraries (libc's own
 * open_memstream / asprintf / realpath buffers, libevent, hiredis -- hiredis
 * 0.14 has no allocator table; its hiredisAllocFuncs came in 1.0) and the
 * sanitizer's. cJSON has a hook table and is pointed at this seam below.
 */
#include <cjson/cJSON.h>
#include <stddef.h>

#include "fault.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t count, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t count, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
    return lw_fault_should_fail(LW_FAULT_ALLOC) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t count, size_t n)
{
    return lw_fault_should_fail(LW_FAULT_ALLOC) ? NULL : __real_calloc(count, n);
}

/* A failed realloc leaves p allocated and unchanged, as the real one does. */
void *__wrap_realloc(void *p, size_t n)
{
    return lw_fault_should_fail(LW_FAULT_ALLOC) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return lw_fault_should_fail(LW_FAULT_ALLOC) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return lw_fault_should_fail(LW_FAULT_ALLOC) ? NULL : __real_strndup(s, n);
}

/* cJSON allocates inside its shared library, out of --wrap's reach; its
 * hook table sends it here while an alloc rule is set. Only then: with a
 * malloc_fn other than malloc, cJSON grows its print buffers by
 * allocate-and-copy instead of realloc. Both ways free is the C library's,
 * so a tree made before the switch is freed correctly after it. */
void lw_alloc_seam_route_cjson(int on)
{
    cJSON_Hooks hooks = {.malloc_fn = __wrap_malloc, .free_fn = NULL};
    cJSON_InitHooks(on ? &hooks : NULL);
}

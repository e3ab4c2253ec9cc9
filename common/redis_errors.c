/* redis_errors.c — see redis_errors.h. */
#include "redis_errors.h"

#include <stdio.h>
#include <string.h>

#include "scripts.h"

int lw_redis_no_function(const char *s) { return strncmp(s, "ERR Function not found", 22) == 0; }

int lw_redis_library_taken(const char *reply_error)
{
    if (!reply_error)
        return 1;
    char want[128];
    snprintf(want, sizeof want, "ERR Library '%s' already exists", lw_library.name);
    return strcmp(reply_error, want) == 0;
}

int lw_redis_probe_says_loaded(int is_string, const char *str, size_t len)
{
    return is_string && len == strlen(lw_library.name) && memcmp(str, lw_library.name, len) == 0;
}

/* redis_errors.c — see redis_errors.h. */
#include "redis_errors.h"

#include <string.h>

int lw_redis_no_function(const char *s) { return strncmp(s, "ERR Function not found", 22) == 0; }

int lw_redis_library_taken(const char *reply_error)
{
    return !reply_error || strstr(reply_error, "already exists") != NULL;
}

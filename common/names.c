/*
 * names.c — safe names (names.h). The alphabet is spelled out rather than
 * taken from isalnum(), whose answer depends on the locale: a name must be
 * safe in the same way in every process that meets it.
 */
#include "names.h"

#include <string.h>

static int safe_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

int lw_name_is_safe(const char *s)
{
    if (!s || !*s || *s == '.')
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= LW_NAME_MAX || !safe_char(s[n]))
            return 0;
    }
    return 1;
}

/*
 * fail.c — saying why, into the caller's buffer (fail.h).
 */
#include "fail.h"

#include <stdio.h>

int lw_vfail_at(char *err, size_t errlen, const char *where, const char *fmt, va_list ap)
{
    if (!err || !errlen)
        return -1;
    size_t n = 0;
    if (where) {
        int w = snprintf(err, errlen, "%s: ", where);
        if (w < 0 || (size_t)w >= errlen)
            return -1;
        n = (size_t)w;
    }
    vsnprintf(err + n, errlen - n, fmt, ap);
    return -1;
}

int lw_fail_at(char *err, size_t errlen, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lw_vfail_at(err, errlen, where, fmt, ap);
    va_end(ap);
    return -1;
}

int lw_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lw_vfail_at(err, errlen, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * fail.h — saying why, into the caller's buffer.
 *
 * The parsers of common/ take (char *err, size_t errlen) and, when they
 * refuse, write one message there and return -1:
 *
 *     return lw_fail(err, errlen, "port must be 1..65535");
 *
 * err may be NULL or errlen 0 (the caller wants no message); a longer
 * message is cut at errlen, always NUL-terminated.
 */
#ifndef LW_FAIL_H
#define LW_FAIL_H

#include <stdarg.h>
#include <stddef.h>

/* Writes the message into err. Returns -1. */
__attribute__((format(printf, 3, 4))) int lw_fail(char *err, size_t errlen, const char *fmt, ...);

/* As lw_fail, the message preceded by "WHERE: " (where is not NULL): a
 * parser of a file says which file, and where in it. Returns -1. */
__attribute__((format(printf, 4, 5))) int lw_fail_at(char *err, size_t errlen, const char *where,
                                                     const char *fmt, ...);

/* lw_fail_at with the arguments as a va_list, for a parser's own wrapper;
 * where NULL: no prefix. Returns -1. */
__attribute__((format(printf, 4, 0))) int lw_vfail_at(char *err, size_t errlen, const char *where,
                                                      const char *fmt, va_list ap);

#endif

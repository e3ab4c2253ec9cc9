/* keys.c — Redis key names (keys.h). */
#include "keys.h"

#include <stdio.h>

/* snprintf's return tells both failure and truncation; a truncated key would
 * silently name another key, so it is an error. */
static int fits(int n, size_t outlen) { return n >= 0 && (size_t)n < outlen; }

int lw_key_prefix(char *out, size_t outlen, const char *ns, const char *tenant)
{
    return fits(snprintf(out, outlen, "%s:{%s}:", ns, tenant), outlen) ? 0 : -1;
}

int lw_key(char *out, size_t outlen, const char *prefix, const char *suffix, const char *name)
{
    return fits(snprintf(out, outlen, "%s%s%s", prefix, suffix, name ? name : ""), outlen) ? 0 : -1;
}

int lw_key_global(char *out, size_t outlen, const char *ns, const char *suffix)
{
    return fits(snprintf(out, outlen, "%s:%s", ns, suffix), outlen) ? 0 : -1;
}

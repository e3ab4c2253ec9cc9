/*
 * partition.c — partitions of a tenant (partition.h).
 */
#include "partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jobspec.h"
#include "slot.h"

int lw_partition_of(const char *key, int k)
{
    if (k < 2)
        return 0;
    return (int)(lw_crc16(key, strlen(key)) % (unsigned)k);
}

int lw_partition_prefix(char *out, size_t outlen, const char *ns, const char *tenant, int p)
{
    int n = p > 0 ? snprintf(out, outlen, "%s:{%s#%d}:", ns, tenant, p)
                  : snprintf(out, outlen, "%s:{%s}:", ns, tenant);
    return n >= 0 && (size_t)n < outlen ? 0 : -1;
}

int lw_partition_of_prefix(const char *prefix)
{
    const char *open = strchr(prefix, '{'), *close = open ? strchr(open, '}') : NULL;
    if (!close)
        return -1;
    const char *hash = memchr(open, '#', (size_t)(close - open));
    if (!hash)
        return 0;
    char *end;
    long p = strtol(hash + 1, &end, 10);
    return end == close && p > 0 && p < LW_PARTITIONS_MAX ? (int)p : -1;
}

int lw_partition_cap_share(int cap, int k, int p)
{
    if (cap <= 0 || k < 2)
        return cap;
    int share = cap / k + (p < cap % k ? 1 : 0);
    return share > 0 ? share : 1;
}

int lw_job_spec_place(lw_job_spec *s, int k)
{
    const char *key = s->lane ? s->lane : s->unique ? s->unique : s->id;
    if (s->id)
        return lw_partition_of(key ? key : s->id, k);
    char id[LW_ID_LEN + 1];
    lw_id_new(id);
    /* Expected k draws: an id is random in its low bits, and CRC16 mixes
     * every byte. */
    for (int i = 0; key && k > 1 && i < 64 * k && lw_partition_of(id, k) != lw_partition_of(key, k);
         i++)
        lw_id_new(id);
    if (!(s->id = strdup(id)))
        return -1;
    return lw_partition_of(key ? key : id, k);
}

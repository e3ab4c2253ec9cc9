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

/* Makes new id `id` (lw_id_new's) one of partition p among k by changing
 * its last three hex digits, stepped from their random value: the CRC of
 * the rest is taken once, and each candidate costs three bytes of CRC (a
 * --batch at 64 partitions spent most of its time drawing whole ids, 64 on
 * average per job). Among 4,096 endings every partition of up to 64 has
 * some: the loop ends with one; whole ids are drawn again should it not.
 * The start is random, so a placed id keeps about 48 - log2(k) random bits
 * in its millisecond, as drawing whole ids until one fits would. */
static void id_into(char id[LW_ID_LEN + 1], int k, int p)
{
    static const char HEX[] = "0123456789abcdef";
    for (int draw = 0; draw < 64; draw++) {
        unsigned head = lw_crc16(id, LW_ID_LEN - 3);
        unsigned start = (unsigned)strtoul(id + LW_ID_LEN - 3, NULL, 16);
        for (unsigned j = 0; j < 4096; j++) {
            unsigned v = (start + j) & 0xfff;
            char tail[3] = {HEX[v >> 8], HEX[(v >> 4) & 15], HEX[v & 15]};
            if ((int)(lw_crc16_more(head, tail, 3) % (unsigned)k) == p) {
                memcpy(id + LW_ID_LEN - 3, tail, 3);
                return;
            }
        }
        lw_id_new(id);
    }
}

int lw_job_spec_place(lw_job_spec *s, int k)
{
    const char *key = s->lane ? s->lane : s->unique ? s->unique : s->id;
    if (s->id)
        return lw_partition_of(key ? key : s->id, k);
    char id[LW_ID_LEN + 1];
    lw_id_new(id);
    if (key && k > 1)
        id_into(id, k, lw_partition_of(key, k));
    if (!(s->id = strdup(id)))
        return -1;
    return lw_partition_of(key ? key : id, k);
}

/*
 * slot.c — hash slots (slot.h).
 */
#include "slot.h"

#include <stdint.h>
#include <string.h>

/* CRC16/XMODEM (poly 0x1021, init 0), bit by bit: keys are short, and a
 * table would be 512 bytes of data for a hash computed once per tenant. */
unsigned lw_crc16(const char *p, size_t n) { return lw_crc16_more(0, p, n); }

unsigned lw_crc16_more(unsigned crc0, const char *p, size_t n)
{
    uint16_t crc = (uint16_t)crc0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

int lw_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        if (close && close > key + from)
            return lw_crc16(key + from, (size_t)(close - key - from)) & (LW_SLOTS - 1);
    }
    return lw_crc16(key, len) & (LW_SLOTS - 1);
}

/*
 * slot.h — Redis Cluster's hash slot of a key (CRC16/XMODEM of the key, or
 * of its hash tag -- the text between the first '{' and the next '}' when
 * that is not empty -- modulo 16384). Every key of a tenant is under
 * NS:{TENANT}:, so a tenant is one slot (DESIGN.md section 2).
 */
#ifndef LW_SLOT_H
#define LW_SLOT_H

#include <stddef.h>

#define LW_SLOTS 16384

/* CRC16/XMODEM of p[0..n): the slot hash, and partition.h's. Pure. */
unsigned lw_crc16(const char *p, size_t n);
/* The CRC16 of a text that goes on with p[0..n) after a part whose CRC16
 * is crc (XMODEM has no final step: lw_crc16(a b) is
 * lw_crc16_more(lw_crc16(a), b)). Pure. */
unsigned lw_crc16_more(unsigned crc, const char *p, size_t n);

/* The slot of key[0..len). Pure; cannot fail. */
int lw_key_slot(const char *key, size_t len);

#endif

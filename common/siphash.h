/*
 * siphash.h — SipHash-2-4 (Aumasson and Bernstein): a keyed hash, short
 * and fast, whose output an attacker without the key cannot forge. The
 * dashboard signs the messages it passes itself in a redirect with it.
 */
#ifndef LW_SIPHASH_H
#define LW_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit SipHash-2-4 of msg[0..len) under the 16-byte key. */
uint64_t lw_siphash(const unsigned char key[16], const void *msg, size_t len);

#endif

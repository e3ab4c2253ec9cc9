/*
 * siphash.c — SipHash-2-4, from the description in the paper: four 64-bit
 * words of state from the key, two compression rounds per 8-byte little
 * endian word of the message (the last one padded with the length's low
 * byte on top), four finalization rounds.
 */
#include "siphash.h"

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

typedef struct state {
    uint64_t v0, v1, v2, v3;
} state;

static void round_(state *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static void absorb(state *s, uint64_t m)
{
    s->v3 ^= m;
    round_(s);
    round_(s);
    s->v0 ^= m;
}

uint64_t lw_siphash(const unsigned char key[16], const void *msg, size_t len)
{
    const unsigned char *p = msg;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    state s = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
               k1 ^ 0x7465646279746573ULL};
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8)
        absorb(&s, le64(p + i));
    unsigned char last[8] = {0};
    for (size_t i = whole; i < len; i++)
        last[i - whole] = p[i];
    last[7] = (unsigned char)len;
    absorb(&s, le64(last));
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        round_(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

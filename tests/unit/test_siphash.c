/* test_siphash.c — SipHash-2-4 against the paper's test vectors (key
 * 00..0f, messages 00, 00 01, ... of each length). */
#include <check.h>

#include "siphash.h"
#include "tutil.h"

static unsigned char key[16];
static unsigned char msg[64];

static void fill(void)
{
    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (unsigned char)i;
}

START_TEST(vectors)
{
    fill();
    /* Lengths 0, 1, 7, 8 and 15: the empty message, a partial word, a
     * word less one, one whole word, a word and a partial one. */
    ck_assert_uint_eq(lw_siphash(key, msg, 0), 0x726fdb47dd0e0e31ULL);
    ck_assert_uint_eq(lw_siphash(key, msg, 1), 0x74f839c593dc67fdULL);
    ck_assert_uint_eq(lw_siphash(key, msg, 7), 0xab0200f58b01d137ULL);
    ck_assert_uint_eq(lw_siphash(key, msg, 8), 0x93f5f5799a932462ULL);
    ck_assert_uint_eq(lw_siphash(key, msg, 15), 0xa129ca6149be45e5ULL);
}
END_TEST

START_TEST(keyed)
{
    fill();
    uint64_t a = lw_siphash(key, "retried", 7);
    key[15] ^= 1;
    ck_assert_uint_ne(a, lw_siphash(key, "retried", 7));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("siphash");
    TCase *tc = tcase_create("siphash");
    tcase_add_test(tc, vectors);
    tcase_add_test(tc, keyed);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

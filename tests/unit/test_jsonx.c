/* test_jsonx.c — strict validation, quoting, compaction, member spans, and
 * bounded file reads. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "tutil.h"

static int valid(const char *s) { return lw_json_valid(s, strlen(s)); }

START_TEST(validity)
{
    static const char *const ok[] = {
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1.5",
        "-12e+3",
        "1E-7",
        "\"\"",
        "\"a\\u00e9\\n\\\"\"",
        "[]",
        "{}",
        " [1, {\"a\": [true, null]}] ",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        "12345678901234567891",
        "\n{\"a\":\r\n1}\t",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(valid(ok[i]) == 1, "%s", ok[i]);
    static const char *const bad[] = {
        "",
        " ",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "0x10",
        "NaN",
        "nul",
        "tru",
        "[1,]",
        "{\"a\":}",
        "{\"a\" 1}",
        "{1: 2}",
        "[1] x",
        "1 2",
        "\"unterminated",
        "\"tab\there\"",
        "\"bad \\x\"",
        "\"\\u12\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xe2\x82\"",
        "'a'",
        "[",
        "{",
        "{\"a\":1,}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(valid(bad[i]) == 0, "%s", bad[i]);
    ck_assert_int_eq(lw_json_valid("[1]\0", 4), 0);  /* a NUL byte is not whitespace */
    ck_assert_int_eq(lw_json_valid("[1]xyz", 3), 1); /* only len bytes are looked at */
    ck_assert_int_eq(lw_json_valid(NULL, 0), 0);

    /* Nesting is bounded (1000). */
    char deep[2003];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = '\0';
    ck_assert_int_eq(valid(deep), 1);
    memset(deep, '[', 1001);
    memset(deep + 1001, ']', 1001);
    deep[2002] = '\0';
    ck_assert_int_eq(valid(deep), 0);
}
END_TEST

static void quote_is(const char *s, size_t len, const char *want)
{
    char *q = lw_json_quote(s, len);
    ck_assert_str_eq(q, want);
    ck_assert_int_eq(lw_json_valid(q, strlen(q)), 1);
    free(q);
}

START_TEST(unpaired_surrogates)
{
#define UNPAIRED(t) lw_json_unpaired_surrogate(t, strlen(t))
    ck_assert_int_eq(UNPAIRED("\"\\ud83d\\ude00\""), 0);    /* a pair */
    ck_assert_int_eq(UNPAIRED("\"\\u00e9 \\\\ud800\""), 0); /* an escaped backslash, then text */
    ck_assert_int_eq(UNPAIRED("\"\\ud800\""), 1);
    ck_assert_int_eq(UNPAIRED("\"\\ud800x\""), 1);
    ck_assert_int_eq(UNPAIRED("\"\\ud800\\u0041\""), 1);
    ck_assert_int_eq(UNPAIRED("[\"\\udc00\"]"), 1);
#undef UNPAIRED
}
END_TEST

START_TEST(quoting)
{
    quote_is("", 0, "\"\"");
    quote_is("plain", 5, "\"plain\"");
    quote_is("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    quote_is("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    quote_is("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    quote_is("nul\0x", 5, "\"nul\\u0000x\"");
    quote_is("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
    quote_is("bad\xff\xc3", 5, "\"bad\\ufffd\\ufffd\"");
    quote_is("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate is not UTF-8 */
    char *q = lw_json_quote(NULL, 3);
    ck_assert_str_eq(q, "\"\"");
    free(q);
}
END_TEST

START_TEST(compacting)
{
    const char *in = " { \"a b\" : [ 1 , 2.50 ,\n\"x  y\" ] ,\t\"n\": 12345678901234567891 } ";
    char *c = lw_json_compact(in, strlen(in));
    ck_assert_str_eq(c, "{\"a b\":[1,2.50,\"x  y\"],\"n\":12345678901234567891}");
    free(c);
    c = lw_json_compact("\"q\\\" \"", 6);
    ck_assert_str_eq(c, "\"q\\\" \"");
    free(c);
}
END_TEST

START_TEST(members)
{
    const char *obj =
        " {\"a\": 1, \"b\" : {\"x\": [1, \"}\"]}, \"st\\u0061tus\": \"s\", \"e\": \"q\\\"\"} ";
    size_t pos = 0, len = strlen(obj);
    lw_json_member m;
    ck_assert_int_eq(lw_json_next_member(obj, len, &pos, &m), 1);
    ck_assert_int_eq(lw_json_key_is(&m, "a"), 1);
    ck_assert_int_eq(m.vlen, 1);
    ck_assert_int_eq(strncmp(m.val, "1", 1), 0);
    ck_assert_int_eq(lw_json_next_member(obj, len, &pos, &m), 1);
    ck_assert_int_eq(lw_json_key_is(&m, "b"), 1);
    ck_assert_int_eq(lw_json_key_is(&m, "bb"), 0);
    ck_assert_uint_eq(m.vlen, strlen("{\"x\": [1, \"}\"]}"));
    ck_assert_int_eq(strncmp(m.val, "{\"x\": [1, \"}\"]}", m.vlen), 0);
    ck_assert_int_eq(lw_json_next_member(obj, len, &pos, &m), 1);
    ck_assert_int_eq(lw_json_key_is(&m, "status"), 1); /* escapes decoded */
    ck_assert_uint_eq(m.klen, strlen("st\\u0061tus"));
    ck_assert_int_eq(lw_json_next_member(obj, len, &pos, &m), 1);
    ck_assert_int_eq(lw_json_key_is(&m, "e"), 1);
    ck_assert_int_eq(strncmp(m.val, "\"q\\\"\"", m.vlen), 0);
    ck_assert_int_eq(lw_json_next_member(obj, len, &pos, &m), 0);
    ck_assert_int_eq(lw_json_next_member(obj, len, &pos, &m), 0);

    pos = 0;
    ck_assert_int_eq(lw_json_next_member("{}", 2, &pos, &m), 0);
    pos = 0;
    ck_assert_int_eq(lw_json_next_member("[1]", 3, &pos, &m), -1);
}
END_TEST

START_TEST(files)
{
    char *dir = tu_tmpdir();
    tu_write(dir, "ten", "0123456789");
    char *p = tu_path(dir, "ten");
    size_t len = 0;
    char *t = lw_read_file(p, 10, &len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(t, "0123456789");
    free(t);
    errno = 0;
    ck_assert_ptr_null(lw_read_file(p, 9, &len));
    ck_assert_int_eq(errno, EFBIG);
    char *missing = tu_path(dir, "missing");
    errno = 0;
    ck_assert_ptr_null(lw_read_file(missing, 100, &len));
    ck_assert_int_eq(errno, ENOENT);
    tu_write(dir, "empty", "");
    char *e = tu_path(dir, "empty");
    t = lw_read_file(e, 0, &len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(len, 0);
    free(t);
    free(e);
    free(missing);
    free(p);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsonx");
    TCase *tc = tcase_create("jsonx");
    tcase_add_test(tc, validity);
    tcase_add_test(tc, unpaired_surrogates);
    tcase_add_test(tc, quoting);
    tcase_add_test(tc, compacting);
    tcase_add_test(tc, members);
    tcase_add_test(tc, files);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

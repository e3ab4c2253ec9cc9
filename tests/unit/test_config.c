/* test_config.c — shared settings: defaults, environment, flags (which win),
 * both flag spellings, and the number parsers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "settings.h"
#include "tutil.h"

static const char *const ENV[] = {
    "LANEWORK_REDIS_URL",      "LANEWORK_NAMESPACE",   "LANEWORK_REGISTRY",  "LANEWORK_MAX_PAYLOAD",
    "LANEWORK_KEEP_SUCCEEDED", "LANEWORK_KEEP_FAILED", "LANEWORK_EVENTS_MAX"};

static void clean_env(void)
{
    for (size_t i = 0; i < sizeof ENV / sizeof ENV[0]; i++)
        unsetenv(ENV[i]);
}

START_TEST(defaults)
{
    lw_config c;
    ck_assert_int_eq(lw_config_init(&c), 0);
    ck_assert_str_eq(c.redis_url, "redis://127.0.0.1:6379/0");
    ck_assert_str_eq(c.ns, "lw");
    ck_assert_ptr_null(c.registry_path);
    ck_assert_int_eq(c.max_payload, 1048576);
    ck_assert_int_eq(c.keep_succeeded_s, 3600);
    ck_assert_int_eq(c.keep_failed_s, 604800);
    ck_assert_int_eq(c.events_max, 100000);
    char err[256];
    ck_assert_int_eq(lw_config_from_env(&c, err, sizeof err), 0); /* nothing set */
    ck_assert_str_eq(c.ns, "lw");
    lw_config_clear(&c);
    ck_assert_ptr_null(c.ns);
}
END_TEST

START_TEST(env_then_flags)
{
    lw_config c;
    char err[256] = "";
    setenv("LANEWORK_REDIS_URL", "redis://env-host:7000/1", 1);
    setenv("LANEWORK_NAMESPACE", "envns", 1);
    setenv("LANEWORK_REGISTRY", "/etc/lw/env.json", 1);
    setenv("LANEWORK_MAX_PAYLOAD", "512k", 1);
    setenv("LANEWORK_KEEP_SUCCEEDED", "60", 1);
    setenv("LANEWORK_KEEP_FAILED", "1.5", 1);
    setenv("LANEWORK_EVENTS_MAX", "500", 1);
    ck_assert_int_eq(lw_config_init(&c), 0);
    ck_assert_msg(lw_config_from_env(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.redis_url, "redis://env-host:7000/1");
    ck_assert_str_eq(c.ns, "envns");
    ck_assert_str_eq(c.registry_path, "/etc/lw/env.json");
    ck_assert_int_eq(c.max_payload, 524288);
    ck_assert_int_eq(c.keep_succeeded_s, 60);
    ck_assert_int_eq(c.keep_failed_s, 2); /* rounded up to whole seconds */
    ck_assert_int_eq(c.events_max, 500);

    char *argv[] = {"prog",
                    "--redis",
                    "redis://flag-host/2",
                    "--namespace=flagns",
                    "--max-payload",
                    "2M",
                    "--registry=/r.json",
                    "--keep-succeeded",
                    "10",
                    "--keep-failed=20",
                    "--events-max",
                    "7",
                    "--other",
                    NULL};
    int argc = 13;
    int want_used[] = {0, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0};
    for (int i = 1; i < argc;) {
        int used = lw_config_take_flag(&c, argc, argv, i, err, sizeof err);
        ck_assert_msg(used == want_used[i], "argv[%d]=%s: %d (%s)", i, argv[i], used, err);
        i += used ? used : 1;
    }
    ck_assert_str_eq(c.redis_url, "redis://flag-host/2");
    ck_assert_str_eq(c.ns, "flagns");
    ck_assert_str_eq(c.registry_path, "/r.json");
    ck_assert_int_eq(c.max_payload, 2097152);
    ck_assert_int_eq(c.keep_succeeded_s, 10);
    ck_assert_int_eq(c.keep_failed_s, 20);
    ck_assert_int_eq(c.events_max, 7);
    lw_config_clear(&c);
    clean_env();
}
END_TEST

START_TEST(empty_env_is_unset)
{
    lw_config c;
    char err[256];
    setenv("LANEWORK_NAMESPACE", "", 1);
    setenv("LANEWORK_MAX_PAYLOAD", "", 1);
    ck_assert_int_eq(lw_config_init(&c), 0);
    ck_assert_int_eq(lw_config_from_env(&c, err, sizeof err), 0);
    ck_assert_str_eq(c.ns, "lw");
    ck_assert_int_eq(c.max_payload, 1048576);
    lw_config_clear(&c);
    clean_env();
}
END_TEST

static void env_fails(const char *var, const char *value, const char *want)
{
    lw_config c;
    char err[512] = "";
    clean_env();
    setenv(var, value, 1);
    ck_assert_int_eq(lw_config_init(&c), 0);
    ck_assert_int_eq(lw_config_from_env(&c, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
    lw_config_clear(&c);
    clean_env();
}

START_TEST(env_errors)
{
    env_fails("LANEWORK_MAX_PAYLOAD", "abc",
              "LANEWORK_MAX_PAYLOAD: \"abc\" is not a size (bytes, or a number with k/M/G)");
    env_fails("LANEWORK_NAMESPACE", "a:b",
              "LANEWORK_NAMESPACE: \"a:b\" is not a safe name (letters, digits, '-', '_', '.'; not "
              "starting with '.')");
    env_fails("LANEWORK_REDIS_URL", "redis://:S3CRET@h:0",
              "LANEWORK_REDIS_URL: bad Redis URL \"redis://:***@h:0\": port must be 1..65535");
    env_fails("LANEWORK_EVENTS_MAX", "0",
              "LANEWORK_EVENTS_MAX: \"0\" is not a whole number from 1 to 1000000000");
    env_fails("LANEWORK_KEEP_FAILED", "-1",
              "LANEWORK_KEEP_FAILED: \"-1\" is not a number of seconds from 0.001 to 3153600000");
}
END_TEST

static void flag_fails(int argc, char **argv, const char *want)
{
    lw_config c;
    char err[512] = "";
    ck_assert_int_eq(lw_config_init(&c), 0);
    ck_assert_int_eq(lw_config_take_flag(&c, argc, argv, 1, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
    lw_config_clear(&c);
}

START_TEST(flag_errors)
{
    char *a1[] = {"p", "--max-payload", "abc"};
    flag_fails(3, a1, "--max-payload: \"abc\" is not a size (bytes, or a number with k/M/G)");
    char *a2[] = {"p", "--max-payload=1G"};
    flag_fails(2, a2,
               "--max-payload: 1G must be from 1 byte to 512M (Redis's limit for one value)");
    char *a3[] = {"p", "--max-payload=0"};
    flag_fails(2, a3, "--max-payload: 0 must be from 1 byte to 512M (Redis's limit for one value)");
    char *a4[] = {"p", "--redis"};
    flag_fails(2, a4, "--redis: missing value");
    char *a5[] = {"p", "--redis", "--tenant", "x"};
    flag_fails(4, a5, "--redis: missing value");
    char *a6[] = {"p", "--redis="};
    flag_fails(2, a6, "--redis: missing value");
    char *a7[] = {"p", "--redis=http://x"};
    flag_fails(
        2, a7,
        "--redis: bad Redis URL \"http://x\": the URL must start with redis://, rediss://, unix://, redis-sentinel://, rediss-sentinel://, redis-cluster:// or rediss-cluster://");
    char *a8[] = {"p", "--keep-succeeded", "0"};
    flag_fails(3, a8,
               "--keep-succeeded: \"0\" is not a number of seconds from 0.001 to 3153600000");
    char *a9[] = {"p", "--events-max=1e3"};
    flag_fails(2, a9, "--events-max: \"1e3\" is not a whole number from 1 to 1000000000");
    char *a10[] = {"p", "--namespace=.x"};
    flag_fails(2, a10,
               "--namespace: \".x\" is not a safe name (letters, digits, '-', '_', '.'; not "
               "starting with '.')");

    /* Not ours: left to the caller. */
    lw_config c;
    char err[64];
    ck_assert_int_eq(lw_config_init(&c), 0);
    char *b[] = {"p", "--redisx=1", "--tenant", "redis"};
    ck_assert_int_eq(lw_config_take_flag(&c, 4, b, 1, err, sizeof err), 0);
    ck_assert_int_eq(lw_config_take_flag(&c, 4, b, 2, err, sizeof err), 0);
    ck_assert_int_eq(lw_config_take_flag(&c, 4, b, 3, err, sizeof err), 0);
    ck_assert_str_eq(c.redis_url, "redis://127.0.0.1:6379/0");
    lw_config_clear(&c);
}
END_TEST

/* The password is taken, then hidden where `ps` and /proc/PID/environ
 * look: argv (both flag forms) and the environment variable. */
START_TEST(password_scrubbed)
{
    lw_config c;
    char err[256] = "";
    setenv("LANEWORK_REDIS_URL", "redis://:envpw@h:1/0", 1);
    ck_assert_int_eq(lw_config_init(&c), 0);
    ck_assert_msg(lw_config_from_env(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.redis_url, "redis://:envpw@h:1/0");
    ck_assert_str_eq(getenv("LANEWORK_REDIS_URL"), "redis://:*****@h:1/0");
    char a1[] = "prog", a2[] = "--redis", a3[] = "unix://u:flagpw@/s.sock",
         a4[] = "--redis=redis://:x@h", a5[] = "--redis", a6[] = "redis://h";
    char *argv[] = {a1, a2, a3, a4, a5, a6, NULL};
    ck_assert_int_eq(lw_config_take_flag(&c, 6, argv, 1, err, sizeof err), 2);
    ck_assert_str_eq(c.redis_url, "unix://u:flagpw@/s.sock");
    ck_assert_str_eq(argv[2], "unix://u:******@/s.sock");
    ck_assert_int_eq(lw_config_take_flag(&c, 6, argv, 3, err, sizeof err), 1);
    ck_assert_str_eq(c.redis_url, "redis://:x@h");
    ck_assert_str_eq(argv[3], "--redis=redis://:*@h");
    ck_assert_int_eq(lw_config_take_flag(&c, 6, argv, 4, err, sizeof err), 2);
    ck_assert_str_eq(argv[5], "redis://h"); /* nothing to hide */
    lw_config_clear(&c);
    unsetenv("LANEWORK_REDIS_URL");
}
END_TEST

START_TEST(parse_size)
{
    int64_t v;
    ck_assert_int_eq(lw_parse_size("1048576", INT64_MAX, &v), 0);
    ck_assert_int_eq(v, 1048576);
    ck_assert_int_eq(lw_parse_size("512k", INT64_MAX, &v), 0);
    ck_assert_int_eq(v, 524288);
    ck_assert_int_eq(lw_parse_size("512K", INT64_MAX, &v), 0);
    ck_assert_int_eq(v, 524288);
    ck_assert_int_eq(lw_parse_size("2M", INT64_MAX, &v), 0);
    ck_assert_int_eq(v, 2097152);
    ck_assert_int_eq(lw_parse_size("3g", INT64_MAX, &v), 0);
    ck_assert_int_eq(v, INT64_C(3221225472));
    ck_assert_int_eq(lw_parse_size("0", INT64_MAX, &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(lw_parse_size("1024", 1024, &v), 0);
    ck_assert_int_eq(lw_parse_size("1025", 1024, &v), -1);
    ck_assert_int_eq(lw_parse_size("2k", 2047, &v), -1);
    static const char *const bad[] = {"",
                                      "abc",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "1.5M",
                                      "1MB",
                                      "1kk",
                                      "k",
                                      "99999999999999999999",
                                      "9999999999999999G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(lw_parse_size(bad[i], INT64_MAX, &v) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(parse_seconds)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {{"0", 0},     {"1", 1000},   {"1.5", 1500},    {"0.25", 250},    {".5", 500},
              {"2.", 2000}, {"0.0001", 1}, {"1.0001", 1001}, {"1.2340", 1234}, {"3600", 3600000}};
    int64_t v;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(lw_parse_seconds_ms(ok[i].s, 10000, &v) == 0, "%s", ok[i].s);
        ck_assert_int_eq(v, ok[i].ms);
    }
    ck_assert_int_eq(lw_parse_seconds_ms("10", 10, &v), 0);
    ck_assert_int_eq(lw_parse_seconds_ms("10.001", 10, &v), -1);
    ck_assert_int_eq(lw_parse_seconds_ms("11", 10, &v), -1);
    static const char *const bad[] = {"",   ".",  "-1",  "1e3",  "1,5",
                                      " 1", "1s", "abc", "1..2", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(lw_parse_seconds_ms(bad[i], INT64_MAX, &v) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(parse_int)
{
    int64_t v;
    ck_assert_int_eq(lw_parse_int("42", 0, 100, &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(lw_parse_int("-7", -10, 10, &v), 0);
    ck_assert_int_eq(v, -7);
    ck_assert_int_eq(lw_parse_int("+7", 0, 10, &v), 0);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(lw_parse_int("-9223372036854775808", INT64_MIN, 0, &v), 0);
    ck_assert_int_eq(v, INT64_MIN);
    ck_assert_int_eq(lw_parse_int("101", 0, 100, &v), -1);
    ck_assert_int_eq(lw_parse_int("-1", 0, 100, &v), -1);
    static const char *const bad[] = {"",    " 1",  "1 ", "0x10",
                                      "1.0", "abc", "-",  "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(lw_parse_int(bad[i], INT64_MIN, INT64_MAX, &v) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(usage)
{
    static const char *const flags[] = {
        "--redis URL",           "--namespace NS",     "--registry PATH", "--max-payload BYTES",
        "--keep-succeeded SECS", "--keep-failed SECS", "--events-max N"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        ck_assert_msg(strstr(LW_CONFIG_USAGE, flags[i]) != NULL, "%s", flags[i]);
}
END_TEST

/* Tenant settings: the registry's value wins field by field; a field it
 * does not set falls back to the flags. */
START_TEST(tenant_settings)
{
    lw_config c;
    ck_assert_int_eq(lw_config_init(&c), 0);
    c.keep_succeeded_s = 11;
    c.keep_failed_s = 22;
    c.events_max = 33;
    lw_tenant t;
    memset(&t, 0, sizeof t);
    t.defaults.keep_failed_s = 7;
    lw_tenant_settings s;
    lw_settings_resolve(&s, &t, &c);
    ck_assert_int_eq(s.keep_succeeded_s, 11);
    ck_assert_int_eq(s.keep_failed_s, 7);
    ck_assert_int_eq(s.events_max, 33);
    ck_assert_int_eq(s.from_registry[0], 0);
    ck_assert_int_eq(s.from_registry[1], 1);
    ck_assert_int_eq(s.from_registry[2], 0);
    lw_settings_resolve(&s, NULL, &c); /* no registry entry */
    ck_assert_int_eq(s.keep_failed_s, 22);
    ck_assert_int_eq(s.from_registry[1], 0);
    lw_config_clear(&c);
}
END_TEST

int main(void)
{
    clean_env();
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, env_then_flags);
    tcase_add_test(tc, empty_env_is_unset);
    tcase_add_test(tc, env_errors);
    tcase_add_test(tc, flag_errors);
    tcase_add_test(tc, password_scrubbed);
    tcase_add_test(tc, parse_size);
    tcase_add_test(tc, parse_seconds);
    tcase_add_test(tc, parse_int);
    tcase_add_test(tc, usage);
    tcase_add_test(tc, tenant_settings);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

/*
 * config.h — the settings both binaries share (CONTRACT section 2). Flags win
 * over the environment, which wins over the defaults:
 *
 *   --redis URL            LANEWORK_REDIS_URL      redis://127.0.0.1:6379/0
 *   --namespace NS         LANEWORK_NAMESPACE      lw
 *   --registry PATH        LANEWORK_REGISTRY       (none)
 *   --max-payload BYTES    LANEWORK_MAX_PAYLOAD    1048576
 *   --keep-succeeded SECS  LANEWORK_KEEP_SUCCEEDED 3600     retention of succeeded jobs
 *   --keep-failed SECS     LANEWORK_KEEP_FAILED    604800   retention of failed/cancelled/expired jobs
 *   --events-max N         LANEWORK_EVENTS_MAX     100000   approximate cap of each tenant's event stream
 *   --min-replicas N       LANEWORK_MIN_REPLICAS   0        replicas that must hold a change (WAIT)
 *
 * Usage: lw_config_init(), lw_config_from_env(), then offer each argument to
 * lw_config_take_flag() while parsing the command line.
 */
#ifndef LW_CONFIG_H
#define LW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define LW_DEFAULT_REDIS_URL "redis://127.0.0.1:6379/0"
#define LW_DEFAULT_NAMESPACE "lw"
#define LW_DEFAULT_MAX_PAYLOAD (1024 * 1024)
#define LW_DEFAULT_KEEP_SUCCEEDED 3600
#define LW_DEFAULT_KEEP_FAILED (7 * 24 * 3600)
#define LW_DEFAULT_EVENTS_MAX 100000
/* Bounds of the retention times (a hundred years: longer is "forever" with
 * extra steps) and of the event stream cap. */
#define LW_MAX_KEEP_S (INT64_C(100) * 365 * 24 * 3600)
#define LW_MAX_EVENTS INT64_C(1000000000)
/* --min-replicas: at most this many (more replicas than any deployment
 * has), and how long each WAIT may take before the change counts as not
 * confirmed. */
#define LW_MAX_MIN_REPLICAS 100
#define LW_MIN_REPLICAS_WAIT_MS 1000

/* Built-in job defaults, used when neither the job nor its tenant's registry
 * entry ("defaults") says otherwise. */
#define LW_DEFAULT_ATTEMPTS 3
#define LW_DEFAULT_TIMEOUT_S 180
#define LW_DEFAULT_BACKOFF_MS 1000

typedef struct lw_config {
    char *redis_url;     /* owned */
    char *ns;            /* owned; a safe name */
    char *registry_path; /* owned; NULL when not given */
    int64_t max_payload;
    int64_t keep_succeeded_s;
    int64_t keep_failed_s;
    int64_t events_max;
    int64_t min_replicas;
} lw_config;

/* Fills the defaults into `c` (whatever it held is overwritten, not freed);
 * the strings it then owns are released by lw_config_clear(). Cannot fail
 * except on OOM: -1, with `c` left cleared (nothing to free). */
int lw_config_init(lw_config *c);
/* Applies the LANEWORK_* environment variables that are set and not empty,
 * copying their values into `c`. Once copied, the password in
 * LANEWORK_REDIS_URL is overwritten in the environment itself (lw_url_scrub),
 * so /proc/PID/environ does not show it. Returns 0, or -1 with "VAR: why" in
 * err at the first bad value (the variables before it are applied). */
int lw_config_from_env(lw_config *c, char *err, size_t errlen);
/* If argv[i] is one of the shared flags ("--redis URL" or "--redis=URL"),
 * applies a copy of its value and returns how many arguments it used (1 or
 * 2); the password of a --redis value is then scrubbed in argv itself, for
 * `ps`. A value starting with "--" is taken for a missing one. Returns 0 when
 * argv[i] is not a shared flag (or i is out of range), -1 with "--flag: why"
 * in err when its value is missing or bad (`c` unchanged). */
int lw_config_take_flag(lw_config *c, int argc, char **argv, int i, char *err, size_t errlen);
/* The help text lines for the shared flags. */
extern const char LW_CONFIG_USAGE[];
/* Frees what `c` owns and zeroes it; safe on a cleared or zeroed config. */
void lw_config_clear(lw_config *c);

/* Parses a non-negative decimal integer with an optional unit suffix for
 * sizes (k, K, m, M, g, G: powers of 1024). Returns 0 with *out set, or -1
 * (*out untouched) when `s` is NULL, not such a number (no sign, no blanks)
 * or exceeds `max`. */
int lw_parse_size(const char *s, int64_t max, int64_t *out);
/* Parses a non-negative number of seconds ("1.5", ".5", "2." allowed; no
 * sign or exponent) into ms, a remainder finer than 1 ms rounded up so a
 * positive value never becomes 0. Returns 0 with *out_ms set, or -1 (*out_ms
 * untouched) when `s` is NULL, not such a number or exceeds `max_s`. */
int lw_parse_seconds_ms(const char *s, int64_t max_s, int64_t *out_ms);
/* Parses a decimal integer in [min, max] (an optional sign, no blanks).
 * Returns 0 with *out set, or -1 (*out untouched). */
int lw_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif

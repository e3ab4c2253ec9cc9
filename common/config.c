/*
 * config.c — settings shared by both binaries (config.h).
 *
 * Every value is checked when it is set, so a bad LANEWORK_* variable or
 * flag is reported at start, naming the variable or flag, and never later
 * by whatever first uses it. An empty environment variable counts as unset
 * (compose files and unit files often write VAR= to mean "nothing").
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "url.h"

/* Redis refuses bulk strings over 512 MiB (proto-max-bulk-len). */
#define MAX_PAYLOAD_LIMIT (INT64_C(512) * 1024 * 1024)
#define MAX_KEEP_S LW_MAX_KEEP_S
#define MAX_EVENTS LW_MAX_EVENTS

const char LW_CONFIG_USAGE[] =
    "  --redis URL            Redis server: redis://[[user]:password@]host[:port][/db],\n"
    "                         rediss://...[?ca=FILE&cert=FILE&key=FILE&sni=NAME&insecure=1] (TLS)\n"
    "                         or unix://[[user]:password@]/path/to.sock[?db=N]\n"
    "                         (env LANEWORK_REDIS_URL, default " LW_DEFAULT_REDIS_URL ")\n"
    "  --namespace NS         prefix of every Redis key (env LANEWORK_NAMESPACE, default " LW_DEFAULT_NAMESPACE
    ")\n"
    "  --registry PATH        tenant registry: a JSON file or a directory of *.json files\n"
    "                         (env LANEWORK_REGISTRY)\n"
    "  --max-payload BYTES    largest accepted payload, e.g. 1048576, 512k, 2M\n"
    "                         (env LANEWORK_MAX_PAYLOAD, default 1M)\n"
    "  --keep-succeeded SECS  how long succeeded jobs are kept (env LANEWORK_KEEP_SUCCEEDED, default 3600)\n"
    "  --keep-failed SECS     how long failed, cancelled and expired jobs are kept\n"
    "                         (env LANEWORK_KEEP_FAILED, default 604800)\n"
    "  --events-max N         approximate length cap of each tenant's event stream\n"
    "                         (env LANEWORK_EVENTS_MAX, default 100000)\n"
    "                         These three are fallbacks: a tenant's registry \"defaults\"\n"
    "                         (keep_succeeded, keep_failed, events_max) win, and what the\n"
    "                         workers published to Redis is what every writer applies.\n"
    "  --min-replicas N       a change counts as done only once WAIT says N replicas hold it\n"
    "                         (within 1 s; env LANEWORK_MIN_REPLICAS, default 0)\n";

int lw_config_init(lw_config *c)
{
    memset(c, 0, sizeof *c);
    c->redis_url = strdup(LW_DEFAULT_REDIS_URL);
    c->ns = strdup(LW_DEFAULT_NAMESPACE);
    c->max_payload = LW_DEFAULT_MAX_PAYLOAD;
    c->keep_succeeded_s = LW_DEFAULT_KEEP_SUCCEEDED;
    c->keep_failed_s = LW_DEFAULT_KEEP_FAILED;
    c->events_max = LW_DEFAULT_EVENTS_MAX;
    if (!c->redis_url || !c->ns) {
        lw_config_clear(c);
        return -1;
    }
    return 0;
}

void lw_config_clear(lw_config *c)
{
    free(c->redis_url);
    free(c->ns);
    free(c->registry_path);
    memset(c, 0, sizeof *c);
}

/* --- numbers ------------------------------------------------------------ */

/* Reads the decimal digits at *s into *v (at least one), stopping at the
 * first non-digit. Returns -1 on no digits or overflow past `max`. */
static int digits(const char **s, int64_t max, int64_t *v)
{
    const char *p = *s;
    int64_t x = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (max - (*p - '0')) / 10)
            return -1;
        x = x * 10 + (*p - '0');
    }
    *s = p;
    *v = x;
    return 0;
}

int lw_parse_size(const char *s, int64_t max, int64_t *out)
{
    int64_t v, mul = 1;
    if (!s || digits(&s, INT64_MAX, &v) != 0)
        return -1;
    switch (*s) {
    case '\0': break;
    case 'k':
    case 'K':
        mul = INT64_C(1) << 10;
        s++;
        break;
    case 'm':
    case 'M':
        mul = INT64_C(1) << 20;
        s++;
        break;
    case 'g':
    case 'G':
        mul = INT64_C(1) << 30;
        s++;
        break;
    default: return -1;
    }
    if (*s || v > INT64_MAX / mul || v * mul > max)
        return -1;
    *out = v * mul;
    return 0;
}

int lw_parse_seconds_ms(const char *s, int64_t max_s, int64_t *out_ms)
{
    int64_t whole = 0, frac = 0;
    int have_digits = 0;
    if (!s)
        return -1;
    if (*s >= '0' && *s <= '9') {
        if (digits(&s, INT64_MAX, &whole) != 0)
            return -1;
        have_digits = 1;
    }
    if (*s == '.') {
        /* Milliseconds are the resolution; a finer remainder rounds up, so
         * a positive value never becomes 0 ms. */
        int n = 0, rest = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, n++) {
            if (n < 3)
                frac = frac * 10 + (*s - '0');
            else if (*s != '0')
                rest = 1;
        }
        if (n == 0 && !have_digits)
            return -1;
        for (; n < 3; n++)
            frac *= 10;
        frac += rest;
        have_digits = 1;
    }
    if (!have_digits || *s || max_s < 0 || whole > max_s || whole > (INT64_MAX - 999) / 1000)
        return -1;
    int64_t ms = whole * 1000 + frac;
    if (max_s <= INT64_MAX / 1000 && ms > max_s * 1000)
        return -1;
    *out_ms = ms;
    return 0;
}

int lw_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    /* strtoll alone would also take leading blanks. */
    if (!s || !strchr("+-0123456789", *s) || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* --- settings ----------------------------------------------------------- */

typedef enum {
    OPT_REDIS,
    OPT_NAMESPACE,
    OPT_REGISTRY,
    OPT_MAX_PAYLOAD,
    OPT_KEEP_SUCCEEDED,
    OPT_KEEP_FAILED,
    OPT_EVENTS_MAX,
    OPT_MIN_REPLICAS
} opt_id;

static const struct {
    const char *flag, *env;
} opts[] = {
    [OPT_REDIS] = {"--redis", "LANEWORK_REDIS_URL"},
    [OPT_NAMESPACE] = {"--namespace", "LANEWORK_NAMESPACE"},
    [OPT_REGISTRY] = {"--registry", "LANEWORK_REGISTRY"},
    [OPT_MAX_PAYLOAD] = {"--max-payload", "LANEWORK_MAX_PAYLOAD"},
    [OPT_KEEP_SUCCEEDED] = {"--keep-succeeded", "LANEWORK_KEEP_SUCCEEDED"},
    [OPT_KEEP_FAILED] = {"--keep-failed", "LANEWORK_KEEP_FAILED"},
    [OPT_EVENTS_MAX] = {"--events-max", "LANEWORK_EVENTS_MAX"},
    [OPT_MIN_REPLICAS] = {"--min-replicas", "LANEWORK_MIN_REPLICAS"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static int replace(char **field, const char *v, const char *what, char *err, size_t errlen)
{
    char *copy = strdup(v);
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", what);
        return -1;
    }
    free(*field);
    *field = copy;
    return 0;
}

/* Retention: seconds, decimals allowed, rounded up to whole seconds
 * (Redis's EXPIRE counts in seconds), at least one. */
static int set_keep(int64_t *field, const char *v, const char *what, char *err, size_t errlen)
{
    int64_t ms;
    if (lw_parse_seconds_ms(v, MAX_KEEP_S, &ms) != 0 || ms == 0) {
        snprintf(err, errlen, "%s: \"%.64s\" is not a number of seconds from 0.001 to %lld", what,
                 v, (long long)MAX_KEEP_S);
        return -1;
    }
    *field = (ms + 999) / 1000;
    return 0;
}

/* Applies value `v` of setting `id`; `what` names the flag or variable. */
static int apply(lw_config *c, opt_id id, const char *v, const char *what, char *err, size_t errlen)
{
    int64_t n;
    switch (id) {
    case OPT_REDIS: {
        lw_url *u = lw_url_parse(v, err, errlen);
        if (!u) {
            /* err holds "bad Redis URL ..." (password hidden): prefix it. */
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "%s: %s", what, why);
            return -1;
        }
        lw_url_free(u);
        return replace(&c->redis_url, v, what, err, errlen);
    }
    case OPT_NAMESPACE:
        if (!lw_name_is_safe(v)) {
            snprintf(
                err, errlen,
                "%s: \"%.64s\" is not a safe name (letters, digits, '-', '_', '.'; not starting "
                "with '.')",
                what, v);
            return -1;
        }
        return replace(&c->ns, v, what, err, errlen);
    case OPT_REGISTRY: return replace(&c->registry_path, v, what, err, errlen);
    case OPT_MAX_PAYLOAD:
        if (lw_parse_size(v, INT64_MAX, &n) != 0) {
            snprintf(err, errlen, "%s: \"%.64s\" is not a size (bytes, or a number with k/M/G)",
                     what, v);
            return -1;
        }
        if (n < 1 || n > MAX_PAYLOAD_LIMIT) {
            snprintf(err, errlen,
                     "%s: %s must be from 1 byte to 512M (Redis's limit for one value)", what, v);
            return -1;
        }
        c->max_payload = n;
        return 0;
    case OPT_KEEP_SUCCEEDED: return set_keep(&c->keep_succeeded_s, v, what, err, errlen);
    case OPT_KEEP_FAILED: return set_keep(&c->keep_failed_s, v, what, err, errlen);
    case OPT_EVENTS_MAX:
        if (lw_parse_int(v, 1, MAX_EVENTS, &n) != 0) {
            snprintf(err, errlen, "%s: \"%.64s\" is not a whole number from 1 to %lld", what, v,
                     (long long)MAX_EVENTS);
            return -1;
        }
        c->events_max = n;
        return 0;
    case OPT_MIN_REPLICAS:
        if (lw_parse_int(v, 0, LW_MAX_MIN_REPLICAS, &n) != 0) {
            snprintf(err, errlen, "%s: \"%.64s\" is not a whole number from 0 to %d", what, v,
                     LW_MAX_MIN_REPLICAS);
            return -1;
        }
        c->min_replicas = n;
        return 0;
    }
    return -1;
}

int lw_config_from_env(lw_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NOPTS; i++) {
        char *v = getenv(opts[i].env);
        if (v && *v && apply(c, (opt_id)i, v, opts[i].env, err, errlen) != 0)
            return -1;
        /* Our copy is taken: a password must not stay readable in
         * /proc/PID/environ (exec'd children get no LANEWORK_* anyway). */
        if (v && i == OPT_REDIS)
            lw_url_scrub(v);
    }
    return 0;
}

int lw_config_take_flag(lw_config *c, int argc, char **argv, int i, char *err, size_t errlen)
{
    if (i < 0 || i >= argc || !argv[i])
        return 0;
    const char *arg = argv[i];
    for (size_t k = 0; k < NOPTS; k++) {
        size_t n = strlen(opts[k].flag);
        if (strncmp(arg, opts[k].flag, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
            continue;
        const char *v;
        int used;
        if (arg[n] == '=') {
            v = arg + n + 1;
            used = 1;
        } else {
            /* "--redis --tenant x" is a forgotten value, not a URL. */
            v = i + 1 < argc ? argv[i + 1] : NULL;
            used = 2;
            if (v && strncmp(v, "--", 2) == 0)
                v = NULL;
        }
        if (!v || !*v) {
            snprintf(err, errlen, "%s: missing value", opts[k].flag);
            return -1;
        }
        if (apply(c, (opt_id)k, v, opts[k].flag, err, errlen) != 0)
            return -1;
        /* Our copy is taken: `ps` must not show the password. */
        if (k == OPT_REDIS)
            lw_url_scrub(used == 1 ? argv[i] + n + 1 : argv[i + 1]);
        return used;
    }
    return 0;
}

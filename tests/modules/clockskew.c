/*
 * clockskew.c — an LD_PRELOAD shim that shifts the WALL clock of the process
 * it is loaded into, for clock-skew tests:
 *
 *   LD_PRELOAD=/path/clockskew.so LW_CLOCK_SKEW_MS=-5000 lanework-worker ...
 *
 * LW_CLOCK_SKEW_MS (milliseconds, may be negative; read once, at the first
 * call; absent or malformed: 0) is added to what clock_gettime() returns for
 * CLOCK_REALTIME and CLOCK_REALTIME_COARSE, to gettimeofday() and to time().
 * Every other clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME, CPU clocks, ...) passes
 * through unchanged. The real functions are found with dlsym(RTLD_NEXT).
 *
 * Limits: only calls that go through the dynamic symbol table are shifted
 * (not a raw syscall, nor glibc's internal calls, e.g. the stamps of
 * syslog); children inherit LD_PRELOAD and so the skew, unless their
 * environment drops it. Redis's clock (TIME, used by every lanework script)
 * is the server's and is not touched.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);

/* Resolved on first use; races between threads only store the same values. */
static clock_gettime_fn real_clock_gettime;
static gettimeofday_fn real_gettimeofday;
static volatile int skew_ready;
static long long skew_ms;

static void *next_sym(const char *name) { return dlsym(RTLD_NEXT, name); }

static void setup(void)
{
    if (skew_ready)
        return;
    void *p = next_sym("clock_gettime");
    /* POSIX: a dlsym result converts to a function pointer; memcpy keeps
     * -Wpedantic quiet. */
    memcpy(&real_clock_gettime, &p, sizeof real_clock_gettime);
    p = next_sym("gettimeofday");
    memcpy(&real_gettimeofday, &p, sizeof real_gettimeofday);
    const char *v = getenv("LW_CLOCK_SKEW_MS");
    long long s = 0;
    if (v && *v) {
        char *end = NULL;
        int saved = errno;
        errno = 0;
        s = strtoll(v, &end, 10);
        if (errno || *end)
            s = 0;
        errno = saved;
    }
    skew_ms = s;
    skew_ready = 1;
}

static void shift_ts(struct timespec *ts)
{
    long long ns = (long long)ts->tv_nsec + (skew_ms % 1000) * 1000000LL;
    long long sec = (long long)ts->tv_sec + skew_ms / 1000;
    if (ns < 0) {
        ns += 1000000000LL;
        sec -= 1;
    } else if (ns >= 1000000000LL) {
        ns -= 1000000000LL;
        sec += 1;
    }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    setup();
    if (!real_clock_gettime) {
        errno = ENOSYS;
        return -1;
    }
    int r = real_clock_gettime(id, ts);
    if (r == 0 && skew_ms && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift_ts(ts);
    return r;
}

/* glibc 2.31+ declares the second argument `void *restrict` (older
 * headers: struct timezone *); the ABI is the same. tv is declared nonnull. */
int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    setup();
    if (!real_gettimeofday) {
        errno = ENOSYS;
        return -1;
    }
    int r = real_gettimeofday(tv, tz);
    if (r == 0 && skew_ms) {
        struct timespec ts = {tv->tv_sec, (long)tv->tv_usec * 1000};
        shift_ts(&ts);
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
    }
    return r;
}

time_t time(time_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}

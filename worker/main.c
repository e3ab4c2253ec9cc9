/*
 * main.c — lanework-worker: parse, load, run.
 *
 * Exit status (CONTRACT section 5): 0 normal end (signal, --burst,
 * --max-jobs), 2 configuration error: bad flags, a registry that does not
 * load, a module that fails dlopen/ABI/init, a bad Redis URL, --http that
 * cannot listen. A Redis that is down at start is not a configuration error:
 * the worker waits for it, reporting not ready.
 *
 * Credentials: the --redis / LANEWORK_REDIS_URL password is overwritten in
 * argv and the environment as soon as it is parsed (common/config.c), so
 * `ps` and /proc/PID/environ do not show it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "log.h"
#include "options.h"
#include "registry.h"
#include "url.h"
#include "worker.h"

int main(int argc, char **argv)
{
    worker_options opt;
    char err[2048];
    /* Not dumpable: a handler process running as our user (an exec
     * handler, or anything a module starts) cannot read our memory or
     * /proc/PID/environ, where the Redis credentials are. Forked children
     * inherit it; execve resets it for the commands it starts. */
    prctl(PR_SET_DUMPABLE, 0);
    /* A SIGTERM during start-up (loading modules, say) is held until the
     * loop's handlers exist, and then drains an idle worker: exit 0, as for
     * any SIGTERM, rather than death by signal. worker_new unblocks them. */
    sigset_t held;
    sigemptyset(&held);
    sigaddset(&held, SIGTERM);
    sigaddset(&held, SIGINT);
    sigaddset(&held, SIGHUP);
    sigaddset(&held, SIGTSTP);
    sigprocmask(SIG_BLOCK, &held, NULL);
    int rc = options_parse(&opt, argc, argv, err, sizeof err);
    if (rc == 1) {
        options_clear(&opt);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "lanework-worker: %s\n", err);
        options_clear(&opt);
        return 2;
    }
    lw_log_setup(opt.log_level, opt.log_json);

    lw_url *url = lw_url_parse(opt.common.redis_url, err, sizeof err);
    if (!url) {
        lw_log(LW_LOG_ERROR, "config", "--redis: %s", err);
        options_clear(&opt);
        return 2;
    }
    lw_url_free(url);

    lw_registry *reg = lw_registry_load(opt.common.registry_path, err, sizeof err);
    if (!reg) {
        lw_log(LW_LOG_ERROR, "config", "registry: %s", err);
        options_clear(&opt);
        return 2;
    }
    worker *w = worker_new(&opt, reg, err, sizeof err);
    if (!w) {
        lw_log(LW_LOG_ERROR, "config", "%s", err);
        options_clear(&opt);
        return 2;
    }
    rc = worker_run(w);
    worker_free(w);
    options_clear(&opt);
    return rc;
}

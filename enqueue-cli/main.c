/*
 * main.c — `lanework`: the shared flags before the command, then dispatch.
 * Shared flags after the command are taken by the command's own parser
 * (cli_args_parse), so they are accepted on both sides.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef int (*cmd_fn)(cli *c, int argc, char **argv);

/* Every command: a new one is its cmd_X.c, its prototype in cli.h and one
 * line here (the --help list is made from this table). */
static const struct {
    const char *name;
    cmd_fn fn;
    const char *usage; /* its lines of `lanework --help` */
} commands[] = {
    {"enqueue", cmd_enqueue,
     "  enqueue --tenant T --kind K [...]   enqueue one job; prints its id\n"
     "  enqueue --batch FILE|-              one JSON job per line; prints one id per line\n"},
    {"status", cmd_status, "  status  --tenant T ID               the job as one JSON object\n"},
    {"wait", cmd_wait, "  wait    --tenant T ID... [--timeout S]  wait until the jobs end\n"},
    {"cancel", cmd_cancel, "  cancel  --tenant T ID               cancel a job\n"},
    {"retry", cmd_retry,
     "  retry   --tenant T (ID... | --all-failed)  give jobs a fresh set of attempts\n"},
    {"stats", cmd_stats, "  stats   [--tenant T] [--json]       counts per tenant and queue\n"},
    {"workers", cmd_workers, "  workers [--json]                    the workers of the fleet\n"},
    {"events", cmd_events,
     "  events  --tenant T [--follow] [--since EVENT_ID]  the event stream, one JSON object per line\n"},
    {"list", cmd_list,
     "  list    --tenant T [--status S] [--queue Q] [--lane L] [--limit N]  jobs, newest first\n"},
    {"delete", cmd_delete,
     "  delete  --tenant T ID...            delete jobs that ended or wait\n"},
    {"purge", cmd_purge,
     "  purge   --tenant T --status S [--queue Q]  delete every job that ended so; prints the count\n"},
    {"pause", cmd_pause,
     "  pause   --tenant T --queue Q        stop claims from a queue, fleet-wide\n"},
    {"resume", cmd_resume,
     "  resume  --tenant T --queue Q        claim from a paused queue again\n"},
    {"dashboard", cmd_dashboard,
     "  dashboard [--http HOST:PORT] [--token-file FILE] [--read-only]  the web dashboard\n"},
    {"fsck", cmd_fsck,
     "  fsck    --tenant T [--repair]      check (and repair) every invariant of the tenant's keys\n"},
};

static const char USAGE_HEAD[] = "Usage: lanework [OPTIONS] COMMAND [ARGS]\n"
                                 "\n"
                                 "Enqueue lanework jobs and look at and steer them.\n"
                                 "\n"
                                 "Commands:\n";

static const char USAGE_TAIL[] =
    "\n"
    "`lanework COMMAND --help` describes a command.\n"
    "\n"
    "Exit status:\n"
    "  0    done (for wait: every job succeeded)\n"
    "  1    a job ended failed, cancelled or expired (or its record is corrupt);\n"
    "       for fsck: problems found (with --repair: some remain)\n"
    "  2    usage or input error (bad flag, bad JSON, unknown tenant, unsafe id,\n"
    "       payload too large, bad registry)\n"
    "  3    Redis unreachable or it refused the command\n"
    "  4    no such job\n"
    "  124  wait timed out\n"
    "\n"
    "Options:\n"
    "  -h, --help   this text\n"
    "  --version    print the version\n";

static void print_usage(void)
{
    fputs(USAGE_HEAD, stdout);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fputs(commands[i].usage, stdout);
    fputs(USAGE_TAIL, stdout);
}

static int run(cli *c, int argc, char **argv)
{
    char err[512], env_err[512];
    int env_rc = lw_config_from_env(&c->cfg, env_err, sizeof env_err);
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_usage();
            fputs(LW_CONFIG_USAGE, stdout);
            return cli_flush(c);
        }
        if (strcmp(a, "--version") == 0) {
            printf("lanework %s\n", LW_VERSION);
            return cli_flush(c);
        }
        if (a[0] != '-')
            break;
        int r = lw_config_take_flag(&c->cfg, argc, argv, i, err, sizeof err);
        if (r < 0) {
            cli_err("usage", "%s", err);
            return CLI_USAGE;
        }
        if (r == 0) {
            cli_err("usage", "unknown option %s (see lanework --help)", cli_show(a));
            return CLI_USAGE;
        }
        i += r - 1;
    }
    if (i == argc) {
        cli_err("usage", "no command given (see lanework --help)");
        return CLI_USAGE;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(argv[i], commands[k].name) != 0)
            continue;
        if (env_rc != 0) {
            cli_err("environment", "%s", env_err);
            return CLI_USAGE;
        }
        c->cmd = commands[k].name;
        return commands[k].fn(c, argc - i, argv + i);
    }
    cli_err("usage", "unknown command \"%s\" (see lanework --help)", cli_show(argv[i]));
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    /* A Redis connection that goes away must be an error we report, and a
     * closed stdout is handled by cli_flush: neither may kill us. */
    signal(SIGPIPE, SIG_IGN);
    cli c;
    memset(&c, 0, sizeof c);
    if (lw_config_init(&c.cfg) != 0) {
        cli_err("error", "out of memory");
        return CLI_USAGE;
    }
    int rc = run(&c, argc, argv);
    if (rc == CLI_OK)
        rc = cli_flush(&c);
    else
        fflush(stdout);
    cli_clear(&c);
    return rc;
}

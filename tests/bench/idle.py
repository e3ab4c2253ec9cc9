#!/usr/bin/env python3
"""idle.py — what an idle fleet costs Redis, and how soon it still starts a job.

A registry of --tenants tenants (default 1,000; all share testmod, one Redis)
served by --workers long-running `lanework-worker`s (default 4, --isolation
thread --concurrency 4, each serving every tenant). After a settle time the
fleet is left idle for --idle seconds (default 20) and Redis's CPU over that
window is read from /proc/<redis pid>/stat (utime + stime), as a percentage of
one core, with the commands Redis ran meanwhile (INFO commandstats, reset at
the start of the window). Then single jobs are enqueued into random idle
tenants at --rate per second (default 20) for --seconds (default 10), one
EVALSHA of enqueue.lua each (as latency.py does), and the enqueue -> handler
start latency (testmod's `stamp`, CLOCK_MONOTONIC on both sides) is printed:
p50, p99, max.

Self-contained like latency.py: builds --build (default build-bench, release)
unless --no-build, starts its own redis-server on a unix socket in a temp dir,
stops what it started and removes the temp dir (--keep keeps it). --build may
be given several times (e.g. an old and a new build): the runs then take
turns, --runs times each, and the table has one line per build and run.

usage: tests/bench/idle.py [--tenants N] [--workers N] [--idle S] [--settle S]
           [--rate N] [--seconds S] [--runs N] [--build DIR]... [--no-build]
           [--keep]
"""
import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import proc_cpu_s, commandstats  # noqa: E402 (tests/bench/benchlib.py)
import latency  # noqa: E402 (tests/bench/latency.py: Redis, World, build, stamps)

NS = 'lw'
EVENTS_MAX = 100000


def say(msg):
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()






def start_workers(world, worker_bin, registry, n, tag):
    procs, logs = [], []
    for i in range(n):
        log = open(os.path.join(world.dir, 'worker-%s-%d.log' % (tag, i)), 'ab')
        procs.append(subprocess.Popen(
            [worker_bin, '--redis', 'unix://' + world.sock, '--registry', registry,
             '--name', 'idle-%s-%d' % (tag, i), '--namespace', NS, '--isolation', 'thread',
             '--concurrency', '4'],
            stdout=log, stderr=log, start_new_session=True, preexec_fn=latency._die_with_parent))
        logs.append(log)
    return procs, logs


def stop_workers(procs, logs):
    rcs = []
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            rcs.append(p.wait(timeout=15))
        except subprocess.TimeoutExpired:
            p.kill()
            rcs.append(p.wait())
    for f in logs:
        f.close()
    return rcs


def wait_subscribed(r, tenants, workers, timeout):
    """Until every worker has subscribed to every tenant's wake channel."""
    chans = ['%s:{%s}:wake' % (NS, t) for t in tenants]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rep = r.call('PUBSUB', 'NUMSUB', *chans)
        if all(int(rep[i + 1]) >= workers for i in range(0, len(rep), 2)):
            return True
        time.sleep(0.2)
    return False


def measure(world, r, sha, build_dir, args, run_no):
    worker_bin = os.path.join(build_dir, 'worker', 'lanework-worker')
    testmod = os.path.join(build_dir, 'tests', 'modules', 'testmod.so')
    tag = '%s-%d' % (os.path.basename(os.path.dirname(build_dir.rstrip('/'))) or 'b', run_no)
    r.call('FLUSHALL')
    stamps = os.path.join(world.dir, 'stamps-%s.log' % tag)
    registry = os.path.join(world.dir, 'registry-%s.json' % tag)
    tenants = ['t%04d' % i for i in range(args.tenants)]
    with open(registry, 'w') as f:
        json.dump([{'tenant': t, 'module': testmod, 'config': {'record_file': stamps},
                    'defaults': {'attempts': 3, 'timeout': 60, 'backoff': 0.1}} for t in tenants], f)
    procs, logs = start_workers(world, worker_bin, registry, args.workers, tag)
    try:
        if not wait_subscribed(r, tenants, args.workers, 60):
            raise latency.Fatal('workers did not subscribe to every tenant within 60 s; see %s'
                                % world.dir)
        time.sleep(args.settle)
        for p in procs:
            if p.poll() is not None:
                raise latency.Fatal('a worker exited (%s); see %s' % (p.returncode, world.dir))
        r.call('CONFIG', 'RESETSTAT')
        cpu0, t0 = proc_cpu_s(world.redis_proc.pid), time.monotonic()
        wcpu0 = [proc_cpu_s(p.pid) for p in procs]
        time.sleep(args.idle)
        cpu1, t1 = proc_cpu_s(world.redis_proc.pid), time.monotonic()
        wcpu1 = [proc_cpu_s(p.pid) for p in procs]
        stats = commandstats(r)
        clients = int(r.call('INFO', 'clients').split('connected_clients:')[1].split()[0])
        span = t1 - t0
        redis_pct = 100.0 * (cpu1 - cpu0) / span
        worker_pct = 100.0 * sum(b - a for a, b in zip(wcpu0, wcpu1)) / span / len(procs)
        calls = {k: v[0] / span for k, v in stats.items()}
        # Redis's own count of the time inside commands (scripts included),
        # beside the process's CPU: the rest is the event loop, the sockets.
        exec_pct = 100.0 * sum(stats.get(k, (0, 0.0))[1] for k in ('evalsha', 'fcall')) / 1e6 / span

        # Single jobs into random idle tenants.
        got, pos = {}, 0
        n = int(round(args.rate * args.seconds))
        interval = 1.0 / args.rate
        ids = []
        start = time.monotonic() + 0.05
        for i in range(n):
            due = start + i * interval
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            t = random.choice(tenants)
            p = '%s:{%s}:' % (NS, t)
            keys = [p + k for k in ('events', 'schedule', 'stats', 'queues', 'expiring')]
            jid = latency.new_id()
            ts = time.monotonic_ns() // 1000
            rep = r.call('EVALSHA', sha, len(keys), *keys, p, EVENTS_MAX, 1, 1, jid, 'stamp', 'default',
                         jid, '{"t":%d}' % ts, 3, 60000, 100, 0, 0, '', '', 0)
            if not (isinstance(rep, list) and rep[0] == jid and rep[1] == 1):
                raise latency.Fatal('enqueue.lua replied %r' % (rep,))
            ids.append(jid)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pos = latency.read_stamps(stamps, pos, got)
            if all(i in got for i in ids):
                break
            time.sleep(0.05)
        lat = sorted(got[i] / 1000.0 for i in ids if i in got)
    finally:
        rcs = stop_workers(procs, logs)
    res = {
        'build': build_dir, 'run': run_no, 'redis_pct': redis_pct, 'worker_pct': worker_pct,
        'exec_pct': exec_pct,
        'evalsha_s': calls.get('evalsha', 0.0) + calls.get('fcall', 0.0), 'all_s': sum(calls.values()), 'clients': clients,
        'jobs': n, 'missing': n - len(lat), 'p50': latency.percentile(lat, 0.5),
        'p99': latency.percentile(lat, 0.99), 'max': lat[-1] if lat else float('nan'),
        'rcs': rcs, 'top': sorted(calls.items(), key=lambda kv: -kv[1])[:4],
    }
    say('  %s run %d: redis %.2f %% of a core idle (%.0f script calls/s, %.2f %% inside them; '
        '%.0f commands/s), worker %.2f %% each; start p50 %.2f p99 %.2f max %.2f ms (%d/%d started)'
        % (build_dir, run_no, redis_pct, res['evalsha_s'], exec_pct, res['all_s'], worker_pct,
           res['p50'], res['p99'], res['max'], len(lat), n))
    say('    busiest: ' + ', '.join('%s %.0f/s' % kv for kv in res['top']))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tenants', type=int, default=1000)
    ap.add_argument('--workers', type=int, default=4)
    ap.add_argument('--settle', type=float, default=20,
                    help='seconds after subscribing, for idle polls to back off (default 20)')
    ap.add_argument('--idle', type=float, default=20, help='idle window, seconds (default 20)')
    ap.add_argument('--rate', type=float, default=20, help='enqueues per second (default 20)')
    ap.add_argument('--seconds', type=float, default=10, help='how long to enqueue (default 10)')
    ap.add_argument('--runs', type=int, default=1)
    ap.add_argument('--build', action='append',
                    help='build directory, may repeat (default $BENCH_BUILD or build-bench)')
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--keep', action='store_true')
    args = ap.parse_args()
    if args.tenants < 1 or args.workers < 1 or args.runs < 1 or args.rate <= 0:
        ap.error('--tenants, --workers, --runs and --rate must be positive')
    builds = [os.path.abspath(b) for b in (args.build or [os.environ.get(
        'BENCH_BUILD', os.path.join(latency.ROOT, 'build-bench'))])]
    # Each worker holds 2 connections per Redis server; the enqueuer one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt('signal %d' % signum)

    signal.signal(signal.SIGTERM, on_signal)
    world = latency.World(argparse.Namespace(socket=None, keep=args.keep))
    try:
        if not args.no_build:
            for b in builds:
                latency.build(b, world.dir)
        world.start_redis()
        r = latency.Redis(world.sock, timeout=30)
        sha = r.call('SCRIPT', 'LOAD', latency.enqueue_body())
        version = r.call('INFO', 'server').split('redis_version:')[1].split()[0]
        say('idle: %d tenants, %d workers, %g s idle, then %g jobs/s for %g s; %d run(s); temp dir %s'
            % (args.tenants, args.workers, args.idle, args.rate, args.seconds, args.runs, world.dir))
        results = []
        for run_no in range(1, args.runs + 1):
            for b in builds:
                results.append(measure(world, r, sha, b, args, run_no))
        r.close()
        print('lanework idle cost — %d tenants, %d workers (thread, c4) on one Redis %s (unix socket); %s'
              % (args.tenants, args.workers, version, time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())))
        print('idle window %g s; then %g single enqueues/s into random idle tenants for %g s; load %.2f'
              % (args.idle, args.rate, args.seconds, os.getloadavg()[0]))
        print('  %-44s %4s %9s %10s %9s %8s %8s %8s %8s' % (
            'build', 'run', 'redis %', 'scripts/s', 'worker %', 'p50 ms', 'p99 ms', 'max ms', 'missing'))
        bad = 0
        for x in results:
            print('  %-44s %4d %9.2f %10.0f %9.2f %8.2f %8.2f %8.2f %8d' % (
                x['build'][-44:], x['run'], x['redis_pct'], x['evalsha_s'], x['worker_pct'], x['p50'],
                x['p99'], x['max'], x['missing']))
            if x['missing'] or any(rc != 0 for rc in x['rcs']):
                bad = 1
        return bad
    except latency.Fatal as e:
        say('idle: %s' % e)
        return 1
    except KeyboardInterrupt:
        say('idle: interrupted')
        return 130
    finally:
        world.close()


if __name__ == '__main__':
    sys.exit(main())

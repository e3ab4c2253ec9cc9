#!/usr/bin/env python3
"""queue_metrics.py — what the queue gauges of /metrics cost Redis
(worker/queue_stats.c: every 5 s while /metrics is scraped, per tenant
struct TIME, HMGET stats, SMEMBERS paused, per queue ZCARD active:Q and
LRANGE ready:Q 0 15, then HMGET of the head's record).

A registry of --tenants tenants, each with --queues queues holding --jobs
queued jobs (the queues paused, so they stay queued and every ready list
has a head to read), served by --workers workers (--http each). Two
windows of --window seconds: first nobody scrapes (the reads are off),
then /metrics of every worker is scraped every --scrape seconds. For each
window: Redis's CPU (utime + stime of redis-server, % of one core), the
calls and usec of the commands the reader sends (INFO commandstats, reset
at the start of each window; script-internal calls are counted there too,
which the first window shows), and the workers' CPU. The difference is the
reads' cost; it is also given per round and per (tenant, queue) read.
Also the time a scrape takes (the page grows with tenants x queues).

Uses a meson build's binaries: --build (default $BENCH_BUILD, else build/), no build step.

usage: tests/bench/queue_metrics.py [--tenants N] [--queues N] [--jobs N]
           [--workers N] [--window S] [--scrape S] [--build DIR] [--keep]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import proc_cpu_s, commandstats  # noqa: E402 (tests/bench/benchlib.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READER = ('time', 'hmget', 'smembers', 'zcard', 'lrange')






def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tenants', type=int, default=200)
    ap.add_argument('--queues', type=int, default=5)
    ap.add_argument('--jobs', type=int, default=3)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--window', type=float, default=30)
    ap.add_argument('--scrape', type=float, default=5)
    ap.add_argument('--build', default=os.environ.get('BENCH_BUILD', os.path.join(ROOT, 'build')),
                    help='a meson build of this checkout (default $BENCH_BUILD or build/)')
    ap.add_argument('--keep', action='store_true')
    args = ap.parse_args()
    b = os.path.abspath(args.build)
    os.environ['LANEWORK_BIN'] = os.path.join(b, 'enqueue-cli', 'lanework')
    os.environ['LANEWORK_WORKER_BIN'] = os.path.join(b, 'worker', 'lanework-worker')
    os.environ['LANEWORK_TESTMOD'] = os.path.join(b, 'tests', 'modules', 'testmod.so')
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
    import lwtest

    env = lwtest.Env('qmetrics')
    ok = False
    try:
        tenants = ['t%04d' % i for i in range(args.tenants)]
        queues = ['q%d' % i for i in range(args.queues)]
        env.write_registry([env.tenant(t, queues={q: {} for q in queues}) for t in tenants])
        c = env.redis.client()
        for t in tenants:
            c.call('SADD', 'lw:{%s}:paused' % t, *queues)
        lines = [{'tenant': t, 'kind': 'noop', 'queue': q, 'payload': {}}
                 for t in tenants for q in queues for _ in range(args.jobs)]
        env.enqueue_batch(lines)
        ports = [lwtest.free_port() for _ in range(args.workers)]
        qflags = [x for q in queues for x in ('--queue', q)]
        ws = [env.worker('--http', '127.0.0.1:%d' % p, '--isolation', 'thread', '--concurrency', '4',
                         *qflags, name='qm%d' % i) for i, p in enumerate(ports)]
        for p in ports:
            lwtest.wait_until(lambda: _up(lwtest, p), timeout=60, what='worker /healthz')
        time.sleep(5)  # start-up claims, settings, subscriptions

        def window(scrape):
            c.call('CONFIG', 'RESETSTAT')
            rc0, t0 = proc_cpu_s(env.redis.proc.pid), time.monotonic()
            wc0 = [proc_cpu_s(w.pid) for w in ws]
            took, nscr = [], 0
            next_at = t0
            while time.monotonic() - t0 < args.window:
                if scrape and time.monotonic() >= next_at:
                    for p in ports:
                        s0 = time.monotonic()
                        code, body = lwtest.http_get(p, '/metrics', timeout=10)
                        took.append(time.monotonic() - s0)
                        nscr += 1
                    next_at += args.scrape
                time.sleep(0.05)
            span = time.monotonic() - t0
            rc1 = proc_cpu_s(env.redis.proc.pid)
            wc1 = [proc_cpu_s(w.pid) for w in ws]
            st = commandstats(c)
            series = body.count('lanework_queue_jobs{') if scrape else 0
            return {'span': span, 'redis_pct': 100 * (rc1 - rc0) / span,
                    'worker_pct': 100 * sum(b - a for a, b in zip(wc0, wc1)) / span / len(ws),
                    'calls': {k: st.get(k, (0, 0.0))[0] for k in READER},
                    'usec': {k: st.get(k, (0, 0.0))[1] for k in READER},
                    'all_usec': sum(v[1] for v in st.values()),
                    'scrape_ms': 1000 * max(took) if took else 0, 'scrapes': nscr, 'series': series}

        quiet = window(False)
        busy = window(True)
        # Rounds that ran, counted by the reader's one ZCARD per tenant and
        # queue (claim.lua's ZCARDs, caps only, are in the quiet window too).
        reads = busy['calls']['zcard'] - quiet['calls']['zcard']
        rounds = max(reads / float(args.tenants * args.queues), 1e-9)
        d_usec = sum(busy['usec'].values()) - sum(quiet['usec'].values())
        d_calls = sum(busy['calls'].values()) - sum(quiet['calls'].values())
        print('queue gauges: %d tenants x %d queues, %d jobs each, %d workers, windows of %.0f s'
              % (args.tenants, args.queues, args.jobs, args.workers, args.window))
        for name, w in (('no scrape', quiet), ('scraped every %.0f s' % args.scrape, busy)):
            print('  %-20s redis %.2f %% of a core, workers %.2f %% each; reader commands %s; usec %s'
                  % (name, w['redis_pct'], w['worker_pct'],
                     ' '.join('%s=%d' % kv for kv in w['calls'].items()),
                     ' '.join('%s=%.0f' % kv for kv in w['usec'].items())))
        print('  the reads: +%.2f %% of a Redis core (process CPU), +%.0f commands and +%.0f usec inside '
              'commands per window: %.1f rounds, %.0f usec per round of a worker (%.2f usec per tenant-queue, '
              '%.1f commands each; Redis process CPU per round %.1f ms); /metrics answered in %.1f ms at '
              'most (%d series of lanework_queue_jobs)'
              % (busy['redis_pct'] - quiet['redis_pct'], d_calls, d_usec, rounds, d_usec / rounds,
                 d_usec / reads, d_calls / reads,
                 (busy['redis_pct'] - quiet['redis_pct']) / 100 * busy['span'] * 1000 / rounds,
                 busy['scrape_ms'], busy['series']))
        print(json.dumps({'quiet': quiet, 'scraped': busy, 'usec_per_round': d_usec / rounds,
                          'usec_per_queue': d_usec / reads}))
        for w in ws:
            w.signal(15)
        ok = True
    finally:
        env.close(ok and not args.keep)


def _up(lwtest, port):
    try:
        return lwtest.http_get(port, '/healthz')[0] == 200
    except OSError:
        return False


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""dashboard.py — how long each page of `lanework dashboard` takes on a
tenant with 1,000,000 jobs (issue 14, item 2).

One redis-server on a unix socket (no persistence), one tenant "big":
--failed jobs that really failed (enqueued by `lanework enqueue --batch`,
drained by `lanework-worker --burst --isolation thread` running the test
module's `fail` kind: the failed index, the records with their errors, the
event stream at its cap), then --jobs more enqueued by `--batch` into queue
`default` and left waiting (9 in 10 on their own lane, 1 in 10 on one of
N/200 shared lanes). Then a dashboard with the registry, and each page is
fetched --rounds times in turn (sequentially, a fresh connection each):
printed per page are the median, p90 and max time to the last byte, and the
page's size. A second dashboard without a registry shows what the overview's
SCAN for tenants costs (its first load; later loads use the 30 s cache).

    tests/bench/dashboard.py [--jobs 1000000] [--failed 100000] [--rounds 20]
    tests/bench/dashboard.py --quick     (10,000 + 1,000 jobs, 3 rounds: a
                                          smoke run; checks every page is 200)

Needs redis-server, redis-cli and a build (BENCH_BUILD, default ./build).
Every wait is bounded; the servers are stopped at the end.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port  # noqa: E402 (tests/bench/benchlib.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get('BENCH_BUILD', os.path.join(ROOT, 'build')))
CLI = os.path.join(BUILD, 'enqueue-cli', 'lanework')
WORKER = os.path.join(BUILD, 'worker', 'lanework-worker')
TESTMOD = os.path.join(BUILD, 'tests', 'modules', 'testmod.so')




class Bench:
    def __init__(self, keep):
        self.dir = tempfile.mkdtemp(prefix='lw-dashbench-')
        self.keep = keep
        self.sock = os.path.join(self.dir, 'redis.sock')
        self.url = 'unix://' + self.sock
        self.procs = []
        self.redis = subprocess.Popen(
            ['redis-server', '--port', '0', '--unixsocket', self.sock, '--save', '', '--appendonly', 'no',
             '--dir', self.dir, '--maxmemory-policy', 'noeviction'],
            stdout=open(os.path.join(self.dir, 'redis.log'), 'wb'), stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while self.call('PING') != 'PONG':
            if time.monotonic() - t0 > 10:
                raise SystemExit('redis-server did not start')
            time.sleep(0.05)
        self.registry = os.path.join(self.dir, 'registry.json')
        with open(self.registry, 'w') as f:
            json.dump([{'tenant': 'big', 'module': TESTMOD, 'queues': {'default': {}, 'bulk': {}},
                        'config': {'record_file': os.path.join(self.dir, 'record.log')},
                        'defaults': {'attempts': 1, 'timeout': 30}}], f)

    def call(self, *args):
        p = subprocess.run(['redis-cli', '-s', self.sock] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        return p.stdout.decode().strip()

    def env(self):
        e = dict(os.environ)
        e.pop('LANEWORK_REDIS_URL', None)
        e.pop('LANEWORK_REGISTRY', None)
        return e

    def batch(self, lines):
        path = os.path.join(self.dir, 'batch.jsonl')
        with open(path, 'w') as f:
            for line in lines:
                f.write(line)
        t0 = time.monotonic()
        p = subprocess.run([CLI, 'enqueue', '--batch', path, '--tenant', 'big', '--redis', self.url,
                            '--registry', self.registry], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=1800, env=self.env())
        if p.returncode != 0:
            raise SystemExit('enqueue --batch: %d %s' % (p.returncode, p.stderr.decode()[-500:]))
        os.unlink(path)
        return time.monotonic() - t0

    def drain(self, queue):
        t0 = time.monotonic()
        p = subprocess.run([WORKER, '--registry', self.registry, '--redis', self.url, '--burst', '--isolation',
                            'thread', '--concurrency', '16', '--queue', queue, '--name', 'bench-w',
                            '--log-level', 'error'], stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(self.dir, 'worker.log'), 'wb'), timeout=1800, env=self.env())
        if p.returncode != 0:
            raise SystemExit('worker --burst exited %d (log in %s)' % (p.returncode, self.dir))
        return time.monotonic() - t0

    def dashboard(self, registry=True):
        port = free_port()
        argv = [CLI, 'dashboard', '--http', '127.0.0.1:%d' % port, '--redis', self.url]
        if registry:
            argv += ['--registry', self.registry]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(os.path.join(self.dir, 'dash.log'), 'ab'),
                             env=self.env())
        line = p.stdout.readline().decode()
        if not line.startswith('listening on'):
            raise SystemExit('dashboard did not start: %r' % line)
        self.procs.append(p)
        return port

    def close(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        self.redis.send_signal(signal.SIGTERM)
        self.redis.wait(30)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def fetch(port, path):
    t0 = time.perf_counter()
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    c.request('GET', path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, time.perf_counter() - t0, len(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--jobs', type=int, default=1000000)
    ap.add_argument('--failed', type=int, default=100000)
    ap.add_argument('--rounds', type=int, default=20)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    if a.quick:
        a.jobs, a.failed, a.rounds = 10000, 1000, 3
    for path in (CLI, WORKER, TESTMOD):
        if not os.path.exists(path):
            raise SystemExit('%s missing: build first (BENCH_BUILD=%s)' % (path, BUILD))
    b = Bench(a.keep)
    try:
        shared = max(1, a.jobs // 200)
        took = b.batch('{"kind":"fail","queue":"bulk","payload":{"error":"upstream said 503 for order %d"}}\n' % i
                       for i in range(a.failed))
        drained = b.drain('bulk')
        print('failed jobs: %d enqueued in %.1f s, failed by the worker in %.1f s' % (a.failed, took, drained))
        lines = ('{"kind":"record","lane":"shared-%d","payload":{"n":%d}}\n' % (i % shared, i) if i % 10 == 0
                 else '{"kind":"record","payload":{"n":%d}}\n' % i for i in range(a.jobs))
        took = b.batch(lines)
        queued = int(b.call('HGET', 'lw:{big}:stats', 'queued:default') or 0)
        kept = int(b.call('ZCARD', 'lw:{big}:failed') or 0)
        print('queued jobs: %d enqueued in %.1f s (%.0f jobs/s); queued:default=%d, failed index=%d, '
              'events=%s, Redis used_memory=%s' % (a.jobs, took, a.jobs / took, queued, kept,
                                                   b.call('XLEN', 'lw:{big}:events'),
                                                   [l for l in b.call('INFO', 'memory').splitlines()
                                                    if l.startswith('used_memory_human')][0].split(':')[1]))
        failed_id = b.call('ZREVRANGE', 'lw:{big}:failed', '0', '0')
        some_id = b.call('LINDEX', 'lw:{big}:ready:default', '0')
        port = b.dashboard()
        last_page = max(1, kept // 50)
        pages = ['/', '/t/big', '/t/big/q/default', '/t/big/q/default?status=queued', '/t/big/q/bulk?status=failed',
                 '/t/big/q/default?status=succeeded',
                 '/t/big/lanes', '/t/big/failed', '/t/big/failed?page=%d' % last_page,
                 '/t/big/job/' + failed_id, '/t/big/job/' + some_id, '/workers', '/t/big/events']
        times = {p: [] for p in pages}
        sizes = {}
        for _ in range(a.rounds):
            for p in pages:
                code, t, n = fetch(port, p)
                if code != 200:
                    raise SystemExit('GET %s: %d' % (p, code))
                times[p].append(t)
                sizes[p] = n
        print('\n%d rounds, each page in turn, one request at a time (ms to the last byte):' % a.rounds)
        print('%-44s %8s %8s %8s %9s' % ('page', 'median', 'p90', 'max', 'bytes'))
        for p in pages:
            v = sorted(times[p])
            p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
            print('%-44s %8.1f %8.1f %8.1f %9d' % (p if len(p) <= 44 else p[:41] + '...',
                                                   1000 * statistics.median(v), 1000 * p90, 1000 * v[-1],
                                                   sizes[p]))
        port2 = b.dashboard(registry=False)
        code, t_cold, _ = fetch(port2, '/')
        code2, t_warm, _ = fetch(port2, '/')
        print('\nwithout a registry, / finds tenants by SCAN of %s keys: first load %.0f ms, then %.0f ms '
              '(cached 30 s)' % (b.call('DBSIZE'), 1000 * t_cold, 1000 * t_warm))
        if code != 200 or code2 != 200:
            raise SystemExit('GET / without a registry: %d %d' % (code, code2))
        load = os.getloadavg()
        print('load average %.2f %.2f %.2f; %d cores' % (load[0], load[1], load[2], os.cpu_count()))
    finally:
        b.close()


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""clients.py — the Python client's enqueue throughput against RQ's.

Two measures, on the same private redis-server (a unix socket in a temp
dir, --save '', --appendonly no, noeviction), from one Python process:

  many  lanework Client.enqueue_many(tenant, N jobs)   vs  RQ Queue.enqueue_many(N)
        (both pipelined: lanework sends 256 jobs per EVALSHA of enqueue.lua,
        RQ one pipeline of its per-job commands)
  one   lanework Client.enqueue() N times               vs  RQ Queue.enqueue() N times
        (one round trip per job for lanework; what RQ does per job)
  async lanework AsyncClient.enqueue() N times from 64 coroutines at once
        (an asyncio app enqueueing one job per request under load: the
        waiting enqueues share calls)  vs  RQ Queue.enqueue() N times (RQ
        has no asyncio client; one by one is what an app gets from it)
  ping  a redis-py PING N times, for scale: the round trip every
        one-by-one enqueue pays before any work

Each job is a small payload ({"i": I} for lanework; args (I,) of a function
given by name for RQ). Runs are interleaved (lanework, RQ, lanework, ...)
with FLUSHALL before each measure, so drift on the machine spreads over
both; the medians and their ratio (lanework / RQ, jobs per second) are
printed. Nothing else is needed: no worker runs (enqueue only).

Needs redis-py and RQ (Debian python3-redis python3-rq, scripts/install-deps.sh);
when the python running this lacks them, /usr/bin/python3 is used.

usage: tests/bench/clients.py [--runs N] [--many N] [--one N] [--quick] [--keep]
(--one N: jobs of the one-by-one, async and ping measures)
"""
import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reexec_with_deps():
    try:
        import redis  # noqa: F401
        import rq  # noqa: F401
    except ImportError:
        if sys.executable != '/usr/bin/python3' and os.path.exists('/usr/bin/python3'):
            os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)
        sys.exit('clients.py: needs redis-py and RQ (Debian: python3-redis python3-rq)')


def say(msg):
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()


def start_redis(d):
    sock = os.path.join(d, 'redis.sock')
    proc = subprocess.Popen(['redis-server', '--port', '0', '--unixsocket', sock, '--unixsocketperm', '700',
                             '--dir', d, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction',
                             '--logfile', os.path.join(d, 'redis.log')])
    for _ in range(500):
        if os.path.exists(sock):
            break
        time.sleep(0.01)
    return proc, sock


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--many', type=int, default=20000, help='jobs per enqueue_many measure')
    ap.add_argument('--one', type=int, default=3000, help='jobs per one-by-one measure')
    ap.add_argument('--quick', action='store_true', help='1 run, 2,000 / 500 jobs')
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    if a.quick:
        a.runs, a.many, a.one = 1, 2000, 500
    reexec_with_deps()
    sys.path.insert(0, os.path.join(ROOT, 'clients', 'python'))
    import redis
    import rq
    import lanework

    d = tempfile.mkdtemp(prefix='lw-bench-clients-')
    proc, sock = start_redis(d)
    try:
        raw = redis.Redis(unix_socket_path=sock)
        lw = lanework.Client('unix://' + sock)
        q = rq.Queue('bench', connection=raw)

        def lw_many():
            ids = lw.enqueue_many('bench', [{'kind': 'noop', 'payload': {'i': i}} for i in range(a.many)])
            assert len(ids) == a.many

        def rq_many():
            jobs = q.enqueue_many([rq.Queue.prepare_data('math.sqrt', args=(i,)) for i in range(a.many)])
            assert len(jobs) == a.many

        def lw_one():
            for i in range(a.one):
                lw.enqueue('bench', 'noop', {'i': i})

        def rq_one():
            for i in range(a.one):
                q.enqueue('math.sqrt', i)

        def lw_async():
            async def go():
                c = lanework.AsyncClient('unix://' + sock)
                per = a.one // 64

                async def one_by_one(k):
                    for i in range(per):
                        await c.enqueue('bench', 'noop', {'i': k * per + i})
                await asyncio.gather(*[one_by_one(k) for k in range(64)])
                await c.close()
            asyncio.run(go())

        def ping():
            for _ in range(a.one):
                raw.ping()

        measures = [('many', a.many, lw_many, rq_many), ('one', a.one, lw_one, rq_one),
                    ('async', a.one // 64 * 64, lw_async, rq_one), ('ping', a.one, ping, None)]
        rates = {(m, who): [] for m, *_ in measures for who in ('lanework', 'rq')}
        say('load average: %s' % ' '.join('%.2f' % x for x in os.getloadavg()))
        say('redis-server %s, redis-py %s, rq %s, %d runs' % (
            raw.info()['redis_version'], redis.__version__, rq.__version__, a.runs))
        raw.flushall()
        lw.enqueue('bench', 'noop')  # scripts loaded, protocol checked: not part of a measure
        for run in range(a.runs):
            for m, n, lw_fn, rq_fn in measures:
                for who, fn in (('lanework', lw_fn), ('rq', rq_fn)):
                    if fn is None:
                        continue
                    raw.flushall()
                    rate = n / timed(fn)
                    rates[(m, who)].append(rate)
                    say('run %d %-4s %-8s %9.0f jobs/s' % (run + 1, m, who, rate))
        print('%-34s %12s %12s %7s' % ('measure (median of %d runs)' % a.runs, 'lanework/s', 'rq/s', 'ratio'))
        labels = {'many': 'enqueue_many, %d jobs', 'one': 'enqueue one by one, %d jobs',
                  'async': 'AsyncClient, 64 callers, %d jobs'}
        for m, n, *_ in measures:
            lwr = statistics.median(rates[(m, 'lanework')])
            if m == 'ping':
                print('%-34s %12.0f %12s  (%.0f us per round trip)' % ('redis-py PING, %d' % n, lwr, '', 1e6 / lwr))
                continue
            rqr = statistics.median(rates[(m, 'rq')])
            print('%-34s %12.0f %12.0f %6.2fx' % (labels[m] % n, lwr, rqr, lwr / rqr))
    finally:
        proc.terminate()
        proc.wait()
        if a.keep:
            say('kept: %s' % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()

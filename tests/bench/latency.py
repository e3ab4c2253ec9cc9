#!/usr/bin/env python3
"""latency.py — lanework's start latency under a steady stream of single enqueues.

One Python process enqueues jobs one at a time, at a fixed rate, each with ONE
EVALSHA of enqueue.lua (what `lanework enqueue` sends for one job: same
KEYS/ARGV, one job per call), while one long-running `lanework-worker` runs
them. Each job's payload carries t, the enqueuer's CLOCK_MONOTONIC in
microseconds taken just before the call; testmod's `stamp` kind appends
"STAMP <now_us> <t_us> <id>" when the handler starts, from the same
system-wide clock. Latency = now_us - t_us: from "enqueue sent" to "handler
running", i.e. the Redis round trip, the wake-up or poll, the claim and the
fork or thread hand-over. Measured for --isolation fork --concurrency 16 and
--isolation thread --concurrency 8, in turns when --runs > 1.

Self-contained like bench.sh: builds --build (default build-bench, release,
as tests/bench/lib.sh does) unless --no-build, starts its own redis-server on
a unix socket in a temp dir (or FLUSHALLs the one given with --socket: a
scratch Redis only), stops what it started and removes the temp dir
(--keep keeps it: worker logs, stamp files, Redis log).

usage: tests/bench/latency.py [--rate N] [--seconds S] [--runs N]
           [--isolation fork|thread|both] [--build DIR] [--no-build]
           [--socket PATH] [--keep]
"""
import argparse
import ctypes
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, 'common', 'scripts')
TENANT = 'bench'
NS = 'lw'
P = '%s:{%s}:' % (NS, TENANT)
CONCURRENCY = {'fork': 16, 'thread': 8}
EVENTS_MAX = 100000
WARMUP_JOBS = 50


def say(msg):
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()


class Fatal(Exception):
    pass


class Redis:
    """A minimal blocking RESP2 client over a unix socket."""

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.f = self.s.makefile('rb')

    def close(self):
        self.f.close()
        self.s.close()

    @staticmethod
    def encode(args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        return b''.join(out)

    def call(self, *args):
        self.s.sendall(self.encode(args))
        return self.reply()

    def reply(self):
        line = self.f.readline()
        if not line:
            raise Fatal('redis closed the connection')
        line = line[:-2]
        t, rest = line[:1], line[1:]
        if t == b'+':
            return rest.decode()
        if t == b'-':
            raise Fatal('redis: ' + rest.decode())
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode('utf-8', 'replace')
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise Fatal('bad reply %r' % line)


def enqueue_body():
    """enqueue.lua as the binaries send it (common/scripts/embed.py)."""
    sys.path.insert(0, SCRIPTS)
    try:
        import embed  # noqa: E402 (common/scripts/embed.py)
        return embed.load('enqueue')
    finally:
        sys.path.remove(SCRIPTS)


def build(build_dir, log_dir):
    log = os.path.join(log_dir, 'build.log')
    with open(log, 'ab') as lf:
        if not os.path.exists(os.path.join(build_dir, 'build.ninja')):
            say('building: meson setup %s --buildtype=release' % build_dir)
            if subprocess.call(['meson', 'setup', build_dir, ROOT, '--buildtype=release'],
                               stdout=lf, stderr=lf, timeout=600) != 0:
                raise Fatal('meson setup failed; see %s' % log)
        if subprocess.call(['ninja', '-C', build_dir], stdout=lf, stderr=lf, timeout=1800) != 0:
            raise Fatal('ninja failed; see %s' % log)


def build_type(build_dir):
    try:
        with open(os.path.join(build_dir, 'meson-info', 'intro-buildoptions.json')) as f:
            for o in json.load(f):
                if o['name'] == 'buildtype':
                    return o['value']
    except (OSError, ValueError, KeyError):
        pass
    return 'unknown'


def percentile(sorted_v, q):
    """Nearest rank: the smallest value with at least q of the values <= it."""
    if not sorted_v:
        return float('nan')
    k = max(0, min(len(sorted_v) - 1, math.ceil(q * len(sorted_v)) - 1))
    return sorted_v[k]


def _die_with_parent():
    """In a child before exec: SIGTERM when this script dies (even by
    SIGKILL), so nothing it started outlives it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class World:
    """The temp dir, Redis, and the worker of the current measurement."""

    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix='lanework-latency-')
        self.redis_proc = None
        self.worker = None
        self.worker_log = None
        self.sock = args.socket

    def start_redis(self):
        if self.sock:
            return
        self.sock = os.path.join(self.dir, 'redis.sock')
        self.redis_proc = subprocess.Popen(
            ['redis-server', '--port', '0', '--unixsocket', self.sock, '--unixsocketperm', '700',
             '--dir', self.dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction',
             '--logfile', os.path.join(self.dir, 'redis.log')],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while True:
            try:
                r = Redis(self.sock, timeout=1)
                ok = r.call('PING') == 'PONG'
                r.close()
                if ok:
                    return
            except (OSError, Fatal):
                pass
            if self.redis_proc.poll() is not None or time.monotonic() > deadline:
                raise Fatal('redis-server did not start; see %s/redis.log' % self.dir)
            time.sleep(0.05)

    def start_worker(self, worker_bin, registry, iso, name):
        self.worker_log = open(os.path.join(self.dir, 'worker-%s.log' % name), 'ab')
        self.worker = subprocess.Popen(
            [worker_bin, '--redis', 'unix://' + self.sock, '--registry', registry, '--name', name,
             '--namespace', NS, '--isolation', iso, '--concurrency', str(CONCURRENCY[iso])],
            stdout=self.worker_log, stderr=self.worker_log, start_new_session=True,
            preexec_fn=_die_with_parent)

    def stop_worker(self):
        w, self.worker = self.worker, None
        if w is None:
            return 0
        rc = None
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
            try:
                rc = w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                say('latency: worker did not exit within 15 s of SIGTERM; killing it')
                w.kill()
                w.wait()
                rc = -9
        else:
            rc = w.returncode
        if self.worker_log:
            self.worker_log.close()
            self.worker_log = None
        return rc

    def close(self):
        self.stop_worker()
        if self.redis_proc and self.redis_proc.poll() is None:
            self.redis_proc.terminate()
            try:
                self.redis_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.redis_proc.kill()
                self.redis_proc.wait()
        if self.args.keep:
            say('latency: kept %s' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def new_id():
    # The CLI's format: 48 bits of ms, 48 random bits, in hex.
    return '%012x%012x' % (int(time.time() * 1000) & (2 ** 48 - 1), random.getrandbits(48))


def read_stamps(path, pos, got):
    """Adds {id: latency_us} of the complete lines after offset pos; returns
    the new offset."""
    try:
        with open(path, 'rb') as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        return pos
    end = data.rfind(b'\n') + 1
    for line in data[:end].split(b'\n'):
        parts = line.split()
        if len(parts) == 4 and parts[0] == b'STAMP':
            got[parts[3].decode()] = int(parts[1]) - int(parts[2])
    return pos + end


def measure(world, r, sha, worker_bin, testmod, iso, run_no):
    args = world.args
    r.call('FLUSHALL')
    stamps = os.path.join(world.dir, 'stamps-%s-%d.log' % (iso, run_no))
    registry = os.path.join(world.dir, 'registry-%s-%d.json' % (iso, run_no))
    with open(registry, 'w') as f:
        json.dump([{'tenant': TENANT, 'module': testmod, 'config': {'record_file': stamps},
                    'defaults': {'attempts': 3, 'timeout': 60, 'backoff': 0.1}}], f)
    world.start_worker(worker_bin, registry, iso, 'latency-%s-%d' % (iso, run_no))
    keys = [P + k for k in ('events', 'schedule', 'stats', 'queues', 'expiring')]
    head = ['EVALSHA', sha, len(keys)] + keys + [P, EVENTS_MAX, 1, 1]

    def enqueue_one():
        jid = new_id()
        t = time.monotonic_ns() // 1000
        payload = '{"t":%d}' % t
        # id kind queue lane payload attempts timeout_ms backoff_ms delay_ms expires_ms unique spool
        # unique_for_ms
        rep = r.call(*head, jid, 'stamp', 'default', jid, payload, 3, 60000, 100, 0, 0, '', '', 0)
        if not (isinstance(rep, list) and len(rep) == 3 and rep[0] == jid and rep[1] == 1):
            raise Fatal('enqueue.lua replied %r' % (rep,))
        return jid

    def wait_stamps(ids, got, pos, timeout):
        deadline = time.monotonic() + timeout
        while True:
            pos = read_stamps(stamps, pos, got)
            if all(i in got for i in ids):
                return pos, True
            if world.worker.poll() is not None:
                raise Fatal('the %s worker exited (%s); see %s' % (iso, world.worker.returncode, world.dir))
            if time.monotonic() > deadline:
                return pos, False
            time.sleep(0.02)

    got, pos = {}, 0
    # Warm-up (not measured): the worker connects, subscribes to wake-ups,
    # forks its first children.
    warm = []
    for _ in range(WARMUP_JOBS):
        warm.append(enqueue_one())
        time.sleep(1.0 / args.rate)
    pos, ok = wait_stamps(warm, got, pos, 20)
    if not ok:
        raise Fatal('%s worker: warm-up jobs did not start within 20 s; see %s' % (iso, world.dir))

    n = int(round(args.rate * args.seconds))
    interval = 1.0 / args.rate
    ids = []
    late, max_lag = 0, 0.0
    load0 = os.getloadavg()
    t0 = time.monotonic() + 0.05
    for i in range(n):
        due = t0 + i * interval
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        else:
            lag = now - due
            if lag > 0.001:
                late += 1
            max_lag = max(max_lag, lag)
        ids.append(enqueue_one())
    t_end = time.monotonic()
    pos, ok = wait_stamps(ids, got, pos, max(10.0, args.seconds))
    load1 = os.getloadavg()
    rc = world.stop_worker()
    missing = [i for i in ids if i not in got]
    lat = sorted(got[i] / 1000.0 for i in ids if i in got)
    res = {
        'iso': iso, 'jobs': n, 'started': len(lat), 'missing': len(missing),
        'rate': n / (t_end - t0) if t_end > t0 else float('nan'),
        'p50': percentile(lat, 0.50), 'p90': percentile(lat, 0.90), 'p99': percentile(lat, 0.99),
        'max': lat[-1] if lat else float('nan'),
        'late': late, 'max_lag_ms': max_lag * 1000, 'load': load1, 'load0': load0, 'worker_rc': rc,
    }
    msg = ('  run %d: %-6s %6d jobs at %7.1f/s: p50 %7.2f  p90 %7.2f  p99 %7.2f  max %7.2f ms; '
           'load %.2f %.2f %.2f' % (run_no, iso, n, res['rate'], res['p50'], res['p90'], res['p99'],
                                    res['max'], *load1))
    say(msg)
    if late:
        say('  run %d: %s: the enqueuer fell behind its schedule: %d of %d jobs sent more than 1 ms late '
            '(at most %.1f ms)' % (run_no, iso, late, n, max_lag * 1000))
    if missing:
        say('  run %d: %s: %d of %d jobs had not started %.0f s after the last enqueue (e.g. %s)'
            % (run_no, iso, len(missing), n, max(10.0, args.seconds), missing[0]))
    if rc != 0:
        say('  run %d: %s: the worker exited %s on SIGTERM' % (run_no, iso, rc))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rate', type=float, default=1000, help='enqueues per second (default 1000)')
    ap.add_argument('--seconds', type=float, default=5, help='how long to enqueue (default 5)')
    ap.add_argument('--runs', type=int, default=1, help='repetitions; medians are printed (default 1)')
    ap.add_argument('--isolation', choices=('fork', 'thread', 'both'), default='both')
    ap.add_argument('--build', default=os.environ.get('BENCH_BUILD', os.path.join(ROOT, 'build-bench')),
                    help='build directory (default $BENCH_BUILD or build-bench, a release build)')
    ap.add_argument('--no-build', action='store_true', help='use --build as it is (bench.sh built it)')
    ap.add_argument('--socket', help='a scratch redis-server unix socket to use (it is FLUSHALLed)')
    ap.add_argument('--keep', action='store_true', help='keep the temp dir (logs, stamp files)')
    args = ap.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or args.runs < 1:
        ap.error('--rate and --seconds must be > 0, --runs >= 1')
    args.build = os.path.abspath(args.build)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt('signal %d' % signum)

    signal.signal(signal.SIGTERM, on_signal)
    world = World(args)
    try:
        if not args.no_build:
            build(args.build, world.dir)
        worker_bin = os.path.join(args.build, 'worker', 'lanework-worker')
        testmod = os.path.join(args.build, 'tests', 'modules', 'testmod.so')
        for f in (worker_bin, testmod):
            if not os.path.exists(f):
                raise Fatal('missing: %s (build it, or drop --no-build)' % f)
        btype = build_type(args.build)
        if btype != 'release':
            say('latency: warning: %s is a %r build, not release' % (args.build, btype))
        world.start_redis()
        r = Redis(world.sock)
        sha = r.call('SCRIPT', 'LOAD', enqueue_body())
        redis_version = r.call('INFO', 'server').split('redis_version:')[1].split()[0]
        isos = ('fork', 'thread') if args.isolation == 'both' else (args.isolation,)
        say('latency: %g jobs/s for %g s, %d run(s), %s; temp dir %s'
            % (args.rate, args.seconds, args.runs, ' and '.join(isos), world.dir))
        results = {iso: [] for iso in isos}
        load_start = os.getloadavg()
        for run_no in range(1, args.runs + 1):
            for iso in isos:
                results[iso].append(measure(world, r, sha, worker_bin, testmod, iso, run_no))
        r.call('FLUSHALL')
        r.close()
        load_end = os.getloadavg()

        def med(iso, k):
            return statistics.median(x[k] for x in results[iso])

        print('lanework start latency — single enqueues at a fixed rate; medians of %d run(s); %s'
              % (args.runs, time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())))
        print('host: %d CPU(s); load average at start: %.2f %.2f %.2f, at end: %.2f %.2f %.2f'
              % (os.cpu_count() or 0, *load_start, *load_end))
        print('redis: %s, unix socket; build: %s (%s); enqueuer: 1 Python process, one EVALSHA of '
              'enqueue.lua per job' % (redis_version, args.build, btype))
        print('offered: %g jobs/s for %g s; latency = handler start (testmod stamp) - enqueue sent, '
              'CLOCK_MONOTONIC' % (args.rate, args.seconds))
        print('  %-34s %7s %9s %8s %8s %8s %8s  %s' % ('worker', 'jobs', 'jobs/s', 'p50 ms', 'p90 ms',
                                                   'p99 ms', 'max ms', 'load avg (1 5 15 min)'))
        bad = 0
        for iso in isos:
            label = '--isolation %s --concurrency %d' % (iso, CONCURRENCY[iso])
            load = results[iso][-1]['load']
            print('  %-34s %7d %9.1f %8.2f %8.2f %8.2f %8.2f  %.2f %.2f %.2f'
                  % (label, med(iso, 'jobs'), med(iso, 'rate'), med(iso, 'p50'), med(iso, 'p90'),
                     med(iso, 'p99'), med(iso, 'max'), *load))
            late = sum(x['late'] for x in results[iso])
            if late:
                print('  %-34s the enqueuer fell behind: %d jobs sent > 1 ms late (at most %.1f ms)'
                      % ('', late, max(x['max_lag_ms'] for x in results[iso])))
            missing = sum(x['missing'] for x in results[iso])
            if missing:
                bad = 1
                print('  %-34s %d job(s) never started within the wait: percentiles cover the others'
                      % ('', missing))
            if any(x['worker_rc'] != 0 for x in results[iso]):
                bad = 1
                print('  %-34s a worker did not exit 0 on SIGTERM' % '')
        return bad
    except Fatal as e:
        say('latency: %s' % e)
        return 1
    except KeyboardInterrupt:
        say('latency: interrupted')
        return 130
    finally:
        world.close()


if __name__ == '__main__':
    sys.exit(main())

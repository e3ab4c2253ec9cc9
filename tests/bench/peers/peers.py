#!/usr/bin/env python3
"""peers.py — lanework side by side with BullMQ, Sidekiq and RQ on one Redis.

Run by run.sh, which builds build-bench/ and starts the private redis-server
(tests/bench/lib.sh); this script drives every measurement on that Redis,
prints the tables (peers_report.py) and writes the raw samples as JSON. See
tests/bench/README.md ("peers/") for what each figure means.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import latency as lat  # noqa: E402 (tests/bench/latency.py: RESP client, lanework's latency run)
from peers_report import report  # noqa: E402

TENANT = 'bench'
STATS = 'lw:{%s}:stats' % TENANT
POLL_S = 0.002


def say(msg):
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()


class Fatal(Exception):
    pass


class Proc:
    """A process this script started, in its own session (so a TERM to its
    group reaches its children too); reaped with wait4 for its rusage."""

    def __init__(self, argv, log, env=None, cwd=None, stdout_path=None):
        self.argv = argv
        self.log = log
        self.out_path = stdout_path or log + '.out'
        # The peak RSS is the process's VmHWM, sampled at each poll: a
        # process forked from this Python and exec'd keeps Python's
        # high-water mark in its ru_maxrss (Linux carries it over exec),
        # ~18 MiB here, which would hide a small worker's own few MiB;
        # VmHWM belongs to the memory of the program exec'd.
        self.hwm_kib = 0
        with open(log, 'ab') as lf, open(self.out_path, 'wb') as of:
            self.p = subprocess.Popen(argv, stdout=of, stderr=lf, env=env, cwd=cwd,
                                      start_new_session=True, preexec_fn=lat._die_with_parent)
        self.rc = None
        self.rusage = None
        ALL.append(self)

    def max_rss_kib(self):
        """Peak RSS of the process itself (KiB) as last sampled, else
        wait4's figure (which may be this Python's)."""
        return self.hwm_kib or self.rusage.ru_maxrss

    def sample_hwm(self):
        try:
            with open('/proc/%d/status' % self.p.pid) as f:
                for line in f:
                    if line.startswith('VmHWM:'):
                        self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
                        break
        except (OSError, ValueError, IndexError):
            pass

    def poll(self):
        if self.rc is None:
            self.sample_hwm()
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            if pid:
                self.rc = os.waitstatus_to_exitcode(status)
                self.p.returncode = self.rc
                self.rusage = ru
        return self.rc

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        return self.rc

    def signal(self, sig):
        if self.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=20):
        """TERM, then KILL after timeout; returns the exit status."""
        self.signal(signal.SIGTERM)
        if self.wait(timeout) is None:
            say('peers: %s did not exit %d s after SIGTERM; killing it' % (self.argv[0], timeout))
            self.signal(signal.SIGKILL)
            self.wait(10)
        return self.rc

    def out(self):
        with open(self.out_path, errors='replace') as f:
            return f.read()

    def tail(self):
        with open(self.log, errors='replace') as f:
            return ''.join(f.readlines()[-5:])


ALL = []


def stop_all():
    for p in ALL:
        if p.poll() is None:
            p.signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for p in ALL:
        while p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if p.poll() is None:
            p.signal(signal.SIGKILL)
            p.wait(5)


def cpu_s(ru):
    return ru.ru_utime + ru.ru_stime


class Bench:
    def __init__(self, args):
        self.a = args
        self.sock = args.socket
        self.url = 'unix://' + self.sock
        self.dir = args.dir
        self.r = lat.Redis(self.sock, timeout=30)
        self.cli = os.path.join(args.build, 'enqueue-cli', 'lanework')
        self.worker = os.path.join(args.build, 'worker', 'lanework-worker')
        self.testmod = os.path.join(args.build, 'tests', 'modules', 'testmod.so')
        self.registry = os.path.join(self.dir, 'registry.json')
        with open(self.registry, 'w') as f:
            json.dump([{'tenant': TENANT, 'module': self.testmod,
                        'defaults': {'attempts': 3, 'timeout': 60, 'backoff': 0.1}}], f)
        self.seq = 0
        self.samples = []  # one dict per measurement and rep
        self.rq_python = None

    # ------------------------------------------------------------ helpers --

    def path(self, name):
        self.seq += 1
        return os.path.join(self.dir, '%03d-%s' % (self.seq, name))

    def redis_cpu(self):
        info = self.r.call('INFO', 'cpu')
        v = dict(line.split(':', 1) for line in info.split('\r\n') if ':' in line)
        return float(v['used_cpu_user']) + float(v['used_cpu_sys'])

    def flush(self):
        self.r.call('FLUSHALL')

    def run_once(self, argv, name, timeout, env=None, cwd=None):
        """Runs argv to its end (bounded); returns (Proc, wall seconds)."""
        p = Proc(argv, self.path(name + '.log'), env=env, cwd=cwd)
        t0 = time.monotonic()
        rc = p.wait(timeout)
        secs = time.monotonic() - t0
        if rc is None:
            p.stop(5)
            raise Fatal('%s: did not finish within %d s; see %s' % (name, timeout, p.log))
        if rc != 0:
            raise Fatal('%s: exited %s: %s' % (name, rc, p.tail().strip()))
        return p, secs

    def peer_env(self):
        env = dict(os.environ)
        env['REDIS_URL'] = 'unix://' + self.sock
        return env

    # ---------------------------------------------------------- enqueuers --

    def enqueue(self, system, n, lanes=0):
        """Empties Redis and enqueues n no-op jobs the system's bulk way.
        Returns {'enq_jobs_s', 'enq_redis_us'}; checks n jobs are queued."""
        self.flush()
        deadline = 60 + n // 1000
        c0 = self.redis_cpu()
        if system == 'lanework':
            jobs = self.path('jobs.jsonl')
            with open(jobs, 'w') as f:
                for i in range(n):
                    lane = ',"lane":"l-%d"' % (i % lanes) if lanes else ''
                    f.write('{"kind":"noop"%s,"payload":{"i":%d}}\n' % (lane, i))
            p, secs = self.run_once([self.cli, '--redis', self.url, '--registry', self.registry,
                                     'enqueue', '--batch', jobs, '--tenant', TENANT],
                                    'lanework-enqueue', deadline)
            ids = p.out().split()
            if len(ids) != n:
                raise Fatal('lanework enqueue --batch printed %d ids for %d jobs' % (len(ids), n))
            queued = int(self.r.call('HGET', STATS, 'queued:default') or 0)
        elif system == 'bullmq':
            p, _ = self.run_once(['node', 'bullmq_peer.mjs', 'enqueue', self.sock, 'bench', str(n)],
                                 'bullmq-enqueue', deadline, cwd=HERE)
            secs = json.loads(p.out().strip().splitlines()[-1])['seconds']
            queued = self.r.call('LLEN', 'bull:bench:wait')
        elif system == 'sidekiq':
            p, _ = self.run_once(['ruby', 'sidekiq_peer.rb', 'enqueue', str(n)], 'sidekiq-enqueue',
                                 deadline, env=self.peer_env(), cwd=HERE)
            secs = json.loads(p.out().strip().splitlines()[-1])['seconds']
            queued = self.r.call('LLEN', 'queue:default')
        elif system == 'rq':
            p, _ = self.run_once([self.rq_python, 'rq_peer.py', 'enqueue', self.sock, str(n)],
                                 'rq-enqueue', deadline, cwd=HERE)
            secs = json.loads(p.out().strip().splitlines()[-1])['seconds']
            queued = self.r.call('LLEN', 'rq:queue:default')
        else:
            raise AssertionError(system)
        c1 = self.redis_cpu()
        if queued != n:
            raise Fatal('%s: %d jobs enqueued but %s queued' % (system, n, queued))
        return {'enq_jobs_s': n / secs, 'enq_redis_us': (c1 - c0) / n * 1e6}

    # ------------------------------------------------------------- drains --

    def drain(self, key, system, setting, nproc, n, lanes=0):
        """Pre-enqueues n jobs, starts nproc workers, times from the first job
        taken to the last one done (polled every 2 ms), checks exactly n were
        processed; records jobs/s, Redis and worker CPU per job, peak RSS."""
        s = {'key': key, 'system': system, 'setting': setting, 'procs': nproc, 'jobs': n, 'lanes': lanes}
        s.update(self.enqueue(system, n, lanes))
        argv, env, cwd = self.worker_argv(system, setting)
        burst = system in ('lanework', 'rq')
        deadline_s = 60 + n / 200.0
        c0 = self.redis_cpu()
        t_launch = time.monotonic()
        procs = [Proc(argv(i), self.path('%s-%d.log' % (key, i)), env=env, cwd=cwd) for i in range(nproc)]
        pending, done = self.progress(system, setting, n)
        t_first = None
        try:
            while True:
                now = time.monotonic()
                left = pending()
                if t_first is None and left < n:
                    t_first = now
                if done(left):
                    t_end = now
                    break
                for p in procs:
                    if p.poll() is not None and (not burst or p.rc != 0):
                        raise Fatal('%s: a worker exited %s before the drain ended: %s'
                                    % (key, p.rc, p.tail().strip()))
                if now - t_launch > deadline_s:
                    raise Fatal('%s: not drained within %.0f s (%s left)' % (key, deadline_s, left))
                time.sleep(POLL_S)
            c1 = self.redis_cpu()
            if t_first is None:  # drained before the first poll saw it start
                t_first = t_launch
            if system == 'sidekiq':
                # Outside the timed window: a Sidekiq thread whose BRPOP
                # returned a job after SIGTERM pushes it back to the queue
                # instead of running it (Processor#fetch), so the last jobs
                # popped get a moment to run before the stop.
                time.sleep(1)
            for p in procs:
                rc = p.wait(30) if burst else p.stop(30)
                if rc != 0:
                    raise Fatal('%s: a worker exited %s: %s' % (key, rc, p.tail().strip()))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.stop(5)
        self.check(key, system, setting, n, procs)
        secs = max(t_end - t_first, 1e-6)
        s['jobs_s'] = n / secs
        s['startup_s'] = t_first - t_launch
        s['redis_us'] = (c1 - c0) / n * 1e6
        s['redis_busy'] = (c1 - c0) / secs
        s['worker_cpu_us'] = sum(cpu_s(p.rusage) for p in procs) / n * 1e6
        s['worker_rss_mib'] = sum(p.max_rss_kib() for p in procs) / 1024.0
        s['load'] = os.getloadavg()[0]
        self.samples.append(s)
        say('  %-28s %7d jobs %9.0f jobs/s  redis %6.1f us/job (%3.0f%% busy)  worker %6.1f us/job '
            '%6.1f MiB  | enqueue %8.0f jobs/s %5.1f us/job  load %.2f'
            % (key, n, s['jobs_s'], s['redis_us'], s['redis_busy'] * 100, s['worker_cpu_us'],
               s['worker_rss_mib'], s['enq_jobs_s'], s['enq_redis_us'], s['load']))
        return s

    def worker_argv(self, system, setting):
        if system == 'lanework':
            iso, conc = setting.split()
            return (lambda i: [self.worker, '--redis', self.url, '--registry', self.registry,
                               '--name', 'peers-%d' % i, '--burst', '--isolation', iso,
                               '--concurrency', conc[1:], '--log-level', 'warn'], None, None)
        if system == 'bullmq':
            return (lambda i: ['node', 'bullmq_peer.mjs', 'drain', self.sock, 'bench', setting.split()[1]],
                    None, HERE)
        if system == 'sidekiq':
            return (lambda i: ['sidekiq', '-c', '10', '-r', './sidekiq_jobs.rb', '-t', '10'],
                    self.peer_env(), HERE)
        if system == 'rq':
            cls = 'rq.worker.SimpleWorker' if setting == 'SimpleWorker' else 'rq.worker.Worker'
            return (lambda i: ['rq', 'worker', '--burst', '-u', self.url, '-P', HERE, '-w', cls,
                               '--logging_level', 'WARNING', 'default'], None, HERE)
        raise AssertionError(system)

    def progress(self, system, setting, n):
        """(pending(), done(pending)): how many jobs are still waiting, and
        whether all n are done, from each system's own keys."""
        r = self.r
        if system == 'lanework':
            last = {}

            def pending():
                q, ok = r.call('HMGET', STATS, 'queued:default', 'succeeded:default')
                last['ok'] = int(ok or 0)
                return int(q or 0)
            return pending, lambda left: last['ok'] >= n
        if system == 'bullmq':
            if setting.endswith('keep'):
                return (lambda: r.call('LLEN', 'bull:bench:wait'),
                        lambda left: r.call('ZCARD', 'bull:bench:completed') >= n)
            return (lambda: r.call('LLEN', 'bull:bench:wait'),
                    lambda left: left == 0 and r.call('LLEN', 'bull:bench:active') == 0)
        if system == 'sidekiq':
            # Sidekiq adds to stat:processed at its heartbeat (every 5 s) and at
            # exit, so the end is the empty queue: its jobs in hand (10 no-ops)
            # end within microseconds. check() reads the counter after the exit
            # (a job still in hand at SIGTERM would be pushed back: it fails).
            return (lambda: r.call('LLEN', 'queue:default'), lambda left: left == 0)
        if system == 'rq':
            return (lambda: r.call('LLEN', 'rq:queue:default'),
                    lambda left: r.call('ZCARD', 'rq:finished:default') >= n)
        raise AssertionError(system)

    def check_lanework(self, key, n):
        """`lanework stats`: n jobs succeeded and nothing else; `lanework
        fsck`: every invariant of the tenant's keys holds."""
        out = subprocess.run([self.cli, '--redis', self.url, '--registry', self.registry, 'stats',
                              '--tenant', TENANT, '--json'], capture_output=True, text=True, timeout=60)
        qs = json.loads(out.stdout)['tenants'][TENANT]['queues']
        keys = ('queued', 'scheduled', 'active', 'succeeded', 'failed', 'cancelled', 'expired')
        got = [sum(int(q.get(k, 0)) for q in qs.values()) for k in keys]
        if got != [0, 0, 0, n, 0, 0, 0]:
            raise Fatal('%s: expected %d jobs succeeded, stats (q s a ok f c e): %s' % (key, n, got))
        fsck = subprocess.run([self.cli, '--redis', self.url, '--registry', self.registry, 'fsck',
                               '--tenant', TENANT], capture_output=True, text=True, timeout=120)
        if fsck.returncode != 0:
            raise Fatal('%s: lanework fsck exited %d: %s' % (key, fsck.returncode,
                                                            (fsck.stdout + fsck.stderr).strip()[-500:]))

    def check(self, key, system, setting, n, procs):
        """Exactly n jobs processed, by the system's own count; for lanework
        also `lanework stats` (nothing but n succeeded) and `lanework fsck`."""
        r = self.r
        if system == 'lanework':
            self.check_lanework(key, n)
            return
        if system == 'bullmq':
            outs = [json.loads(p.out().strip().splitlines()[-1]) for p in procs]
            completed = sum(o['completed'] for o in outs)
            failed = sum(o['failed'] for o in outs) + r.call('ZCARD', 'bull:bench:failed')
            kept = r.call('ZCARD', 'bull:bench:completed')
            want_kept = n if setting.endswith('keep') else 0
            if completed != n or failed or kept != want_kept or r.call('LLEN', 'bull:bench:wait'):
                raise Fatal('%s: expected %d completed; workers counted %d, failed %d, kept %d'
                            % (key, n, completed, failed, kept))
            return
        if system == 'sidekiq':
            processed = int(r.call('GET', 'stat:processed') or 0)
            failed = int(r.call('GET', 'stat:failed') or 0)
            if processed != n or failed or r.call('ZCARD', 'retry') or r.call('ZCARD', 'dead') \
                    or r.call('LLEN', 'queue:default'):
                raise Fatal('%s: expected %d processed, stat:processed %d, stat:failed %d, left in the queue %d'
                            % (key, n, processed, failed, r.call('LLEN', 'queue:default')))
            return
        if system == 'rq':
            fin = r.call('ZCARD', 'rq:finished:default')
            failed = r.call('ZCARD', 'rq:failed:default')
            if fin != n or failed or r.call('LLEN', 'rq:queue:default'):
                raise Fatal('%s: expected %d finished, finished registry %d, failed %d' % (key, n, fin, failed))
            return
        raise AssertionError(system)

    # ------------------------------------------------------------ latency --

    def latency_lanework(self, iso, rep):
        args = argparse.Namespace(rate=self.a.rate, seconds=self.a.seconds, keep=False, socket=self.sock)
        world = lat.World(args)
        try:
            r = lat.Redis(self.sock)
            sha = r.call('SCRIPT', 'LOAD', lat.enqueue_body())
            res = lat.measure(world, r, sha, self.worker, self.testmod, iso, rep)
            r.close()
        except lat.Fatal as e:
            raise Fatal('latency %s: %s' % (iso, e))
        finally:
            world.close()
        if res['missing'] or res['worker_rc'] != 0:
            raise Fatal('latency %s: %d jobs never started, worker exit %s'
                        % (iso, res['missing'], res['worker_rc']))
        # Every job (warm-up too) ended; the stamps said they started.
        deadline = time.monotonic() + 10
        want = res['jobs'] + lat.WARMUP_JOBS
        while int(self.r.call('HGET', STATS, 'succeeded:default') or 0) < want and time.monotonic() < deadline:
            time.sleep(0.02)
        self.check_lanework('latency lanework %s' % iso, want)
        s = {'key': 'latency lanework %s' % iso, 'system': 'lanework',
             'setting': '%s c%d' % (iso, lat.CONCURRENCY[iso]), 'jobs': res['jobs'], 'rate': res['rate'],
             'p50': res['p50'], 'p99': res['p99'], 'max': res['max'], 'late': res['late'],
             'load': res['load'][0]}
        self.samples.append(s)
        return s

    def latency_peer(self, system, rep):
        self.flush()
        stamps = self.path('%s-stamps' % system)
        open(stamps, 'w').close()
        if system == 'bullmq':
            worker = Proc(['node', 'bullmq_peer.mjs', 'lat-worker', self.sock, 'lat', stamps],
                          self.path('bullmq-lat-worker.log'), cwd=HERE)
            enq = lambda n, w: ['node', 'bullmq_peer.mjs', 'lat-enqueue', self.sock, 'lat', str(n),  # noqa: E731
                                str(self.a.rate), w]
            env, setting = None, 'c50'
        else:
            env = self.peer_env()
            env['BENCH_STAMPS'] = stamps
            worker = Proc(['sidekiq', '-c', '10', '-r', './sidekiq_jobs.rb', '-t', '10'],
                          self.path('sidekiq-lat-worker.log'), env=env, cwd=HERE)
            enq = lambda n, w: ['ruby', 'sidekiq_peer.rb', 'lat-enqueue', str(n), str(self.a.rate), w]  # noqa: E731
            setting = 'c10'
        n = int(round(self.a.rate * self.a.seconds))

        def wait_lines(k, timeout):
            deadline = time.monotonic() + timeout
            while True:
                with open(stamps) as f:
                    lines = f.read().splitlines()
                if len(lines) >= k:
                    return lines
                if worker.poll() is not None:
                    raise Fatal('%s latency worker exited %s: %s' % (system, worker.rc, worker.tail()))
                if time.monotonic() > deadline:
                    raise Fatal('%s latency: %d of %d jobs started within %d s' % (system, len(lines), k, timeout))
                time.sleep(0.02)
        try:
            self.run_once(enq(lat.WARMUP_JOBS, '1'), system + '-lat-warmup', 60, env=env, cwd=HERE)
            wait_lines(lat.WARMUP_JOBS, 30)
            p, _ = self.run_once(enq(n, '0'), system + '-lat-enqueue', 60 + self.a.seconds * 3, env=env, cwd=HERE)
            sent = json.loads(p.out().strip().splitlines()[-1])
            lines = wait_lines(lat.WARMUP_JOBS + n, max(10, self.a.seconds))
        finally:
            rc = worker.stop(20)
        if rc != 0:
            raise Fatal('%s latency worker exited %s on SIGTERM: %s' % (system, rc, worker.tail()))
        vals = sorted((int(c) - int(b)) / 1000.0 for a, b, c in (ln.split() for ln in lines) if a == 'm')
        if len(vals) != n:
            raise Fatal('%s latency: %d measured jobs started, %d sent' % (system, len(vals), n))
        s = {'key': 'latency %s' % system, 'system': system, 'setting': setting, 'jobs': n,
             'rate': n / sent['seconds'], 'p50': lat.percentile(vals, 0.5), 'p99': lat.percentile(vals, 0.99),
             'max': vals[-1], 'late': sent['late'], 'load': os.getloadavg()[0]}
        self.samples.append(s)
        return s


def say_latency(s):
    say('  %-28s %7d jobs %9.0f jobs/s  p50 %7.2f  p99 %7.2f  max %7.2f ms  (%d sent > 1 ms late)  load %.2f'
        % (s['key'], s['jobs'], s['rate'], s['p50'], s['p99'], s['max'], s['late'], s['load']))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--socket', required=True)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--build', required=True)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--jobs', type=int, default=100000)
    ap.add_argument('--rate', type=float, default=2000)
    ap.add_argument('--seconds', type=float, default=5)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--only', default='lanework,bullmq,sidekiq,rq')
    ap.add_argument('--out')
    ap.add_argument('--machine', default='')
    args = ap.parse_args()
    if args.quick:
        args.jobs = min(args.jobs, 5000)
        args.seconds = min(args.seconds, 1)
        args.reps = 1
    only = set(args.only.split(','))
    bad = only - {'lanework', 'bullmq', 'sidekiq', 'rq'}
    if bad or args.reps < 1 or args.jobs < 100:
        ap.error('--only takes lanework,bullmq,sidekiq,rq; --reps >= 1, --jobs >= 100')

    def on_signal(signum, _frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)

    b = Bench(args)
    args.redis_version = b.r.call('INFO', 'server').split('redis_version:')[1].split()[0]
    missing = []
    if 'bullmq' in only and not (shutil.which('node') and os.path.isdir(os.path.join(HERE, 'node_modules', 'bullmq'))):
        missing.append('BullMQ: node or tests/bench/peers/node_modules/bullmq missing '
                       '(scripts/install-deps.sh --bench runs npm ci there)')
        only.discard('bullmq')
    if 'sidekiq' in only and not (shutil.which('sidekiq') and shutil.which('ruby')):
        missing.append('Sidekiq: ruby or sidekiq missing (Debian ruby-sidekiq: scripts/install-deps.sh --bench)')
        only.discard('sidekiq')
    if 'rq' in only:
        for py in (sys.executable, '/usr/bin/python3'):
            if py and os.path.exists(py) and subprocess.run([py, '-c', 'import rq'], capture_output=True).returncode == 0:
                b.rq_python = py
                break
        if not b.rq_python or not shutil.which('rq'):
            missing.append('RQ: python3-rq missing (scripts/install-deps.sh installs it)')
            only.discard('rq')
    for line in missing:
        say('peers: skipped ' + line)

    n = args.jobs
    n_fork = max(n // 10, 100)
    n_rq = max(n // 100, 100)
    n_rqfork = max(n // 500, 50)
    n_lanes = max(n // 4, 100)
    # key, system, setting, processes, jobs, lanes — interleaved so that drift
    # on the machine spreads over every system instead of hitting one.
    plan = [
        ('lanework thread c128 1p', 'lanework', 'thread c128', 1, n, 0),
        ('bullmq c50 keep 1p', 'bullmq', 'c50 keep', 1, n, 0),
        ('sidekiq c10 1p', 'sidekiq', 'c10', 1, n, 0),
        ('rq SimpleWorker 1p', 'rq', 'SimpleWorker', 1, n_rq, 0),
        ('lanework thread c8 1p', 'lanework', 'thread c8', 1, n, 0),
        ('bullmq c50 remove 1p', 'bullmq', 'c50 remove', 1, n, 0),
        ('lanework fork c16 1p', 'lanework', 'fork c16', 1, n_fork, 0),
        ('rq fork Worker 1p', 'rq', 'Worker', 1, n_rqfork, 0),
        ('lanework thread c128 2p', 'lanework', 'thread c128', 2, n, 0),
        ('bullmq c50 keep 2p', 'bullmq', 'c50 keep', 2, n, 0),
        ('sidekiq c10 2p', 'sidekiq', 'c10', 2, n, 0),
        ('lanework thread c8 2p', 'lanework', 'thread c8', 2, n, 0),
        ('bullmq c50 remove 2p', 'bullmq', 'c50 remove', 2, n, 0),
        ('lanework thread c128 10 lanes 1p', 'lanework', 'thread c128', 1, n_lanes, 10),
        ('latency lanework thread', 'lanework', 'thread', 0, 0, 0),
        ('latency bullmq', 'bullmq', '', 0, 0, 0),
        ('latency lanework fork', 'lanework', 'fork', 0, 0, 0),
        ('latency sidekiq', 'sidekiq', '', 0, 0, 0),
    ]
    plan = [p for p in plan if p[1] in only]
    load0 = os.getloadavg()[0]
    say('peers: %d rep(s), N = %d (fork %d, RQ SimpleWorker %d, RQ fork %d, lanes %d); latency %g jobs/s for '
        '%g s; load average %.2f; temp dir %s' % (args.reps, n, n_fork, n_rq, n_rqfork, n_lanes, args.rate,
                                                   args.seconds, load0, args.dir))
    rc = 0
    try:
        for rep in range(1, args.reps + 1):
            say('rep %d of %d' % (rep, args.reps))
            for key, system, setting, nproc, jobs, lanes in plan:
                if key.startswith('latency'):
                    s = b.latency_lanework(setting, rep) if system == 'lanework' else b.latency_peer(system, rep)
                    s['rep'] = rep
                    say_latency(s)
                else:
                    b.drain(key, system, setting, nproc, jobs, lanes)['rep'] = rep
        b.flush()
        report(b.samples, [p[0] for p in plan], missing, args, load0)
    except Fatal as e:
        say('peers: FAIL: %s' % e)
        rc = 1
    except KeyboardInterrupt:
        say('peers: interrupted')
        rc = 130
    finally:
        stop_all()
        out = args.out or os.path.join(args.dir, 'peers.json')
        with open(out, 'w') as f:
            json.dump({'args': vars(args), 'skipped': missing, 'load_start': load0, 'load_end': os.getloadavg()[0],
                       'samples': b.samples}, f, indent=1)
        say('peers: raw samples in %s' % out)
    return rc


if __name__ == '__main__':
    sys.exit(main())

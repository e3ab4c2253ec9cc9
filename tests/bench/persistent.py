#!/usr/bin/env python3
"""Persistent handlers: a no-op Python function drained through a persistent
lanework handler (lanework.handler) vs. RQ's SimpleWorker, on the same
private redis-server, one worker process each; and the worker's own CPU per
persistent-handler attempt.

    /usr/bin/python3 tests/bench/persistent.py [--jobs N] [--rq-jobs N] [--runs R] [--keep]

Use the interpreter that has RQ (Debian: python3-rq); the handler runs on
the same one, so both sides pay the same Python. Without RQ, the lanework
half runs alone. Needs build-bench/ (or BENCH_BUILD=DIR; see README.md).

lanework: N no-op jobs (one lane each) enqueued with `lanework enqueue
--batch`, then `lanework-worker --concurrency 1` started and timed until
Redis counts N succeeded; its utime+stime (/proc/PID/stat, its own, not its
children's: the handler's CPU is not the worker's) over N is the CPU per
attempt, start-up included. RQ: N jobs enqueued in one pipeline, then
`rq worker --burst --worker-class rq.worker.SimpleWorker` timed to exit.
Runs interleave; medians are printed. BENCH_WRAP="perf record -g -o F --"
runs the worker under a profiler (its CPU figure is then the wrapper's).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get('BENCH_BUILD', os.path.join(ROOT, 'build-bench')))
WORKER = os.path.join(BUILD, 'worker', 'lanework-worker')
CLI = os.path.join(BUILD, 'enqueue-cli', 'lanework')
CLK = os.sysconf('SC_CLK_TCK')

HANDLER = '''import lanework

@lanework.handler.kind("noop")
def noop(job):
    return None

lanework.handler.run()
'''
RQJOBS = '''def noop():
    return None
'''


def resp(sock_path, *args):
    """One Redis command over RESP (stdlib only); integers and bulk strings."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    try:
        out = b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in
                                                (x.encode() if isinstance(x, str) else x for x in args))
        s.sendall(out)
        f = s.makefile('rb')
        line = f.readline()
        if line[:1] == b':':
            return int(line[1:])
        if line[:1] == b'$':
            n = int(line[1:])
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        if line[:1] == b'+':
            return line[1:].strip().decode()
        raise RuntimeError(line)
    finally:
        s.close()


def cpu_s(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime, stime (own)


def run_lanework(d, sock, n, conc, registry='registry.json', extra=()):
    resp(sock, 'FLUSHALL')
    batch = os.path.join(d, 'batch.jsonl')
    with open(batch, 'w') as f:
        for _ in range(n):
            f.write('{"kind":"noop","payload":{}}\n')
    p = subprocess.run([CLI, '--registry', os.path.join(d, registry), '--redis', 'unix://' + sock,
                        'enqueue', '--batch', batch, '--tenant', 'bench'], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=False)
    if p.returncode:
        sys.exit('enqueue failed: %s' % p.stderr.decode())
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'clients', 'python'))
    log = open(os.path.join(d, 'worker.log'), 'ab')
    t0 = time.monotonic()
    w = subprocess.Popen(os.environ.get('BENCH_WRAP', '').split() +
                         [WORKER, '--registry', os.path.join(d, registry), '--redis', 'unix://' + sock,
                          '--concurrency', str(conc), '--name', 'bench'] + list(extra),
                         stdout=log, stderr=log, env=env)
    cpu = 0.0
    try:
        while True:
            done = resp(sock, 'HGET', 'lw:{bench}:stats', 'succeeded:default')
            if done is not None and int(done) >= n:
                break
            if w.poll() is not None:
                sys.exit('the worker exited early; see %s' % log.name)
            if time.monotonic() - t0 > 120:
                sys.exit('lanework drain did not finish within 120 s')
            cpu = cpu_s(w.pid)
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu = cpu_s(w.pid)
    finally:
        w.terminate()
        w.wait()
        log.close()
    return n / elapsed, cpu / n * 1e6


def run_rq(d, sock, n):
    resp(sock, 'FLUSHALL')
    code = ('import sys; sys.path.insert(0, %r)\n'
            'import redis, rq, rqjobs\n'
            'r = redis.Redis(unix_socket_path=%r)\n'
            'q = rq.Queue("default", connection=r)\n'
            'with r.pipeline() as p:\n'
            '    q.enqueue_many([rq.Queue.prepare_data(rqjobs.noop) for _ in range(%d)], pipeline=p)\n'
            '    p.execute()\n' % (d, sock, n))
    subprocess.run([sys.executable, '-c', code], check=True)
    t0 = time.monotonic()
    env = dict(os.environ, PYTHONPATH=d)
    subprocess.run([sys.executable, '-m', 'rq.cli', 'worker', '--burst', '--quiet', '--worker-class',
                    'rq.worker.SimpleWorker', '--url', 'unix://' + sock, 'default'], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    left = resp(sock, 'LLEN', 'rq:queue:default')
    if left:
        sys.exit('rq left %d jobs queued' % left)
    return n / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--jobs', type=int, default=20000)
    ap.add_argument('--rq-jobs', type=int, default=2000)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--concurrency', type=int, default=1, help='lanework slots (handler processes)')
    ap.add_argument('--baseline', action='store_true',
                    help='also drain a no-op C module in thread isolation (the worker without a handler process)')
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    for b in (WORKER, CLI):
        if not os.access(b, os.X_OK):
            sys.exit('%s is missing: build it (meson setup build-bench --buildtype=release && ninja -C build-bench)'
                     % b)
    try:
        import rq  # noqa: F401
        import redis  # noqa: F401
        have_rq = True
    except ImportError:
        have_rq = False
        print('RQ (python3-rq) is not importable by %s: lanework only' % sys.executable)
    d = tempfile.mkdtemp(prefix='lw-bench-persistent-')
    sock = os.path.join(d, 'redis.sock')
    with open(os.path.join(d, 'handler.py'), 'w') as f:
        f.write(HANDLER)
    with open(os.path.join(d, 'rqjobs.py'), 'w') as f:
        f.write(RQJOBS)
    with open(os.path.join(d, 'registry.json'), 'w') as f:
        json.dump([{'tenant': 'bench', 'exec': {'noop': {'command': [sys.executable, os.path.join(d, 'handler.py')],
                                                          'persistent': True}}}], f)
    testmod = os.path.join(BUILD, 'tests', 'modules', 'testmod.so')
    with open(os.path.join(d, 'baseline.json'), 'w') as f:
        json.dump([{'tenant': 'bench', 'module': testmod, 'config': {}}], f)
    redis_log = open(os.path.join(d, 'redis.log'), 'ab')
    rs = subprocess.Popen(['redis-server', '--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no',
                           '--maxmemory-policy', 'noeviction', '--dir', d], stdout=redis_log, stderr=redis_log)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        print('load average: %s' % ' '.join(open('/proc/loadavg').read().split()[:3]))
        lw_rate, lw_cpu, rq_rate, b_rate, b_cpu = [], [], [], [], []
        for i in range(a.runs):
            rate, cpu = run_lanework(d, sock, a.jobs, a.concurrency)
            lw_rate.append(rate)
            lw_cpu.append(cpu)
            line = 'run %d: lanework persistent %8.0f jobs/s, worker CPU %5.1f us/attempt' % (i + 1, rate, cpu)
            if a.baseline:
                rate, cpu = run_lanework(d, sock, a.jobs, a.concurrency, 'baseline.json', ['--isolation', 'thread'])
                b_rate.append(rate)
                b_cpu.append(cpu)
                line += ' | thread no-op %8.0f jobs/s, %5.1f us' % (rate, cpu)
            if have_rq:
                rq_rate.append(run_rq(d, sock, a.rq_jobs))
                line += ' | rq SimpleWorker %6.0f jobs/s' % rq_rate[-1]
            print(line, flush=True)
        m_rate, m_cpu = statistics.median(lw_rate), statistics.median(lw_cpu)
        print('median: lanework persistent, --concurrency %d: %.0f jobs/s (%d jobs), worker CPU %.1f us per '
              'attempt (goal <= 30)' % (a.concurrency, m_rate, a.jobs, m_cpu))
        if a.baseline:
            print('median: thread-isolation no-op module, same worker flags: %.0f jobs/s, worker CPU %.1f us per '
                  'attempt; the persistent runner adds %.1f us' % (statistics.median(b_rate), statistics.median(b_cpu),
                                                                 m_cpu - statistics.median(b_cpu)))
        if have_rq:
            m_rq = statistics.median(rq_rate)
            print('median: rq SimpleWorker %.0f jobs/s (%d jobs); lanework / rq = %.1fx (goal >= 20x)'
                  % (m_rq, a.rq_jobs, m_rate / m_rq))
    finally:
        rs.terminate()
        rs.wait()
        redis_log.close()
        if a.keep:
            print('kept %s' % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()

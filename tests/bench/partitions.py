#!/usr/bin/env python3
"""partitions.py — one busy tenant past one node (issue 13 item 4).

A real local Redis Cluster of 1, 2 and 3 masters (redis-server
--cluster-enabled; slots given out with CLUSTER ADDSLOTSRANGE and the nodes
joined with CLUSTER MEET, since `redis-cli --cluster create` needs three),
one tenant, its jobs pre-enqueued by `lanework enqueue --batch` (each on
its own lane), then drained by `--workers` lanework-worker processes
(thread isolation, noop jobs) through redis-cluster://. For each layout
the tenant runs unpartitioned (one slot: one master does all its work,
whatever the cluster's size) and with --partitions K. Printed per run:
drain rate (jobs/s), and each master's CPU (INFO used_cpu_user+sys) per
1,000 jobs -- the busiest master bounds the tenant once Redis is the
bottleneck, so its CPU per job is the ceiling that scales with masters on
a machine with a core per master; the drain rate is what this machine
(all servers and workers on its cores) gets. Medians of --runs runs.

    tests/bench/partitions.py [--jobs 40000] [--runs 3] [--partitions 12,48]
                              [--workers 2] [--concurrency 16] [--masters 1,2,3]
    tests/bench/partitions.py --quick    (a smoke run: small, one run, checks
                                          every job succeeded and fsck is clean)

Needs redis-server and a build (BENCH_BUILD, default ./build). Every wait
is bounded; servers and workers are stopped at the end.
"""
import argparse
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
BUILD = os.environ.get('BENCH_BUILD', os.path.join(ROOT, 'build'))
CLI = os.path.join(BUILD, 'enqueue-cli', 'lanework')
WORKER = os.path.join(BUILD, 'worker', 'lanework-worker')
TESTMOD = os.path.join(BUILD, 'tests', 'modules', 'testmod.so')
SLOTS = 16384




def call(port, *args, timeout=10):
    """One command on a fresh connection (redis-cli: bench code, not hot)."""
    p = subprocess.run(['redis-cli', '-p', str(port)] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.stdout.decode().strip()


class Cluster:
    def __init__(self, dir, masters):
        self.dir, self.procs, self.ports, self.buses = dir, [], [], []
        try:
            self._start(masters)
        except BaseException:
            self.close()  # no server outlives a cluster that did not form
            raise

    def _start(self, masters):
        dir = self.dir
        for i in range(masters):
            port, bus = free_port(), free_port()
            d = os.path.join(dir, 'node%d' % i)
            os.makedirs(d)
            self.procs.append(subprocess.Popen(
                ['redis-server', '--bind', '127.0.0.1', '--port', str(port), '--dir', d,
                 '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
                 '--cluster-node-timeout', '2000', '--cluster-port', str(bus), '--save', '', '--appendonly', 'no'],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.ports.append(port)
            self.buses.append(bus)
        for port in self.ports:
            self.wait(lambda: call(port, 'PING') == 'PONG', 'node %d to start' % port)
        per = SLOTS // masters
        for i, port in enumerate(self.ports):
            lo, hi = i * per, SLOTS - 1 if i == masters - 1 else (i + 1) * per - 1
            out = call(port, 'CLUSTER', 'ADDSLOTSRANGE', lo, hi)
            if out != 'OK':
                raise SystemExit('partitions.py: ADDSLOTSRANGE on %d: %s' % (port, out))
        for port in self.ports[1:]:
            call(port, 'CLUSTER', 'MEET', '127.0.0.1', self.ports[0], self.buses[0])
        self.wait(lambda: all('cluster_state:ok' in call(p, 'CLUSTER', 'INFO') and
                              'cluster_known_nodes:%d' % masters in call(p, 'CLUSTER', 'INFO')
                              for p in self.ports), 'the cluster to form')

    @staticmethod
    def wait(pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise SystemExit('partitions.py: timed out waiting for %s' % what)
            time.sleep(0.05)

    def url(self):
        return 'redis-cluster://' + ','.join('127.0.0.1:%d' % p for p in self.ports)

    def cpu(self):
        """Each master's used_cpu_user + used_cpu_sys, seconds."""
        out = []
        for port in self.ports:
            info = dict(l.split(':', 1) for l in call(port, 'INFO', 'cpu').splitlines() if ':' in l)
            out.append(float(info['used_cpu_user']) + float(info['used_cpu_sys']))
        return out

    def owner(self, slot):
        per = SLOTS // len(self.ports)
        return min(slot // per, len(self.ports) - 1)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def key_slot(key):
    """Redis Cluster's slot of `key`: CRC16 of its hash tag (or of the key)."""
    s = key.find('{')
    if s >= 0:
        e = key.find('}', s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    crc = 0
    for b in key.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % SLOTS


def cli(url, *args, input=None, timeout=300):
    p = subprocess.run([CLI] + list(args) + ['--redis', url], input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def succeeded(url, tenant):
    rc, out, err = cli(url, 'stats', '--tenant', tenant, '--json', timeout=30)
    if rc != 0:
        raise SystemExit('partitions.py: stats: %s' % err)
    q = json.loads(out)['tenants'][tenant]['queues'].get('default', {})
    return q.get('succeeded', 0), q.get('failed', 0)


def one_run(tmp, masters, parts, a, run_no):
    d = tempfile.mkdtemp(prefix='run-', dir=tmp)
    cl = Cluster(d, masters)
    workers = []
    try:
        tenant = 'busy'
        reg = os.path.join(d, 'registry.json')
        with open(reg, 'w') as f:
            json.dump([{'tenant': tenant, 'module': TESTMOD, 'partitions': parts,
                        'defaults': {'attempts': 3, 'timeout': 60}}], f)
        url = cl.url()
        home = cl.ports[cl.owner(key_slot('lw:{%s}:' % tenant))]
        # The count is the workers' to publish: one short-lived worker does it
        # (in burst mode on the empty tenant), before any enqueue.
        w0 = subprocess.run([WORKER, '--registry', reg, '--redis', url, '--burst', '--name', 'setup'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        if w0.returncode != 0:
            raise SystemExit('partitions.py: the setup worker exited %d' % w0.returncode)
        have = call(home, 'HGET', 'lw:{%s}:settings' % tenant, 'partitions') or '1'
        if int(have) != parts and parts > 1:
            raise SystemExit('partitions.py: partition 0 holds %s, not %d' % (have, parts))
        text = ('{"kind":"noop"}\n' * a.jobs).encode()
        rc, out, err = cli(url, 'enqueue', '--tenant', tenant, '--batch', '-', '--registry', reg, input=text)
        if rc != 0 or len(out.split()) != a.jobs:
            raise SystemExit('partitions.py: enqueue --batch: %d %s' % (rc, err[-500:]))
        cpu0 = cl.cpu()
        t0 = time.monotonic()
        for i in range(a.workers):
            workers.append(subprocess.Popen(
                [WORKER, '--registry', reg, '--redis', url, '--isolation', 'thread', '--concurrency',
                 str(a.concurrency), '--name', 'bench-%d-%d' % (run_no, i), '--burst'],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 600
        done = 0
        while time.monotonic() < deadline:
            if all(w.poll() is not None for w in workers):
                break
            time.sleep(0.05)
        dt = time.monotonic() - t0
        cpu1 = cl.cpu()
        done, failed = succeeded(url, tenant)
        if done != a.jobs:
            raise SystemExit('partitions.py: %d of %d jobs succeeded (%d failed) with %d master(s), '
                             '%d partition(s)' % (done, a.jobs, failed, masters, parts))
        if a.quick:
            rc, out, err = cli(url, 'fsck', '--tenant', tenant, '--registry', reg, timeout=120)
            if rc != 0:
                raise SystemExit('partitions.py: fsck: %d\n%s%s' % (rc, out, err))
        per_master = [(b - c0) / a.jobs * 1e6 for b, c0 in zip(cpu1, cpu0)]  # us per job
        spread = [0] * masters
        for p in range(parts):
            pre = 'lw:{%s}:' % tenant if p == 0 else 'lw:{%s#%d}:' % (tenant, p)
            spread[cl.owner(key_slot(pre))] += 1
        return a.jobs / dt, per_master, spread
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        cl.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--jobs', type=int, default=40000)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--partitions', default='12,48', help='partition counts to run besides 1')
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--concurrency', type=int, default=16)
    ap.add_argument('--masters', default='1,2,3')
    ap.add_argument('--quick', action='store_true')
    a = ap.parse_args()
    if a.quick:
        a.jobs, a.runs, a.partitions = 2000, 1, '12'
    for b in (CLI, WORKER, TESTMOD):
        if not os.path.exists(b):
            raise SystemExit('partitions.py: %s is missing (build first, or set BENCH_BUILD)' % b)
    masters = [int(m) for m in a.masters.split(',')]
    tmp = tempfile.mkdtemp(prefix='lw-bench-parts-')
    rows = []
    try:
        print('one tenant, %d noop jobs (own lanes), %d thread workers x %d, %d run(s), %d cores'
              % (a.jobs, a.workers, a.concurrency, a.runs, os.cpu_count() or 0), flush=True)
        print('%-8s %-11s %10s %24s %s' % ('masters', 'partitions', 'jobs/s', 'busiest master us/job',
                                          'per master us/job (partitions on it)'), flush=True)
        # Interleaved: run r of every layout before run r+1 of any, so a
        # change in the machine's load falls on all of them alike.
        results = {}
        for r in range(a.runs):
            for m in masters:
                for k in [1] + [int(x) for x in a.partitions.split(',') if int(x) > 1]:
                    results.setdefault((m, k), []).append(one_run(tmp, m, k, a, r))
        for (m, k), rs in sorted(results.items()):
            rate = statistics.median(x[0] for x in rs)
            per = [statistics.median(x[1][i] for x in rs) for i in range(m)]
            spread = rs[0][2]
            print('%-8d %-11d %10.0f %24.1f %s' % (m, k, rate, max(per),
                  '  '.join('%.1f (%d)' % (u, s) for u, s in zip(per, spread))), flush=True)
            rows.append({'masters': m, 'partitions': k, 'jobs_per_s': rate, 'busiest_us_per_job': max(per),
                         'per_master_us_per_job': per, 'partitions_per_master': spread})
        base = next((x for x in rows if x['masters'] == masters[0] and x['partitions'] == 1), None)
        if base:
            for x in rows:
                print('  %d master(s), %d partition(s): drain %.2fx, busiest-master ceiling %.2fx of '
                      '%d master unpartitioned' % (x['masters'], x['partitions'], x['jobs_per_s'] / base['jobs_per_s'],
                                                   base['busiest_us_per_job'] / x['busiest_us_per_job'], masters[0]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()

"""Sentinel (redis-sentinel://, rediss-sentinel://; CONTRACT section 12) for
the worker and the CLI: a master, a replica and three redis-sentinel
processes on loopback (lwtest.SentinelSet).

  through sentinels   worker and CLI find the master by asking the
                      sentinels (and over TLS, sentinels included)
  failover            the master killed -9 under load (a CLI enqueueing
                      with --min-replicas 1, a worker running the jobs with
                      --min-replicas 1): the worker follows the failover by
                      itself; every acknowledged job is on the new master
                      and runs; prints accepted / executions / lost /
                      duplicates (lost must be 0); fsck clean after
  without min-replicas the same, measured: how many acknowledged jobs the
                      failover lost (printed; asynchronous replication on
                      loopback usually loses none, which is why
                      --min-replicas is the guarantee, not this figure)
  no sentinel answers one line naming the sentinels' failure, exit 3
"""
import subprocess
import threading
import time

import lwtest
from lwtest import check, wait_until


def sentinel_env(env, tls=None, replicas=1):
    env.redis.stop()
    env.ss = env.own(lwtest.SentinelSet(env.dir, replicas=replicas, tls=tls))
    env.redis = env.ss.nodes[0]  # the Env's helpers read the master's unix socket
    env.write_registry([env.tenant('t1')])
    return env.ss


def enqueue(env, url, *extra):
    return env.cli('enqueue', '--tenant', 't1', '--kind', 'record', '--payload', '{}', '--redis', url,
                   *extra, redis=False)


def test_worker_and_cli_through_sentinels(env):
    ss = sentinel_env(env)
    try:
        url = ss.url()
        w = env.worker('--concurrency', '2', redis_url=url)
        ids = []
        for _ in range(5):
            rc, out, err = enqueue(env, url)
            check(rc == 0, 'enqueue through the sentinels: %d %s' % (rc, err))
            ids.append(out.strip())
        env.wait_all('t1', ids, timeout=30)
        check('(master 127.0.0.1:%d)' % ss.nodes[0].data_port in w.log(),
              'the worker should name the master it found:\n' + w.log()[-2000:])
    finally:
        ss.close()


@lwtest.plain_only
def test_tls_sentinels(env):
    ca = lwtest.TlsCA(env.dir)
    ss = sentinel_env(env, tls=ca)
    try:
        url = ss.url()
        check(url.startswith('rediss-sentinel://'), url)
        w = env.worker('--concurrency', '2', redis_url=url)
        rc, out, err = enqueue(env, url)
        check(rc == 0, 'enqueue through TLS sentinels: %d %s' % (rc, err))
        env.wait_all('t1', [out.strip()], timeout=30)
        rc, out, err = enqueue(env, ss.url(ca=ca.other_ca_cert))
        check(rc == 3 and 'certificate verify failed' in err, 'wrong CA: %d %s' % (rc, err))
        check(w.running(), w.log())
    finally:
        ss.close()


def test_no_sentinel_answers(env):
    env.write_registry([env.tenant('t1')])
    ports = [lwtest.free_port() for _ in range(2)]
    url = 'redis-sentinel://%s/lwmaster' % ','.join('127.0.0.1:%d' % p for p in ports)
    rc, out, err = enqueue(env, url)
    lines = [l for l in err.splitlines() if l.strip()]
    check(rc == 3 and len(lines) == 1 and 'sentinel 127.0.0.1:%d' % ports[-1] in lines[0],
          'no sentinel: %d %r' % (rc, lines))


class Load(threading.Thread):
    """CLI batches of 10 jobs, one after another, until stopped: the ids of
    acknowledged batches (exit 0) and the count of refused ones."""

    def __init__(self, env, url, extra):
        super().__init__(daemon=True)
        self.env, self.url, self.extra = env, url, extra
        self.accepted, self.errors, self.stop = [], 0, threading.Event()

    def run(self):
        lines = ''.join('{"kind":"record","payload":{}}\n' for _ in range(10))
        while not self.stop.is_set():
            try:
                rc, out, err = self.env.cli('enqueue', '--tenant', 't1', '--batch', '-', '--redis', self.url,
                                            *self.extra, redis=False, input=lines, timeout=30)
            except subprocess.TimeoutExpired:
                self.errors += 1
                continue
            if rc == 0:
                self.accepted += out.split()
            else:
                self.accepted += out.split()  # ids printed before a failure were acknowledged
                self.errors += 1
                time.sleep(0.05)


def failover_under_load(env, min_replicas):
    # Two replicas: after the failover the new master still has one to
    # confirm what it is told (with one, --min-replicas 1 refuses everything
    # until the old master rejoins -- rightly).
    ss = sentinel_env(env, replicas=2)
    try:
        url = ss.url()
        extra = ['--min-replicas', str(min_replicas)] if min_replicas else []
        w = env.worker('--concurrency', '4', '--lease', '5', *extra, redis_url=url)
        load = Load(env, url, extra)
        load.start()
        wait_until(lambda: len(load.accepted) >= 100, timeout=30, what='jobs under load')
        ss.kill_master()
        t0 = time.monotonic()
        new = ss.wait_failover(timeout=30)
        failover_s = time.monotonic() - t0
        env.redis = new
        n_at_failover = len(load.accepted)
        wait_until(lambda: len(load.accepted) >= n_at_failover + 100, timeout=30,
                   what='enqueues acknowledged by the new master')
        load.stop.set()
        load.join(60)
        accepted = list(load.accepted)
        lost = [i for i in accepted if new.call('EXISTS', 'lw:{t1}:job:' + i) != 1]
        present = [i for i in accepted if i not in set(lost)]
        env.wait_all('t1', present, timeout=90)
        runs = env.runs()
        executions = sum(len(runs.get(i, [])) for i in accepted)
        dups = sum(1 for i in accepted if len(runs.get(i, [])) > 1)
        never = [i for i in present if not runs.get(i)]
        print('failover (min-replicas %d): accepted %d / executions %d / lost %d / duplicates %d '
              '(refused batches %d; sentinels took %.1f s)'
              % (min_replicas, len(accepted), executions, len(lost), dups, load.errors, failover_s), flush=True)
        check(not never, '%d acknowledged jobs never ran' % len(never))
        check(w.running(), 'the worker exited:\n' + w.log()[-3000:])
        rc, out, err = env.cli('fsck', '--tenant', 't1', '--redis', url, redis=False)
        check(rc == 0, 'fsck on the new master: %s %s' % (out, err))
        return lost
    finally:
        ss.close()


def test_failover_under_load_loses_nothing_with_min_replicas(env):
    lost = failover_under_load(env, 1)
    check(not lost, '%d acknowledged jobs lost with --min-replicas 1: %r' % (len(lost), lost[:5]))


@lwtest.plain_only
def test_failover_under_load_without_min_replicas(env):
    failover_under_load(env, 0)  # measured, not asserted: asynchronous replication


if __name__ == '__main__':
    lwtest.run([test_worker_and_cli_through_sentinels, test_tls_sentinels, test_no_sentinel_answers,
                test_failover_under_load_loses_nothing_with_min_replicas,
                test_failover_under_load_without_min_replicas])

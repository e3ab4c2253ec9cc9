"""Chaos: the lease guarantees under the faults production brings (issue 8).

  * Redis stopped (SIGSTOP) for 2-3 leases under 3 workers, and Redis
    killed and restarted from its AOF after 3 leases: a Redis outage is no
    worker death: no job reruns, none fails, every outcome is kept (attempts
    are frozen while their lease is unproven and thawed after).
  * A worker cut off from Redis by a network partition (a proxy) for longer
    than its lease, and a worker stopped with SIGSTOP while its fork child
    runs on: another worker takes the job over, and the cut-off attempt was
    frozen before its lease could expire, so one lane never runs two jobs at
    once, measured from the handlers' own clocks (testmod's ticker, module
    and exec handler).
  * Redis reaching maxmemory mid-run: claims stop, outcomes, renewals and
    the reaper go on (Redis 7 script flags), /healthz and the log say so.

Each test prints: accepted, executions (handler runs), lost (accepted jobs
without a terminal status: 0), duplicates (runs beyond one per job) and
overlaps (pairs of runs of one lane alive at the same time: 0).
"""
import collections
import os
import signal
import sys
import time

import lwtest
from lwtest import Redis, check, free_port, http_get, wait_until

TERMINAL = ('succeeded', 'failed', 'cancelled', 'expired')


def registry(env, **defaults):
    d = {'attempts': 3, 'timeout': 60, 'backoff': 0.05}
    d.update(defaults)
    env.write_registry([env.tenant('t1', defaults=d, exec={'xticker': [sys.executable, lwtest.TICKER]})])


def report(env, name, ids, extra=''):
    counts, _execs, dups = env.figures(name, 't1', ids, extra)
    return collections.Counter(counts), env.runs(), dups


def wait_terminal(env, ids, timeout):
    wait_until(lambda: all(s in TERMINAL for s in env.statuses('t1', ids)), timeout=timeout,
               interval=0.2, what='%d jobs to end' % len(ids))


def event_types(env, jid=None):
    return [e['type'] for e in env.events('t1') if jid is None or e['job'] == jid]


def fsck_clean(env):
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck found problems (exit %d):\n%s%s' % (rc, out[-3000:], err))


def stop_all(workers):
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        check(w.wait(40) == 0, 'worker %s exited %s:\n%s' % (w.name, w.proc.returncode, w.log()[-2000:]))


def lane_mix(env, nlanes, per_lane, ms):
    """per_lane jobs in each of nlanes lanes, alternating the module ticker
    and the exec ticker. ms: each job's length, or a list of lengths that
    the lanes take in turn."""
    lengths = ms if isinstance(ms, list) else [ms]
    lines = []
    for k in range(per_lane):
        for l in range(nlanes):
            m = lengths[l % len(lengths)]
            if (k + l) % 2:
                lines.append({'kind': 'ticker', 'lane': 'L%d' % l, 'payload': {'ms': m, 'every_ms': 50}})
            else:
                lines.append({'kind': 'xticker', 'lane': 'L%d' % l,
                              'payload': {'ms': m, 'every_ms': 50, 'record': env.record_file}})
    return env.enqueue_batch(lines, tenant='t1')


def no_rerun_checks(env, name, ids, workers, extra=''):
    counts, rs, dups = report(env, name, ids, extra)
    check(counts['succeeded'] == len(ids), '%s: not every job succeeded: %s' % (name, dict(counts)))
    check(dups == 0, '%s: %d job(s) ran more than once' % (name, dups))
    # (job.handed_back may appear: a claim whose reply came back after the
    # stall could not prove its leases, and its jobs went back unstarted,
    # which duplicates == 0 above confirms.)
    types = event_types(env)
    check('job.lost' not in types and 'job.retrying' not in types,
          '%s: an outage cost attempts: %s' % (name, collections.Counter(types)))
    for w in workers:
        check(w.running(), 'worker %s died:\n%s' % (w.name, w.log()[-3000:]))
        check('job.fenced' not in w.log(), 'worker %s had an outcome refused:\n%s' % (w.name, w.log()[-3000:]))
    return rs


@lwtest.plain_only
def test_redis_stopped_for_2_5_leases(env):
    registry(env)
    # 12 slots, 12 lanes x 3 jobs: short ones that end while Redis is
    # stopped (their outcomes must wait), long ones that outlast the freeze
    # point (frozen, then thawed).
    ids = lane_mix(env, nlanes=12, per_lane=3, ms=[600, 3000])
    workers = [env.worker('--concurrency', '4', '--lease', '2') for _ in range(3)]
    wait_until(lambda: env.statuses('t1', ids).count('active') >= 10, timeout=20, what='jobs to run')
    time.sleep(0.5)
    stalled_at = time.monotonic() * 1000
    os.kill(env.redis.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(5)  # 2.5 leases
    finally:
        os.kill(env.redis.proc.pid, signal.SIGCONT)
    resumed_at = time.monotonic() * 1000
    wait_terminal(env, ids, timeout=90)
    rs = no_rerun_checks(env, 'redis SIGSTOP 2.5 leases', ids, workers)
    # The test bit: attempts ended while Redis was stopped (their outcomes
    # waited), and attempts were frozen and thawed.
    ended_in_stall = sum(1 for jid in ids for r in rs.get(jid, []) if r[3] and stalled_at < r[2] < resumed_at)
    check(ended_in_stall > 0, 'no attempt ended during the stall: the test did not test outcomes kept')
    logs = ''.join(w.log() for w in workers)
    check('lease.thawed' in logs, 'no attempt was frozen and thawed: the stall did not outlast the fence')
    check('lease.outage' in logs, 'the outage was not noticed by the lease scripts')
    stop_all(workers)
    fsck_clean(env)


@lwtest.plain_only
def test_redis_restarted_after_3_leases(env):
    env.redis.stop()
    env.redis = Redis(env.dir, name='redis-aof', aof=True)
    registry(env)
    ids = lane_mix(env, nlanes=8, per_lane=3, ms=1500)
    workers = [env.worker('--concurrency', '4', '--lease', '2') for _ in range(2)]
    wait_until(lambda: env.statuses('t1', ids).count('active') >= 6, timeout=20, what='jobs to run')
    time.sleep(0.3)
    env.redis.kill9()
    time.sleep(6)  # 3 leases without Redis
    env.redis.start()
    wait_terminal(env, ids, timeout=90)
    no_rerun_checks(env, 'redis kill -9 + AOF restart after 3 leases', ids, workers)
    stop_all(workers)
    fsck_clean(env)


def partitioned(env, cut_off, resume):
    """Worker a runs two 6 s jobs (module and exec ticker, own lanes) and is
    then cut off by `cut_off`; b takes the jobs over once a's lease expired.
    Checks from the handlers' clocks that a's attempts were frozen before b
    started them."""
    registry(env, attempts=3)
    proxy = env.proxy()
    a = env.worker('--concurrency', '2', '--lease', '2', name='a', redis_url=proxy.url)
    ids = [env.enqueue('t1', 'ticker', {'ms': 6000, 'every_ms': 20}, lane='Z1'),
           env.enqueue('t1', 'xticker', {'ms': 6000, 'every_ms': 20, 'record': env.record_file}, lane='Z2')]
    # The lanes' next jobs: they must not start before the first ones end.
    ids += [env.enqueue('t1', 'ticker', {'ms': 200}, lane='Z1'), env.enqueue('t1', 'ticker', {'ms': 200}, lane='Z2')]
    wait_until(lambda: env.statuses('t1', ids[:2]) == ['active', 'active'] and
               all(env.runs().get(j) for j in ids[:2]), timeout=20, what='a to run both jobs')
    time.sleep(0.5)
    cut_off(a, proxy)
    b = env.worker('--concurrency', '2', '--lease', '2', name='b')
    wait_until(lambda: all(len(env.runs().get(j, [])) >= 2 for j in ids[:2]), timeout=20,
               what='b to take both jobs over')
    time.sleep(1.0)
    resume(a, proxy)
    wait_terminal(env, ids, timeout=60)
    counts, rs, dups = report(env, 'worker cut off longer than its lease', ids)
    check(counts['succeeded'] == len(ids), 'not every job succeeded: %s' % dict(counts))
    for jid in ids[:2]:
        first, second = rs[jid][0], rs[jid][1]
        check(not first[3], 'the cut-off attempt of %s ran to its end: %s' % (jid, first))
        check(first[2] < second[1], 'job %s: the cut-off attempt ticked at %d, after the takeover started at %d'
              % (jid, first[2], second[1]))
    check(env.status('t1', ids[0])['worker'] == 'b', 'b did not record the job')
    log = a.log()
    check('lease.lost' in log, 'a never learned it lost its leases:\n%s' % log[-3000:])
    check(a.running(), 'a died:\n%s' % log[-3000:])
    stop_all([a, b])
    fsck_clean(env)


def test_partitioned_worker_is_fenced(env):
    partitioned(env, lambda a, p: p.cut(), lambda a, p: p.heal())


def test_stopped_worker_is_fenced(env):
    # SIGSTOP stops the worker, not its attempt children (own process
    # groups): the fence keeper must freeze them.
    partitioned(env, lambda a, p: a.signal(signal.SIGSTOP), lambda a, p: a.signal(signal.SIGCONT))


def test_maxmemory_reached_mid_run(env):
    registry(env)
    port = free_port()
    lines = [{'kind': 'ticker', 'payload': {'ms': 600, 'every_ms': 100}} for _ in range(40)]
    ids = env.enqueue_batch(lines, tenant='t1')
    workers = [env.worker('--concurrency', '4', '--lease', '2', '--http', '127.0.0.1:%d' % port),
               env.worker('--concurrency', '4', '--lease', '2')]
    wait_until(lambda: env.statuses('t1', ids).count('active') >= 6, timeout=20, what='jobs to run')
    env.redis.call('CONFIG', 'SET', 'maxmemory', '1')  # noeviction: every deny-oom command refused
    try:
        time.sleep(1.0)  # the attempts that ran meanwhile end; their outcomes must go through
        started_before = len([1 for jid in ids if env.runs().get(jid)])
        time.sleep(1.5)
        started_after = len([1 for jid in ids if env.runs().get(jid)])
        done = [s for s in env.statuses('t1', ids) if s == 'succeeded']
        check(done, 'no outcome was recorded while Redis was at maxmemory (%d attempts had started)' % started_after)
        check(started_after == started_before, 'jobs were claimed while Redis was at maxmemory: %d -> %d'
              % (started_before, started_after))
        code, body = http_get(port, '/healthz')
        check(code == 503 and 'memory' in body, '/healthz during OOM: %d %r' % (code, body))
    finally:
        env.redis.call('CONFIG', 'SET', 'maxmemory', '0')
    wait_terminal(env, ids, timeout=60)
    no_rerun_checks(env, 'maxmemory mid-run', ids, workers)
    wait_until(lambda: http_get(port, '/healthz')[0] == 200, timeout=10, what='/healthz to recover')
    for w in workers:
        check(w.log().count('redis.oom') <= 2, 'OOM logged per claim:\n%s' % w.log()[-2000:])
        check('redis.oom' in w.log(), 'worker %s never said Redis was at maxmemory' % w.name)
    stop_all(workers)
    fsck_clean(env)


if __name__ == '__main__':
    lwtest.run([test_redis_stopped_for_2_5_leases, test_redis_restarted_after_3_leases,
                test_partitioned_worker_is_fenced, test_stopped_worker_is_fenced, test_maxmemory_reached_mid_run])

"""Job control (CONTRACT sections 4 and 9): --delay, --expires, retries with
exponential backoff, `lanework retry` (ids and --all-failed), `lanework
cancel` of waiting and running jobs (module and exec handlers, whose whole
process group is stopped), attempt timeouts in both isolations, and
retention of finished records."""
import os
import signal
import time

import lwtest
from lwtest import check, wait_until


def ev_of(env, tenant, jid):
    return [e for e in env.events(tenant) if e['job'] == jid]


def ts_ms(e):
    return int(e['id'].split('-')[0])


def test_delay(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker()
    t0 = time.time()
    jid = env.enqueue('t1', 'noop', {}, delay='1.5')
    s = env.status('t1', jid)
    check(s['status'] == 'scheduled', 'a delayed job is scheduled: %s' % s)
    env.wait_all('t1', [jid], timeout=20)
    types = [e['type'] for e in ev_of(env, 't1', jid)]
    check(types == ['job.scheduled', 'job.queued', 'job.started', 'job.succeeded'], 'events: %s' % types)
    started = [e for e in ev_of(env, 't1', jid) if e['type'] == 'job.started'][0]
    check(ts_ms(started) >= t0 * 1000 + 1400, 'a delayed job started %d ms early' % (t0 * 1000 + 1500 - ts_ms(started)))
    w.signal(signal.SIGTERM)
    w.wait()


def test_expires(env):
    env.write_registry([env.tenant('t1')])
    jid = env.enqueue('t1', 'noop', {}, expires='0.5', lane='L')
    behind = env.enqueue('t1', 'noop', {}, lane='L')
    time.sleep(1.0)
    w = env.worker()
    env.wait_all('t1', [jid], statuses=('expired',), timeout=20)
    env.wait_all('t1', [behind], timeout=20)  # the lane moves on past the expired job
    rc, _out, err = env.cli('wait', '--tenant', 't1', jid)
    check(rc == 1 and 'expired' in err, 'wait on an expired job: %d %s' % (rc, err))
    check('job.expired' in [e['type'] for e in ev_of(env, 't1', jid)], 'job.expired event')
    w.signal(signal.SIGTERM)
    w.wait()


def test_expiry_ends_at_the_first_start(env):
    """--expires bounds the wait before the first start only: a job handed
    back after its expiry time runs again, it does not end expired."""
    env.write_registry([env.tenant('t1')])
    jid = env.enqueue('t1', 'record', {'ms': 1500}, expires='1')
    a = env.worker('--shutdown-timeout', '0.1', name='a')
    wait_until(lambda: env.statuses('t1', [jid]) == ['active'], what='the job to start')
    time.sleep(1.2)
    a.signal(signal.SIGTERM)
    check(a.wait() == 0, 'worker a exit')
    b = env.worker(name='b')
    env.wait_all('t1', [jid], timeout=20)
    types = [e['type'] for e in ev_of(env, 't1', jid)]
    check('job.handed_back' in types and types[-1] == 'job.succeeded', 'events: %s' % types)
    b.signal(signal.SIGTERM)
    b.wait()


def test_retry_backoff_grows(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 4, 'timeout': 30, 'backoff': 0.2})])
    w = env.worker()
    jid = env.enqueue('t1', 'retry', {'succeed_on': 4})
    env.wait_all('t1', [jid], timeout=30)
    evs = ev_of(env, 't1', jid)
    starts = [ts_ms(e) for e in evs if e['type'] == 'job.started']
    retrying = [e for e in evs if e['type'] == 'job.retrying']
    check(len(starts) == 4 and len(retrying) == 3, 'events: %s' % [e['type'] for e in evs])
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # Backoff n: 200 ms * 2^(n-1), equal jitter -> in [d/2, d], plus claim latency.
    for n, g in enumerate(gaps, 1):
        d = 200 * 2 ** (n - 1)
        check(d / 2 - 20 <= g <= d + 600, 'gap %d is %d ms, expected %d..%d' % (n, g, d // 2, d))
    check(env.status('t1', jid)['attempt'] == 4, 'attempts counted')
    w.signal(signal.SIGTERM)
    w.wait()


def test_retry_command(env):
    marker = os.path.join(env.dir, 'marker')
    env.write_registry([env.tenant('t1', exec={'needs': ['sh', '-c', 'test -e "$0"', marker]},
                                   defaults={'attempts': 2, 'timeout': 30, 'backoff': 0.05})])
    w = env.worker()
    a = env.enqueue('t1', 'needs', {})
    b = env.enqueue('t1', 'needs', {})
    c = env.enqueue('t1', 'needs', {})
    env.wait_all('t1', [a, b, c], statuses=('failed',), timeout=20)
    check(env.status('t1', a)['attempt'] == 2, 'both attempts used')
    open(marker, 'w').close()
    rc, out, err = env.cli('retry', '--tenant', 't1', a)
    check(rc == 0, 'retry ID: %d %s' % (rc, err))
    env.wait_all('t1', [a], timeout=20)
    check(env.status('t1', a)['attempt'] == 1, 'a retried job gets a fresh set of attempts')
    rc, out, err = env.cli('retry', '--tenant', 't1', '--all-failed')
    check(rc == 0, 'retry --all-failed: %d %s' % (rc, err))
    env.wait_all('t1', [b, c], timeout=20)
    rc, out, err = env.cli('retry', '--tenant', 't1', a)
    check(rc != 0 and 'succeeded' in err, 'retrying a succeeded job is refused: %d %s' % (rc, err))
    rc, out, err = env.cli('retry', '--tenant', 't1', 'nosuch')
    check(rc == 4, 'retry of a missing job exits 4: %d %s' % (rc, err))
    w.signal(signal.SIGTERM)
    w.wait()


def test_cancel_waiting_and_running(env):
    pidfile = os.path.join(env.dir, 'grandchild.pid')
    # An exec handler that ignores SIGTERM and leaves a grandchild: the
    # whole process group must still go (TERM, then KILL after the grace).
    script = 'trap "" TERM; sleep 300 & echo $! > "$0"; wait'
    env.write_registry([env.tenant('t1', exec={'stubborn': ['sh', '-c', script, pidfile]})])
    w = env.worker('--concurrency', '4')
    mod = env.enqueue('t1', 'sleep', {'ms': 30000})
    ex = env.enqueue('t1', 'stubborn', {})
    queued = env.enqueue('t1', 'noop', {}, delay=60)
    rc, out, err = env.cli('cancel', '--tenant', 't1', queued)
    check(rc == 0, 'cancel of a scheduled job: %d %s' % (rc, err))
    check(env.status('t1', queued)['status'] == 'cancelled', 'a waiting job is cancelled at once')
    wait_until(lambda: env.statuses('t1', [mod, ex]) == ['active', 'active'] and os.path.exists(pidfile),
               what='both jobs to run')
    with open(pidfile) as f:
        gpid = int(f.read().strip())
    for j in (mod, ex):
        rc, out, err = env.cli('cancel', '--tenant', 't1', j)
        check(rc == 0, 'cancel of a running job: %d %s' % (rc, err))
    env.wait_all('t1', [mod], statuses=('cancelled',), timeout=10)
    env.wait_all('t1', [ex], statuses=('cancelled',), timeout=15)

    def gone():
        try:
            os.kill(gpid, 0)
            with open('/proc/%d/stat' % gpid) as f:
                return f.read().split()[2] == 'Z'
        except (ProcessLookupError, FileNotFoundError):
            return True
    wait_until(gone, timeout=10, what='the exec handler\'s grandchild to be killed')
    rc, out, err = env.cli('wait', '--tenant', 't1', mod)
    check(rc == 1 and 'cancelled' in err, 'wait on a cancelled job: %d %s' % (rc, err))
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_timeouts(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 2, 'timeout': 1, 'backoff': 0.05})])
    # fork: a handler that ignores every stop is killed; thread: one that
    # polls lw_job_cancelled() stops by itself. Either way the attempt fails
    # as timed out and is retried once.
    for isolation, kind in (('fork', 'sleep_hard'), ('thread', 'sleep')):
        w = env.worker('--isolation', isolation, name=isolation)
        jid = env.enqueue('t1', kind, {'ms': 20000})
        env.wait_all('t1', [jid], statuses=('failed',), timeout=30)
        s = env.status('t1', jid)
        check(s['attempt'] == 2 and 'timed out' in (s['error'] or ''), '%s timeout: %s' % (isolation, s))
        w.signal(signal.SIGTERM)
        check(w.wait() == 0, '%s worker exit' % isolation)


def test_retention(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0.05})])
    w = env.worker('--keep-succeeded', '1', '--keep-failed', '2')
    ok = env.enqueue('t1', 'noop', {}, unique='u1')
    bad = env.enqueue('t1', 'fail', {})
    env.wait_all('t1', [ok])
    env.wait_all('t1', [bad], statuses=('failed',))
    wait_until(lambda: env.redis.call('EXISTS', 'lw:{t1}:job:' + ok) == 0, timeout=5,
               what='the succeeded record to expire')
    check(env.redis.call('EXISTS', 'lw:{t1}:unique:u1') == 0, 'the unique key expired with its job')
    check(env.redis.call('EXISTS', 'lw:{t1}:job:' + bad) == 1, 'the failed record is kept longer')
    wait_until(lambda: env.redis.call('EXISTS', 'lw:{t1}:job:' + bad) == 0, timeout=5,
               what='the failed record to expire')
    rc, _o, _e = env.cli('status', '--tenant', 't1', ok)
    check(rc == 4, 'an expired record is no such job (4), got %d' % rc)
    # The unique key is free again.
    again = env.enqueue('t1', 'noop', {}, unique='u1')
    check(again != ok, 'a unique key is reusable once its job is gone')
    w.signal(signal.SIGTERM)
    w.wait()


if __name__ == '__main__':
    lwtest.run([test_delay, test_expires, test_expiry_ends_at_the_first_start, test_retry_backoff_grows, test_retry_command,
                test_cancel_waiting_and_running, test_timeouts, test_retention])

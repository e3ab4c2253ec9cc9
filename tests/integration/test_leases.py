"""Chaos: the edges of the lease rules (docs/DESIGN.md section 5), each a
defect a hostile review found in the first version of self-fencing.

  late replies      a renewal or claim reply held back past the lease it
                    proves must neither thaw nor start an attempt
  restore           a Redis restored from older data counts fencing tokens
                    again: a reissued token must not let a stale attempt
                    renew and finish the new one
  mixed leases      an outage is an outage for every lease in the fleet,
                    whoever's reaper runs first
  clock steps       a forward step of Redis's clock, noticed or not, must
                    not let the reaper take a job before its holder froze it
  fresh leases      leases made after the fleet was down are not moved as
                    if they predated the downtime
  thread fence      a thread attempt asked to stop at its freeze point keeps
                    its timeout

Each prints the chaos figures (accepted, executions, lost, duplicates,
overlaps) where it runs jobs that record their runs.
"""
import os
import signal
import time

import lwtest
from lwtest import check, wait_until


def registry(env, **defaults):
    d = {'attempts': 5, 'timeout': 120, 'backoff': 0.05}
    d.update(defaults)
    env.write_registry([env.tenant('t1', defaults=d)])


def pids_of(env, jid):
    out = []
    for what, _ms, j, _lane, pid in env.records():
        if j == jid and what == 'START' and pid not in out:
            out.append(pid)
    return out


def last_line_ms(env, pid):
    return max(ms for _w, ms, _j, _l, p in env.records() if p == pid)


def first_line_ms(env, pid):
    return min(ms for _w, ms, _j, _l, p in env.records() if p == pid)


def stop(*workers):
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        check(w.wait(40) == 0, 'worker %s exited %s:\n%s' % (w.name, w.proc.returncode, w.log()[-2000:]))


def test_late_renewal_reply_does_not_thaw(env):
    registry(env)
    p = env.proxy()
    w1 = env.worker('--lease', '2', '--concurrency', '1', name='w1', redis_url=p.url)
    jid = env.enqueue('t1', 'ticker', {'ms': 7000, 'every_ms': 20}, lane='L')
    wait_until(lambda: pids_of(env, jid), what='w1 to start the job')
    w2 = env.worker('--lease', '2', '--concurrency', '1', name='w2')
    time.sleep(1.0)
    # w1's renewals still reach Redis and run there, but their replies are
    # held: its lease is extended while it can prove nothing.
    p.hold_replies()
    wait_until(lambda: len(pids_of(env, jid)) >= 2, timeout=15, what='w2 to take the job over')
    time.sleep(1.0)
    p.heal()  # the held replies arrive now: "extended", but long ago
    time.sleep(2.0)
    first, second = pids_of(env, jid)[:2]
    check(last_line_ms(env, first) < first_line_ms(env, second),
          'a late reply thawed the old attempt: it ticked at %d, after the takeover started at %d'
          % (last_line_ms(env, first), first_line_ms(env, second)))
    env.wait_all('t1', [jid], timeout=40)
    env.figures('late renewal reply', 't1', [jid])
    check('lease.lost' in w1.log(), 'w1 never learned it lost the lease:\n%s' % w1.log()[-2000:])
    stop(w1, w2)


def test_late_claim_reply_starts_nothing(env):
    registry(env)
    p = env.proxy()
    w1 = env.worker('--lease', '2', '--concurrency', '1', name='w1', redis_url=p.url)
    wait_until(lambda: 'redis.ready' in w1.log(), what='w1 to connect')
    time.sleep(0.5)
    p.hold_replies()
    jid = env.enqueue('t1', 'ticker', {'ms': 1000, 'every_ms': 20}, lane='L')
    # w1's next poll claims the job in Redis; the reply waits in the proxy
    # until the lease it grants has expired and w2 has taken the job.
    time.sleep(0.8)
    w2 = env.worker('--lease', '2', '--concurrency', '1', name='w2')
    wait_until(lambda: pids_of(env, jid), timeout=15, what='w2 to take the job')
    time.sleep(0.3)
    p.heal()
    env.wait_all('t1', [jid], timeout=30)
    time.sleep(0.5)
    _counts, execs, _dups = env.figures('late claim reply', 't1', [jid])
    check(execs[jid] == 1, 'the job ran %d times: the late claim reply started it beside w2' % execs[jid])
    check(env.status('t1', jid)['worker'] == 'w2', 'w2 did not run the job')
    stop(w1, w2)


def test_restore_from_older_data_reissues_no_token(env):
    """A Redis restored from a snapshot older than a claim counts `fence`
    again from the snapshot: with bare counters the next claim got the
    stale attempt's token, and both attempts ran for as long as they liked.
    The restore forgot the lease itself, so another worker may start the job
    at once: the old attempt runs on until its freeze point (at most 0.65
    lease), then dies at the first renewal after the partition."""
    registry(env)
    jid = env.enqueue('t1', 'ticker', {'ms': 5000, 'every_ms': 50}, lane='L')
    env.redis.call('SAVE')  # the snapshot: the job still queued
    p = env.proxy()
    w1 = env.worker('--lease', '2', '--concurrency', '1', name='w1', redis_url=p.url)
    wait_until(lambda: pids_of(env, jid), what='w1 to start the job')
    time.sleep(0.5)
    p.cut()
    env.redis.restart()  # kill -9, back from dump.rdb: the job queued again
    w2 = env.worker('--lease', '2', '--concurrency', '1', name='w2')
    wait_until(lambda: len(pids_of(env, jid)) >= 2, timeout=15, what='w2 to start the job')
    p.heal()
    time.sleep(2.0)
    env.wait_all('t1', [jid], timeout=40)
    env.figures('restore from older data', 't1', [jid], max_overlap_ms=1300 + 300)  # 0.65 x 2 s
    ev = [(e['type'], e['worker']) for e in env.events('t1') if e['job'] == jid]
    check(('job.succeeded', 'w2') in ev and ('job.succeeded', 'w1') not in ev,
          'the stale attempt finished the new one: %s' % ev)
    check('lease.lost' in w1.log(), 'w1 kept renewing with a reissued token:\n%s' % w1.log()[-2000:])
    stop(w1, w2)


@lwtest.plain_only
def test_mixed_lease_fleet_outage_is_an_outage(env):
    """A fleet with --lease 2 and --lease 20 workers loses Redis for 6 s; the
    long-lease worker's link comes back first. Its reaper must take the gap
    for the outage it was for the short-lease worker, not reap its job."""
    registry(env)
    pa, pb = env.proxy(), env.proxy()
    wb = env.worker('--lease', '2', '--concurrency', '1', name='wB', redis_url=pb.url)
    jid = env.enqueue('t1', 'ticker', {'ms': 10000, 'every_ms': 50}, lane='L')
    wait_until(lambda: pids_of(env, jid), what='wB to start the job')
    wa = env.worker('--lease', '20', '--concurrency', '1', name='wA', redis_url=pa.url)
    time.sleep(1.5)
    pa.cut()
    pb.cut()
    time.sleep(6)
    pa.heal()
    time.sleep(1.0)
    pb.heal()
    env.wait_all('t1', [jid], timeout=40)
    _c, execs, _d = env.figures('mixed --lease fleet, 6 s outage', 't1', [jid])
    check(execs[jid] == 1 and env.status('t1', jid)['attempt'] == 1,
          'the outage cost the short-lease worker its job: %d runs, %s' % (execs[jid], env.status('t1', jid)))
    stop(wa, wb)


def clock_step(env, step_ms, lease):
    """w1 is cut off; Redis comes back from its AOF with its clock step_ms
    ahead; w2 keeps running. Whether or not the step is noticed, w2 must
    not start w1's job before w1 froze it."""
    env.redis.stop()
    env.redis = lwtest.Redis(env.dir, name='redis-step-%d' % step_ms, aof=True)
    registry(env)
    p = env.proxy()
    w1 = env.worker('--lease', str(lease), '--concurrency', '1', '--shutdown-timeout', '0.1', name='w1',
                    redis_url=p.url)
    jid = env.enqueue('t1', 'ticker', {'ms': 20000, 'every_ms': 20}, lane='L')
    wait_until(lambda: pids_of(env, jid), what='w1 to start the job')
    w2 = env.worker('--lease', str(lease), '--concurrency', '2', '--shutdown-timeout', '0.1', name='w2')
    env.enqueue('t1', 'sleep', {'ms': 60000}, lane='M')  # keeps w2 renewing
    time.sleep(1.5)
    p.cut()
    saved = {k: os.environ.get(k) for k in ('LD_PRELOAD', 'LW_CLOCK_SKEW_MS')}
    os.environ['LD_PRELOAD'] = lwtest.CLOCKSKEW
    os.environ['LW_CLOCK_SKEW_MS'] = str(step_ms)
    try:
        env.redis.restart()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wait_until(lambda: len(pids_of(env, jid)) >= 2, timeout=30, what='w2 to take the job')
    time.sleep(1.0)
    first, second = pids_of(env, jid)[:2]
    env.figures('redis clock +%d ms, lease %d s' % (step_ms, lease), 't1', [jid], final=False)
    check(last_line_ms(env, first) < first_line_ms(env, second),
          'the cut-off attempt ticked at %d, after the takeover started at %d'
          % (last_line_ms(env, first), first_line_ms(env, second)))
    p.heal()
    time.sleep(1.0)
    stop(w1, w2)


@lwtest.plain_only
def test_redis_clock_steps_do_not_break_the_fence(env):
    # --lease 5: 1.4 s is below what the outage check notices (0.3 lease =
    # 1.5 s) and above the first version's fence margin (lease/4 = 1.25 s);
    # 2.5 s is noticed.
    clock_step(env, 1400, 5)
    clock_step(env, 2500, 5)


def test_fresh_leases_after_downtime_are_not_moved(env):
    registry(env)
    w0 = env.worker('--lease', '2', name='w0')
    time.sleep(1.5)  # it renews and reaps: P:alive is set
    stop(w0)
    time.sleep(4)  # the fleet is down
    jid = env.enqueue('t1', 'kill_worker', {}, lane='P')
    w1 = env.worker('--lease', '2', name='w1')  # claims, then the job kills it
    w1.proc.wait(20)
    t_dead = time.monotonic()
    w2 = env.worker('--lease', '2', '--concurrency', '1', name='w2')
    wait_until(lambda: 'job.lost' in [e['type'] for e in env.events('t1') if e['job'] == jid], timeout=30,
               interval=0.1, what='the reaper to take the dead worker\'s job back')
    took = time.monotonic() - t_dead
    print('fresh lease after 4 s of downtime: reaped %.1f s after its worker died' % took)
    check(took < 6, 'the job of a worker that died after the downtime waited %.1f s (its lease was moved '
          'by the downtime)' % took)
    w2.signal(signal.SIGKILL)  # the poison job kills it too; nothing to check there


def test_fenced_thread_attempt_keeps_its_timeout(env):
    registry(env, timeout=4)
    p = env.proxy()
    w1 = env.worker('--lease', '2', '--concurrency', '1', '--isolation', 'thread', name='w1', redis_url=p.url)
    jid = env.enqueue('t1', 'sleep_hard', {'ms': 15000}, lane='L')
    wait_until(lambda: env.statuses('t1', [jid]) == ['active'], what='the job to start')
    time.sleep(0.5)
    p.cut()
    time.sleep(3)  # fenced (asked to stop: it does not listen), outage given back
    p.heal()
    wait_until(lambda: 'job.timeout' in w1.log(), timeout=12, what='the 4 s timeout to fire')
    wait_until(lambda: 'job.abandoned' in w1.log(), timeout=8, what='the ignored attempt to be given up on')
    check(w1.log().count('lease.lost') <= 2, 'lease.lost repeated:\n%s' % w1.log()[-2000:])
    w1.signal(signal.SIGKILL)


if __name__ == '__main__':
    lwtest.run([test_late_renewal_reply_does_not_thaw, test_late_claim_reply_starts_nothing,
                test_restore_from_older_data_reissues_no_token, test_mixed_lease_fleet_outage_is_an_outage,
                test_redis_clock_steps_do_not_break_the_fence, test_fresh_leases_after_downtime_are_not_moved,
                test_fenced_thread_attempt_keeps_its_timeout])

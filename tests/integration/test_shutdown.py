"""Signals (CONTRACT section 5): SIGTERM drains, then hands back without
counting an attempt; a second signal hands back at once; SIGTSTP stops
claiming; the worker exits 0."""
import signal
import time

from lwtest import check, run, wait_until


def started(env, jid, w=None):
    """jid is active in Redis and, with w, worker w runs it: claim.lua marks
    a job active before the worker reads the claim's reply, and a signal
    between the two hands the job back unstarted (what a loaded machine
    showed the tests that signal right after the start)."""
    if env.statuses('acme', [jid])[0] != 'active':
        return False
    return w is None or env.redis.call('HGET', 'lw:worker:' + w.name, 'active') == '1'


def test_sigterm_drains_running_job(env):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'sleep', {'ms': 1500})
    w = env.worker()
    wait_until(lambda: started(env, jid, w), what='job to start')
    w.signal(signal.SIGTERM)
    time.sleep(0.3)
    later = env.enqueue('acme', 'noop', {})
    check(w.wait(timeout=20) == 0, 'exit status after SIGTERM')
    st = env.status('acme', jid)
    check(st['status'] == 'succeeded', 'the running job should finish during the drain: %s' % st)
    check(env.status('acme', later)['status'] == 'queued', 'a draining worker claimed a new job')


def handback_case(env, isolation):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'sleep', {'ms': 60000}, lane='L')
    nxt = env.enqueue('acme', 'noop', {}, lane='L')
    w = env.worker('--shutdown-timeout', '0.5', '--isolation', isolation)
    wait_until(lambda: started(env, jid, w), what='job to start')
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    check(w.wait(timeout=20) == 0, 'exit status after hand-back')
    check(time.monotonic() - t0 < 8, 'hand-back took too long')
    st = env.status('acme', jid)
    check(st['status'] == 'queued' and st['attempt'] == 0, 'handed-back job: %s' % st)
    check(env.status('acme', nxt)['status'] == 'queued', 'the lane moved on past a handed-back job')
    types = [e['type'] for e in env.events('acme') if e['job'] == jid]
    check(types[-1] == 'job.handed_back', 'events: %s' % types)
    # it is at the head of its lane: the next worker runs it first, then the next one
    env.cli('cancel', '--tenant', 'acme', jid)  # still queued: cancelled at once, lane moves on
    env.worker('--burst').wait(timeout=20)
    check(env.status('acme', nxt)['status'] == 'succeeded', 'lane blocked after hand-back + cancel')


def test_handback_fork(env):
    handback_case(env, 'fork')


def test_handback_thread(env):
    handback_case(env, 'thread')


def test_second_signal_hands_back_at_once(env):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'sleep_hard', {'ms': 60000})
    w = env.worker('--shutdown-timeout', '60')
    wait_until(lambda: started(env, jid, w), what='job to start')
    w.signal(signal.SIGTERM)
    time.sleep(0.3)
    check(w.running(), 'worker left before its shutdown timeout')
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    check(w.wait(timeout=20) == 0, 'exit status')
    check(time.monotonic() - t0 < 2.5, 'a second signal must not wait for the kill grace')
    st = env.status('acme', jid)
    check(st['status'] == 'queued' and st['attempt'] == 0, 'job after immediate hand-back: %s' % st)


def test_sigtstp_quiet(env):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'sleep', {'ms': 800})
    w = env.worker()
    wait_until(lambda: started(env, jid, w), what='job to start')
    w.signal(signal.SIGTSTP)
    time.sleep(0.2)
    later = env.enqueue('acme', 'noop', {})
    wait_until(lambda: env.statuses('acme', [jid])[0] == 'succeeded', what='running job to finish')
    time.sleep(0.6)
    check(env.status('acme', later)['status'] == 'queued', 'a quiet worker claimed a job')
    check(w.running(), 'quiet worker exited')
    w.signal(signal.SIGTERM)
    check(w.wait(timeout=10) == 0, 'exit status')


def test_sigterm_during_start_up_exits_0(env):
    """A SIGTERM that arrives while the worker is still starting (loading
    its registry and modules) is held until its handlers exist: the idle
    worker then drains and exits 0, not by the signal."""
    t = env.tenant('t1')
    t['config']['init_sleep_ms'] = 400  # still starting up when the signal comes
    env.write_registry([t])
    codes = []
    for i in range(3):
        w = env.worker(name='s%d' % i)
        time.sleep(0.15)
        w.signal(signal.SIGTERM)
        codes.append(w.wait(20))
    check(all(c == 0 for c in codes), 'exit statuses of workers stopped at start-up: %s' % codes)


def test_attempt_abandoned_in_its_grace_is_not_timed_out(env):
    """A second signal abandons a thread attempt whose hand-back grace is
    running: its outcome is recorded, so its timer must neither count the
    timeout on nor stop it again (the worker waits for Redis here)."""
    env.write_registry([env.tenant('acme')])
    p = env.proxy()
    jid = env.enqueue('acme', 'sleep_hard', {'ms': 60000}, timeout=4)
    w = env.worker('--shutdown-timeout', '0.3', '--isolation', 'thread', redis_url=p.url)
    wait_until(lambda: started(env, jid, w), what='job to start')
    w.signal(signal.SIGTERM)
    wait_until(lambda: 'handing them back' in w.log(), what='the hand-back')
    p.cut()  # the outcome cannot be recorded: the worker stays
    w.signal(signal.SIGTERM)
    wait_until(lambda: 'second signal' in w.log(), what='the second signal')
    time.sleep(5)  # past the grace and the 4 s timeout
    check('job.timeout' not in w.log(), 'an abandoned attempt was timed out:\n%s' % w.log()[-2000:])
    w.signal(signal.SIGKILL)


if __name__ == '__main__':
    run([test_sigterm_drains_running_job, test_handback_fork, test_handback_thread,
         test_second_signal_hands_back_at_once, test_sigtstp_quiet, test_sigterm_during_start_up_exits_0,
         test_attempt_abandoned_in_its_grace_is_not_timed_out])

"""Persistent exec handlers (CONTRACT section 11) with the Python handler
side, lanework.handler (clients/python): the protocol, what a bad handler
costs (its attempt only), cancel, max_jobs, idle_exit, protocol versions and
hand-back."""
import json
import os
import signal
import sys
import time

from lwtest import check, run, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
PERSIST = os.path.join(HERE, 'handlers', 'persist.py')
RAW = os.path.join(HERE, 'handlers', 'rawproto.py')
CLIENTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'clients', 'python')
KINDS = ['noop', 'steps', 'chatty', 'nap', 'boom', 'fail', 'crash', 'hang', 'exit_after', 'cancellable']


def setup(env, max_jobs=0, idle_exit=0, command=None, raw=False, attempts=3, timeout=20):
    env.extra_env['PYTHONPATH'] = CLIENTS
    entry = {'command': command or [sys.executable, RAW if raw else PERSIST], 'persistent': True}
    if max_jobs:
        entry['max_jobs'] = max_jobs
    if idle_exit:
        entry['idle_exit'] = idle_exit
    kinds = ['raw'] if raw else KINDS
    env.write_registry([{'tenant': 'acme', 'exec': {k: entry for k in kinds},
                         'defaults': {'attempts': attempts, 'timeout': timeout, 'backoff': 0.05}}])


def alive(pid):
    try:  # a zombie is not alive
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):  # gone (ESRCH: reaped between open and read)
        return False


def finished(env, ids, timeout=20):
    env.wait_all('acme', ids, statuses=('succeeded', 'failed', 'cancelled'), timeout=timeout)
    return [env.status('acme', i) for i in ids]


def test_events_then_result(env):
    setup(env)
    w = env.worker('--concurrency', '1')
    ids = [env.enqueue('acme', 'steps', {'n': 3}, lane='L'), env.enqueue('acme', 'steps', {'n': 1}, lane='L')]
    a, b = finished(env, ids)
    check(a['status'] == 'succeeded', a)
    r = a['result']
    check(r['id'] == ids[0] and r['tenant'] == 'acme' and r['kind'] == 'steps' and r['lane'] == 'L'
          and r['attempt'] == 1 and r['payload'] == {'n': 3} and r['attempts'] == 3 and r['timeout'] == 20
          and r['queue'] == 'default' and r['spool_dir'] is None, r)
    check(b['result']['pid'] == r['pid'], 'the second job should reuse the process: %s %s' % (a, b))
    ev = [e for e in env.events('acme') if e['job'] == ids[0]]
    types = [e['type'] for e in ev]
    steps = [e['data']['i'] for e in ev if e['type'] == 'step.created']
    check(steps == [0, 1, 2], 'events in order: %s' % types)
    check(types.index('job.started') < types.index('step.created') < types.index('job.succeeded'), types)
    check('this print goes to stderr' in w.log(), 'a print() should reach the worker log')


def test_spooled_job(env):
    setup(env)
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(os.path.join(spool, 'sp1'))
    with open(os.path.join(spool, 'sp1', 'job.json'), 'w') as f:
        json.dump({'job_id': 'sp1', 'status': 'queued', 'payload': {'n': 1}}, f)
    reg = json.load(open(env.registry))
    reg[0]['spools'] = {'steps': spool}
    env.write_registry(reg)
    env.worker('--concurrency', '1')
    s, = finished(env, ['sp1'])
    check(s['status'] == 'succeeded' and s['result']['spool_dir'] == os.path.join(spool, 'sp1'), s)
    wait_until(lambda: json.load(open(os.path.join(spool, 'sp1', 'job.json')))['status'] == 'done',
               what='job.json to say done')


def test_stderr_bounded(env):
    setup(env)
    w = env.worker('--concurrency', '1')
    s, = finished(env, [env.enqueue('acme', 'chatty', {})])
    check(s['status'] == 'succeeded', s)
    wait_until(lambda: 'not logging the rest' in w.log(), timeout=5, what='the stderr bound to be logged')
    log = w.log()
    lines = [l for l in log.splitlines() if 'chatty line' in l]
    check(len(lines) == 49, '%d stderr lines logged, want 49 (and the long one)' % len(lines))
    check('chatty line 48' in log and 'chatty line 49' not in log, 'the first 50 are the ones logged')
    check('x' * 1000 + ' [line cut]' in log and 'x' * 1001 not in log, 'a long line is cut at 1000 bytes')
    check('job=%s' % s['id'] in lines[0], 'a stderr line names its job: %s' % lines[0])


def test_parallel_slots_and_big_payload(env):
    setup(env)
    env.worker('--concurrency', '4')
    t0 = time.monotonic()
    ids = [env.enqueue('acme', 'nap', {'s': 0.5}) for _ in range(4)]
    big, = env.enqueue_batch([{'kind': 'nap', 'payload': {'s': 0, 'blob': 'y' * 600000}}], tenant='acme')
    # (ten times a pipe's buffer)
    st = finished(env, ids + [big])
    check(all(s['status'] == 'succeeded' for s in st), st)
    check(len({s['result']['pid'] for s in st[:4]}) == 4, 'one process per busy slot: %s' % [s['result'] for s in st])
    check(time.monotonic() - t0 < 1.9, 'four 0.5 s jobs on four slots ran in parallel')
    check(st[4]['result']['size'] == 600000, 'a payload larger than the pipe arrives whole: %s' % st[4]['result'])


def test_exception_retried_fail_not(env):
    setup(env)
    env.worker('--concurrency', '2')
    ids = [env.enqueue('acme', 'boom', {'ok_at': 2}), env.enqueue('acme', 'boom', {}),
           env.enqueue('acme', 'fail', {'why': 'bad input'})]
    ok, bad, fail = finished(env, ids)
    check(ok['status'] == 'succeeded' and ok['attempt'] == 2, ok)
    check(bad['status'] == 'failed' and bad['attempt'] == 3, bad)
    check(bad['error'] == 'ValueError: boom on attempt 3', bad)
    check(fail['status'] == 'failed' and fail['attempt'] == 1 and fail['error'] == 'nope: bad input', fail)


def test_bad_handlers_fail_their_attempt_only(env):
    setup(env, timeout=1)
    w = env.worker('--concurrency', '1')
    crash = env.enqueue('acme', 'crash', {}, lane='L')
    hang = env.enqueue('acme', 'hang', {}, lane='L', attempts=1)
    after = env.enqueue('acme', 'exit_after', {}, lane='L')
    c, h, a = finished(env, [crash, hang, after], timeout=20)
    wait_until(lambda: not alive(a['result']['pid']), timeout=5, what='the handler to exit')
    nxt = env.enqueue('acme', 'noop', {}, lane='L')
    n, = finished(env, [nxt])
    check(c['status'] == 'succeeded' and c['attempt'] == 2, 'a crash fails one attempt, retried: %s' % c)
    check(h['status'] == 'failed' and h['attempt'] == 1, 'a hang is ended by its timeout: %s' % h)
    check(a['status'] == 'succeeded' and n['status'] == 'succeeded', (a, n))
    check(n['result']['pid'] != a['result']['pid'], 'exited between jobs: a new process for the next')
    check(not alive(a['result']['pid']), 'the process that exited is reaped')
    log = w.log()
    check('exit status 3' in log, 'the crash is logged with its status')
    check('ended between attempts (exit status 0)' in log, 'the exit between jobs is logged')


def test_garbage_on_stdout(env):
    setup(env, raw=True)
    w = env.worker('--concurrency', '1')
    modes = ['garbage', 'unknown', 'close', 'twice', 'ok']
    ids = [env.enqueue('acme', 'raw', {'mode': m}, lane='L', attempts=1) for m in modes]
    big = env.enqueue('acme', 'raw', {'mode': 'oversize', 'bytes': 1200000}, lane='L', attempts=1)
    last = env.enqueue('acme', 'raw', {'mode': 'ok'}, lane='L')
    st = finished(env, ids + [big, last], timeout=20)
    byname = dict(zip(modes + ['big', 'last'], st))
    for m in ('garbage', 'unknown', 'close'):
        check(byname[m]['status'] == 'failed', '%s: %s' % (m, byname[m]))
    check('not JSON' in byname['garbage']['error'], byname['garbage'])
    check('unknown type "progress"' in byname['unknown']['error'], byname['unknown'])
    check('closed its stdout' in byname['close']['error'], byname['close'])
    check(byname['twice']['status'] == 'succeeded' and byname['twice']['result'] == 1, byname['twice'])
    check(byname['ok']['status'] == 'succeeded', 'a second result replaces the process, nothing more')
    check(byname['big']['status'] == 'failed' and 'longer than --max-payload' in byname['big']['error'],
          byname['big'])
    check(byname['last']['status'] == 'succeeded', byname['last'])
    check('wrote to stdout while it had no job' in w.log(), 'the second result is logged')


def test_cancel_running(env):
    setup(env)
    w = env.worker('--concurrency', '1')
    jid = env.enqueue('acme', 'cancellable', {}, lane='L')
    nxt = env.enqueue('acme', 'noop', {}, lane='L')
    wait_until(lambda: any(e['type'] == 'step.created' for e in env.events('acme')), what='the job to wait')
    t0 = time.monotonic()
    rc, out, err = env.cli('cancel', '--tenant', 'acme', jid)
    check(rc == 0, err)
    c, n = finished(env, [jid, nxt])
    check(c['status'] == 'cancelled', c)
    check(time.monotonic() - t0 < 2.5, 'the handler saw job.cancelled (no TERM grace was needed)')
    check(n['status'] == 'succeeded', n)
    pid = n['result']['pid']
    check(alive(pid), 'the process that answered the cancel serves the next job, and stays')
    kids = [int(p) for p in open('/proc/%d/task/%d/children' % (w.pid, w.pid)).read().split()]
    check(pid in kids, 'one process for every kind of the same command: %s %s' % (pid, kids))


def test_cancel_ignored_is_stopped(env):
    setup(env)
    env.worker('--concurrency', '1')
    jid = env.enqueue('acme', 'hang', {}, lane='L')
    wait_until(lambda: env.statuses('acme', [jid])[0] == 'active', what='start')
    time.sleep(0.3)
    env.cli('cancel', '--tenant', 'acme', jid)
    c, = finished(env, [jid], timeout=15)
    check(c['status'] == 'cancelled', c)


def max_jobs_and_idle_exit(env, isolation):
    setup(env, max_jobs=2, idle_exit=1)
    w = env.worker('--concurrency', '1', '--isolation', isolation)
    ids = [env.enqueue('acme', 'noop', {}, lane='L') for _ in range(5)]
    pids = [s['result']['pid'] for s in finished(env, ids)]
    check(pids[0] == pids[1] and pids[2] == pids[3] and pids[4] != pids[3] and pids[1] != pids[2],
          'max_jobs 2: %s' % pids)
    wait_until(lambda: not alive(pids[4]), timeout=5, what='idle_exit to stop the process')
    # stopped means reaped too: no zombie is left behind
    wait_until(lambda: not any(os.path.exists('/proc/%d' % p) for p in pids), timeout=3,
               what='every stopped handler process to be reaped')
    check('idle_exit' in w.log(), 'the stop is logged')
    again = env.enqueue('acme', 'noop', {})
    s, = finished(env, [again])
    check(s['status'] == 'succeeded' and s['result']['pid'] not in pids, s)


def test_max_jobs_and_idle_exit(env):
    max_jobs_and_idle_exit(env, 'fork')


def test_thread_isolation_reaps_too(env):
    # no orphan sweep reaps unmarked zombies in thread isolation: the runner does
    max_jobs_and_idle_exit(env, 'thread')


def proc_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone (ESRCH: reaped between open and read)
        return None


def test_fence_freezes_and_thaws_the_process(env):
    setup(env)
    p = env.proxy()
    w = env.worker('--concurrency', '1', '--lease', '2', redis_url=p.url)
    first, = finished(env, [env.enqueue('acme', 'noop', {})])
    pid = first['result']['pid']
    check(proc_state(pid) in ('S', 'R'), 'an idle process is not frozen')
    jid = env.enqueue('acme', 'nap', {'s': 2.5})
    wait_until(lambda: env.statuses('acme', [jid])[0] == 'active', what='start')
    time.sleep(0.2)
    p.cut()
    wait_until(lambda: proc_state(pid) == 'T', timeout=4, what='the fence to freeze the busy process (0.65 lease)')
    time.sleep(0.5)
    p.heal()
    s, = finished(env, [jid], timeout=20)
    check(s['status'] == 'succeeded' and s['result']['pid'] == pid and s['attempt'] == 1,
          'thawed, the same process finished the same attempt: %s' % s)
    check(proc_state(pid) != 'T', 'not left frozen')
    check(w.running(), 'worker alive')


def test_protocol_mismatch(env):
    setup(env, command=['env', 'LANEWORK_PROTOCOL=2', sys.executable, PERSIST])
    w = env.worker('--concurrency', '1')
    jid = env.enqueue('acme', 'noop', {})
    s, = finished(env, [jid])
    check(s['status'] == 'failed' and s['attempt'] == 1, 'a protocol refusal is not retried: %s' % s)
    check('refused LANEWORK_PROTOCOL=1' in s['error'] and 'speaks 1 only' in s['error'], s['error'])
    check('refused LANEWORK_PROTOCOL=1' in w.log(), 'logged')


def test_reload_retires_idle_processes(env):
    setup(env)
    w = env.worker('--concurrency', '1')
    a, = finished(env, [env.enqueue('acme', 'noop', {})])
    old = a['result']['pid']
    setup(env, max_jobs=5)  # a change of the entry: the tenant's runtime changes
    w.signal(signal.SIGHUP)
    wait_until(lambda: not alive(old), timeout=5, what='the retired tenant\'s idle process to stop')
    b, = finished(env, [env.enqueue('acme', 'noop', {})])
    check(b['status'] == 'succeeded' and b['result']['pid'] != old, b)
    check('its tenant was changed or removed by a reload' in w.log(), 'logged')


def test_sigterm_hands_back(env):
    setup(env)
    w = env.worker('--concurrency', '1', '--shutdown-timeout', '0.5')
    jid = env.enqueue('acme', 'hang', {})
    wait_until(lambda: env.statuses('acme', [jid])[0] == 'active', what='start')
    time.sleep(0.3)
    kids = [int(p) for p in open('/proc/%d/task/%d/children' % (w.pid, w.pid)).read().split()]
    w.signal(signal.SIGTERM)
    check(w.wait(timeout=15) == 0, 'exit status')
    s = env.status('acme', jid)
    check(s['status'] == 'queued' and s['attempt'] == 0, 'handed back: %s' % s)
    check(not any(alive(k) for k in kids), 'no handler process outlives the worker')


if __name__ == '__main__':
    run([test_events_then_result, test_spooled_job, test_stderr_bounded, test_parallel_slots_and_big_payload, test_exception_retried_fail_not, test_bad_handlers_fail_their_attempt_only,
         test_garbage_on_stdout, test_cancel_running, test_cancel_ignored_is_stopped, test_max_jobs_and_idle_exit,
         test_thread_isolation_reaps_too, test_fence_freezes_and_thaws_the_process,
         test_protocol_mismatch, test_reload_retires_idle_processes, test_sigterm_hands_back])

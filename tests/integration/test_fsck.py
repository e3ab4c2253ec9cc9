"""`lanework fsck` (CONTRACT 9): a healthy tenant is consistent after a worker
ran it; hand-made corruption is named line by line and exit 1; --repair fixes
it so a second fsck is clean and a worker runs the affected jobs; no false
positive while workers run; usage errors."""
import re
import time

from lwtest import check, run, wait_until

SUMMARY = re.compile(r'^fsck: tenant (\S+): (after repair: )?(\d+) jobs, (\d+) lanes, (\d+) problems$')


def fsck(env, *args, tenant='acme'):
    rc, out, err = env.cli('fsck', '--tenant', tenant, *args)
    lines = out.splitlines()
    check(lines and SUMMARY.match(lines[-1]), 'fsck output lacks its summary line (%d): %r %r' % (rc, out, err))
    return rc, lines, err


def problems(lines):
    """The problem lines of a plain fsck: all but info lines and the summary."""
    return [l for l in lines[:-1] if not l.startswith('info: ')]


def key(env, tenant, suffix):
    return '%s:{%s}:%s' % (env.ns, tenant, suffix)


def test_healthy_tenant_after_worker(env):
    env.write_registry([env.tenant('acme', defaults={'attempts': 2, 'timeout': 30, 'backoff': 0.05})])
    chat = [env.enqueue('acme', 'noop', {}, lane='chat') for _ in range(3)]
    failed = env.enqueue('acme', 'fail', {'error': 'no'})
    retried = env.enqueue('acme', 'retry', {'succeed_on': 2})
    unique = env.enqueue('acme', 'noop', {}, unique='k1')
    later = env.enqueue('acme', 'noop', {}, delay=300, expires=600)
    w = env.worker('--burst')
    check(w.wait(timeout=60) == 0, 'burst worker exit status')
    env.wait_all('acme', chat + [retried, unique])
    env.wait_all('acme', [failed], statuses=('failed',))
    check(env.status('acme', later)['status'] == 'scheduled', 'delayed job ran early')
    # A lane with a tombstone behind its head: cancel the middle job.
    tomb = [env.enqueue('acme', 'noop', {}, lane='tomb') for _ in range(3)]
    rc, out, err = env.cli('cancel', '--tenant', 'acme', tomb[1])
    check(rc == 0, 'cancel: %d %s' % (rc, err))
    rc, lines, err = fsck(env)
    check(rc == 0, 'fsck of a healthy tenant exits %d: %s %s' % (rc, lines, err))
    check(problems(lines) == [], 'healthy tenant has problems: %s' % lines)
    m = SUMMARY.match(lines[-1])
    check(m.group(1) == 'acme' and int(m.group(3)) == 10 and int(m.group(5)) == 0, 'summary: %s' % lines[-1])
    check(any('tombstone' in l for l in lines if l.startswith('info: ')), 'lane tombstone not reported as info: %s' % lines)


def test_corruption_reported_and_repaired(env):
    env.write_registry([env.tenant('acme')])
    done = env.enqueue('acme', 'noop', {})
    check(env.worker('--burst').wait(timeout=60) == 0, 'burst worker exit status')
    env.wait_all('acme', [done])
    lane = []
    for _ in range(3):
        lane.append(env.enqueue('acme', 'record', {}, lane='L1'))
        time.sleep(0.003)  # distinct enqueue times: repairs restore enqueue order
    b = env.enqueue('acme', 'noop', {})
    c = env.enqueue('acme', 'noop', {})
    later = env.enqueue('acme', 'noop', {}, delay=300)
    rc, lines, err = fsck(env)
    check(rc == 0, 'fresh tenant not consistent: %s %s' % (lines, err))

    r = env.redis.client()
    k = lambda s: key(env, 'acme', s)  # noqa: E731
    r.call('LREM', k('ready:default'), 0, b)                  # a head out of its ready list
    r.call('ZADD', k('active:default'), 9999999999999, 'ghost')  # a lease without a job
    r.call('HSET', k('stats'), 'scheduled:default', 7)         # a broken counter
    r.call('LREM', k('lane:L1'), 0, lane[1])                  # a job out of its lane
    r.call('HSET', k('job:' + c), 'status', 'garbage')        # an unreadable record
    r.call('SET', k('unique:nokey'), 'nosuchjob')             # a unique key pointing nowhere
    r.call('LPUSH', k('lane:L1'), done)                       # a finished job heading a lane
    r.close()

    rc, lines, err = fsck(env)
    check(rc == 1, 'fsck of a broken tenant exits %d: %s %s' % (rc, lines, err))
    text = '\n'.join(lines)
    expected = [
        'lane %s: head %s is queued but not in ready:default' % (b, b),
        'active:default: a lease for job ghost, which is missing',
        'stats scheduled:default is 7, but 1 job is scheduled',
        'job %s: queued but not in its lane L1' % lane[1],
        'job %s: corrupt record (unknown status)' % c,
        'unique key nokey: points to missing job nosuchjob',
        'lane L1: head %s is succeeded (not live)' % done,
    ]
    for e in expected:
        check(e in text, 'fsck did not name %r; it printed:\n%s' % (e, text))
    found = problems(lines)
    check(int(SUMMARY.match(lines[-1]).group(5)) == len(found), 'summary count vs lines: %s' % lines)
    check(later not in text, 'the healthy scheduled job was reported: %s' % text)

    rc, lines, err = fsck(env, '--repair')
    check(rc == 0, 'fsck --repair exits %d: %s %s' % (rc, lines, err))
    repaired = [l for l in lines if l.startswith('repaired: ')]
    for e in expected:
        check(any(e in l for l in repaired), 'not repaired: %r; output:\n%s' % (e, '\n'.join(lines)))
    m = SUMMARY.match(lines[-1])
    check(m.group(2) and m.group(5) == '0', 'repair summary: %s' % lines[-1])

    rc, lines, err = fsck(env)
    check(rc == 0 and problems(lines) == [], 'fsck after repair: %d %s %s' % (rc, lines, err))

    check(env.worker('--burst').wait(timeout=60) == 0, 'burst worker after repair')
    env.wait_all('acme', lane + [b])
    st = env.status('acme', c)
    check(st['status'] == 'failed' and 'corrupt' in st['error'], 'corrupt job: %s' % st)
    starts = {jid: ms for what, ms, jid, _l, _p in env.records() if what == 'START'}
    order = sorted(lane, key=lambda j: starts[j])
    check(order == lane, 'lane L1 ran out of enqueue order after repair: %s' % order)
    check(env.status('acme', later)['status'] == 'scheduled', 'scheduled job disturbed')
    rc, lines, err = fsck(env)
    check(rc == 0 and problems(lines) == [], 'fsck after the worker: %d %s %s' % (rc, lines, err))


def test_running_job_without_lease_or_lane(env):
    env.write_registry([env.tenant('acme')])
    a = env.enqueue('acme', 'sleep', {'ms': 1500}, lane='L')
    b = env.enqueue('acme', 'noop', {}, lane='L')
    w = env.worker('--burst')
    wait_until(lambda: env.statuses('acme', [a])[0] == 'active', what='the first job to start')
    r = env.redis.client()
    r.call('ZREM', key(env, 'acme', 'active:default'), a)  # its lease is gone
    r.call('LREM', key(env, 'acme', 'lane:L'), 0, a)       # it left its lane: b heads it
    r.close()
    rc, lines, err = fsck(env, '--repair')
    text = '\n'.join(lines)
    for e in ('job %s: active but not in its lane L' % a, 'job %s: active but has no lease in active:default' % a):
        check('repaired: ' + e in text, 'not found and repaired: %r; output:\n%s' % (e, text))
    check(rc == 0, 'fsck --repair exits %d: %s %s' % (rc, text, err))
    lane = env.redis.call('LRANGE', key(env, 'acme', 'lane:L'), 0, -1)
    check(lane == [a, b], 'the running job does not head its lane again: %s' % lane)
    check(w.wait(timeout=60) == 0, 'burst worker exit status')
    env.wait_all('acme', [a, b])
    rc, lines, err = fsck(env)
    check(rc == 0 and problems(lines) == [], 'fsck after the worker: %d %s' % (rc, lines))


def test_no_false_positives_while_workers_run(env):
    env.write_registry([env.tenant('acme', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0.02})])
    lines = []
    for i in range(600):
        job = {'tenant': 'acme', 'kind': 'noop', 'lane': 'l%d' % (i % 40), 'payload': {}}
        if i % 10 == 0:
            job.update(kind='retry', payload={'succeed_on': 2})
        if i % 15 == 0:
            job['delay'] = 0.2
        lines.append(job)
    ids = env.enqueue_batch(lines)
    ws = [env.worker('--burst', '--isolation', 'thread', '--concurrency', '2') for _ in range(2)]
    runs = 0
    while any(w.running() for w in ws) or runs < 3:
        rc, out, err = fsck(env)
        check(rc == 0, 'fsck reported problems while workers ran (%d):\n%s\n%s' % (rc, '\n'.join(out), err))
        runs += 1
    for w in ws:
        check(w.wait(timeout=60) == 0, 'burst worker exit status')
    env.wait_all('acme', ids)
    rc, out, err = fsck(env)
    check(rc == 0 and problems(out) == [], 'fsck after the run: %d %s' % (rc, out))
    check(not any('counters not checked' in l for l in out), 'quiet tenant, counters unchecked: %s' % out)


def test_usage(env):
    env.write_registry([env.tenant('acme')])
    rc, out, err = env.cli('fsck')
    check(rc == 2 and 'lanework: fsck: --tenant is required' in err, 'no --tenant: %d %r' % (rc, err))
    rc, out, err = env.cli('fsck', '--tenant', 'acme', 'extra')
    check(rc == 2 and err.startswith('lanework: fsck: '), 'positional argument: %d %r' % (rc, err))
    rc, out, err = env.cli('fsck', '--tenant', 'acme', '--bogus')
    check(rc == 2 and 'unknown option' in err, 'unknown option: %d %r' % (rc, err))
    rc, out, err = env.cli('fsck', '--tenant', 'nosuch')
    check(rc == 2 and 'unknown tenant' in err, 'unknown tenant: %d %r' % (rc, err))
    rc, out, err = env.cli('fsck', '--help')
    check(rc == 0 and 'Exit status' in out and '--repair' in out, 'fsck --help: %d %r' % (rc, out))
    rc, out, err = env.cli('--help')
    check(rc == 0 and 'fsck' in out, 'lanework --help lacks fsck: %r' % out)
    rc, out, err = env.cli('fsck', '--tenant', 'acme', '--redis', 'unix://' + env.dir + '/nothing.sock', redis=False)
    check(rc == 3 and err.startswith('lanework: redis: '), 'unreachable redis: %d %r' % (rc, err))


if __name__ == '__main__':
    run([test_healthy_tenant_after_worker, test_corruption_reported_and_repaired,
         test_running_job_without_lease_or_lane, test_no_false_positives_while_workers_run, test_usage])

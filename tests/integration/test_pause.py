"""`lanework pause` / `resume` (CONTRACT section 13; pause.lua, claim.lua):
a queue stopped for the whole fleet, kept in Redis across worker
restarts, running jobs finishing, other queues untouched, partitions all
covered, and a quiet or paused worker still healthy."""
import json
import signal
import time

import lwtest
from lwtest import check, free_port, http_get, wait_until
from test_partitions import part_of, partitioned_worker, wait_done

QUEUES = {'default': {}, 'bulk': {}}


def statuses(env, ids):
    return dict(zip(ids, env.statuses('t1', ids)))


def runs_started(env, ids):
    r = env.runs()
    return [i for i in ids if r.get(i)]


def cli_ok(env, *args):
    rc, out, err = env.cli(*args)
    check(rc == 0, '%s: %d %r' % (' '.join(args), rc, err))
    return out, err


def test_paused_queue_claims_nothing_until_resumed(env):
    env.write_registry([env.tenant('t1', queues=QUEUES)])
    w = env.worker('--concurrency', '4', '--queue', 'default', '--queue', 'bulk')
    long = env.enqueue('t1', 'record', {'ms': 1500}, queue='bulk')
    wait_until(lambda: env.status('t1', long)['status'] == 'active', timeout=5, what='the long job started')
    out, err = cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'bulk')
    check(out.strip() == 'paused bulk' and err == '', 'pause: %r %r' % (out, err))
    out, err = cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'bulk')
    check('already paused' in err and len(err.strip().splitlines()) == 1, 'second pause: %r' % err)
    held = [env.enqueue('t1', 'record', {}, queue='bulk') for _ in range(5)]
    free = [env.enqueue('t1', 'record', {}, queue='default') for _ in range(3)]
    wait_done(env, 't1', free, 1)
    wait_done(env, 't1', [long], 1)
    check(env.status('t1', long)['status'] == 'succeeded', 'the running job did not finish: %s'
          % env.status('t1', long))
    time.sleep(1.0)  # polls and wake-ups came and went
    check(not runs_started(env, held), 'jobs of a paused queue ran: %s' % runs_started(env, held))
    check(set(statuses(env, held).values()) == {'queued'}, 'held jobs: %s' % statuses(env, held))
    t0 = time.monotonic()
    out, err = cli_ok(env, 'resume', '--tenant', 't1', '--queue', 'bulk')
    check(out.strip() == 'resumed bulk', 'resume: %r' % out)
    wait_done(env, 't1', held, 1, timeout=10)
    took = time.monotonic() - t0
    out, err = cli_ok(env, 'resume', '--tenant', 't1', '--queue', 'bulk')
    check('not paused' in err, 'second resume: %r' % err)
    types = [e['type'] for e in env.events('t1') if e['type'].startswith('queue.')]
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    check(types == ['queue.paused', 'queue.resumed'], 'queue events: %s' % types)
    # The wake-up on resume, not the next idle poll, starts them.
    check(took < 1.5, 'resumed jobs took %.2f s to run' % took)


def test_pause_holds_across_worker_restarts(env):
    env.write_registry([env.tenant('t1', queues=QUEUES)])
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'default')
    ids = [env.enqueue('t1', 'record', {}) for _ in range(3)]
    for _ in range(2):
        w = env.worker('--concurrency', '2')
        time.sleep(1.0)
        w.signal(signal.SIGTERM)
        check(w.wait() == 0, 'worker exit')
    check(not runs_started(env, ids), 'a restarted worker ran jobs of a paused queue')
    rc, out, err = env.cli('stats', '--tenant', 't1')
    row = [l for l in out.splitlines() if l.startswith('t1 ') and ' default ' in l]
    check(rc == 0 and row and row[0].endswith('  paused'), 'stats does not show the pause: %r' % out)
    rc, out, err = env.cli('stats', '--tenant', 't1', '--json')
    q = json.loads(out)['tenants']['t1']['queues']
    check(q['default']['paused'] is True and q['bulk']['paused'] is False, 'stats --json: %s' % q)
    cli_ok(env, 'resume', '--tenant', 't1', '--queue', 'default')
    w = env.worker('--concurrency', '2')
    wait_done(env, 't1', ids, 1)
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_pause_covers_every_partition_and_holds_the_count(env):
    k = 4
    w = partitioned_worker(env, k, '--concurrency', '4')
    cli_ok(env, 'pause', '--tenant', 'p', '--queue', 'default')
    lanes = ['L%d' % i for i in range(12)]
    check(len({part_of(l, k) for l in lanes}) == k, 'the lanes do not cover every partition')
    ids = [env.enqueue('p', 'record', {}, lane=l) for l in lanes]
    time.sleep(1.0)
    check(not runs_started(env, ids), 'jobs of a paused queue ran in partitions %s'
          % sorted({part_of(lanes[ids.index(i)], k) for i in runs_started(env, ids)}))
    cli_ok(env, 'resume', '--tenant', 'p', '--queue', 'default')
    wait_done(env, 'p', ids, k)
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    # A paused queue holds the count: partitions made later would not know it.
    env.write_registry([env.tenant('q')])
    cli_ok(env, 'pause', '--tenant', 'q', '--queue', 'default')
    env.write_registry([env.tenant('q', partitions=k)])
    w = env.worker('--concurrency', '2')
    time.sleep(1.0)
    check(env.redis.call('HGET', 'lw:{q}:settings', 'partitions') is None, 'the count changed under a pause')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_bad_input(env):
    env.write_registry([env.tenant('t1')])
    for args, want in ((['pause', '--tenant', 't1'], '--queue is required'),
                       (['resume', '--queue', 'default'], '--tenant is required'),
                       (['pause', '--tenant', 't1', '--queue', 'a b'], 'not a safe name'),
                       (['pause', '--tenant', 'nope', '--queue', 'q'], 'nope'),
                       (['pause', '--tenant', 't1', '--queue', 'q', 'extra'], 'extra')):
        rc, out, err = env.cli(*args)
        check(rc == 2 and want in err and len(err.strip().splitlines()) == 1 and out == '',
              '%s: %d %r %r' % (args, rc, out, err))
    rc, out, err = env.cli('pause', '--tenant', 't1', '--queue', 'q', '--redis', 'redis://127.0.0.1:1',
                           redis=False)
    check(rc == 3 and len(err.strip().splitlines()) == 1, 'Redis away: %d %r' % (rc, err))


def test_fsck_checks_the_paused_set(env):
    env.write_registry([env.tenant('t1')])
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'q2')
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck after a pause: %d %s' % (rc, out[-400:]))
    env.redis.call('SREM', 'lw:{t1}:queues', 'q2')
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 1 and 'q2' in out, 'a paused queue missing from the queues set: %d %s' % (rc, out[-400:]))
    rc, out, err = env.cli('fsck', '--tenant', 't1', '--repair')
    check(rc == 0 and env.redis.call('SISMEMBER', 'lw:{t1}:queues', 'q2') == 1, 'repair: %d %s' % (rc, out[-400:]))
    # A paused key of the wrong type is reported, and stops no claim.
    env.redis.call('DEL', 'lw:{t1}:paused')
    env.redis.call('SET', 'lw:{t1}:paused', 'x')
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 1 and 'paused is a string' in out, 'fsck of a string paused key: %d %s' % (rc, out[-400:]))
    w = env.worker()
    jid = env.enqueue('t1', 'record', {})
    wait_done(env, 't1', [jid], 1)
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_quiet_or_paused_worker_is_healthy(env):
    env.write_registry([env.tenant('t1')])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port)

    def healthz():
        try:
            return http_get(port, '/healthz', timeout=2)
        except OSError:
            return None, ''
    wait_until(lambda: healthz()[0] == 200, timeout=10, what='/healthz 200')
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'default')
    env.enqueue('t1', 'record', {})
    time.sleep(0.5)
    check(healthz()[0] == 200, 'a paused queue made the worker unhealthy: %s' % (healthz(),))
    w.signal(signal.SIGTSTP)
    wait_until(lambda: 'quiet' in healthz()[1], timeout=5, what='/healthz to say quiet')
    got = healthz()
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    check(got[0] == 200, 'a quiet worker is unhealthy: %s' % (got,))


if __name__ == '__main__':
    lwtest.run([test_paused_queue_claims_nothing_until_resumed,
                test_pause_holds_across_worker_restarts,
                test_pause_covers_every_partition_and_holds_the_count,
                test_bad_input,
                test_fsck_checks_the_paused_set,
                test_quiet_or_paused_worker_is_healthy])

"""What `lanework workers` and `lanework stats` say must be true now (issue 9
items 6 and 7): a worker's ACTIVE and PROCESSED follow its attempts within a
moment, not at the next heartbeat; a worker that stopped heartbeating is
`lost` once its lease ran out, not `running` until its details expire; stats
tells current counts from running totals, counts manual retries, and shows
how long the oldest runnable job of each queue has waited."""
import json
import signal
import time

from lwtest import check, run, wait_until


def workers(env):
    rc, out, err = env.cli('workers', '--json')
    check(rc == 0, 'workers: %d %r' % (rc, err))
    return {w['name']: w for w in json.loads(out)}


def test_workers_counts_and_states_are_current(env):
    env.write_registry([env.tenant('t1')])
    # A long lease: heartbeats every 5 s, so only the prompt write can be seen.
    w = env.worker('--concurrency', '2', '--lease', '30', name='w1')
    wait_until(lambda: 'w1' in workers(env), timeout=5, what='w1 in the directory')
    time.sleep(0.5)
    ids = [env.enqueue('t1', 'sleep', {'ms': 3000}) for _ in range(2)]
    wait_until(lambda: all(env.status('t1', i)['status'] == 'active' for i in ids), timeout=5,
               what='both jobs to start')
    wait_until(lambda: workers(env)['w1'].get('active') == 2, timeout=1.0, what='ACTIVE 2 in the directory')
    env.wait_all('t1', ids, timeout=10)
    more = env.enqueue_batch([{'kind': 'noop'} for _ in range(20)], tenant='t1')
    env.wait_all('t1', more)
    wait_until(lambda: workers(env)['w1'].get('processed') == 22 and workers(env)['w1'].get('active') == 0,
               timeout=1.0, what='PROCESSED 22, ACTIVE 0')
    check(workers(env)['w1']['state'] == 'running', 'state: %s' % workers(env)['w1'])
    w.signal(signal.SIGTSTP)
    wait_until(lambda: workers(env)['w1']['state'] == 'quiet', timeout=1.0, what='the quiet state')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_a_dead_worker_is_lost_after_its_lease(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--lease', '2', name='w2')
    wait_until(lambda: 'w2' in workers(env), timeout=5, what='w2 in the directory')
    w.kill9()
    t0 = time.monotonic()
    wait_until(lambda: workers(env)['w2']['state'] == 'lost', timeout=4, what='w2 to be shown lost')
    check(time.monotonic() - t0 < 3.0, 'lost only after %.1f s with --lease 2' % (time.monotonic() - t0))
    rc, out, _ = env.cli('workers')
    row = [l for l in out.splitlines() if l.startswith('w2')]
    check(row and ' lost ' in row[0], 'the table: %r' % out)


def stats(env):
    rc, out, err = env.cli('stats', '--tenant', 't1', '--json')
    check(rc == 0, 'stats: %d %r' % (rc, err))
    return json.loads(out)['tenants']['t1']


def test_stats_now_and_totals(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0, 'keep_failed': 2})])
    # Waiting with no worker: the oldest runnable job's age grows.
    waiting = env.enqueue('t1', 'noop', {})
    env.enqueue('t1', 'noop', {}, queue='later', delay=600)
    time.sleep(1.2)
    q = stats(env)['queues']
    check(q['default']['queued'] == 1 and q['default']['oldest_waiting_s'] >= 1.2,
          'the oldest waiting job: %s' % q['default'])
    check(q['later']['oldest_waiting_s'] is None and q['later']['scheduled'] == 1, 'nothing ready: %s' % q['later'])
    w = env.worker('--queue', 'default')
    env.wait_all('t1', [waiting])
    bad = env.enqueue('t1', 'fail', {})
    env.wait_all('t1', [bad], statuses=('failed',))
    rc, _out, err = env.cli('retry', '--tenant', 't1', bad)
    check(rc == 0, 'retry: %r' % err)
    wait_until(lambda: stats(env)['queues']['default']['failed'] == 2, timeout=5, what='the retried job to fail again')
    t = stats(env)
    d = t['queues']['default']
    check(d['retried_manual'] == 1 and d['retried'] == 0, 'a manual retry is counted apart: %s' % d)
    check(t['failed_kept'] == 1, 'one failed job is kept (it failed twice): %s' % t)
    check(d['oldest_waiting_s'] is None, 'nothing waits now: %s' % d)
    # Once its record expires the total stays, the kept count does not.
    wait_until(lambda: env.redis.call('EXISTS', 'lw:{t1}:job:' + bad) == 0, timeout=5, what='the record to expire')
    t = stats(env)
    check(t['failed_kept'] == 0 and t['queues']['default']['failed'] == 2, 'after the retention: %s' % t)
    rc, out, _ = env.cli('stats', '--tenant', 't1')
    lines = out.splitlines()
    check(lines[0].split() == ['now', 'totals'] and 'OLDEST' in lines[1] and 'MANUAL' in lines[1] and
          lines[-1] == 't1: 0 failed job(s) kept (lanework retry --all-failed)', 'the table: %r' % out)
    w.signal(signal.SIGTERM)
    w.wait()


if __name__ == '__main__':
    run([test_workers_counts_and_states_are_current, test_a_dead_worker_is_lost_after_its_lease,
         test_stats_now_and_totals])

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


if __name__ == '__main__':
    run([test_workers_counts_and_states_are_current, test_a_dead_worker_is_lost_after_its_lease])

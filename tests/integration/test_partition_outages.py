"""Partitioned tenants when part of Redis is away, and the count's
publication and the follower's order over time (DESIGN.md section 11
"Partitions"). Run as the other integration tests (LANEWORK_BIN=...
python3 test_partition_outages.py [TEST]).

  master down        stats / events / retry --all-failed with one master of
                     a 3-master cluster killed: what the others hold is
                     printed, the missing partitions are named, exit 3
  count re-published a count refused while partition 0 was busy applies once
                     it drains, without a SIGHUP
  follow order       `events --follow` prints in (id, partition) order even
                     when a partition's later event is read before another's
                     earlier one
"""
import json
import os
import signal
import subprocess
import time

import lwtest
from lwtest import check, wait_until
from test_partitions import part_of, prefix


def lane_in(p, k, stem='l'):
    return next(l for l in ('%s%d' % (stem, i) for i in range(1000)) if part_of(l, k) == p)



def cluster_tenant(env, k):
    """Tenant "p" in k partitions on a 3-master cluster without replicas
    that goes on serving the slots it still has when a master is lost (as
    a production cluster set up for partial service does). Returns the
    cluster, the master of partition 0 and each partition's master."""
    env.redis.stop()
    cs = env.own(lwtest.ClusterSet(env.dir, masters=3, replicas=0))
    for n in cs.nodes:
        n.call('CONFIG', 'SET', 'cluster-require-full-coverage', 'no')
    env.write_registry([env.tenant('p', partitions=k)])
    home = cs.node_for_key(prefix('p', 0) + 'x')
    return cs, home, {p: cs.node_for_key(prefix('p', p) + 'x') for p in range(k)}

@lwtest.plain_only
def test_stats_events_retry_with_a_master_down(env):
    k = 12  # several partitions on the master killed
    cs, home, node_of = cluster_tenant(env, k)
    others = [n for n in cs.nodes if n is not home and any(node_of[p] is n for p in range(k))]
    check(others, 'the %d partitions of "p" all hash to the master of partition 0' % k)
    dead = others[0]
    lost = sorted(p for p in range(k) if node_of[p] is dead)
    alive = sorted(p for p in range(k) if p not in lost)

    def cli(*args):
        return env.cli(*(list(args) + ['--redis', cs.url()]), redis=False, timeout=60)

    w = env.worker('--concurrency', '4', redis_url=cs.url())
    wait_until(lambda: home.call('HGET', 'lw:{p}:settings', 'partitions') == str(k), timeout=10,
               what='partition 0 on the cluster to hold the count')
    # One succeeded and one failed job per partition, on lanes routed there.
    ids = []
    for p in range(k):
        for kind in ('noop', 'fail'):
            rc, out, err = cli('enqueue', '--tenant', 'p', '--kind', kind, '--payload', '{}',
                               '--attempts', '1', '--lane', lane_in(p, k, kind))
            check(rc == 0, 'enqueue: %d %s' % (rc, err))
            ids.append(out.strip())
    wait_until(lambda: cli('wait', '--tenant', 'p', '--timeout', '0', *ids)[0] == 1, timeout=30,
               interval=0.3, what='the jobs to end')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    dead.kill9()
    cs.killed.add(dead)

    rc, out, err = cli('stats', '--tenant', 'p', '--json')
    print('stats --json with partitions %s down: %d\n%s%s' % (lost, rc, out, err), flush=True)
    check(rc == 3, 'stats --json exit %d, not 3' % rc)
    t = json.loads(out)['tenants']['p']
    q = t['queues']['default']
    check(q['succeeded'] == len(alive) and q['failed'] == len(alive),
          'stats: %r, not the %d readable partitions\' jobs' % (q, len(alive)))
    check(t['failed_kept'] == len(alive), 'failed_kept %r' % t['failed_kept'])
    check(t.get('unreadable_partitions') == lost, 'unreadable_partitions %r, not %r'
          % (t.get('unreadable_partitions'), lost))
    for p in lost:
        check(('partition %d (lw:{p#%d}:) unreadable' % (p, p)) in err, 'stderr does not name partition %d: %r' % (p, err))
    rc, out, err = cli('stats', '--tenant', 'p')
    check(rc == 3 and 'default' in out and 'the figures above leave it out' in err,
          'stats: %d %r %r' % (rc, out, err))
    check(len(err.strip().splitlines()) == len(lost), 'one stderr line per missing partition: %r' % err)

    rc, out, err = cli('events', '--tenant', 'p')
    check(rc == 3, 'events exit %d, not 3: %r' % (rc, err))
    evs = [json.loads(l) for l in out.splitlines()]
    parts = {int(e['id'].split('#')[1]) if '#' in e['id'] else 0 for e in evs}
    check(parts == set(alive), 'events of partitions %s, not %s' % (sorted(parts), alive))
    want = sum(node_of[p].call('XLEN', prefix('p', p) + 'events') for p in alive)
    check(len(evs) == want, '%d events printed, the readable streams hold %d' % (len(evs), want))
    check(all('partition %d (lw:{p#%d}:) unreadable' % (p, p) in err for p in lost), 'events stderr: %r' % err)

    rc, out, err = cli('retry', '--tenant', 'p', '--all-failed')
    check(rc == 3, 'retry --all-failed exit %d, not 3: %r' % (rc, err))
    got = out.split()
    check(len(got) == len(alive), 'retried %r, not one per readable partition' % got)
    check(('%d job(s) retried' % len(alive)) in err, 'retry does not report the count: %r' % err)
    check(all('partition %d (lw:{p#%d}:) unreadable' % (p, p) in err for p in lost), 'retry stderr: %r' % err)
    for p in alive:
        st = node_of[p].call('HGET', prefix('p', p) + 'job:' + ids[2 * p + 1], 'status')
        check(st == 'queued', 'the failed job of partition %d is %r after retry' % (p, st))


def test_refused_count_applies_once_partition_0_drains_without_sighup(env):
    # A job scheduled 4 s ahead keeps partition 0 "unfinished": the count 4
    # the registry asks for is refused at the worker's start.
    env.write_registry([env.tenant('p')])
    held = env.enqueue('p', 'noop', {}, lane='L', delay=4)
    env.write_registry([env.tenant('p', partitions=4)])
    w = env.worker('--concurrency', '2')
    wait_until(lambda: 'registry says partitions 4, but its jobs are routed over 1' in w.log(), timeout=5,
               what='the worker to say the count was not applied')
    check(env.redis.call('HGET', 'lw:{p}:settings', 'partitions') in (None, '1'), 'the count changed under a waiting job')
    # The job falls due, runs and ends; no SIGHUP: the worker's periodic
    # publication (every 10 s) applies the count.
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:job:' + held, 'status') == 'succeeded', timeout=15,
               what='the scheduled job to run')
    t0 = time.monotonic()
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == '4', timeout=25,
               interval=0.2, what='the count 4 to apply without a SIGHUP once partition 0 drained')
    print('count applied %.1f s after the job ended' % (time.monotonic() - t0), flush=True)
    wait_until(lambda: w.log().count('partitions 4 now in force') == 1, timeout=5,
               what='the worker to log once that the count applies')
    # It serves the new partitions: a job routed to partition 3 runs.
    j = env.enqueue('p', 'noop', {}, lane=lane_in(3, 4, 'y'))
    check(env.redis.call('EXISTS', prefix('p', 3) + 'job:' + j) == 1, 'the job is not in partition 3')
    wait_until(lambda: env.redis.call('HGET', prefix('p', 3) + 'job:' + j, 'status') == 'succeeded',
               timeout=10, what='the job of partition 3 to run')
    time.sleep(0.5)
    check(w.log().count('partitions 4 now in force') == 1, 'the count applying was logged more than once')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def read_lines(proc, n, timeout):
    """Up to n lines of proc's stdout within timeout seconds (bounded)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf, deadline = b'', time.monotonic() + timeout
    while buf.count(b'\n') < n and time.monotonic() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.monotonic())):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
    sel.close()
    return buf.decode().splitlines()


def test_follow_prints_in_merged_order_across_partitions(env):
    # Two partitions; partition 1 stands for a master whose clock is 3 s
    # ahead: its event's id is 3 s past Redis's TIME (explicit XADD id).
    # Appended first, it is read by the follower's next poll; partition 0's
    # event, appended after it with a lower id, must still be printed
    # first -- the merged (id, partition) order of `events` without --follow.
    env.write_registry([env.tenant('p', partitions=2)])
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', '2')
    f = subprocess.Popen([lwtest.CLI, 'events', '--tenant', 'p', '--follow', '--redis', env.redis.url,
                          '--registry', env.registry], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env.proc_env())
    try:
        time.sleep(0.8)  # its first round read the empty streams
        sec, usec = env.redis.call('TIME')
        now_ms = int(sec) * 1000 + int(usec) // 1000
        ahead = '%d-0' % (now_ms + 3000)
        env.redis.call('XADD', 'lw:{p#1}:events', ahead, 'type', 'enqueued', 'job', 'later', 'ts', str(now_ms + 3000))
        time.sleep(0.8)  # a few polls: an unordered follower prints it now
        early = env.redis.call('XADD', 'lw:{p}:events', '*', 'type', 'enqueued', 'job', 'earlier', 'ts', str(now_ms))
        lines = read_lines(f, 2, timeout=10)
    finally:
        f.kill()
        f.wait(timeout=10)
    got = [json.loads(l) for l in lines]
    print('follower printed: %s' % [(e['id'], e['job']) for e in got], flush=True)
    check([e['job'] for e in got] == ['earlier', 'later'],
          'follow order: %s, not earlier then later' % [(e['id'], e['job']) for e in got])
    check([e['id'] for e in got] == [early, ahead + '#1'], 'ids %s' % [e['id'] for e in got])
    # --since the first one printed resumes exactly after it.
    rc, out, err = env.cli('events', '--tenant', 'p', '--since', early)
    check(rc == 0 and [json.loads(l)['job'] for l in out.splitlines()] == ['later'],
          'resume after %s: %d %r %r' % (early, rc, out, err))


@lwtest.plain_only
def test_stats_and_events_with_a_frozen_master(env):
    # SIGSTOP: the master accepts connections and never answers. The
    # commands must not hang: that partition times out and is named.
    k = 6
    cs, home, node_of = cluster_tenant(env, k)
    frozen = next((n for n in cs.nodes if n is not home and any(node_of[p] is n for p in range(k))), None)
    check(frozen is not None, 'the partitions of "p" all hash to the master of partition 0')
    lost = sorted(p for p in range(k) if node_of[p] is frozen)
    # The tenant's keys as the scripts leave them, written directly: no worker.
    home.call('HSET', 'lw:{p}:settings', 'partitions', str(k))
    for p in range(k):
        node_of[p].call('SADD', prefix('p', p) + 'queues', 'default')
        node_of[p].call('HSET', prefix('p', p) + 'stats', 'succeeded:default', '1')
        node_of[p].call('XADD', prefix('p', p) + 'events', '*', 'type', 'enqueued', 'job', 'j%d' % p)
    os.kill(frozen.proc.pid, signal.SIGSTOP)
    try:
        for args in (['stats', '--tenant', 'p', '--json'], ['events', '--tenant', 'p']):
            t0 = time.monotonic()
            rc, out, err = env.cli(*(args + ['--redis', cs.url()]), redis=False, timeout=90)
            took = time.monotonic() - t0
            print('%s with partitions %s frozen: exit %d in %.1f s\n%s%s' % (args[0], lost, rc, took, out, err), flush=True)
            check(rc == 3, '%s exit %d, not 3' % (args[0], rc))
            # Two connect timeouts at most (the frozen seed, once; the
            # partition's frozen master), not one per connection (35 s).
            check(took < 16, '%s took %.1f s' % (args[0], took))
            for p in lost:
                check('partition %d (lw:{p#%d}:) unreadable' % (p, p) in err, '%s: partition %d not named: %r' % (args[0], p, err))
            if args[0] == 'stats':
                check(json.loads(out)['tenants']['p']['queues']['default']['succeeded'] == k - len(lost),
                      'stats figures: %s' % out)
            else:
                check(len(out.splitlines()) == k - len(lost), 'events printed: %r' % out)
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)


if __name__ == '__main__':
    lwtest.run([test_stats_events_retry_with_a_master_down,
                test_stats_and_events_with_a_frozen_master,
                test_refused_count_applies_once_partition_0_drains_without_sighup,
                test_follow_prints_in_merged_order_across_partitions])

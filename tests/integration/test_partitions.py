"""Partitioned tenants (issue 13 item 4; DESIGN.md section 11 "Partitions"):
registry "partitions": K spreads a tenant's lanes over K keyspaces NS:{T}:
and NS:{T#p}:, each its own hash slot, routed by the lane (else the unique
key, else the id) with CRC16 % K.

  routing           jobs of many lanes land in the partition of their lane;
                    lanes keep their order, no two jobs of a lane overlap;
                    status/wait/cancel/retry/stats/events/fsck see them all
  dedupe            an explicit id reused with its lane, and a unique key
                    without a lane, give back the existing job
  count in force    partition 0 holds it; it changes only while the tenant
                    has no unfinished job; an enqueue routed by another
                    count is refused before anything is written
  caps              max_active shared out over the partitions holds fleet-wide
  spools            a spool's jobs go to their own partitions
  cluster           the partitions' slots spread over a 3-master cluster,
                    every job runs, fsck clean on every partition
"""
import json
import os
import signal
import time

import lwtest
from lwtest import check, wait_until, crc16_xmodem

K = 8
TERMINAL = ('succeeded', 'failed', 'cancelled', 'expired')


def partitioned_worker(env, k, *worker_args, tenant='p'):
    """A registry of one tenant in k partitions and a worker on it, once
    that worker has published the count (so an enqueue routes by it)."""
    env.write_registry([env.tenant(tenant, partitions=k)])
    w = env.worker(*worker_args)
    wait_until(lambda: env.redis.call('HGET', 'lw:{%s}:settings' % tenant, 'partitions') == str(k),
               timeout=5, what='the partition count in force')
    return w


def part_of(key, k=K):
    return crc16_xmodem(key.encode()) % k


def prefix(tenant, p):
    return 'lw:{%s}:' % tenant if p == 0 else 'lw:{%s#%d}:' % (tenant, p)


def where(env, tenant, jid, k=K):
    """The partitions whose keyspace holds job `jid`."""
    return [p for p in range(k) if env.redis.call('EXISTS', prefix(tenant, p) + 'job:' + jid)]


def pstatuses(env, tenant, ids, k=K):
    """{id: status}, wherever each job lives."""
    c = env.redis.client()
    try:
        out = {}
        for p in range(k):
            got = c.pipeline([['HGET', prefix(tenant, p) + 'job:' + i, 'status'] for i in ids])
            for i, s in zip(ids, got):
                if s is not None:
                    out[i] = s
        return out
    finally:
        c.close()


def wait_done(env, tenant, ids, k=K, timeout=60):
    def done():
        st = pstatuses(env, tenant, ids, k)
        return len(st) == len(ids) and all(s in TERMINAL for s in st.values())
    wait_until(done, timeout=timeout, interval=0.05, what='%d jobs to finish' % len(ids))
    return pstatuses(env, tenant, ids, k)


def ptenant(env, name='p', k=K, **fields):
    return env.tenant(name, partitions=k, **fields)


def test_lanes_route_run_in_order_and_every_command_sees_them(env):
    env.write_registry([ptenant(env)])
    w1 = env.worker('--concurrency', '4', name='w1')
    w2 = env.worker('--concurrency', '4', name='w2')
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == str(K), timeout=5,
               what='partition 0 to hold the count')
    lanes = ['lane-%d' % i for i in range(12)]
    lines = [{'kind': 'record', 'lane': lanes[i % 12], 'payload': {'ms': 2}} for i in range(240)]
    lines += [{'kind': 'noop'} for _ in range(60)]
    ids = env.enqueue_batch(lines, tenant='p')
    one = env.enqueue('p', 'record', {'ms': 1}, lane='solo')
    st = wait_done(env, 'p', ids + [one])
    bad = {i: s for i, s in st.items() if s != 'succeeded'}
    check(not bad, 'jobs did not succeed: %s' % list(bad.items())[:5])

    # Each job lives in exactly one partition: its lane's (a lane-less job's
    # generated id was placed so the id routes there too).
    used = set()
    for jid, line in zip(ids, lines):
        at = where(env, 'p', jid)
        want = part_of(line.get('lane', jid))
        check(at == [want], 'job %s (lane %s) is in partitions %s, not [%d]' % (jid, line.get('lane'), at, want))
        check(part_of(jid) == want, 'generated id %s does not route to its partition %d' % (jid, want))
        used.add(want)
    check(len(used) >= 6, 'only partitions %s were used by 13 lanes and 60 jobs' % sorted(used))

    # Lane order across the fleet: runs of one lane never overlap and start
    # in enqueue order.
    check(not env.overlaps(ids), 'lane overlaps: %s' % env.overlaps(ids)[:3])
    runs = env.runs()
    for lane in lanes:
        mine = [jid for jid, l in zip(ids, lines) if l.get('lane') == lane]
        starts = [runs[j][0][1] for j in mine]
        check(starts == sorted(starts), 'lane %s ran out of order' % lane)

    # The CLI finds jobs in every partition, by id alone.
    for jid in [one] + ids[::37]:
        rc, out, err = env.cli('status', '--tenant', 'p', jid)
        check(rc == 0 and json.loads(out)['status'] == 'succeeded', 'status %s: %d %s' % (jid, rc, err))
    rc, _out, err = env.cli('wait', '--tenant', 'p', '--timeout', '5', *ids[:40])
    check(rc == 0, 'wait over partitions: %d %s' % (rc, err))
    rc, _out, err = env.cli('status', '--tenant', 'p', 'nosuchjob')
    check(rc == 4 and 'no such job nosuchjob' in err, 'a missing job: %d %r' % (rc, err))

    # stats sums the partitions.
    rc, out, err = env.cli('stats', '--tenant', 'p', '--json')
    check(rc == 0, 'stats: %d %s' % (rc, err))
    s = json.loads(out)
    total = s['tenants']['p']['queues']['default']['succeeded']
    check(total == len(ids) + 1, 'stats counts %d succeeded, not %d: %s' % (total, len(ids) + 1, out[:400]))

    # events: every partition's stream, merged in id order, ids ID#P.
    evs = env.events('p')
    done = {e['job'] for e in evs if e['type'] == 'job.succeeded'}
    check(done >= set(ids), '%d jobs have no job.succeeded in the merged events' % len(set(ids) - done))
    keys = [(int(e['id'].split('#')[0].split('-')[0]), int(e['id'].split('#')[0].split('-')[1]),
             int(e['id'].split('#')[1]) if '#' in e['id'] else 0) for e in evs]
    check(keys == sorted(keys), 'events are not in (id, partition) order')
    # --since an event of the merged order resumes exactly after it.
    mid = len(evs) // 2
    rc, out, err = env.cli('events', '--tenant', 'p', '--since', evs[mid]['id'])
    rest = [json.loads(l)['id'] for l in out.splitlines() if l.strip()]
    check(rc == 0 and rest == [e['id'] for e in evs[mid + 1:]],
          '--since %s gave %d events, not the %d after it' % (evs[mid]['id'], len(rest), len(evs) - mid - 1))

    rc, out, err = env.cli('fsck', '--tenant', 'p')
    check(rc == 0 and out.count('0 problems') == K, 'fsck: %d\n%s%s' % (rc, out, err))
    for w in (w1, w2):
        w.signal(signal.SIGTERM)
        check(w.wait() == 0, 'worker exit')


def test_dedupe_cancel_and_retry_across_partitions(env):
    env.write_registry([ptenant(env)])
    w = env.worker('--concurrency', '2')
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == str(K), timeout=5,
               what='partition 0 to hold the count')
    # An explicit id reused with its lane is the same job.
    a = env.enqueue('p', 'noop', {}, id='order-1', lane='cust-9', delay=600)
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'noop', '--id', 'order-1', '--lane', 'cust-9')
    check(rc == 0 and out.strip() == a and 'exists' in err, 'reused id: %d %r %r' % (rc, out, err))
    check(where(env, 'p', 'order-1') == [part_of('cust-9')], 'order-1 is not in its lane\'s partition')
    # A unique key without a lane: one holder, whichever id the second call
    # would have had.
    u1 = env.enqueue('p', 'noop', {}, unique='invoice-7', delay=600)
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'noop', '--unique', 'invoice-7')
    check(rc == 0 and out.strip() == u1 and 'held' in err, 'unique key: %d %r %r' % (rc, out, err))
    check(where(env, 'p', u1) == [part_of('invoice-7')], 'the unique job is not in its key\'s partition')
    # cancel finds a job in a partition >= 1.
    far = next(l for l in ('x%d' % i for i in range(100)) if part_of(l) >= 1)
    c = env.enqueue('p', 'noop', {}, lane=far, delay=600)
    rc, out, err = env.cli('cancel', '--tenant', 'p', c)
    check(rc == 0 and pstatuses(env, 'p', [c])[c] == 'cancelled', 'cancel in partition %d: %d %r' % (part_of(far), rc, err))
    # retry by id and --all-failed, over partitions.
    f = [env.enqueue('p', 'fail', {}, lane='f%d' % i, attempts=1) for i in range(6)]
    st = wait_done(env, 'p', f)
    check(set(st.values()) == {'failed'}, 'fail jobs: %s' % st)
    check(len({part_of('f%d' % i) for i in range(6)}) > 1, 'the failing lanes share one partition')
    rc, out, err = env.cli('retry', '--tenant', 'p', f[0], f[1])
    check(rc == 0 and sorted(out.split()) == sorted(f[:2]), 'retry ids: %d %r %r' % (rc, out, err))
    wait_done(env, 'p', f)
    rc, out, err = env.cli('retry', '--tenant', 'p', '--all-failed')
    check(rc == 0 and sorted(out.split()) == sorted(f), 'retry --all-failed: %d %r %r' % (rc, out, err))
    wait_done(env, 'p', f)
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def function_name(env, suffix):
    libs = env.redis.call('FUNCTION', 'LIST')
    for lib in libs:
        fields = dict(zip(lib[::2], lib[1::2]))
        for fn in fields.get('functions', []):
            name = dict(zip(fn[::2], fn[1::2]))['name']
            if name.endswith(suffix):
                return name
    raise lwtest.TestFailure('no function *%s loaded' % suffix)


def test_the_count_changes_only_on_an_empty_tenant(env):
    # Jobs waiting in an unpartitioned tenant: a registry asking for 4
    # partitions is not applied (it would split their lanes), and says so.
    env.write_registry([env.tenant('p')])
    waiting = env.enqueue('p', 'noop', {}, lane='L', delay=600)
    env.write_registry([ptenant(env, k=4)])
    w = env.worker('--concurrency', '2')
    wait_until(lambda: 'registry says partitions 4, but its jobs are routed over 1' in w.log(), timeout=5,
               what='the worker to say the count was not applied')
    check(env.redis.call('HGET', 'lw:{p}:settings', 'partitions') is None, 'the count changed under waiting jobs')
    more = env.enqueue('p', 'noop', {}, lane='M')
    check(where(env, 'p', more, 4) == [0], 'with one partition in force the job went elsewhere')
    wait_done(env, 'p', [more], 4)
    # Drained: the next publication (a reload) applies it.
    rc, _out, err = env.cli('cancel', '--tenant', 'p', waiting)
    check(rc == 0, 'cancel: %r' % err)
    w.signal(signal.SIGHUP)
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == '4', timeout=5,
               what='the count to be applied on the drained tenant')
    lane = next(l for l in ('y%d' % i for i in range(100)) if part_of(l, 4) == 3)
    j = env.enqueue('p', 'noop', {}, lane=lane)
    check(where(env, 'p', j, 4) == [3], 'after the change the job is not in partition 3')
    wait_done(env, 'p', [j], 4)

    # A writer that routed by another count is refused before it writes.
    fn = function_name(env, '_enqueue')
    pre = 'lw:{p}:'
    keys = [pre + 'events', pre + 'schedule', pre + 'stats', pre + 'queues', pre + 'expiring']
    job = ['stale-1', 'noop', 'default', 'stale-1', 'null', '1', '1000', '0', '0', '0', '', '', '0']
    try:
        env.redis.call('FCALL', fn, str(len(keys)), *keys, pre, '1000', '1', '1', *job)
        check(False, 'an enqueue routed by 1 partition was accepted by a 4-partition tenant')
    except lwtest.RespError as e:
        check(str(e).startswith('LWPARTITIONS 4'), 'refusal: %s' % e)
    check(env.redis.call('EXISTS', pre + 'job:stale-1') == 0, 'the refused call wrote the job')
    # ...and a count that never goes back from K to 1 by a registry.
    env.write_registry([env.tenant('p')])
    w.signal(signal.SIGHUP)
    wait_until(lambda: 'registry says partitions 1, but its jobs are routed over 4' in w.log(), timeout=5,
               what='the worker to refuse going back to 1')
    check(env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == '4', 'the count went back')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def max_parallel(runs, ids):
    edges = []
    for jid in ids:
        for r in runs.get(jid, []):
            edges += [(r[1], 1), (r[2], -1)]
    edges.sort(key=lambda e: (e[0], e[1]))
    cur = best = 0
    for _t, d in edges:
        cur += d
        best = max(best, cur)
    return best


def test_caps_hold_over_partitions(env):
    env.write_registry([ptenant(env, k=4, queues={'default': {'max_active': 6}})])
    ws = [env.worker('--concurrency', '8', name='w%d' % i) for i in range(2)]
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == '4', timeout=5,
               what='partition 0 to hold the count')
    ids = env.enqueue_batch([{'kind': 'record', 'payload': {'ms': 40}} for _ in range(120)], tenant='p')
    wait_done(env, 'p', ids, 4)
    peak = max_parallel(env.runs(), ids)
    print('caps: 120 jobs, 4 partitions, max_active 6, 2 workers x 8: at most %d ran at once' % peak, flush=True)
    check(peak <= 6, '%d jobs ran at once with max_active 6' % peak)
    check(peak >= 4, 'only %d ran at once: the shares (2+2+1+1) are not used' % peak)
    for w in ws:
        w.signal(signal.SIGTERM)
        check(w.wait() == 0, 'worker exit')


def test_spool_jobs_go_to_their_partitions(env):
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([ptenant(env, spools={'record': spool})])
    # Redis unreachable for the CLI: the job files are the acceptance, and
    # the worker's scan routes them.
    ids = []
    lanes = ['s%d' % (i % 5) for i in range(25)]
    for lane in lanes:
        rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--lane', lane, '--payload', '{}',
                               '--spool', spool, '--redis', 'redis://127.0.0.1:1', redis=False)
        check(rc == 0, 'enqueue --spool with Redis away: %d %r' % (rc, err))
        ids.append(out.strip())
    w = env.worker('--concurrency', '4')
    st = wait_done(env, 'p', ids)
    check(set(st.values()) == {'succeeded'}, 'spool jobs: %s' % st)
    for jid, lane in zip(ids, lanes):
        check(where(env, 'p', jid) == [part_of(lane)], 'spool job %s of lane %s is in partition %s'
              % (jid, lane, where(env, 'p', jid)))
    check(not env.overlaps(ids), 'lane overlaps: %s' % env.overlaps(ids)[:3])
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


@lwtest.plain_only
def test_partitions_spread_over_a_cluster(env):
    env.redis.stop()
    cs = env.own(lwtest.ClusterSet(env.dir, masters=3, replicas=0))
    env.write_registry([ptenant(env, k=6)])
    nodes = {id(cs.node_for_key(prefix('p', p) + 'x')) for p in range(6)}
    check(len(nodes) >= 2, 'the 6 partitions of "p" all hash to one master')
    w = env.worker('--concurrency', '4', redis_url=cs.url())

    def cli(*args, input=None):
        return env.cli(*(list(args) + ['--redis', cs.url()]), redis=False, input=input, timeout=120)
    home = cs.node_for_key(prefix('p', 0) + 'x')
    wait_until(lambda: home.call('HGET', 'lw:{p}:settings', 'partitions') == '6', timeout=10,
               what='partition 0 on the cluster to hold the count')
    lines = ''.join(json.dumps({'kind': 'record', 'lane': 'c%d' % (i % 30)}) + '\n' for i in range(300))
    rc, out, err = cli('enqueue', '--tenant', 'p', '--batch', '-', input=lines)
    check(rc == 0, 'batch on a cluster: %d %s' % (rc, err))
    ids = out.split()
    t0 = time.monotonic()

    def done():
        rc, out, _err = cli('wait', '--tenant', 'p', '--timeout', '0', *ids)
        return rc == 0
    wait_until(done, timeout=60, interval=0.3, what='the jobs on the cluster to finish')
    print('cluster: 300 jobs of 30 lanes over 6 partitions on %d masters done in %.1f s'
          % (len(nodes), time.monotonic() - t0), flush=True)
    check(not env.overlaps(ids), 'lane overlaps: %s' % env.overlaps(ids)[:3])
    for jid in ids[:20]:
        node = cs.node_for_key(prefix('p', part_of(json.loads(lines.splitlines()[ids.index(jid)])['lane'], 6)) + 'x')
        check(node.call('EXISTS', prefix('p', part_of(json.loads(lines.splitlines()[ids.index(jid)])['lane'], 6))
                        + 'job:' + jid) == 1, 'job %s is not on the master of its partition' % jid)
    rc, out, err = cli('fsck', '--tenant', 'p')
    check(rc == 0 and out.count('0 problems') == 6, 'fsck on the cluster: %d\n%s%s' % (rc, out, err))
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


if __name__ == '__main__':
    lwtest.run([test_lanes_route_run_in_order_and_every_command_sees_them,
                test_dedupe_cancel_and_retry_across_partitions,
                test_the_count_changes_only_on_an_empty_tenant,
                test_caps_hold_over_partitions,
                test_spool_jobs_go_to_their_partitions,
                test_partitions_spread_over_a_cluster])

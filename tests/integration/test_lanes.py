"""Lanes (CONTRACT 4.2) and queues (4.3), judged from the handlers' own clocks:
one job at a time per lane across the fleet, in enqueue order; lanes in
parallel; round-robin fairness across lanes; strict queue priority."""
from collections import defaultdict

from lwtest import check, run


def stream_pos(entry_id):
    ms, seq = entry_id.split('-')
    return int(ms), int(seq)


def intervals(records):
    """job id -> (start_ms, end_ms, lane), from START/END lines."""
    start, out = {}, {}
    for what, ms, jid, lane, _pid in records:
        if what == 'START':
            start[jid] = (ms, lane)
        else:
            out[jid] = (start[jid][0], ms, lane)
    return out


def check_lanes(env, ids_by_lane):
    iv = intervals(env.records())
    for lane, ids in ids_by_lane.items():
        check(all(i in iv for i in ids), 'lane %s: not every job ran' % lane)
        spans = [iv[i] for i in ids]
        starts = [s for s, _e, _l in spans]
        check(starts == sorted(starts), 'lane %s: jobs started out of enqueue order' % lane)
        for (s1, e1, _), (s2, e2, _) in zip(spans, spans[1:]):
            check(s2 >= e1, 'lane %s: two jobs overlapped (%d-%d and %d-%d)' % (lane, s1, e1, s2, e2))
    return iv


def max_parallel(iv):
    points = sorted([(s, 1) for s, e, _ in iv.values()] + [(e, -1) for s, e, _ in iv.values()],
                    key=lambda p: (p[0], p[1]))
    cur = best = 0
    for _t, d in points:
        cur += d
        best = max(best, cur)
    return best


def test_lane_order_no_overlap_4_workers(env):
    env.write_registry([env.tenant('acme')])
    lanes = ['chat-%d' % i for i in range(6)]
    lines, order = [], []
    for n in range(15):
        for lane in lanes:
            lines.append({'tenant': 'acme', 'kind': 'record', 'lane': lane, 'payload': {'ms': 3}})
            order.append(lane)
    ids = env.enqueue_batch(lines)
    by_lane = defaultdict(list)
    for jid, lane in zip(ids, order):
        by_lane[lane].append(jid)
    ws = [env.worker('--burst', '--concurrency', '2') for _ in range(4)]
    for w in ws:
        check(w.wait(timeout=120) == 0, 'worker exit')
    env.wait_all('acme', ids)
    iv = check_lanes(env, by_lane)
    check(max_parallel(iv) >= 3, 'lanes did not run in parallel (max %d at once)' % max_parallel(iv))
    pids = {pid for _w, _ms, _j, _l, pid in env.records()}
    check(len(pids) > 4, 'expected forked children of several workers')


def test_lane_order_thread_isolation_with_retries(env):
    env.write_registry([env.tenant('acme', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0.02})])
    lines, lanes = [], []
    for n in range(10):
        for lane in ('a', 'b', 'c'):
            # a retrying job holds its lane: the next one must wait for it
            if n == 3:
                lines.append({'tenant': 'acme', 'kind': 'retry', 'lane': lane, 'payload': {'succeed_on': 3}})
            lines.append({'tenant': 'acme', 'kind': 'record', 'lane': lane, 'payload': {'ms': 2}})
            lanes.append(lane)
    ids = env.enqueue_batch(lines)
    record_ids = [i for i, l in zip(ids, lines) if l['kind'] == 'record']
    by_lane = defaultdict(list)
    for jid, lane in zip(record_ids, lanes):
        by_lane[lane].append(jid)
    ws = [env.worker('--burst', '--isolation', 'thread', '--concurrency', '4') for _ in range(2)]
    for w in ws:
        check(w.wait(timeout=120) == 0, 'worker exit')
    env.wait_all('acme', ids)
    iv = check_lanes(env, by_lane)
    # the retrying job (3 attempts) sits between the 3rd and 4th record job of its lane
    evs = env.events('acme')
    for lane in ('a', 'b', 'c'):
        retry_id = [i for i, l in zip(ids, lines) if l['kind'] == 'retry' and l['lane'] == lane][0]
        done = [e for e in evs if e['job'] == retry_id and e['type'] == 'job.succeeded'][0]
        fourth = by_lane[lane][3]
        started = [e for e in evs if e['job'] == fourth and e['type'] == 'job.started'][0]
        check(stream_pos(started['id']) > stream_pos(done['id']),
              'lane %s: a job ran while the retrying job still held the lane' % lane)


def test_fairness_big_lane_does_not_hold_back_small(env):
    env.write_registry([env.tenant('acme')])
    big = env.enqueue_batch([{'tenant': 'acme', 'kind': 'record', 'lane': 'big'}] * 2000)
    small = env.enqueue('acme', 'record', {}, lane='small')
    w = env.worker('--burst', '--concurrency', '1', '--isolation', 'thread')
    check(w.wait(timeout=180) == 0, 'worker exit')
    env.wait_all('acme', big + [small])
    starts = [jid for what, _ms, jid, _l, _p in env.records() if what == 'START']
    pos = starts.index(small)
    # one worker, one slot: at most one claim of the big lane comes first
    check(pos <= 1, 'the 1-job lane waited behind %d jobs of the 2000-job lane' % pos)


def test_strict_queue_priority(env):
    env.write_registry([env.tenant('acme')])
    low = env.enqueue_batch([{'tenant': 'acme', 'kind': 'record', 'queue': 'low'}] * 30)
    high = env.enqueue_batch([{'tenant': 'acme', 'kind': 'record', 'queue': 'high'}] * 10)
    w = env.worker('--burst', '--concurrency', '1', '--queue', 'high', '--queue', 'low')
    check(w.wait(timeout=120) == 0, 'worker exit')
    env.wait_all('acme', low + high)
    starts = [jid for what, _ms, jid, _l, _p in env.records() if what == 'START']
    check(set(starts[:10]) == set(high), 'a low-priority job ran before a high one: %s' %
          [('H' if s in high else 'L') for s in starts[:12]])
    # a worker that is not given the queue never touches it
    other = env.enqueue('acme', 'noop', {}, queue='other')
    env.worker('--burst', '--queue', 'high', '--queue', 'low').wait()
    check(env.status('acme', other)['status'] == 'queued', 'a job of an unserved queue ran')


if __name__ == '__main__':
    run([test_lane_order_no_overlap_4_workers, test_lane_order_thread_isolation_with_retries,
         test_fairness_big_lane_does_not_hold_back_small, test_strict_queue_priority])

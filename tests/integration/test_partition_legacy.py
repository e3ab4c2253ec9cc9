"""Ids and unique keys from before a tenant was partitioned (DESIGN.md
section 11 "Partitions", known.lua). When the count goes from 1 to K, the
jobs that finished before stay in partition 0 until their retention ends,
with their unique keys; an id or unique key routes by K now, often
elsewhere. Every enqueuer asks partition 0 about such a job first, until
the last of those records can have expired (settings legacy_until), so a
reused id or unique key is answered with the old job, as before the change.

Each test here made a second job on the code before known.lua (9bf2f5e).
Run as the other integration tests:
LANEWORK_BIN=... python3 test_partition_legacy.py [TEST]."""
import json
import os
import signal
import time

import lwtest
from lwtest import check, wait_until
from test_partitions import part_of, wait_done, where

K = 4


def key_not_in_0(stem):
    return next(x for x in ('%s%d' % (stem, i) for i in range(200)) if part_of(x, K) != 0)


def partition(env, w, **fields):
    """Registry "partitions": K for tenant p, applied (the tenant is idle)."""
    env.write_registry([env.tenant('p', partitions=K, **fields)])
    w.signal(signal.SIGHUP)
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == str(K), timeout=5,
               what='the count %d applied' % K)


def stop(w):
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def runs_of(env, jid):
    return len(env.runs().get(jid, []))


def test_reused_id_is_the_job_from_before(env):
    jid = key_not_in_0('old')
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    env.enqueue('p', 'record', {}, id=jid)
    wait_done(env, 'p', [jid], 1)
    partition(env, w)
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--payload', '{}', '--id', jid)
    check(rc == 0 and out.strip() == jid, 'enqueue of a reused id: %d %r %r' % (rc, out, err))
    check('exists (succeeded)' in err, 'not said to be the existing job: %r' % err)
    rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'p',
                           input=json.dumps({'kind': 'record', 'id': jid}) + '\n' +
                           json.dumps({'kind': 'record', 'payload': {}}) + '\n')
    ids = out.split()
    check(rc == 0 and len(ids) == 2 and ids[0] == jid, '--batch with a reused id: %d %r %r' % (rc, out, err))
    wait_done(env, 'p', ids[1:], K)
    time.sleep(0.3)
    stop(w)
    check(where(env, 'p', jid, K) == [0], 'job %s is in partitions %s' % (jid, where(env, 'p', jid, K)))
    check(runs_of(env, jid) == 1, 'job %s ran %d times' % (jid, runs_of(env, jid)))
    check(env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is not None, 'no legacy window mark')


def test_batch_keeps_lane_order_around_asked_lines(env):
    """--batch holds a line back until partition 0 has answered about it,
    and every later line of its partition with it: a lane keeps its order
    when some of its lines carry ids and others do not."""
    lane = key_not_in_0('lane')
    old = 'old-%s' % lane
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    env.enqueue('p', 'record', {}, id=old, lane=lane)
    wait_done(env, 'p', [old], 1)
    partition(env, w)
    lines = [{'kind': 'record', 'lane': lane, 'payload': {'ms': 100}}]
    for i in range(6):
        lines.append({'kind': 'record', 'lane': lane, 'id': old if i == 2 else 'n%d-%s' % (i, lane)})
        lines.append({'kind': 'record', 'lane': lane})
    rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'p',
                           input=''.join(json.dumps(l) + '\n' for l in lines))
    ids = out.split()
    check(rc == 0 and len(ids) == len(lines) and ids[5] == old, '--batch: %d %r %r' % (rc, out, err))
    new = [i for i in ids if i != old]
    wait_done(env, 'p', new, K)
    stop(w)
    runs = env.runs()
    order = sorted(new, key=lambda i: runs[i][0][1])
    check(order == new, 'lane %s ran out of input order:\n%s\n%s' % (lane, order, new))
    check(runs_of(env, old) == 1, 'job %s ran %d times' % (old, runs_of(env, old)))


def test_unique_key_held_from_before(env):
    key = key_not_in_0('u')
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    first = env.enqueue('p', 'record', {}, unique=key, unique_for=600)
    wait_done(env, 'p', [first], 1)
    partition(env, w)
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--payload', '{}', '--unique', key)
    check(rc == 0 and out.strip() == first, 'enqueue with a held unique key: %d %r %r' % (rc, out, err))
    check('is held by job %s (succeeded)' % first in err, 'not said to be held: %r' % err)
    stop(w)
    check(runs_of(env, first) == 1 and len(env.runs()) == 1, 'runs: %s' % env.runs())
    # The hold (600 s) outlives the retention: the window covers it.
    until = int(env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') or 0)
    now = int(time.time() * 1000)
    check(until > now + 500 * 1000, 'legacy window ends in %d ms, before the unique hold' % (until - now))


def test_spool_entry_of_a_job_cancelled_before(env):
    """A spool job cancelled while it waited keeps its entry "queued" until
    a rescan settles it. If the count changes first, the rescan routes the
    entry to its new partition: without asking partition 0 it runs there."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    jid = key_not_in_0('sp')
    env.write_registry([env.tenant('p', spools={'record': spool})])
    w = env.worker('--concurrency', '2')
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--payload', '{}', '--id', jid,
                           '--delay', '600', '--spool', spool)
    check(rc == 0, 'enqueue --spool: %d %r' % (rc, err))
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:job:' + jid, 'status') == 'scheduled', timeout=5,
               what='the spool job enqueued')
    rc, out, err = env.cli('cancel', '--tenant', 'p', jid)
    check(rc == 0, 'cancel: %d %r' % (rc, err))
    partition(env, w, spools={'record': spool})
    path = os.path.join(spool, jid, 'job.json')

    def settled():
        with open(path) as f:
            return json.load(f).get('status') != 'queued'
    wait_until(settled, timeout=10, what='the spool entry settled')
    time.sleep(0.3)
    with open(path) as f:
        doc = json.load(f)
    stop(w)
    check(where(env, 'p', jid, K) == [0], 'job %s is in partitions %s' % (jid, where(env, 'p', jid, K)))
    check(runs_of(env, jid) == 0, 'the cancelled spool job ran %d times' % runs_of(env, jid))
    check(doc.get('status') == 'failed', 'spool entry: %s' % doc)


def test_window_ends_with_the_retention(env):
    """After the longest retention the window closes: known.lua deletes the
    mark, and an id whose record expired makes a new job, as anywhere."""
    jid = key_not_in_0('gone')
    d = {'attempts': 3, 'timeout': 30, 'backoff': 0.05, 'keep_succeeded': 1, 'keep_failed': 1}
    env.write_registry([env.tenant('p', defaults=d)])
    w = env.worker('--concurrency', '2')
    env.enqueue('p', 'record', {}, id=jid)
    wait_done(env, 'p', [jid], 1)
    partition(env, w, defaults=d)
    check(env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is not None, 'no legacy window')
    wait_until(lambda: env.redis.call('EXISTS', 'lw:{p}:job:' + jid) == 0, timeout=5, what='the record expired')
    time.sleep(0.2)
    new = env.enqueue('p', 'record', {}, id=jid)
    check(new == jid, 'enqueue: %r' % new)
    check(env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is None, 'the window mark was kept')
    wait_done(env, 'p', [jid], K)
    stop(w)
    check(where(env, 'p', jid, K) == [part_of(jid, K)], 'job %s in %s' % (jid, where(env, 'p', jid, K)))


if __name__ == '__main__':
    lwtest.run([test_reused_id_is_the_job_from_before,
                test_batch_keeps_lane_order_around_asked_lines,
                test_unique_key_held_from_before,
                test_spool_entry_of_a_job_cancelled_before,
                test_window_ends_with_the_retention])

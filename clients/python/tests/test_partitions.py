"""Partitioned tenants (common/partition.h): the client routes a job where
the C side does -- partition CRC16(lane, else unique, else id) % K, prefix
lw:{T}: for 0 and lw:{T#p}: else -- finds jobs in any partition, merges the
partitions' events, and re-routes when the count changed under it. Tenant
p8 has 8 partitions, published by a real worker (registry "partitions": 8)
or set on the empty tenant as settings.lua would."""
import asyncio
import itertools
import json
import threading
import time

import pytest

import lanework
import lwtest
from lanework import partition

K = 8


def where(key, k=K):
    """Partition of `key` by the test harness's own CRC16 (lwtest's table
    version, not the client's), so a broken client CRC shows."""
    return lwtest.crc16_xmodem(key.encode()) % k if k > 1 else 0


def prefix(p, tenant='p8'):
    return 'lw:{%s#%d}:' % (tenant, p) if p else 'lw:{%s}:' % tenant


def lane_in(p, tag='L'):
    """A lane name whose partition is p."""
    return next('%s%d' % (tag, i) for i in range(10000) if where('%s%d' % (tag, i)) == p)


def holders(env, jid, tenant='p8', k=K):
    """The partitions whose keyspace holds job:JID."""
    return [p for p in range(k) if env.redis.call('EXISTS', prefix(p, tenant) + 'job:' + jid) == 1]


def all_jobs(env, tenant='p8'):
    return sorted(env.redis.call('KEYS', 'lw:{%s}:job:*' % tenant) + env.redis.call('KEYS', 'lw:{%s#*}:job:*' % tenant))


@pytest.fixture
def p8(env):
    """Tenant p8 with 8 partitions, published by a worker serving it."""
    env.write_registry([env.tenant('t1'), env.tenant('p8', partitions=K)])
    env.worker('--tenant', 'p8')
    lwtest.wait_until(lambda: env.redis.call('HGET', 'lw:{p8}:settings', 'partitions') == str(K),
                      what='the worker to publish partitions 8')
    return env


@pytest.fixture
def p8_idle(env):
    """Tenant p8 with 8 partitions and no worker: jobs stay where they went."""
    env.write_registry([env.tenant('t1'), env.tenant('p8', partitions=K)])
    env.redis.call('HSET', 'lw:{p8}:settings', 'partitions', str(K))
    return env


def test_crc16_value():
    assert partition.crc16(b'123456789') == 0x31C3
    assert partition.crc16(b'') == 0
    for key in ['a', 'lane-1', 'u\u00e9nique', '0190f1a2b3c4d5e6f7a8b9c0', 'x' * 200]:
        assert partition.crc16(key.encode()) == lwtest.crc16_xmodem(key.encode())
        assert partition.partition_of(key, K) == lwtest.crc16_xmodem(key.encode()) % K
    assert partition.partition_of('anything', 1) == 0
    assert partition.prefix('lw', 'p8', 0) == 'lw:{p8}:' and partition.prefix('lw', 'p8', 3) == 'lw:{p8#3}:'
    assert partition.refused_count('LWPARTITIONS 8 tenant keys under lw:{p8}: are in 8 partition(s)') == 8
    assert partition.refused_count('OOM command not allowed') is None


def test_one_lane_one_partition_in_order(p8, client):
    lane = lane_in(5)
    ids = client.enqueue_many('p8', [{'kind': 'record', 'lane': lane, 'payload': {'ms': 20}} for _ in range(12)])
    for jid in ids:
        assert holders(p8, jid) == [5]  # the lane's partition, generated ids included
        assert where(jid) == 5          # placed so that the id alone finds it at once
    assert p8.redis.call('LRANGE', prefix(5) + 'lane:' + lane, 0, -1) == list(ids)
    lwtest.wait_until(lambda: all(client.status('p8', j)['status'] == 'succeeded' for j in ids), timeout=30,
                      what='the lane to run')
    starts = [r[2] for r in p8.records() if r[0] == 'START' and r[3] == lane]
    assert starts == list(ids)  # one at a time, in order
    assert p8.overlaps(ids) == []


def test_lanes_spread_over_partitions(p8_idle, client):
    lanes = ['lane-%d' % i for i in range(40)]
    jobs = [{'kind': 'noop', 'lane': l, 'payload': {'n': i}} for i in range(3) for l in lanes]
    ids = client.enqueue_many('p8', jobs)
    used = set()
    for job, jid in zip(jobs, ids):
        p = where(job['lane'])
        assert holders(p8_idle, jid) == [p], (job, jid)
        used.add(p)
    assert len(used) >= 6
    for lane in lanes:  # each partition's call kept the input order
        want = [jid for job, jid in zip(jobs, ids) if job['lane'] == lane]
        assert p8_idle.redis.call('LRANGE', prefix(where(lane)) + 'lane:' + lane, 0, -1) == want
    assert len(all_jobs(p8_idle)) == len(jobs)
    # More than one call per partition (CALL_JOBS), still in order.
    big = client.enqueue_many('p8', [{'kind': 'noop', 'lane': lanes[0]} for _ in range(600)])
    assert p8_idle.redis.call('LRANGE', prefix(where(lanes[0])) + 'lane:' + lanes[0], 0, -1) == \
        [jid for job, jid in zip(jobs, ids) if job['lane'] == lanes[0]] + list(big)


def test_status_wait_cancel_retry_in_other_partitions(p8, client):
    lane = lane_in(3)
    a = client.enqueue('p8', 'echo', {'x': 1}, lane=lane)
    assert holders(p8, a) == [3]
    done = client.wait('p8', a, timeout=20)
    assert done['status'] == 'succeeded' and done['result'] == {'x': 1} and done['tenant'] == 'p8'
    # An explicit id whose own partition is not its lane's: found by the others.
    jid = next('job-%d' % i for i in range(1000) if where('job-%d' % i) not in (3, 0))
    b = client.enqueue('p8', 'noop', lane=lane, id=jid, delay=600)
    assert b == jid and holders(p8, jid) == [3]
    assert client.status('p8', jid)['status'] == 'scheduled'
    assert client.cancel('p8', jid) == 'cancelled'
    with pytest.raises(lanework.JobFailed, match='already cancelled'):
        client.cancel('p8', jid)
    assert client.retry('p8', jid) == jid
    assert client.wait('p8', jid, timeout=20)['status'] == 'succeeded'
    with pytest.raises(lanework.NoSuchJob):
        client.status('p8', 'no-such-job')
    with pytest.raises(lanework.NoSuchJob):
        client.cancel('p8', 'no-such-job')


def test_existing_job_and_unique_key_in_partitions(p8_idle, client):
    lane = lane_in(6)
    first = client.enqueue('p8', 'noop', id='fixed-1', lane=lane)
    again = client.enqueue('p8', 'noop', id='fixed-1', lane=lane)
    assert first.created and not again.created and again == 'fixed-1' and again.why == 'exists queued'
    assert holders(p8_idle, 'fixed-1') == [6]
    # A unique key without a lane: routed by the key, so it dedupes.
    ukey = next('u-%d' % i for i in range(1000) if where('u-%d' % i) not in (0,))
    u1 = client.enqueue('p8', 'noop', unique=ukey)
    u2 = client.enqueue('p8', 'noop', unique=ukey)
    u3 = client.enqueue_many('p8', [{'kind': 'noop', 'unique': ukey}])[0]
    assert u1.created and u2 == u3 == u1 and not u2.created and u2.why == 'held queued'
    assert holders(p8_idle, u1) == [where(ukey)] and where(u1) == where(ukey)
    assert p8_idle.redis.call('GET', prefix(where(ukey)) + 'unique:' + ukey) == u1
    assert len(all_jobs(p8_idle)) == 2


@pytest.mark.parametrize('how', ['enqueue', 'enqueue_many', 'async'])
def test_stale_count_is_rerouted(env, run, how):
    """A client that read K=1 meets a tenant that became partitioned (set
    on the empty tenant, as settings.lua would): enqueue.lua refuses with
    LWPARTITIONS 8, nothing was written, and the client routes again by 8."""
    lanes = [lane_in(p) for p in range(K)]

    def partition_now():
        env.redis.call('HSET', 'lw:{p8}:settings', 'partitions', str(K))

    if how == 'async':
        lanes = lanes * 3

        async def go():
            import asyncio
            async with lanework.AsyncClient(env.redis.url, namespace=env.ns) as ac:
                with pytest.raises(lanework.NoSuchJob):
                    await ac.status('p8', 'nothing-yet')  # reads and caches K = 1
                partition_now()
                return await asyncio.gather(*(ac.enqueue('p8', 'noop', lane=l) for l in lanes))
        ids = run(go())
    else:
        c = lanework.Client(env.redis.url, namespace=env.ns)
        with pytest.raises(lanework.NoSuchJob):
            c.status('p8', 'nothing-yet')  # reads and caches K = 1
        partition_now()
        if how == 'enqueue':
            lanes = [lanes[5]]
            ids = [c.enqueue('p8', 'noop', lane=lanes[0])]
        else:
            lanes = lanes * 40  # 320 jobs: two calls to partition 0 while K was 1
            ids = c.enqueue_many('p8', [{'kind': 'noop', 'lane': l} for l in lanes])
        c.close()
    assert all(j.created for j in ids)
    for lane, jid in zip(lanes, ids):
        assert holders(env, jid) == [where(lane)]
        assert env.redis.call('HGET', prefix(where(lane)) + 'job:' + jid, 'lane') == lane
    assert len(all_jobs(env)) == len(ids) == len(set(ids))  # nothing lost, nothing twice


def test_events_merged_over_partitions(p8_idle, client, monkeypatch):
    lanes = [lane_in(p) for p in (0, 2, 4, 7)]
    ids = []
    for lane in lanes * 2:
        ids.append(client.enqueue('p8', 'noop', lane=lane))
        time.sleep(0.003)  # entry ids of two streams tie within a millisecond
    evs = list(client.events('p8'))
    assert [e['job'] for e in evs] == ids  # one Redis, ms apart: merged by entry id = enqueue order
    burst = client.enqueue_many('p8', [{'kind': 'noop', 'lane': l} for l in lanes * 50])
    monkeypatch.setattr(lanework.ops, 'EVENTS_PAGE', 7)  # pages of 7: every stream read in several
    evs = list(client.events('p8'))
    assert len(evs) == 208
    assert sorted(e['job'] for e in evs) == sorted(ids + burst)
    eid = [(tuple(map(int, e['id'].split('#')[0].split('-'))), int(e['id'].partition('#')[2] or 0)) for e in evs]
    assert eid == sorted(eid)  # never out of (entry id, partition) order
    # follow from the start: the same merged order, page by page (held until
    # every partition's TIME, or its last id read, is past them).
    it = client.events('p8', follow=True)
    assert [e['id'] for e in itertools.islice(it, 208)] == [e['id'] for e in evs]
    it.close()
    assert [e['job'] for e in client.events('p8', since=evs[3]['id'])] == ids[4:] + [e['job'] for e in evs[8:]]
    seen = []
    it = client.events('p8', since=evs[-1]['id'], follow=True)
    later = []

    def follow():
        for ev in it:
            seen.append(ev['job'])
            if len(seen) == 4:
                return
    t = threading.Thread(target=follow, daemon=True)
    t.start()
    for l in reversed(lanes):
        later.append(client.enqueue('p8', 'noop', lane=l))
    t.join(20)
    assert sorted(seen) == sorted(later)


@pytest.mark.parametrize('kind', ['sync', 'async'])
def test_follow_yields_in_merged_order_across_partitions(env, kind):
    """As tests/integration/test_partition_outages.py's
    test_follow_prints_in_merged_order_across_partitions, for
    events(follow=True) of Client and AsyncClient (one ops.events): partition
    1 stands for a master whose clock is 3 s ahead -- its event's id is 3 s
    past Redis's TIME (explicit XADD id). Appended first, the follower's
    next read sees it; partition 0's event, appended after it with a lower
    id, must still come first: the merged (id, partition) order of
    events() without follow."""
    env.write_registry([env.tenant('t1'), env.tenant('p', partitions=2)])
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', '2')
    got, done = [], threading.Event()

    def follow_sync():
        with lanework.Client(env.redis.url, namespace=env.ns) as c:
            for ev in c.events('p', follow=True):
                got.append(ev)
                if len(got) == 2:
                    break
        done.set()

    def follow_async():
        async def go():
            async with lanework.AsyncClient(env.redis.url, namespace=env.ns) as ac:
                async for ev in ac.events('p', follow=True):
                    got.append(ev)
                    if len(got) == 2:
                        break
        asyncio.run(go())
        done.set()
    t = threading.Thread(target=follow_sync if kind == 'sync' else follow_async, daemon=True)
    t.start()
    time.sleep(0.8)  # its first reads found the streams empty
    sec, usec = env.redis.call('TIME')
    now_ms = int(sec) * 1000 + int(usec) // 1000
    ahead = '%d-0' % (now_ms + 3000)
    env.redis.call('XADD', 'lw:{p#1}:events', ahead, 'type', 'enqueued', 'job', 'later', 'ts', str(now_ms + 3000))
    time.sleep(0.8)  # a few polls: a follower that does not hold it yields it now
    early = env.redis.call('XADD', 'lw:{p}:events', '*', 'type', 'enqueued', 'job', 'earlier', 'ts', str(now_ms))
    done.wait(10)
    print('follower yielded: %s' % [(e['id'], e['job']) for e in got], flush=True)
    assert [e['job'] for e in got] == ['earlier', 'later']
    assert [e['id'] for e in got] == [early, ahead + '#1']
    # Resuming after the first one yields the other, as without follow.
    with lanework.Client(env.redis.url, namespace=env.ns) as c:
        assert [e['job'] for e in c.events('p', since=early)] == ['later']


def test_follow_asks_time_of_each_partitions_master():
    """events(follow) of a partitioned tenant, one round (ops._follow_merged,
    shared by Client and AsyncClient): each partition's TIME is sent just
    before its XRANGE, in one pipeline, routed by that partition's key --
    on a cluster the driver sends it to the master serving the partition
    (cluster.op_slot) -- and only events below the lowest TIME come out."""
    from lanework import cluster, ops
    keys = ['lw:{p}:events', 'lw:{p#1}:events', 'lw:{p#2}:events']
    gen = ops._follow_merged(keys, None)
    pipe = next(gen)
    assert isinstance(pipe, ops.Pipe)
    assert [i.args[0] for i in pipe.items] == ['TIME', 'XRANGE'] * 3
    for p, key in enumerate(keys):
        t, xr = pipe.items[2 * p], pipe.items[2 * p + 1]
        assert t.route == key and xr.args[1] == key
        assert cluster.op_slot(t) == cluster.op_slot(xr) == cluster.key_slot(key)
    f = {'type': 'enqueued', 'job': 'x'}
    # clocks at 100 ms, 105 ms, 98 ms: an event at 99 ms waits, one at 97 ms does not.
    got = gen.send([(0, 100000), [('99-0', f)], (0, 105000), [('97-0', f)], (0, 98000), []])
    assert isinstance(got, ops.Emit) and got.value['id'] == '97-0#1'
    wait = next(gen)
    assert wait.args[:5] == ('XREAD', 'COUNT', '1', 'BLOCK', '2')  # until the clocks pass 99 ms
    assert cluster.op_slot(ops.Cmd('TIME')) is None  # unrouted: any node (K = 1 never asks)


def test_cli_and_client_agree(p8_idle, client):
    """The CLI (C lw_crc16, lw_job_spec_place) and the client put jobs in
    the same partitions and find each other's."""
    lines = [{'tenant': 'p8', 'kind': 'noop', 'lane': 'cl-%d' % i} for i in range(24)]
    lines += [{'tenant': 'p8', 'kind': 'noop', 'unique': 'cu-%d' % i} for i in range(8)]
    lines += [{'tenant': 'p8', 'kind': 'noop', 'id': 'cid-%d' % i} for i in range(8)]
    cli_ids = p8_idle.enqueue_batch(lines)
    for line, jid in zip(lines, cli_ids):
        key = line.get('lane') or line.get('unique') or line.get('id')
        assert holders(p8_idle, jid) == [partition.partition_of(key, K)], line
        assert partition.partition_of(jid, K) == partition.partition_of(key, K)  # the CLI's generated ids too
        st = client.status('p8', jid)
        rc, out, err = p8_idle.cli('status', '--tenant', 'p8', jid)
        assert rc == 0 and json.loads(out) == st
    mine = client.enqueue_many('p8', [{'kind': 'noop', 'lane': 'cl-%d' % i} for i in range(24)])
    mine.append(client.enqueue('p8', 'noop', id=next('pid-%d' % i for i in range(1000)
                                                     if where('pid-%d' % i) != where('cl-1')), lane='cl-1'))
    for i, jid in enumerate(mine):
        rc, out, err = p8_idle.cli('status', '--tenant', 'p8', jid)
        assert rc == 0, err
        assert json.loads(out) == client.status('p8', jid)
        assert holders(p8_idle, jid) == holders(p8_idle, cli_ids[1 if i == 24 else i])  # same lane, same place
    rc, out, err = p8_idle.cli('cancel', '--tenant', 'p8', mine[3])
    assert rc == 0, err
    assert client.status('p8', mine[3])['status'] == 'cancelled'


def test_async_client_in_partitions(p8_idle, run):
    """AsyncClient runs the same operations (ops.py) on redis.asyncio: its
    pipelined lookups and merged events too."""
    lane = lane_in(4)
    jid = next('aj-%d' % i for i in range(1000) if where('aj-%d' % i) not in (4, 0))

    async def go():
        async with lanework.AsyncClient(p8_idle.redis.url, namespace=p8_idle.ns) as ac:
            a = await ac.enqueue('p8', 'noop', lane=lane, id=jid)
            b = await ac.enqueue_many('p8', [{'kind': 'noop', 'lane': lane_in(p)} for p in range(K)])
            st = await ac.status('p8', jid)
            with pytest.raises(lanework.WaitTimeout):
                await ac.wait('p8', jid, timeout=0.2)
            c = await ac.cancel('p8', jid)
            evs = [e async for e in ac.events('p8')]
            return a, b, st, c, evs
    a, b, st, c, evs = run(go())
    assert a == jid and holders(p8_idle, jid) == [4] and st['lane'] == lane and c == 'cancelled'
    assert [holders(p8_idle, j) for j in b] == [[p] for p in range(K)]
    assert sorted(e['job'] for e in evs) == sorted([jid, jid] + list(b))  # queued + cancelled


def test_a_reader_with_a_stale_count_finds_jobs(env):
    """Review (MED): a client that read K=1 and only reads afterwards (a
    status API, a waiter) looked in partition 0 alone once the tenant was
    partitioned: status() of a job in partition >= 1 said "no such job". A
    miss with K=1 cached reads the count again (it only ever goes 1 -> K)."""
    c = lanework.Client(env.redis.url, namespace=env.ns)
    try:
        with pytest.raises(lanework.NoSuchJob):
            c.status('p8', 'nothing-yet')  # reads and caches K = 1
        env.redis.call('HSET', 'lw:{p8}:settings', 'partitions', str(K))
        other = lanework.Client(env.redis.url, namespace=env.ns)
        jid = other.enqueue('p8', 'noop', lane=lane_in(5), delay=600)
        other.close()
        assert holders(env, jid) == [5]
        assert c.status('p8', jid)['id'] == jid
        assert c.cancel('p8', jid) in ('cancelled', 'cancel requested')
    finally:
        c.close()


# ---- Ids and unique keys from before the tenant was partitioned ----------------
# (tests/integration/test_partition_legacy.py; known.lua). When the count goes
# from 1 to K, the jobs that finished before stay in partition 0 until their
# retention ends, with their unique keys; an id or unique key routes by K now,
# often elsewhere. The client asks partition 0 first (settings legacy_until),
# so a reused id or unique key is answered with the old job, as before.

LK = 4


def key_not_in_0(stem):
    return next(x for x in ('%s%d' % (stem, i) for i in range(200)) if where(x, LK) != 0)


def partition_tenant(env, w):
    """Registry "partitions": LK for tenant p, applied by worker w (SIGHUP;
    the tenant is idle)."""
    import signal
    env.write_registry([env.tenant('p', partitions=LK)])
    w.signal(signal.SIGHUP)
    lwtest.wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == str(LK), timeout=5,
                      what='the count %d applied' % LK)


def stop(w):
    import signal
    w.signal(signal.SIGTERM)
    assert w.wait() == 0


def ended(env, ids, tenant='p'):
    def done():
        for jid in ids:
            st = [env.redis.call('HGET', prefix(p, tenant) + 'job:' + jid, 'status') for p in range(LK)]
            if not any(s in ('succeeded', 'failed', 'cancelled', 'expired') for s in st):
                return False
        return True
    lwtest.wait_until(done, timeout=30, what='jobs %s to end' % ids)


@pytest.mark.parametrize('fresh', [True, False], ids=['fresh_client', 'client_with_count_1'])
def test_reused_id_is_the_job_from_before(env, run, fresh):
    """fresh: a client that reads the count after the change; else the
    client that enqueued the first job, holding K = 1 until enqueue.lua
    refuses with LWPARTITIONS 4."""
    jid = key_not_in_0('old')
    assert where(jid, LK) == partition.partition_of(jid, LK) != 0
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    first_client = lanework.Client(env.redis.url, namespace=env.ns)
    assert first_client.enqueue('p', 'record', {}, id=jid).created
    ended(env, [jid])
    partition_tenant(env, w)
    c = lanework.Client(env.redis.url, namespace=env.ns) if fresh else first_client
    try:
        again = c.enqueue('p', 'record', {}, id=jid)
        assert again == jid and not again.created and again.why == 'exists succeeded'
        many = c.enqueue_many('p', [{'kind': 'record', 'id': jid}, {'kind': 'record', 'payload': {}}])
        assert many[0] == jid and not many[0].created and many[0].why == 'exists succeeded'
        assert many[1].created
    finally:
        c.close()
        if fresh:
            first_client.close()

    async def go():
        async with lanework.AsyncClient(env.redis.url, namespace=env.ns) as ac:
            one = await ac.enqueue('p', 'record', {}, id=jid)
            more = await ac.enqueue_many('p', [{'kind': 'record', 'id': jid}])
            return one, more[0]
    for got in run(go()):
        assert got == jid and not got.created and got.why == 'exists succeeded'
    ended(env, [many[1]])
    time.sleep(0.3)
    stop(w)
    assert holders(env, jid, 'p', LK) == [0]  # no second job in any partition
    assert len(env.runs().get(jid, [])) == 1
    assert env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is not None


def test_unique_key_held_from_before(env, run):
    key = key_not_in_0('u')
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    c = lanework.Client(env.redis.url, namespace=env.ns)
    try:
        first = c.enqueue('p', 'record', {}, unique=key, unique_for=600)
        assert first.created
        ended(env, [first])
        partition_tenant(env, w)
        again = c.enqueue('p', 'record', {}, unique=key)
        assert again == first and not again.created and again.why == 'held succeeded'
        many = c.enqueue_many('p', [{'kind': 'record', 'unique': key}] * 2 + [{'kind': 'record', 'id': key + '-x'}])
        assert many[:2] == [first, first] and not any(j.created for j in many[:2])
        assert all(j.why == 'held succeeded' for j in many[:2])
        assert many[2].created  # not known in partition 0: enqueued as usual
    finally:
        c.close()

    async def go():
        async with lanework.AsyncClient(env.redis.url, namespace=env.ns) as ac:
            return await ac.enqueue('p', 'record', {}, unique=key)
    got = run(go())
    assert got == first and not got.created and got.why == 'held succeeded'
    ended(env, [many[2]])
    time.sleep(0.3)
    stop(w)
    assert sorted(env.runs()) == sorted([first, many[2]]) and len(env.runs()[first]) == 1
    assert holders(env, first, 'p', LK) == [0]
    assert len(all_jobs(env, 'p')) == 2


def test_legacy_window_asked_in_one_round_until_it_passed(env, client, monkeypatch):
    """The jobs of a batch that need asking go to known.lua in one round
    trip (a call per CALL_JOBS, pipelined); once known.lua says the window
    has passed (open 0: it deleted legacy_until), the client enqueues
    without asking partition 0 again."""
    asked, pipes = [], []
    real, real_pipe = lanework.ops.Script, lanework.ops.Pipe

    class Counting(real):
        def __init__(self, name, *a, **kw):
            if name == 'known':
                asked.append(a[1])
            super().__init__(name, *a, **kw)

    class Pipes(real_pipe):
        def __init__(self, items, *a, **kw):
            pipes.append([getattr(i, 'name', None) for i in items])
            super().__init__(items, *a, **kw)
    monkeypatch.setattr(lanework.ops, 'Script', Counting)
    monkeypatch.setattr(lanework.ops, 'Pipe', Pipes)
    now = int(time.time() * 1000)
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', str(LK), 'legacy_until', str(now + 600000))
    ids = ['n%d' % i for i in range(2000) if where('n%d' % i, LK) != 0][:600]
    got = client.enqueue_many('p', [{'kind': 'noop', 'id': i} for i in ids] + [{'kind': 'noop'}])
    assert got[:600] == ids and all(j.created for j in got)
    assert len(asked) == 3 and pipes[0] == ['known'] * 3  # 600 jobs: 3 calls, one round trip
    assert client._counts.legacy('p')
    del asked[:]
    env.redis.call('HSET', 'lw:{p}:settings', 'legacy_until', str(now - 1000))
    client._counts.set('p', None)  # read again: a client started after the window passed
    a, b = key_not_in_0('gone'), key_not_in_0('gone2-')
    got = client.enqueue_many('p', [{'kind': 'noop', 'id': a}, {'kind': 'noop', 'lane': 'L0'}])
    assert got[0] == a and got[0].created and len(asked) == 1
    assert holders(env, a, 'p', LK) == [where(a, LK)]
    assert env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is None
    assert not client._counts.legacy('p')
    assert client.enqueue('p', 'noop', id=b).created and len(asked) == 1  # not asked again


# Tenant p3 of 3 partitions, its events added with explicit entry ids so
# that several partitions hold an entry of one id (1000-0 in all three,
# 1001-5 in 0 and 2, 1003-0 in 1 and 2): the merged (id, partition) order
# decides between them, and `since` must resume between them exactly.
P3_EVENTS = [(0, '1000-0'), (1, '1000-0'), (2, '1000-0'), (1, '1000-1'), (0, '1001-5'), (2, '1001-5'),
             (0, '1002-0'), (1, '1003-0'), (2, '1003-0'), (2, '1004-0'), (0, '1005-0')]


@pytest.fixture
def p3(env):
    env.write_registry([env.tenant('t1'), env.tenant('p3', partitions=3)])
    env.redis.call('HSET', 'lw:{p3}:settings', 'partitions', '3')
    for n, (p, eid) in enumerate(P3_EVENTS):
        env.redis.call('XADD', prefix(p, 'p3') + 'events', eid, 'type', 'enqueued', 'job', 'j%d' % n,
                       'kind', 'noop', 'lane', 'l%d' % p, 'attempt', '0')
    env.redis.call('XADD', 'lw:{t1}:events', '1000-0', 'type', 'enqueued', 'job', 'u0')
    return env


def cli_events(env, *args):
    rc, out, err = env.cli('events', *args)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_event_ids_are_the_clis(p3, client):
    """A partitioned tenant's events from the client are the dicts `lanework
    events` prints, ids too: ID#P for partition P >= 1, ID for 0."""
    cli = cli_events(p3, '--tenant', 'p3')
    assert [e['id'] for e in cli] == [eid + ('#%d' % p if p else '') for p, eid in P3_EVENTS]
    assert list(client.events('p3')) == cli
    it = client.events('p3', follow=True)
    assert list(itertools.islice(it, len(cli))) == cli
    it.close()
    assert [e['id'] for e in client.events('t1')] == ['1000-0']  # unpartitioned: plain


def test_async_client_event_ids_and_since_are_the_clis(p3, run):
    """AsyncClient runs the same ops.events: the CLI's ids, and its since."""
    cli = cli_events(p3, '--tenant', 'p3')

    async def go():
        async with lanework.AsyncClient(p3.redis.url, namespace=p3.ns) as ac:
            assert [e async for e in ac.events('p3')] == cli
            for i, ev in enumerate(cli[:-1]):
                assert [e async for e in ac.events('p3', since=ev['id'])] == cli[i + 1:], ev['id']
                got = []
                async for e in ac.events('p3', since=ev['id'], follow=True):
                    got.append(e)
                    if len(got) == len(cli) - i - 1:
                        break
                assert got == cli[i + 1:], ev['id']
            with pytest.raises(lanework.InvalidInput):
                [e async for e in ac.events('p3', since='1000-0#3')]
    run(go())


@pytest.mark.parametrize('page', [1000, 2])
def test_since_every_id_resumes_as_the_cli(p3, client, monkeypatch, page):
    """since = any id the client emitted resumes exactly after that event,
    as `lanework events --since` does: every partition after ID, those
    after P at ID too -- without follow and with (the merged follower),
    and in pages of 2 (a partition's first page is the inclusive one)."""
    monkeypatch.setattr(lanework.ops, 'EVENTS_PAGE', page)
    evs = list(client.events('p3'))
    assert len(evs) == len(P3_EVENTS)
    for i, ev in enumerate(evs):
        rest = evs[i + 1:]
        cli = cli_events(p3, '--tenant', 'p3', '--since', ev['id'])
        assert cli == rest, ev['id']
        assert list(client.events('p3', since=ev['id'])) == rest, ev['id']
        if rest:
            it = client.events('p3', since=ev['id'], follow=True)
            assert list(itertools.islice(it, len(rest))) == rest, ev['id']
            it.close()
    # A plain id on a partitioned tenant is ID of partition 0 (ID#0), as the CLI takes it.
    assert [e['id'] for e in client.events('p3', since='1001-5')] == \
        [e['id'] for e in cli_events(p3, '--tenant', 'p3', '--since', '1001-5')] == \
        ['1001-5#2', '1002-0', '1003-0#1', '1003-0#2', '1004-0#2', '1005-0']


@pytest.mark.parametrize('tenant,since', [('p3', 'x'), ('p3', '1000-0#0'), ('p3', '1000-0#01'), ('p3', '1000-0#64'),
                                          ('p3', '1000-0#1#2'), ('p3', '1-2-3'), ('p3', '18446744073709551616'),
                                          ('p3', '1000-0#3'), ('p3', '1000-0#9'), ('t1', '1000-0#1')])
def test_bad_since_is_invalid_input_as_the_cli(p3, client, tenant, since):
    """A since the CLI refuses (not an id, #P on an unpartitioned tenant, P
    >= K) is InvalidInput with the CLI's words, before anything is read."""
    rc, out, err = p3.cli('events', '--tenant', tenant, '--since', since)
    assert rc == 2 and out == ''
    with pytest.raises(lanework.InvalidInput) as e:
        list(client.events(tenant, since=since))
    assert '\n' not in str(e.value)
    assert str(e.value).split('since: ', 1)[1] == err.strip().split('--since: ', 1)[1]
    with pytest.raises(lanework.InvalidInput):
        next(iter(client.events(tenant, since=since, follow=True)))

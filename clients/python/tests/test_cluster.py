"""redis-cluster:// URLs against a real cluster (lwtest.ClusterSet: 3
masters, a replica each, made by redis-cli --cluster create), one for the
module, with a real lanework-worker on the same URL: tenants whose slots
are on different masters, a tenant of 6 partitions spread over them,
min_replicas confirmed per master, the CLI seeing the client's jobs, and
last a master killed under enqueue load."""
import asyncio
import json
import threading
import time

import pytest

import lwtest
import lanework
from lanework import cluster as lwcluster

TERMINAL = ('succeeded', 'failed', 'cancelled', 'expired')
K = 6


def prefix(tenant, p=0):
    return 'lw:{%s}:' % tenant if p == 0 else 'lw:{%s#%d}:' % (tenant, p)


class World:
    def __init__(self, env, cs):
        self.env, self.cs, self.url = env, cs, cs.url()
        # Three tenants whose slots are on three different masters.
        by_master, self.tenants = {}, []
        for i in range(200):
            t = 'c%d' % i
            m = cs.node_for_key(prefix(t) + 'x')
            if m.data_port not in by_master:
                by_master[m.data_port] = t
                self.tenants.append(t)
            if len(self.tenants) == 3:
                break
        assert len(self.tenants) == 3, 'no three tenants on three masters'
        tenants = [env.tenant(t) for t in self.tenants] + [env.tenant('p', partitions=K)]
        env.write_registry(tenants)
        self.worker = env.worker('--concurrency', '8', redis_url=self.url)
        home = cs.node_for_key(prefix('p') + 'x')
        lwtest.wait_until(lambda: home.call('HGET', prefix('p') + 'settings', 'partitions') == str(K),
                          timeout=15, what='the worker to publish the partition count on the cluster')

    def cli(self, *args):
        return self.env.cli(*(list(args) + ['--redis', self.url]), redis=False, timeout=60)

    def master_of(self, key):
        return self.cs.node_for_key(key)

    def statuses(self, c, tenant, ids, timeout=30):
        """Waits until every job of ids ended; {id: status}."""
        deadline = time.monotonic() + timeout
        out = {}
        while True:
            for j in ids:
                if out.get(j) not in TERMINAL:
                    out[j] = c.status(tenant, j)['status']
            if all(s in TERMINAL for s in out.values()) or time.monotonic() > deadline:
                return out
            time.sleep(0.05)


@pytest.fixture(scope='module')
def world():
    env = lwtest.Env('pycluster')
    env.redis.stop()
    ok = False
    try:
        cs = env.own(lwtest.ClusterSet(env.dir, masters=3, replicas=1))
        w = World(env, cs)
        yield w
        ok = True
    finally:
        if not ok:
            env.dump_logs()
        env.close(ok)


def event_order(eid):
    """The merged order's key of an event id (MS-SEQ, #P for partition P)."""
    entry, _, part = eid.partition('#')
    return tuple(map(int, entry.split('-'))), int(part or 0)


def test_url_forms():
    t = lanework.target.Target('rediss-cluster://u:pw@h1:7000,h2?ca=/x.pem&sni=n')
    assert t.seeds == [('h1', 7000), ('h2', 6379)] and t.tls['sni'] == 'n' and t.password == 'pw'
    for bad, why in (('redis-cluster://h:1/0', 'no /db'), ('redis-cluster://h:1?ca=x', 'rediss'),
                     ('redis-cluster://', 'no seed'), ('redis-cluster://h:99999', 'not host:port')):
        with pytest.raises(lanework.InvalidInput, match=why):
            lanework.Client(bad)


def test_tenants_on_every_master_run_and_the_cli_sees_them(world):
    with lanework.Client(world.url) as c:
        ids = {}
        for t in world.tenants:
            ids[t] = [c.enqueue(t, 'record', {'i': i}) for i in range(5)]
            ids[t] += c.enqueue_many(t, [{'kind': 'record', 'lane': 'l%d' % (i % 4)} for i in range(300)])
        masters = {world.master_of(prefix(t) + 'x').data_port for t in world.tenants}
        assert len(masters) == 3
        for t in world.tenants:
            assert c.wait(t, ids[t][0], timeout=20)['status'] == 'succeeded'
            st = world.statuses(c, t, ids[t])
            assert set(st.values()) == {'succeeded'}, (t, st)
            # The job is on its tenant's master, and the CLI finds it there.
            assert world.master_of(prefix(t) + 'x').call('EXISTS', prefix(t) + 'job:' + ids[t][0]) == 1
            rc, out, err = world.cli('status', '--tenant', t, ids[t][0])
            assert rc == 0 and json.loads(out)['status'] == 'succeeded', (rc, out, err)
            kinds = [e['type'] for e in c.events(t) if e.get('job') == ids[t][1]]
            assert 'job.queued' in kinds and 'job.succeeded' in kinds, kinds
        # cancel and retry, on one tenant per master.
        for t in world.tenants:
            jid = c.enqueue(t, 'record', delay=60)
            assert c.cancel(t, jid) == 'cancelled'
            with pytest.raises(lanework.JobFailed, match='already cancelled'):
                c.cancel(t, jid)
            assert c.retry(t, jid) == jid
            assert c.wait(t, jid, timeout=20)['status'] == 'succeeded'  # retried: run at once
        print('cluster: %d jobs of 3 tenants on masters %s, all succeeded'
              % (sum(len(v) for v in ids.values()), sorted(masters)))


def test_a_partitioned_tenant_over_the_masters(world):
    with lanework.Client(world.url) as c:
        jobs = [{'kind': 'record', 'lane': 'lane%d' % i, 'payload': i} for i in range(60)]
        ids = c.enqueue_many('p', jobs)
        parts = {lanework.partition.partition_of('lane%d' % i, K) for i in range(60)}
        masters = {world.master_of(prefix('p', q) + 'x').data_port for q in parts}
        assert len(parts) == K and len(masters) >= 2, (parts, masters)
        st = world.statuses(c, 'p', ids)
        assert set(st.values()) == {'succeeded'}, st
        # status, wait, cancel, retry find each job in its partition, on its master.
        assert c.wait('p', ids[7], timeout=10)['payload'] == 7
        late = [c.enqueue('p', 'record', lane='late%d' % i, delay=60) for i in range(6)]
        for jid in late:
            assert c.cancel('p', jid) == 'cancelled' and c.retry('p', jid) == jid
        rc, out, err = world.cli('status', '--tenant', 'p', ids[3])
        assert rc == 0 and json.loads(out)['status'] == 'succeeded', (rc, out, err)
        evs = [e for e in c.events('p') if e.get('job') in set(ids)]
        assert {e['job'] for e in evs if e['type'] == 'job.succeeded'} == set(ids)
        # events(follow): merged from every partition's stream, each read on its master.
        since = max((e['id'] for e in c.events('p')), key=event_order)
        got, done = [], threading.Event()

        def follow():
            with lanework.Client(world.url) as f:
                for ev in f.events('p', since=since, follow=True):
                    got.append(ev)
                    if len({e['job'] for e in got if e['type'] == 'job.succeeded'}) >= 6:
                        done.set()
                        return
        th = threading.Thread(target=follow, daemon=True)
        th.start()
        more = [c.enqueue('p', 'record', lane='f%d' % i) for i in range(6)]
        assert done.wait(15), got
        assert {e['job'] for e in got if e['type'] == 'job.succeeded'} == set(more)
        print('cluster: partitioned tenant, 60 jobs over %d partitions on %d masters succeeded; follow saw %d events'
              % (len(parts), len(masters), len(got)))


def test_ids_from_before_the_partitions_answered_on_partition_0s_master(world):
    """known.lua (test_partitions.test_reused_id_is_the_job_from_before) on a
    cluster: the id and the unique key route to a partition on another
    master than partition 0's, which the client asks first through its own
    routing. The jobs from before are cancelled ones (no worker serves the
    tenant); the count is set as settings.lua would, with its window."""
    lk = 4
    for n in range(200):
        t = 'lg%d' % n
        home = world.master_of(prefix(t) + 'x').data_port
        away = [p for p in range(1, lk) if world.master_of(prefix(t, p) + 'x').data_port != home]
        if away:
            break
    keys = [x for x in ('k%d' % i for i in range(2000)) if lanework.partition.partition_of(x, lk) in away]
    jid, ukey = keys[0], keys[1]
    with lanework.Client(world.url) as old:
        assert old.enqueue(t, 'record', id=jid, delay=600).created  # caches K = 1
        first = old.enqueue(t, 'record', unique=ukey, unique_for=600, delay=600)
        assert old.cancel(t, jid) == 'cancelled' and old.cancel(t, first) == 'cancelled'
        world.master_of(prefix(t) + 'x').call('HSET', prefix(t) + 'settings', 'partitions', str(lk),
                                             'legacy_until', str(int(time.time() * 1000) + 600000))
        with lanework.Client(world.url) as fresh:
            for c in (fresh, old):
                a = c.enqueue(t, 'record', id=jid)
                assert a == jid and not a.created and a.why == 'exists cancelled'
                b = c.enqueue(t, 'record', unique=ukey)
                assert b == first and not b.created and b.why == 'held cancelled'
                many = c.enqueue_many(t, [{'kind': 'record', 'id': jid}, {'kind': 'record', 'unique': ukey},
                                          {'kind': 'record', 'id': keys[2], 'delay': 600}])
                assert many[:2] == [jid, first] and not many[0].created and not many[1].created
            assert many[2] == keys[2]
    for p in range(1, lk):
        m = world.master_of(prefix(t, p) + 'x')
        assert m.call('EXISTS', prefix(t, p) + 'job:' + jid) == 0
        assert m.call('EXISTS', prefix(t, p) + 'unique:' + ukey) == 0
    p2 = lanework.partition.partition_of(keys[2], lk)
    assert world.master_of(prefix(t, p2) + 'x').call('EXISTS', prefix(t, p2) + 'job:' + keys[2]) == 1


def test_async_client_on_the_cluster(world, run):
    async def go():
        async with lanework.AsyncClient(world.url, min_replicas=1) as a:
            ids = await asyncio.gather(*(a.enqueue(t, 'record', i) for t in world.tenants + ['p']
                                         for i in range(20)))
            jid = ids[-1]
            done = await a.wait('p', jid, timeout=20)
            evs = [e async for e in a.events('p')]
            late = await a.enqueue(world.tenants[1], 'record', delay=60)
            cancelled, retried = await a.cancel(world.tenants[1], late), await a.retry(world.tenants[1], late)
            # follow over the 6 partitions (one XREAD per partition, on its master)
            since = max((e['id'] for e in evs), key=event_order)
            more = [await a.enqueue('p', 'record', lane='af%d' % i) for i in range(6)]
            seen = set()

            async def follow():
                async for e in a.events('p', since=since, follow=True):
                    if e['type'] == 'job.succeeded':
                        seen.add(e['job'])
                        if seen >= set(more):
                            return
            await asyncio.wait_for(follow(), 15)
            return ids, done, evs, cancelled, retried
    ids, done, evs, cancelled, retried = run(go())
    assert len(set(ids)) == 80 and done['status'] == 'succeeded'
    assert any(e.get('job') == ids[-1] for e in evs)
    assert cancelled == 'cancelled' and retried


@pytest.mark.parametrize('kind', ['sync', 'async'])
def test_follow_in_merged_order_over_the_masters(world, kind):
    """test_partitions.test_follow_yields_in_merged_order_across_partitions
    with the partitions on different masters: a partition on another master
    than partition 0's gets an event 3 s ahead of its clock (explicit XADD
    id), then partition 0 a lower one; the follower, which asks each
    partition's master for TIME, yields them in merged order."""
    home = world.master_of(prefix('p') + 'events')
    q = next(q for q in range(1, K) if world.master_of(prefix('p', q) + 'events').data_port != home.data_port)
    there = world.master_of(prefix('p', q) + 'events')
    tag = 'mo-%s-' % kind
    with lanework.Client(world.url) as c:
        since = max((e['id'] for e in c.events('p')), key=event_order, default='0-0')
    got, done = [], threading.Event()

    def keep(ev):
        if str(ev.get('job', '')).startswith(tag):
            got.append(ev)
        return len(got) == 2

    def follow_sync():
        with lanework.Client(world.url) as f:
            for ev in f.events('p', since=since, follow=True):
                if keep(ev):
                    break
        done.set()

    def follow_async():
        async def go():
            async with lanework.AsyncClient(world.url) as f:
                async for ev in f.events('p', since=since, follow=True):
                    if keep(ev):
                        break
        asyncio.run(go())
        done.set()
    th = threading.Thread(target=follow_sync if kind == 'sync' else follow_async, daemon=True)
    th.start()
    time.sleep(0.8)
    sec, usec = there.call('TIME')
    now_ms = int(sec) * 1000 + int(usec) // 1000
    ahead = '%d-0' % (now_ms + 3000)
    there.call('XADD', prefix('p', q) + 'events', ahead, 'type', 'enqueued', 'job', tag + 'later', 'ts', str(now_ms))
    time.sleep(0.8)
    early = home.call('XADD', prefix('p') + 'events', '*', 'type', 'enqueued', 'job', tag + 'earlier', 'ts', str(now_ms))
    done.wait(15)
    print('cluster follow (partition 0 on :%d, %d on :%d): %s'
          % (home.data_port, q, there.data_port, [(e['id'], e['job']) for e in got]))
    assert [e['job'] for e in got] == [tag + 'earlier', tag + 'later']
    assert [e['id'] for e in got] == [early, '%s#%d' % (ahead, q)]  # as `lanework events` shows them


def _on_replica(rep, key):
    c = rep.client()
    try:
        c.call('READONLY')
        return c.call('EXISTS', key) == 1
    finally:
        c.close()


def _waits(node):
    return node.commandstats().get('wait', 0)


def test_min_replicas_confirmed_on_each_master(world):
    with lanework.Client(world.url, min_replicas=1) as c:
        for t in world.tenants:
            m = world.master_of(prefix(t) + 'x')
            before = _waits(m)
            jid = c.enqueue(t, 'record', delay=60)
            assert _waits(m) == before + 1  # on the master that ran it
            assert _on_replica(world.cs.replicas(of=m)[0], prefix(t) + 'job:' + jid)  # confirmed: it has it
            assert c.cancel(t, jid) == 'cancelled'
            assert _waits(m) == before + 2
        # A pipeline over the partitions: one WAIT per master that ran calls.
        masters = world.cs.masters()
        before = {m.data_port: _waits(m) for m in masters}
        ids = c.enqueue_many('p', [{'kind': 'record', 'lane': 'w%d' % i} for i in range(60)])
        after = {m.data_port: _waits(m) for m in masters}
        used = {world.master_of(prefix('p', lanework.partition.partition_of('w%d' % i, K)) + 'x').data_port
                for i in range(60)}
        assert {p for p in after if after[p] > before[p]} == used
        assert all(after[p] - before[p] == 1 for p in used), (before, after)
        assert len(ids) == 60


def test_an_unreachable_cluster_is_one_line_without_the_password():
    with lanework.Client('redis-cluster://u:s3cret@127.0.0.1:1,127.0.0.1:2') as c:
        t0 = time.monotonic()
        with pytest.raises(lanework.RedisUnavailable) as e:
            c.enqueue('t1', 'k')
        assert time.monotonic() - t0 < 3
    msg = str(e.value)
    assert '\n' not in msg and 's3cret' not in msg and 'redis-cluster://u:***@127.0.0.1:1' in msg, msg


def test_a_slot_moved_under_enqueue_load(world, monkeypatch):
    """A tenant's slot migrated to another master (MIGRATING/IMPORTING,
    MIGRATE, SETSLOT NODE) while a client enqueues: ASK/TRYAGAIN during the
    move and MOVED after it are followed; a client whose map is older than
    the move follows the MOVED; every accepted job runs."""
    cs, t = world.cs, world.tenants[1]
    slot = cs.slot_of(prefix(t) + 'x')
    src = world.master_of(prefix(t) + 'x')
    dst = next(m for m in cs.masters() if m is not src)
    stale = lanework.Client(world.url)
    first = stale.enqueue(t, 'record')  # its map: the slot on src
    seen = {}
    real = lwcluster.redirection

    def counted(e):
        kind = real(e)
        if kind:
            seen[kind] = seen.get(kind, 0) + 1
        return kind
    monkeypatch.setattr(lwcluster, 'redirection', counted)
    accepted, errors, stop = [], [], threading.Event()

    def load():
        with lanework.Client(world.url) as c:
            while not stop.is_set():
                try:
                    accepted.append(c.enqueue(t, 'record'))
                except lanework.RedisUnavailable as e:
                    errors.append(str(e))
    waited = {}

    def waiter(jid):  # blocked in XREAD on src while the slot moves
        with lanework.Client(world.url) as w:
            waited['job'] = w.wait(t, jid, timeout=20)
    th = threading.Thread(target=load, daemon=True)
    th.start()
    late = stale.enqueue(t, 'record', delay=1.0)
    wt = threading.Thread(target=waiter, args=(late,), daemon=True)
    wt.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    _, keys = cs.migrate_slot(slot, dst, batch=20)
    took = time.monotonic() - t0
    time.sleep(0.3)
    stop.set()
    th.join(10)
    assert world.master_of(prefix(t) + 'x') is dst
    wt.join(20)
    assert waited.get('job', {}).get('status') == 'succeeded', waited  # wait followed the slot
    during = dict(seen)
    moved = stale.enqueue(t, 'record')  # MOVED, followed
    assert seen.get('MOVED', 0) > during.get('MOVED', 0)
    assert dst.call('EXISTS', prefix(t) + 'job:' + moved) == 1
    assert stale.status(t, first)['id'] == first
    with lanework.Client(world.url) as c:
        st = world.statuses(c, t, accepted + [first, moved])
    stale.close()
    bad = [j for j, s_ in st.items() if s_ != 'succeeded']
    print('cluster: slot %d of %s (%d keys) moved %d -> %d in %.2f s under load: accepted %d, errors %d, '
          'not run %d; redirections followed meanwhile %s' % (slot, t, keys, src.data_port, dst.data_port, took,
                                                             len(accepted), len(errors), len(bad), during))
    assert not bad and not errors, (bad[:5], errors[:3])


def test_a_master_killed_under_enqueue_load(world):
    """Last: the cluster is left with a master fewer. Every enqueue returns
    an id (then the job runs: none lost) or raises RedisUnavailable."""
    cs, tenants = world.cs, world.tenants
    victim = world.master_of(prefix(tenants[0]) + 'x')
    accepted, errors, stop = [], [], threading.Event()
    lock = threading.Lock()

    def load(t):
        with lanework.Client(world.url, min_replicas=1) as c:
            while not stop.is_set():
                try:
                    jid = c.enqueue(t, 'record')
                    with lock:
                        accepted.append((t, jid))
                except lanework.RedisUnavailable as e:
                    with lock:
                        errors.append(str(e))
                    time.sleep(0.02)
    def aload(t):  # AsyncClient too, its concurrent enqueues sharing calls
        async def one(a):
            while not stop.is_set():
                try:
                    jid = await a.enqueue(t, 'record')
                    with lock:
                        accepted.append((t, jid))
                except lanework.RedisUnavailable as e:
                    with lock:
                        errors.append(str(e))
                    await asyncio.sleep(0.02)

        async def go():
            async with lanework.AsyncClient(world.url, min_replicas=1) as a:
                await asyncio.gather(*(one(a) for _ in range(4)))
        asyncio.run(go())
    threads = [threading.Thread(target=load, args=(t,), daemon=True) for t in tenants + ['p']]
    threads += [threading.Thread(target=aload, args=(t,), daemon=True) for t in (tenants[0], 'p')]
    for th in threads:
        th.start()
    time.sleep(0.7)
    before = len(accepted)
    old = cs.kill_master(victim)
    t0 = time.monotonic()
    new = cs.wait_failover(old, timeout=20)
    took = time.monotonic() - t0
    time.sleep(1.0)
    stop.set()
    for th in threads:
        th.join(10)
    assert not any(th.is_alive() for th in threads)
    after_kill = [a for a in accepted[before:] if a[0] == tenants[0]]
    with lanework.Client(world.url) as c:
        lost = []
        for t in tenants + ['p']:
            ids = [j for tt, j in accepted if tt == t]
            st = world.statuses(c, t, ids, timeout=30) if ids else {}
            lost += [j for j in ids if st.get(j) != 'succeeded']
    kinds = {}
    for e in errors:
        k = 'unconfirmed (the new master has no replica yet)' if 'replicas confirmed' in e else e.rsplit(': ', 1)[-1][:60]
        kinds[k] = kinds.get(k, 0) + 1
    print('cluster: master %d killed under load, failed over to %d in %.1f s: accepted %d (%d on its tenant '
          'after the kill), lost %d, errors %d %s'
          % (old.data_port, new.data_port, took, len(accepted), len(after_kill), len(lost), len(errors), kinds))
    assert not lost, lost[:5]
    assert all(e.startswith('lanework:') and '\n' not in e for e in errors)
    assert accepted and before > 0


def test_rediss_cluster(tmp_path):
    """rediss-cluster://: TLS to every master (the CA checked, the
    certificate's name against the host the slot map names), the async
    client too; a wrong CA is RedisUnavailable saying why."""
    ca = lwtest.TlsCA(str(tmp_path))
    cs = lwtest.ClusterSet(str(tmp_path), masters=3, replicas=0, tls=ca)
    try:
        url = cs.url()
        assert url.startswith('rediss-cluster://') and 'ca=' in url
        with lanework.Client(url) as c:
            ids = {t: c.enqueue(t, 'k', {'t': t}) for t in ('a', 'b', 'c', 'd', 'e')}
            for t, jid in ids.items():
                assert c.status(t, jid)['payload'] == {'t': t}
                assert cs.node_for_key(prefix(t) + 'x').call('EXISTS', prefix(t) + 'job:' + jid) == 1
        assert len({cs.node_for_key(prefix(t) + 'x').data_port for t in ids}) >= 2

        async def go():
            async with lanework.AsyncClient(url) as a:
                return [await a.enqueue(t, 'k') for t in ids]
        assert len(asyncio.run(go())) == 5
        with lanework.Client(cs.url(ca=ca.other_ca_cert)) as c:
            with pytest.raises(lanework.RedisUnavailable, match="TLS: the server's certificate did not verify"):
                c.enqueue('a', 'k')
    finally:
        cs.close()

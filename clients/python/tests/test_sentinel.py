"""redis-sentinel:// URLs and min_replicas against real processes: a
master, a replica and three sentinels (lwtest.SentinelSet), a master
killed with kill -9 under load."""
import asyncio
import threading
import time

import pytest

import lwtest
import lanework


@pytest.fixture(scope='module')
def ss(tmp_path_factory):
    s = lwtest.SentinelSet(str(tmp_path_factory.mktemp('sentinel')), replicas=1)
    yield s
    s.close()


def _exists(node, tenant, jid):
    return node.call('EXISTS', 'lw:{%s}:job:%s' % (tenant, jid)) == 1


def test_enqueue_through_the_sentinels(ss):
    with lanework.Client(ss.url(), min_replicas=1) as c:
        jid = c.enqueue('t1', 'k', {'via': 'sentinel'})
        assert c.status('t1', jid)['payload'] == {'via': 'sentinel'}
        assert c.cancel('t1', jid) == 'cancelled'
        assert c.retry('t1', jid) == jid
        assert len(c.enqueue_many('t1', [{'kind': 'k'} for _ in range(300)])) == 300  # two script calls
    assert _exists(ss.master(), 't1', jid)
    # WAIT confirmed it: the replica holds it too.
    assert _exists(ss.replicas[0], 't1', jid)


def test_async_enqueue_through_the_sentinels(ss, run):
    async def go():
        async with lanework.AsyncClient(ss.url(), min_replicas=1) as c:
            ids = await asyncio.gather(*(c.enqueue('t1', 'k', i) for i in range(50)))  # shared calls
            return ids, (await c.status('t1', ids[0]))['payload']
    ids, first = run(go())
    assert first == 0 and all(_exists(ss.replicas[0], 't1', j) for j in ids)


def test_min_replicas_0_sends_no_wait_and_1_one_per_call(ss):
    m = ss.master()
    waits = lambda: m.commandstats().get('wait', 0)  # noqa: E731
    with lanework.Client(ss.url(), min_replicas=0) as c:
        before = waits()
        jid = c.enqueue('t1', 'k')
        c.cancel('t1', jid)
        c.enqueue_many('t1', [{'kind': 'k'}] * 300)
        assert waits() == before
    with lanework.Client(ss.url(), min_replicas=1) as c:
        c.status('t1', jid)  # read-only: no WAIT
        assert waits() == before
        c.retry('t1', jid)
        c.enqueue_many('t1', [{'kind': 'k'}] * 300)  # two script calls, one pipeline: one WAIT
        assert waits() == before + 2


def test_min_replicas_with_the_replica_stopped(ss, run):
    replica = ss.replicas[0]
    replica.kill9()
    try:
        with lanework.Client(ss.url(), min_replicas=1) as c:
            c.status  # noqa: B018 - the client is made; nothing sent yet
            t0 = time.monotonic()
            with pytest.raises(lanework.RedisUnavailable) as e:
                c.enqueue('t1', 'k')
            took = time.monotonic() - t0
            print('min_replicas=1, replica stopped: RedisUnavailable after %.2f s' % took)
            assert '0 of 1 replicas confirmed the change within 1000 ms' in str(e.value), str(e.value)
            assert 'may be lost in a failover' in str(e.value) and e.value.unconfirmed
            assert took < 2.5, took
            with pytest.raises(lanework.RedisUnavailable, match='0 of 1 replicas'):
                c.enqueue_many('t1', [{'kind': 'k'}, {'kind': 'k'}])
            # Without min_replicas the same enqueue is done at once.
            assert lanework.Client(ss.url()).enqueue('t1', 'k')

        async def waiters():
            async with lanework.AsyncClient(ss.url(), min_replicas=1) as ac:
                return await asyncio.gather(*(ac.enqueue('t1', 'k', i) for i in range(20)), return_exceptions=True)
        t0 = time.monotonic()
        got = run(waiters())
        # Every waiter of the shared calls gets the exception, none an id.
        assert all(isinstance(g, lanework.RedisUnavailable) and '0 of 1 replicas' in str(g) for g in got), got
        assert time.monotonic() - t0 < 5
    finally:
        ss.rejoin(replica)


def test_failover_under_load_loses_no_accepted_job(tmp_path):
    """kill -9 of the master while a thread enqueues with min_replicas=1:
    every enqueue that returned an id is on the promoted replica."""
    ss = lwtest.SentinelSet(str(tmp_path), replicas=1)
    try:
        c = lanework.Client(ss.url(), min_replicas=1)
        accepted, errors, stop = [], [], threading.Event()

        def load():
            while not stop.is_set():
                try:
                    accepted.append(c.enqueue('t1', 'k', len(accepted)))
                except lanework.RedisUnavailable as e:
                    errors.append(str(e))
                    time.sleep(0.02)

        th = threading.Thread(target=load, daemon=True)
        th.start()
        lwtest.wait_until(lambda: len(accepted) >= 50, timeout=10, what='enqueues before the kill')
        old = ss.kill_master()
        before = len(accepted)
        new = ss.wait_failover(timeout=20)
        ss.rejoin(old)  # a replica again, so WAIT 1 can be met on the new master
        lwtest.wait_until(lambda: len(accepted) >= before + 50, timeout=15, what='enqueues on the new master')
        stop.set()
        th.join(10)
        assert not th.is_alive()
        lost = [j for j in accepted if not _exists(new, 't1', j)]
        print('failover: accepted %d / lost %d / errors %d' % (len(accepted), len(lost), len(errors)))
        print(sorted(set(e.split(': ', 2)[-1][:90] for e in errors)))
        assert errors, 'no enqueue failed while the master was down'
        assert not lost, lost[:5]
        c.close()
    finally:
        ss.close()


def test_tls_sentinels_with_passwords(tmp_path):
    """rediss-sentinel://: TLS to the sentinels and to the master, the
    master's password in the authority, the sentinels' in
    sentinel_password; neither in any error."""
    ca = lwtest.TlsCA(str(tmp_path))
    ss = lwtest.SentinelSet(str(tmp_path), replicas=1, tls=ca, password='data-pw-1', sentinel_password='sent-pw-2')
    try:
        with lanework.Client(ss.url(), min_replicas=1) as c:
            jid = c.enqueue('t1', 'k', {'via': 'tls sentinel'})
            assert c.status('t1', jid)['payload'] == {'via': 'tls sentinel'}
        assert _exists(ss.replicas[0], 't1', jid)

        async def aio():
            async with lanework.AsyncClient(ss.url(sni='localhost'), min_replicas=1) as c:
                return await c.enqueue('t1', 'k')
        assert _exists(ss.master(), 't1', asyncio.run(aio()))
        for url, says in ((ss.url(ca=ca.other_ca_cert), 'certificate did not verify'),
                          (ss.url(sentinel_password='wrong-pw-3'), 'WRONGPASS from the sentinels'),
                          (ss.url(auth=':wrong-pw-4@'), 'WRONGPASS')):
            with lanework.Client(url) as c:
                with pytest.raises(lanework.RedisUnavailable) as e:
                    c.enqueue('t1', 'k')
            msg = str(e.value)
            assert says in msg and not any(p in msg for p in ('data-pw-1', 'sent-pw-2', 'wrong-pw')), msg
    finally:
        ss.close()


def test_readonly_after_a_role_change_is_an_outage_then_reconnects(ss, tmp_path):
    """The master turned replica under a client's open connection (REPLICAOF
    without a failover's CLIENT KILL): the write is refused (READONLY, an
    outage), the connection dropped, and the next call asks the sentinels
    again. Last in the module: the master's data is replaced by the
    outsider's."""
    with lanework.Client(ss.url()) as c:
        c.enqueue('t1', 'k')  # connected to the master
        m = ss.master()
        outsider = lwtest.Redis(str(tmp_path), name='outsider', extra=['--port', str(lwtest.free_port()), '--bind', '127.0.0.1'])
        try:
            port = int(outsider.call('CONFIG', 'GET', 'port')[1])
            m.call('REPLICAOF', '127.0.0.1', port)
            with pytest.raises(lanework.RedisUnavailable) as e:
                c.enqueue('t1', 'k')
            assert e.value.outage and 'previous master is now a slave' in str(e.value), str(e.value)
            m.call('REPLICAOF', 'NO', 'ONE')
            jid = c.enqueue('t1', 'k')  # a new connection, to the master the sentinels name
            assert _exists(m, 't1', jid)
        finally:
            m.call('REPLICAOF', 'NO', 'ONE')
            outsider.stop()

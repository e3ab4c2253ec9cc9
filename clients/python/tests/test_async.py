"""AsyncClient: the same methods as Client, as coroutines, on redis.asyncio."""
import asyncio

import pytest

import lanework


def test_every_method(env, run):
    async def main():
        async with lanework.AsyncClient(env.redis.url) as c:
            jid = await c.enqueue('t1', 'noop', {'x': 1}, lane='L', attempts=2)
            assert jid.created
            st = await c.status('t1', jid)
            assert (st['status'], st['lane'], st['attempts'], st['payload']) == ('queued', 'L', 2, {'x': 1})
            ids = await c.enqueue_many('t1', [{'kind': 'noop', 'payload': i} for i in range(300)])
            assert len(ids) == 300
            assert (await c.enqueue('t1', 'noop', id=jid)).why == 'exists queued'
            with pytest.raises(lanework.WaitTimeout):
                await c.wait('t1', jid, timeout=0.2)
            waiter = asyncio.ensure_future(c.wait('t1', jid, timeout=5))
            await asyncio.sleep(0.1)
            assert await c.cancel('t1', jid) == 'cancelled'
            with pytest.raises(lanework.JobFailed) as e:
                await waiter
            assert e.value.job['status'] == 'cancelled'
            assert await c.retry('t1', jid) == jid
            evs = [e async for e in c.events('t1')]
            assert len(evs) == 303 and evs[-1]['job'] == jid
            follow = c.events('t1', since=evs[-1]['id'], follow=True).__aiter__()
            nxt = asyncio.ensure_future(follow.__anext__())
            await asyncio.sleep(0.1)
            async with lanework.AsyncClient(env.redis.url) as c2:
                await c2.enqueue('t1', 'noop', id='late')
            assert (await asyncio.wait_for(nxt, 5))['job'] == 'late'
            await follow.aclose()
    run(main())


def test_errors(env, run):
    async def main():
        c = lanework.AsyncClient(env.redis.url)
        with pytest.raises(lanework.InvalidInput):
            await c.enqueue('t1', 'bad kind')
        with pytest.raises(lanework.NoSuchJob):
            await c.status('t1', 'nope')
        env.redis.call('FUNCTION', 'FLUSH')
        assert (await c.enqueue('t1', 'noop')).created  # no function: loaded again
        env.redis.call('FUNCTION', 'FLUSH')
        assert len(await c.enqueue_many('t1', [{'kind': 'noop'}] * 300)) == 300
        await c.close()
        # A user without FUNCTION and FCALL: EVALSHA, NOSCRIPT loaded again.
        env.redis.call('ACL', 'SETUSER', 'nofn', 'on', '>nofnpw', '~*', '&*', '+@all', '-function', '-fcall')
        c = lanework.AsyncClient(env.redis.url.replace('unix://', 'unix://nofn:nofnpw@'))
        env.redis.call('SCRIPT', 'FLUSH')
        assert len(await c.enqueue_many('t1', [{'kind': 'noop'}] * 300)) == 300
        env.redis.call('SCRIPT', 'FLUSH')
        assert (await c.enqueue('t1', 'noop')).created
        await c.close()
        bad = lanework.AsyncClient('unix://' + env.dir + '/nothing.sock')
        with pytest.raises(lanework.RedisUnavailable):
            await bad.enqueue('t1', 'noop')
        env.redis.call('SET', 'other:{t1}:protocol', '0')
        mismatch = lanework.AsyncClient(env.redis.url, namespace='other')
        with pytest.raises(lanework.ProtocolMismatch, match='protocol 0'):
            await mismatch.status('t1', 'x')
    run(main())


def test_concurrent_enqueues_share_calls(env, run):
    async def main():
        c = lanework.AsyncClient(env.redis.url)
        await c.enqueue('t1', 'noop')  # the protocol checked: not counted
        env.redis.call('CONFIG', 'RESETSTAT')
        ids = await asyncio.gather(*[c.enqueue('t1', 'noop', {'i': i}, lane='L%d' % (i % 3)) for i in range(600)])
        assert len(set(ids)) == 600 and all(i.created for i in ids)
        calls = env.redis.commandstats().get('fcall', 0)
        assert 3 <= calls <= 12, calls  # one, then the waiters 256 at a time
        for i in (0, 1, 299, 599):  # each caller got its own job
            assert (await c.status('t1', ids[i]))['payload'] == {'i': i}
        for lane in range(3):  # and each lane keeps the callers' order
            assert env.redis.call('LRANGE', 'lw:{t1}:lane:L%d' % lane, '0', '-1') == ids[lane::3]
        # Bad input fails its own caller only, before anything is sent.
        got = await asyncio.gather(c.enqueue('t1', 'noop'), c.enqueue('t1', 'bad kind'), c.enqueue('t1', 'noop'),
                                   return_exceptions=True)
        assert isinstance(got[1], lanework.InvalidInput) and got[0].created and got[2].created
        # Waiters of one call share its fate: Redis gone, every one is told.
        env.redis.stop()
        got = await asyncio.gather(*[c.enqueue('t1', 'noop') for _ in range(5)], return_exceptions=True)
        assert all(isinstance(g, lanework.RedisUnavailable) for g in got), got
        assert not c._inflight and not any(c._waiting.values())  # nothing left behind
        await c.close()
    run(main())


# From the review of the coalescing: each fails without its fix.
def kinds(env):
    c = env.redis.client()
    try:
        keys = [k for k in c.call('KEYS', 'lw:{t1}:job:*')]
        return sorted(c.call('HGET', k, 'kind') for k in keys)
    finally:
        c.close()


def test_cancelled_waiter_is_not_enqueued(env, run):
    # A caller cancelled (asyncio.wait_for timeout, request aborted) while it
    # waits behind another call of its tenant -- nothing of it was sent yet --
    # must not have its job enqueued afterwards: it was told CancelledError
    # and may well enqueue again.
    async def main():
        c = lanework.AsyncClient(env.redis.url)
        await c.enqueue('t1', 'warm')
        env.redis.call('CLIENT', 'PAUSE', '500', 'WRITE')  # the next call stays in flight
        first = asyncio.ensure_future(c.enqueue('t1', 'first'))
        await asyncio.sleep(0.1)
        late = asyncio.ensure_future(c.enqueue('t1', 'cancelled'))
        await asyncio.sleep(0.05)
        late.cancel()
        try:
            await late
        except asyncio.CancelledError:
            pass
        await first
        await asyncio.sleep(0.3)
        await c.close()
    run(main())
    assert 'cancelled' not in kinds(env), kinds(env)


def test_a_failing_job_does_not_fail_the_callers_it_was_coalesced_with(env, run):
    # enqueue.lua fails half-way on one caller's job (a corrupt lane key):
    # Redis keeps the writes made before, so the other callers' jobs are in,
    # yet each of them is told RedisUnavailable (and would enqueue again).
    async def main():
        c = lanework.AsyncClient(env.redis.url)
        await c.enqueue('t1', 'warm')
        env.redis.call('SET', 'lw:{t1}:lane:broken', 'x')
        env.redis.call('CLIENT', 'PAUSE', '300', 'WRITE')
        first = asyncio.ensure_future(c.enqueue('t1', 'first'))
        await asyncio.sleep(0.05)
        got = await asyncio.gather(c.enqueue('t1', 'innocent', lane='good'),
                                   c.enqueue('t1', 'bad', lane='broken'), return_exceptions=True)
        await first
        await c.close()
        return got
    got = run(main())
    assert 'innocent' in kinds(env)
    assert not isinstance(got[0], Exception), 'told %r though its job is in Redis' % got[0]


def test_one_stuck_call_does_not_block_every_enqueue_of_the_tenant(env, run):
    # No read timeout (driver.connect_kwargs): a call on a connection that
    # went silent (half-open TCP, a partition) waits forever. Before the
    # coalescing only that caller waited; now every later enqueue() of the
    # tenant waits behind it, while enqueue_many() on a fresh connection
    # still gets through at once.
    async def main():
        frozen = []
        path = env.redis.url[len('unix://'):]

        async def pipe(src, dst, conn):
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    while conn['frozen']:
                        await asyncio.sleep(0.05)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass

        async def handle(cr, cw):
            ur, uw = await asyncio.open_unix_connection(path)
            conn = {'frozen': False}
            frozen.append(conn)
            await asyncio.gather(pipe(cr, uw, conn), pipe(ur, cw, conn))

        server = await asyncio.start_server(handle, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        c = lanework.AsyncClient('redis://127.0.0.1:%d' % port)
        await c.enqueue('t1', 'warm')
        for conn in frozen:
            conn['frozen'] = True  # the pooled connection goes silent
        stuck = asyncio.ensure_future(c.enqueue('t1', 'stuck'))
        await asyncio.sleep(0.2)
        many = await asyncio.wait_for(c.enqueue_many('t1', [{'kind': 'other'}]), 3)  # a new connection: fine
        try:
            one = await asyncio.wait_for(c.enqueue('t1', 'later'), 3)
        except asyncio.TimeoutError:
            one = None
        stuck.cancel()
        server.close()
        return many, one
    many, one = run(main())
    assert many and many[0].created
    assert one is not None, 'enqueue() of the tenant waited behind the stuck call (3 s timeout)'

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
        env.redis.call('SCRIPT', 'FLUSH')
        assert (await c.enqueue('t1', 'noop')).created  # NOSCRIPT: loaded again
        await c.close()
        bad = lanework.AsyncClient('unix://' + env.dir + '/nothing.sock')
        with pytest.raises(lanework.RedisUnavailable):
            await bad.enqueue('t1', 'noop')
        env.redis.call('SET', 'other:{t1}:protocol', '0')
        mismatch = lanework.AsyncClient(env.redis.url, namespace='other')
        with pytest.raises(lanework.ProtocolMismatch, match='protocol 0'):
            await mismatch.status('t1', 'x')
    run(main())

// redis-sentinel:// URLs and minReplicas against real processes: a master,
// a replica and three sentinels (lwtest.SentinelSet through fixture.py),
// the master killed with kill -9 under load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { Client, RedisUnavailable } from '../src/index.js';
import { startFixture } from './helpers.js';

let fx;
before(async () => { fx = await startFixture('sentinel'); });
after(async () => fx && fx.stop());

async function onNode(node, fn) {
  const raw = new Redis({ path: node.sock });
  try {
    return await fn(raw);
  } finally {
    raw.disconnect();
  }
}

const exists = (raw, id) => raw.exists(`lw:{t1}:job:${id}`);

test('enqueue, cancel, retry through the sentinels, confirmed by the replica', async () => {
  const c = new Client({ url: fx.info.url, minReplicas: 1 });
  try {
    const id = await c.enqueue('t1', 'k', { via: 'sentinel' });
    assert.deepEqual((await c.status('t1', id)).payload, { via: 'sentinel' });
    assert.equal(await c.cancel('t1', id), 'cancelled');
    assert.equal(await c.retry('t1', id), id);
    assert.equal((await c.enqueueMany('t1', Array.from({ length: 300 }, () => ({ kind: 'k' })))).length, 300);
    const master = await fx.call('master');
    assert.equal(await onNode(master, (r) => exists(r, id)), 1);
  } finally {
    await c.close();
  }
});

test('minReplicas 0 sends no WAIT; 1 sends one per state-changing call', async () => {
  const master = await fx.call('master');
  const waits = () => onNode(master, async (r) => Number((/cmdstat_wait:calls=(\d+)/.exec(await r.info('commandstats')) || [0, 0])[1]));
  const before = await waits();
  const c0 = new Client({ url: fx.info.url });
  const c1 = new Client({ url: fx.info.url, minReplicas: 1 });
  try {
    const id = await c0.enqueue('t1', 'k');
    await c0.cancel('t1', id);
    await c0.enqueueMany('t1', Array.from({ length: 300 }, () => ({ kind: 'k' })));
    assert.equal(await waits(), before);
    await c1.status('t1', id); // read-only: no WAIT
    assert.equal(await waits(), before);
    await c1.retry('t1', id);
    await c1.enqueueMany('t1', Array.from({ length: 300 }, () => ({ kind: 'k' }))); // two script calls, one pipeline
    assert.equal(await waits(), before + 2);
  } finally {
    await c0.close();
    await c1.close();
  }
});

test('minReplicas 1 with the replica stopped: RedisUnavailable within about 1 s', async () => {
  await fx.call('kill_replica');
  const c = new Client({ url: fx.info.url, minReplicas: 1 });
  const plain = new Client({ url: fx.info.url });
  try {
    await c.status('t1', 'x').catch(() => {}); // connected (and the protocol checked) before the clock starts
    const t0 = Date.now();
    const e = await c.enqueue('t1', 'k').catch((err) => err);
    const took = Date.now() - t0;
    console.log(`minReplicas=1, replica stopped: RedisUnavailable after ${took} ms`);
    assert.ok(e instanceof RedisUnavailable, String(e));
    assert.match(e.message, /0 of 1 replicas confirmed the change within 1000 ms: it may be lost in a failover/);
    assert.equal(e.unconfirmed, true);
    assert.ok(took < 2500, `took ${took} ms`);
    await assert.rejects(c.enqueueMany('t1', [{ kind: 'k' }, { kind: 'k' }]), /0 of 1 replicas/);
    assert.equal((await plain.enqueue('t1', 'k')).length, 24); // without minReplicas: done at once
  } finally {
    await c.close();
    await plain.close();
    await fx.call('rejoin');
  }
});

test('failover under load: every accepted enqueue is on the new master', async () => {
  const c = new Client({ url: fx.info.url, minReplicas: 1 });
  const accepted = [];
  const errors = [];
  let stop = false;
  const load = (async () => {
    while (!stop) {
      try {
        accepted.push(await c.enqueue('t1', 'k', accepted.length));
      } catch (e) {
        if (!(e instanceof RedisUnavailable)) throw e;
        errors.push(e.message);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  const until = async (pred, ms, what) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await until(() => accepted.length >= 50, 10000, 'enqueues before the kill');
    await fx.call('kill_master');
    const newMaster = await fx.call('wait_failover', 20);
    await fx.call('rejoin'); // a replica again, so WAIT 1 can be met on the new master
    const before = accepted.length;
    await until(() => accepted.length >= before + 50, 15000, 'enqueues on the new master').catch((e) => { console.log([...new Set(errors)].slice(-5), accepted.length, before); throw e; });
    stop = true;
    await load;
    const lost = [];
    await onNode(newMaster, async (r) => {
      for (const id of accepted) if (!(await exists(r, id))) lost.push(id);
    });
    console.log(`failover: accepted ${accepted.length} / lost ${lost.length} / errors ${errors.length}`);
    console.log([...new Set(errors.map((m) => m.split(': ').slice(2).join(': ').slice(0, 90)))]);
    assert.ok(errors.length > 0, 'no enqueue failed while the master was down');
    assert.deepEqual(lost, []);
  } finally {
    stop = true;
    await load.catch(() => {});
    await c.close();
  }
});

test('READONLY (the master made a replica under an open connection): an outage, then a new connection', async () => {
  const c = new Client({ url: fx.info.url });
  try {
    await c.enqueue('t1', 'k'); // connected to the master
    let reconnects = 0;
    c.redis.on('reconnecting', () => reconnects++);
    await fx.call('demote_master');
    let e;
    try {
      e = await c.enqueue('t1', 'k').catch((err) => err);
    } finally {
      await fx.call('restore_master');
    }
    assert.ok(e instanceof RedisUnavailable && e.outage, String(e));
    assert.match(e.message, /READONLY/);
    const id = await c.enqueue('t1', 'k'); // on the master the sentinels name
    assert.ok(reconnects >= 1, 'no reconnection after READONLY');
    assert.equal(await onNode(await fx.call('master'), (r) => exists(r, id)), 1);
  } finally {
    await c.close();
  }
});

test('rediss-sentinel://: TLS to sentinels and master, both passwords, none in any error', async () => {
  const tfx = await startFixture('tls-sentinel');
  try {
    const { info } = tfx;
    const c = new Client({ url: info.sni_url, minReplicas: 1 });
    try {
      const id = await c.enqueue('t1', 'k', { via: 'tls sentinel' });
      assert.deepEqual((await c.status('t1', id)).payload, { via: 'tls sentinel' });
    } finally {
      await c.close();
    }
    for (const [url, says] of [[info.other_ca_url, /certificate did not verify/], [info.bad_sentinel_pw_url, /WRONGPASS from the sentinels/], [info.bad_pw_url, /WRONGPASS/]]) {
      const bad = new Client({ url });
      try {
        const e = await bad.enqueue('t1', 'k').catch((err) => err);
        assert.ok(e instanceof RedisUnavailable, String(e));
        assert.match(e.message, says);
        assert.ok(!/data-pw-1|sent-pw-2|wrong-pw/.test(e.message), e.message);
      } finally {
        await bad.close();
      }
    }
  } finally {
    await tfx.stop();
  }
});

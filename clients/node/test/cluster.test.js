// redis-cluster:// URLs against a real cluster (lwtest.ClusterSet through
// fixture.py: 3 masters with a replica each), one for the file, with a real
// lanework-worker on the same URL: tenants whose slots are on different
// masters, a tenant of 6 partitions spread over them, minReplicas confirmed
// per master, the CLI seeing the client's jobs, and last a master killed
// under enqueue load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client, InvalidInput, JobFailed, RedisUnavailable } from '../src/index.js';
import { partitionOf } from '../src/partition.js';
import { cli, startFixture, startWorker, waitUntil } from './helpers.js';

const K = 6;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'expired']);
const prefix = (t, p = 0) => (p ? `lw:{${t}#${p}}:` : `lw:{${t}}:`);
// The merged (entry id, partition) order of event ids (MS-SEQ, #P for partition P).
const eventOrder = (a, b) => {
  const key = (id) => [...id.split('#')[0].split('-').map(Number), Number(id.split('#')[1] || 0)];
  const [x, y] = [key(a), key(b)];
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
};

let fx, worker, dir, url;
const tenants = [];

async function onNode(node, fn, readonly = false) {
  const raw = new Redis({ path: node.sock });
  try {
    if (readonly) await raw.call('READONLY');
    return await fn(raw);
  } finally {
    raw.disconnect();
  }
}
const waits = (node) => onNode(node, async (r) => Number((/cmdstat_wait:calls=(\d+)/.exec(await r.info('commandstats')) || [0, 0])[1]));

before(async () => {
  fx = await startFixture('cluster');
  url = fx.info.url;
  const seen = new Set();
  for (let i = 0; tenants.length < 3 && i < 200; i++) {
    const t = `c${i}`;
    const m = await fx.call('node_for_key', `${prefix(t)}x`);
    if (!seen.has(m.port)) {
      seen.add(m.port);
      tenants.push(t);
    }
  }
  assert.equal(tenants.length, 3, 'no three tenants on three masters');
  dir = mkdtempSync(join(tmpdir(), 'lw-node-cluster-'));
  worker = startWorker({ dir, url }, [...tenants.map((t) => ({ tenant: t })), { tenant: 'p', partitions: K }], '--concurrency', '8');
  const home = await fx.call('node_for_key', `${prefix('p')}x`);
  await waitUntil(async () => (await onNode(home, (r) => r.hget(`${prefix('p')}settings`, 'partitions'))) === String(K),
    'the worker to publish the partition count on the cluster', 15000);
});

after(async () => {
  if (worker) await worker.stop();
  if (fx) await fx.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function statuses(c, tenant, ids, timeoutMs = 30000) {
  const out = new Map();
  const until = Date.now() + timeoutMs;
  for (;;) {
    for (const id of ids) if (!TERMINAL.has(out.get(id))) out.set(id, (await c.status(tenant, id)).status);
    if ([...out.values()].every((s) => TERMINAL.has(s)) || Date.now() > until) return out;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function collect(it) {
  const out = [];
  for await (const e of it) out.push(e);
  return out;
}

test('cluster URL forms', () => {
  for (const [bad, why] of [['redis-cluster://h:1/0', /no \/db/], ['redis-cluster://h:1?ca=x', /rediss/],
    ['redis-cluster://', /no seed/], ['redis-cluster://h:99999', /not host:port/]])
    assert.throws(() => new Client({ url: bad }), (e) => e instanceof InvalidInput && why.test(e.message));
});

test('tenants on every master: enqueued, run by the worker, seen by the CLI', async () => {
  const c = new Client({ url });
  try {
    const ids = {};
    for (const t of tenants) {
      ids[t] = [];
      for (let i = 0; i < 5; i++) ids[t].push(await c.enqueue(t, 'record', { i }));
      ids[t].push(...await c.enqueueMany(t, Array.from({ length: 300 }, (_, i) => ({ kind: 'record', lane: `l${i % 4}` }))));
    }
    const masters = new Set();
    for (const t of tenants) masters.add((await fx.call('node_for_key', `${prefix(t)}x`)).port);
    assert.equal(masters.size, 3);
    for (const t of tenants) {
      assert.equal((await c.wait(t, ids[t][0], { timeout: 20 })).status, 'succeeded');
      const st = await statuses(c, t, ids[t]);
      assert.deepEqual(new Set(st.values()), new Set(['succeeded']));
      const home = await fx.call('node_for_key', `${prefix(t)}x`);
      assert.equal(await onNode(home, (r) => r.exists(`${prefix(t)}job:${ids[t][0]}`)), 1);
      const r = cli({ url }, 'status', '--tenant', t, ids[t][0]);
      assert.equal(r.rc, 0, r.err);
      assert.equal(JSON.parse(r.out).status, 'succeeded');
      const kinds = (await collect(c.events(t))).filter((e) => e.job === ids[t][1]).map((e) => e.type);
      assert.ok(kinds.includes('job.queued') && kinds.includes('job.succeeded'), String(kinds));
      const late = await c.enqueue(t, 'record', null, { delay: 60 });
      assert.equal(await c.cancel(t, late), 'cancelled');
      await assert.rejects(c.cancel(t, late), (e) => e instanceof JobFailed && /already cancelled/.test(e.message));
      assert.equal(await c.retry(t, late), late);
      assert.equal((await c.wait(t, late, { timeout: 20 })).status, 'succeeded');
    }
    console.log(`cluster: ${Object.values(ids).reduce((n, v) => n + v.length, 0)} jobs of 3 tenants on masters ${[...masters].sort()}, all succeeded`);
  } finally {
    await c.close();
  }
});

test('a partitioned tenant over the masters: routed, run, found, followed', async () => {
  const c = new Client({ url });
  const f = new Client({ url });
  try {
    const ids = await c.enqueueMany('p', Array.from({ length: 60 }, (_, i) => ({ kind: 'record', lane: `lane${i}`, payload: i })));
    const parts = new Set(Array.from({ length: 60 }, (_, i) => partitionOf(`lane${i}`, K)));
    const masters = new Set();
    for (const q of parts) masters.add((await fx.call('node_for_key', `${prefix('p', q)}x`)).port);
    assert.ok(parts.size === K && masters.size >= 2, `${[...parts]} ${[...masters]}`);
    const st = await statuses(c, 'p', ids);
    assert.deepEqual(new Set(st.values()), new Set(['succeeded']));
    assert.equal((await c.wait('p', ids[7], { timeout: 10 })).payload, 7);
    for (let i = 0; i < 6; i++) {
      const late = await c.enqueue('p', 'record', null, { lane: `late${i}`, delay: 60 });
      assert.equal(await c.cancel('p', late), 'cancelled');
      assert.equal(await c.retry('p', late), late);
    }
    const r = cli({ url }, 'status', '--tenant', 'p', ids[3]);
    assert.equal(r.rc, 0, r.err);
    assert.equal(JSON.parse(r.out).status, 'succeeded');
    const all = await collect(c.events('p'));
    const ok = new Set(all.filter((e) => e.type === 'job.succeeded').map((e) => e.job));
    assert.ok(ids.every((id) => ok.has(id)));
    // follow: merged from every partition's stream, each read on its master.
    const since = all.map((e) => e.id).sort(eventOrder).pop();
    const got = [];
    const following = (async () => {
      for await (const e of f.events('p', { since, follow: true })) {
        got.push(e);
        if (new Set(got.filter((x) => x.type === 'job.succeeded').map((x) => x.job)).size >= 6) return;
      }
    })();
    const more = [];
    for (let i = 0; i < 6; i++) more.push(await c.enqueue('p', 'record', null, { lane: `f${i}` }));
    await Promise.race([following, new Promise((_, rej) => setTimeout(() => rej(new Error(`follow saw ${got.length} events`)), 15000))]);
    assert.deepEqual(new Set(got.filter((x) => x.type === 'job.succeeded').map((x) => x.job)), new Set(more));
    console.log(`cluster: partitioned tenant, 60 jobs over ${parts.size} partitions on ${masters.size} masters succeeded; follow saw ${got.length} events`);
  } finally {
    await c.close();
    await f.close();
  }
});

// partitions.test.js "follow yields in merged (id, partition) order" with
// the partitions on different masters: a partition on another master than
// partition 0's gets an event 3 s ahead of its clock (explicit XADD id),
// then partition 0 a lower one; the follower, which asks each partition's
// master for TIME, yields them in merged order.
test('follow over the masters: merged (id, partition) order', async () => {
  const home = await fx.call('node_for_key', `${prefix('p')}events`);
  let q = 1;
  while ((await fx.call('node_for_key', `${prefix('p', q)}events`)).port === home.port) q++;
  assert.ok(q < K, 'a partition on another master');
  const there = await fx.call('node_for_key', `${prefix('p', q)}events`);
  const f = new Client({ url });
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  try {
    const ids = (await collect(f.events('p'))).map((e) => e.id);
    const since = ids.length ? ids.sort(eventOrder).pop() : '0-0';
    const got = [];
    const following = (async () => {
      for await (const e of f.events('p', { since, follow: true })) {
        if (String(e.job || '').startsWith('mo-')) got.push(e);
        if (got.length === 2) return;
      }
    })();
    await pause(800);
    const [sec, usec] = await onNode(there, (r) => r.time());
    const nowMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const ahead = `${nowMs + 3000}-0`;
    await onNode(there, (r) => r.xadd(`${prefix('p', q)}events`, ahead, 'type', 'enqueued', 'job', 'mo-later', 'ts', String(nowMs)));
    await pause(800);
    const early = await onNode(home, (r) => r.xadd(`${prefix('p')}events`, '*', 'type', 'enqueued', 'job', 'mo-earlier', 'ts', String(nowMs)));
    await Promise.race([following, pause(15000)]);
    console.log(`cluster follow (partition 0 on :${home.port}, ${q} on :${there.port}):`, got.map((e) => [e.id, e.job]));
    assert.deepEqual(got.map((e) => e.job), ['mo-earlier', 'mo-later']);
    assert.deepEqual(got.map((e) => e.id), [early, `${ahead}#${q}`]);
  } finally {
    await f.close();
  }
});

// known.lua (partitions.test.js "...from before the tenant was partitioned")
// on a cluster: the id and the unique key route to a partition on another
// master than partition 0's, which the client asks first through its own
// routing. The jobs from before are cancelled ones (no worker serves the
// tenant); the count is set as settings.lua would, with its window.
test('ids and unique keys from before the partitions: answered on partition 0\'s master', async () => {
  const LK = 4;
  let t;
  let away = [];
  for (let n = 0; n < 200 && !away.length; n++) {
    t = `lg${n}`;
    const home = (await fx.call('node_for_key', `${prefix(t)}x`)).port;
    away = [];
    for (let p = 1; p < LK; p++) if ((await fx.call('node_for_key', `${prefix(t, p)}x`)).port !== home) away.push(p);
  }
  const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`).filter((x) => away.includes(partitionOf(x, LK)));
  const [id, ukey, other] = keys;
  const old = new Client({ url });
  const fresh = new Client({ url });
  try {
    assert.equal(await old.enqueue(t, 'record', null, { id, delay: 600 }), id); // caches K = 1
    const first = await old.enqueue(t, 'record', null, { unique: ukey, uniqueFor: 600, delay: 600 });
    assert.equal(await old.cancel(t, id), 'cancelled');
    assert.equal(await old.cancel(t, first), 'cancelled');
    const home = await fx.call('node_for_key', `${prefix(t)}x`);
    await onNode(home, (r) => r.hset(`${prefix(t)}settings`, 'partitions', String(LK), 'legacy_until', String(Date.now() + 600000)));
    for (const c of [fresh, old]) {
      assert.deepEqual(await c.enqueue(t, 'record', null, { id, details: true }), { id, created: false, why: 'exists cancelled' });
      assert.deepEqual(await c.enqueue(t, 'record', null, { unique: ukey, details: true }), { id: first, created: false, why: 'held cancelled' });
      const many = await c.enqueueMany(t, [{ kind: 'record', id }, { kind: 'record', unique: ukey }, { kind: 'record', id: other, delay: 600 }], { details: true });
      assert.deepEqual(many.slice(0, 2), [{ id, created: false, why: 'exists cancelled' }, { id: first, created: false, why: 'held cancelled' }]);
      assert.equal(many[2].id, other);
    }
    for (let p = 1; p < LK; p++) {
      const m = await fx.call('node_for_key', `${prefix(t, p)}x`);
      assert.equal(await onNode(m, (r) => r.exists(`${prefix(t, p)}job:${id}`, `${prefix(t, p)}unique:${ukey}`)), 0);
    }
    const p2 = partitionOf(other, LK);
    const m2 = await fx.call('node_for_key', `${prefix(t, p2)}x`);
    assert.equal(await onNode(m2, (r) => r.exists(`${prefix(t, p2)}job:${other}`)), 1);
  } finally {
    await old.close();
    await fresh.close();
  }
});

test('minReplicas 1: WAIT on the master that ran the call, the replica holds it', async () => {
  const c = new Client({ url, minReplicas: 1 });
  try {
    for (const t of tenants) {
      const m = await fx.call('node_for_key', `${prefix(t)}x`);
      const before = await waits(m);
      const id = await c.enqueue(t, 'record', null, { delay: 60 });
      assert.equal(await waits(m), before + 1);
      const [rep] = await fx.call('replicas_of', m.port);
      assert.equal(await onNode(rep, (r) => r.exists(`${prefix(t)}job:${id}`), true), 1);
      assert.equal(await c.cancel(t, id), 'cancelled');
      assert.equal(await waits(m), before + 2);
    }
    const masters = await fx.call('masters');
    const before = new Map();
    for (const m of masters) before.set(m.port, await waits(m));
    const ids = await c.enqueueMany('p', Array.from({ length: 60 }, (_, i) => ({ kind: 'record', lane: `w${i}` })));
    assert.equal(ids.length, 60);
    const used = new Set();
    for (let i = 0; i < 60; i++) used.add((await fx.call('node_for_key', `${prefix('p', partitionOf(`w${i}`, K))}x`)).port);
    for (const m of masters) assert.equal(await waits(m) - before.get(m.port), used.has(m.port) ? 1 : 0, `master ${m.port}`);
  } finally {
    await c.close();
  }
});

test('an unreachable cluster: RedisUnavailable, one line, no password', async () => {
  const c = new Client({ url: 'redis-cluster://u:s3cret@127.0.0.1:1,127.0.0.1:2' });
  try {
    const t0 = Date.now();
    const e = await c.enqueue('t1', 'k').catch((err) => err);
    assert.ok(e instanceof RedisUnavailable, String(e));
    assert.ok(Date.now() - t0 < 3000);
    assert.ok(!e.message.includes('\n') && !e.message.includes('s3cret') && e.message.includes('redis-cluster://u:***@127.0.0.1:1'), e.message);
  } finally {
    await c.close();
  }
});

test('a slot moved under enqueue load: ASK/TRYAGAIN and MOVED followed, every accepted job runs', async () => {
  const t = tenants[1];
  const src = await fx.call('node_for_key', `${prefix(t)}x`);
  const dst = (await fx.call('masters')).find((m) => m.port !== src.port);
  const stale = new Client({ url });
  const c = new Client({ url });
  try {
    const first = await stale.enqueue(t, 'record'); // its map: the slot on src
    const accepted = [];
    const errors = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        try {
          accepted.push(await c.enqueue(t, 'record'));
        } catch (e) {
          if (!(e instanceof RedisUnavailable)) throw e;
          errors.push(e.message);
        }
      }
    })();
    const late = await stale.enqueue(t, 'record', null, { delay: 1 });
    const waiter = new Client({ url });
    const waited = waiter.wait(t, late, { timeout: 20 }).finally(() => waiter.close()); // blocked on src while the slot moves
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const keys = await fx.call('migrate_slot', `${prefix(t)}x`, dst.port);
    const took = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await load;
    assert.equal((await fx.call('node_for_key', `${prefix(t)}x`)).port, dst.port);
    assert.equal((await waited).status, 'succeeded'); // wait followed the slot
    const moved = await stale.enqueue(t, 'record'); // MOVED, followed
    assert.equal(await onNode(dst, (r) => r.exists(`${prefix(t)}job:${moved}`)), 1);
    assert.equal((await stale.status(t, first)).id, first);
    const st = await statuses(c, t, [...accepted, first, moved]);
    const bad = [...st].filter(([, s]) => s !== 'succeeded');
    console.log(`cluster: the slot of ${t} (${keys} keys) moved ${src.port} -> ${dst.port} in ${took} ms under load: accepted ${accepted.length}, errors ${errors.length}, not run ${bad.length}`);
    assert.deepEqual(bad, []);
    assert.deepEqual(errors, []);
  } finally {
    await stale.close();
    await c.close();
  }
});

test('a master killed under enqueue load: every id returned runs, the rest is RedisUnavailable', async () => {
  const victim = await fx.call('node_for_key', `${prefix(tenants[0])}x`);
  const accepted = [];
  const errors = [];
  let stop = false;
  const clients = [];
  const load = async (t) => {
    const c = new Client({ url, minReplicas: 1 });
    clients.push(c);
    const one = async () => {
      while (!stop) {
        try {
          accepted.push([t, await c.enqueue(t, 'record')]);
        } catch (e) {
          if (!(e instanceof RedisUnavailable)) throw e;
          errors.push(e.message);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    await Promise.all([one(), one(), one()]); // concurrent calls on one client
  };
  const loads = [...tenants, 'p'].map(load);
  await new Promise((r) => setTimeout(r, 700));
  const beforeKill = accepted.length;
  const old = await fx.call('kill_master', victim.port);
  const t0 = Date.now();
  const neu = await fx.call('wait_failover', 20);
  const took = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  stop = true;
  await Promise.all(loads);
  await Promise.all(clients.map((c) => c.close()));
  const c = new Client({ url });
  const lost = [];
  try {
    for (const t of [...tenants, 'p']) {
      const ids = accepted.filter(([tt]) => tt === t).map(([, id]) => id);
      const st = await statuses(c, t, ids);
      lost.push(...ids.filter((id) => st.get(id) !== 'succeeded'));
    }
  } finally {
    await c.close();
  }
  const kinds = {};
  for (const m of errors) {
    const k = m.includes('replicas confirmed') ? 'unconfirmed (the new master has no replica yet)' : m.split(': ').pop().slice(0, 60);
    kinds[k] = (kinds[k] || 0) + 1;
  }
  const onVictim = accepted.slice(beforeKill).filter(([t]) => t === tenants[0]).length;
  console.log(`cluster: master ${old.port} killed under load, failed over to ${neu.port} in ${took.toFixed(1)} s: accepted ${accepted.length} (${onVictim} on its tenant after the kill), lost ${lost.length}, errors ${errors.length} ${JSON.stringify(kinds)}`);
  assert.deepEqual(lost, []);
  assert.ok(errors.every((m) => m.startsWith('lanework:') && !m.includes('\n')));
  assert.ok(beforeKill > 0);
});

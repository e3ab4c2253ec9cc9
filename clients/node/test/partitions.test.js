// Partitioned tenants (common/partition.h): the client routes a job where
// the C side does -- partition CRC16(lane, else unique, else id) % K, prefix
// lw:{T}: for 0 and lw:{T#p}: else -- finds jobs in any partition, merges
// the partitions' events, and re-routes when the count changed under it.
// Tenant p8 has 8 partitions, published by a real worker (registry
// "partitions": 8) or set on the empty tenant as settings.lua would.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client, InvalidInput, JobFailed, NoSuchJob } from '../src/index.js';
import { crc16, parseCount, partitionOf, partitionPrefix, refusedCount } from '../src/partition.js';
import { startRedis, startWorker, cli, cliInput, waitUntil } from './helpers.js';
import { script } from '../src/interface.js';

const K = 8;

// CRC16/XMODEM by table, written apart from the client's bit-by-bit one,
// so a broken client CRC shows.
const TABLE = Array.from({ length: 256 }, (_, i) => {
  let c = i << 8;
  for (let b = 0; b < 8; b++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
  return c & 0xffff;
});
function refCrc(s) {
  let crc = 0;
  for (const b of Buffer.from(s, 'utf8')) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff];
  return crc;
}
const where = (key) => refCrc(key) % K;
const prefix = (p) => (p ? `lw:{p8#${p}}:` : 'lw:{p8}:');
const keyIn = (p, tag) => {
  for (let i = 0; ; i++) if (where(`${tag}${i}`) === p) return `${tag}${i}`;
};
const keyNotIn = (avoid, tag) => {
  for (let i = 0; ; i++) if (!avoid.includes(where(`${tag}${i}`))) return `${tag}${i}`;
};

let redis, c, worker;
beforeEach(async () => {
  redis = await startRedis();
  c = new Client({ url: redis.url });
  worker = null;
});
afterEach(async () => {
  await c.close();
  if (worker) await worker.stop();
  await redis.stop();
});

async function holders(id) {
  const out = [];
  for (let p = 0; p < K; p++) if ((await redis.raw.exists(`${prefix(p)}job:${id}`)) === 1) out.push(p);
  return out;
}

async function allJobs() {
  return [...(await redis.raw.keys('lw:{p8}:job:*')), ...(await redis.raw.keys('lw:{p8#*}:job:*'))];
}

async function partitioned() {
  await redis.raw.hset('lw:{p8}:settings', 'partitions', String(K));
}

async function withWorker() {
  worker = startWorker(redis, [{ tenant: 'p8', partitions: K }], '--tenant', 'p8');
  await waitUntil(async () => (await redis.raw.hget('lw:{p8}:settings', 'partitions')) === String(K), 'the worker to publish partitions 8');
}

test('CRC16/XMODEM check value and partition helpers', () => {
  assert.equal(crc16('123456789'), 0x31c3);
  assert.equal(crc16(''), 0);
  for (const key of ['a', 'lane-1', 'u\u00e9nique', '0190f1a2b3c4d5e6f7a8b9c0', 'x'.repeat(200)]) {
    assert.equal(crc16(key), refCrc(key));
    assert.equal(partitionOf(key, K), refCrc(key) % K);
  }
  assert.equal(partitionOf('anything', 1), 0);
  assert.equal(partitionPrefix('lw', 'p8', 0), 'lw:{p8}:');
  assert.equal(partitionPrefix('lw', 'p8', 3), 'lw:{p8#3}:');
  assert.deepEqual([parseCount(null), parseCount('8'), parseCount('99'), parseCount('x')], [1, 8, 1, 1]);
  assert.equal(refusedCount(new Error('LWPARTITIONS 8 tenant keys under lw:{p8}: are in 8 partition(s)')), 8);
  assert.equal(refusedCount(new Error('OOM command not allowed')), null);
});

test('one lane: one partition, run in order by a worker', async () => {
  await withWorker();
  const lane = keyIn(5, 'L');
  const ids = await c.enqueueMany('p8', Array.from({ length: 12 }, () => ({ kind: 'record', lane, payload: { ms: 20 } })));
  for (const id of ids) {
    assert.deepEqual(await holders(id), [5]); // the lane's partition, generated ids included
    assert.equal(where(id), 5); // placed so that the id alone finds it at once
  }
  assert.deepEqual(await redis.raw.lrange(`${prefix(5)}lane:${lane}`, 0, -1), ids);
  await waitUntil(async () => {
    for (const id of ids) if ((await c.status('p8', id)).status !== 'succeeded') return false;
    return true;
  }, 'the lane to run', 30000);
  const recs = worker.records().filter((r) => r[3] === lane);
  assert.deepEqual(recs.filter((r) => r[0] === 'START').map((r) => r[2]), ids); // in order
  const order = recs.map((r) => `${r[0]} ${r[2]}`);
  assert.deepEqual(order, ids.flatMap((id) => [`START ${id}`, `END ${id}`])); // one at a time
});

test('lanes spread over partitions, each partition in input order', async () => {
  await partitioned();
  const lanes = Array.from({ length: 40 }, (_, i) => `lane-${i}`);
  const jobs = [];
  for (let n = 0; n < 3; n++) for (const lane of lanes) jobs.push({ kind: 'noop', lane, payload: { n } });
  const ids = await c.enqueueMany('p8', jobs);
  const used = new Set();
  for (let i = 0; i < jobs.length; i++) {
    assert.deepEqual(await holders(ids[i]), [where(jobs[i].lane)], jobs[i].lane);
    used.add(where(jobs[i].lane));
  }
  assert.ok(used.size >= 6);
  for (const lane of lanes)
    assert.deepEqual(await redis.raw.lrange(`${prefix(where(lane))}lane:${lane}`, 0, -1), ids.filter((_, i) => jobs[i].lane === lane));
  assert.equal((await allJobs()).length, jobs.length);
  const big = await c.enqueueMany('p8', Array.from({ length: 600 }, () => ({ kind: 'noop', lane: lanes[0] })));
  assert.deepEqual(await redis.raw.lrange(`${prefix(where(lanes[0]))}lane:${lanes[0]}`, 0, -1),
    [...ids.filter((_, i) => jobs[i].lane === lanes[0]), ...big]);
});

test('status, wait, cancel, retry find jobs in partitions >= 1', async () => {
  await withWorker();
  const lane = keyIn(3, 'L');
  const a = await c.enqueue('p8', 'echo', { x: 1 }, { lane });
  assert.deepEqual(await holders(a), [3]);
  const done = await c.wait('p8', a, { timeout: 20 });
  assert.deepEqual([done.status, done.result, done.tenant], ['succeeded', { x: 1 }, 'p8']);
  // An explicit id whose own partition is not its lane's: found by the others.
  const id = keyNotIn([3, 0], 'job-');
  assert.equal(await c.enqueue('p8', 'noop', null, { lane, id, delay: 600 }), id);
  assert.deepEqual(await holders(id), [3]);
  assert.equal((await c.status('p8', id)).status, 'scheduled');
  assert.equal(await c.cancel('p8', id), 'cancelled');
  await assert.rejects(c.cancel('p8', id), (e) => e instanceof JobFailed && /already cancelled/.test(e.message));
  assert.equal(await c.retry('p8', id), id);
  assert.equal((await c.wait('p8', id, { timeout: 20 })).status, 'succeeded');
  await assert.rejects(c.status('p8', 'no-such-job'), NoSuchJob);
  await assert.rejects(c.cancel('p8', 'no-such-job'), NoSuchJob);
});

test('an explicit id reused with its lane, a unique key without a lane: the existing job', async () => {
  await partitioned();
  const lane = keyIn(6, 'L');
  assert.deepEqual(await c.enqueue('p8', 'noop', null, { id: 'fixed-1', lane, details: true }), { id: 'fixed-1', created: true, why: '' });
  assert.deepEqual(await c.enqueue('p8', 'noop', null, { id: 'fixed-1', lane, details: true }), { id: 'fixed-1', created: false, why: 'exists queued' });
  assert.deepEqual(await holders('fixed-1'), [6]);
  const ukey = keyNotIn([0], 'u-');
  const u1 = await c.enqueue('p8', 'noop', null, { unique: ukey });
  assert.deepEqual(await c.enqueue('p8', 'noop', null, { unique: ukey, details: true }), { id: u1, created: false, why: 'held queued' });
  assert.deepEqual(await c.enqueueMany('p8', [{ kind: 'noop', unique: ukey }]), [u1]);
  assert.deepEqual(await holders(u1), [where(ukey)]);
  assert.equal(where(u1), where(ukey));
  assert.equal(await redis.raw.get(`${prefix(where(ukey))}unique:${ukey}`), u1);
  assert.equal((await allJobs()).length, 2);
});

for (const how of ['enqueue', 'enqueueMany']) {
  test(`a client that read K=1 is told LWPARTITIONS and routes again (${how})`, async () => {
    await assert.rejects(c.status('p8', 'nothing-yet'), NoSuchJob); // reads and caches K = 1
    await partitioned();
    let lanes = Array.from({ length: K }, (_, p) => keyIn(p, 'L'));
    let ids;
    if (how === 'enqueue') {
      lanes = [lanes[5]];
      ids = [await c.enqueue('p8', 'noop', null, { lane: lanes[0] })];
    } else {
      lanes = Array.from({ length: 40 }, () => lanes).flat(); // 320 jobs: two calls to partition 0 while K was 1
      ids = await c.enqueueMany('p8', lanes.map((lane) => ({ kind: 'noop', lane })));
    }
    for (let i = 0; i < ids.length; i++) {
      assert.deepEqual(await holders(ids[i]), [where(lanes[i])]);
      assert.equal(await redis.raw.hget(`${prefix(where(lanes[i]))}job:${ids[i]}`, 'lane'), lanes[i]);
    }
    assert.equal((await allJobs()).length, ids.length); // nothing lost
    assert.equal(new Set(ids).size, ids.length); // nothing twice
  });
}

test('a reader that read K=1 finds a job in partition >= 1 after the tenant was partitioned', async () => {
  await assert.rejects(c.status('p8', 'nothing-yet'), NoSuchJob); // reads and caches K = 1
  await partitioned();
  const lane = keyIn(5, 'L');
  const jid = `stale-${Date.now()}`;
  await redis.raw.hset(`${prefix(5)}job:${jid}`, 'id', jid, 'tenant', 'p8', 'kind', 'noop', 'queue', 'default',
    'lane', lane, 'status', 'scheduled', 'payload', 'null', 'attempt', '0', 'attempts', '1', 'timeout', '1000',
    'backoff', '0', 'enqueued', String(Date.now()));
  assert.equal((await c.status('p8', jid)).id, jid);
});

test('events of every partition, merged by entry id; follow', async () => {
  await partitioned();
  const lanes = [0, 2, 4, 7].map((p) => keyIn(p, 'L'));
  const ids = [];
  for (const lane of [...lanes, ...lanes]) {
    ids.push(await c.enqueue('p8', 'noop', null, { lane }));
    await new Promise((r) => setTimeout(r, 3)); // entry ids of two streams tie within a millisecond
  }
  const read = async (opts) => {
    const out = [];
    for await (const e of c.events('p8', opts)) out.push(e);
    return out;
  };
  let evs = await read();
  assert.deepEqual(evs.map((e) => e.job), ids); // one Redis, ms apart: merged by entry id = enqueue order
  const burst = await c.enqueueMany('p8', Array.from({ length: 50 }, () => lanes).flat().map((lane) => ({ kind: 'noop', lane })));
  evs = await read();
  assert.deepEqual(evs.map((e) => e.job).sort(), [...ids, ...burst].sort());
  const eid = evs.map((e) => [...e.id.split('#')[0].split('-').map(Number), Number(e.id.split('#')[1] || 0)]);
  const after = (x, y) => (x[0] - y[0] || x[1] - y[1] || x[2] - y[2]) > 0;
  assert.ok(eid.every((x, i) => i === 0 || after(x, eid[i - 1]))); // never out of (entry id, partition) order
  assert.deepEqual((await read({ since: evs[3].id })).map((e) => e.job), [...ids.slice(4), ...evs.slice(8).map((e) => e.job)]);
  // follow from the start: the same merged order (held until every
  // partition's TIME is past them).
  const from = [];
  for await (const e of c.events('p8', { follow: true })) if (from.push(e.id) === evs.length) break;
  assert.deepEqual(from, evs.map((e) => e.id));
  const later = [];
  const seen = [];
  const it = c.events('p8', { since: evs[evs.length - 1].id, follow: true });
  const following = (async () => {
    for await (const e of it) {
      seen.push(e.job);
      if (seen.length === 4) return;
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  for (const lane of [...lanes].reverse()) later.push(await c.enqueue('p8', 'noop', null, { lane }));
  await following;
  assert.deepEqual([...seen].sort(), [...later].sort());
});

// As tests/integration/test_partition_outages.py's
// test_follow_prints_in_merged_order_across_partitions: partition 1 stands
// for a master whose clock is 3 s ahead -- its event's id is 3 s past
// Redis's TIME (explicit XADD id). Appended first, the follower's next read
// sees it; partition 0's event, appended after it with a lower id, must
// still come first: the merged (id, partition) order of events() without
// follow.
test('follow yields in merged (id, partition) order across partitions', async () => {
  await redis.raw.hset('lw:{p}:settings', 'partitions', '2');
  const got = [];
  const following = (async () => {
    for await (const e of c.events('p', { follow: true })) {
      got.push(e);
      if (got.length === 2) return;
    }
  })();
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  await pause(800); // its first reads found the streams empty
  const [sec, usec] = await redis.raw.time();
  const nowMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const ahead = `${nowMs + 3000}-0`;
  await redis.raw.xadd('lw:{p#1}:events', ahead, 'type', 'enqueued', 'job', 'later', 'ts', String(nowMs + 3000));
  await pause(800); // a few polls: a follower that does not hold it yields it now
  const early = await redis.raw.xadd('lw:{p}:events', '*', 'type', 'enqueued', 'job', 'earlier', 'ts', String(nowMs));
  await Promise.race([following, pause(10000)]);
  console.log('follower yielded:', got.map((e) => [e.id, e.job]));
  assert.deepEqual(got.map((e) => e.job), ['earlier', 'later']);
  assert.deepEqual(got.map((e) => e.id), [early, `${ahead}#1`]);
  const after = [];
  for await (const e of c.events('p', { since: early })) after.push(e.job);
  assert.deepEqual(after, ['later']); // resumed after the first one
});

test('the CLI and the client put jobs in the same partitions and find each other\'s', async () => {
  await partitioned();
  const lines = [
    ...Array.from({ length: 24 }, (_, i) => ({ tenant: 'p8', kind: 'noop', lane: `cl-${i}` })),
    ...Array.from({ length: 8 }, (_, i) => ({ tenant: 'p8', kind: 'noop', unique: `cu-${i}` })),
    ...Array.from({ length: 8 }, (_, i) => ({ tenant: 'p8', kind: 'noop', id: `cid-${i}` })),
  ];
  const r = cliInput(redis, lines.map((l) => JSON.stringify(l) + '\n').join(''), 'enqueue', '--batch', '-');
  assert.equal(r.rc, 0, r.err);
  const cliIds = r.out.split(/\s+/).filter(Boolean);
  assert.equal(cliIds.length, lines.length);
  for (let i = 0; i < lines.length; i++) {
    const key = lines[i].lane || lines[i].unique || lines[i].id;
    assert.deepEqual(await holders(cliIds[i]), [partitionOf(key, K)], key);
    assert.equal(partitionOf(cliIds[i], K), partitionOf(key, K)); // the CLI's generated ids too
    const st = cli(redis, 'status', '--tenant', 'p8', cliIds[i]);
    assert.equal(st.rc, 0, st.err);
    assert.deepEqual(JSON.parse(st.out), await c.status('p8', cliIds[i]));
  }
  const mine = await c.enqueueMany('p8', Array.from({ length: 24 }, (_, i) => ({ kind: 'noop', lane: `cl-${i}` })));
  mine.push(await c.enqueue('p8', 'noop', null, { id: keyNotIn([where('cl-1')], 'pid-'), lane: 'cl-1' }));
  for (let i = 0; i < mine.length; i++) {
    const st = cli(redis, 'status', '--tenant', 'p8', mine[i]);
    assert.equal(st.rc, 0, st.err);
    assert.deepEqual(JSON.parse(st.out), await c.status('p8', mine[i]));
    assert.deepEqual(await holders(mine[i]), await holders(cliIds[i === 24 ? 1 : i])); // same lane, same place
  }
  assert.equal(cli(redis, 'cancel', '--tenant', 'p8', mine[3]).rc, 0);
  assert.equal((await c.status('p8', mine[3])).status, 'cancelled');
});

// ---- Ids and unique keys from before the tenant was partitioned -------------
// (tests/integration/test_partition_legacy.py; known.lua). When the count goes
// from 1 to K, the jobs that finished before stay in partition 0 until their
// retention ends, with their unique keys; an id or unique key routes by K now,
// often elsewhere. The client asks partition 0 first (settings legacy_until),
// so a reused id or unique key is answered with the old job, as before.
const LK = 4;
const lprefix = (p) => (p ? `lw:{p#${p}}:` : 'lw:{p}:');
const notIn0 = (stem) => {
  for (let i = 0; ; i++) if (refCrc(`${stem}${i}`) % LK !== 0) return `${stem}${i}`;
};
const TERMINAL = ['succeeded', 'failed', 'cancelled', 'expired'];

async function lholders(id) {
  const out = [];
  for (let p = 0; p < LK; p++) if ((await redis.raw.exists(`${lprefix(p)}job:${id}`)) === 1) out.push(p);
  return out;
}

async function ended(ids) {
  await waitUntil(async () => {
    for (const id of ids) {
      let done = false;
      for (let p = 0; p < LK; p++) if (TERMINAL.includes(await redis.raw.hget(`${lprefix(p)}job:${id}`, 'status'))) done = true;
      if (!done) return false;
    }
    return true;
  }, `jobs ${ids} to end`, 30000);
}

// Registry "partitions": LK for tenant p, applied (SIGHUP; the tenant is idle).
async function partitionTenant() {
  worker.reload([{ tenant: 'p', partitions: LK }]);
  await waitUntil(async () => (await redis.raw.hget('lw:{p}:settings', 'partitions')) === String(LK), `the count ${LK} applied`, 5000);
}

const runsOf = (id) => worker.records().filter((r) => r[0] === 'START' && r[2] === id).length;

test('an id reused from before the tenant was partitioned is the job from before', async () => {
  const id = notIn0('old');
  assert.notEqual(partitionOf(id, LK), 0);
  worker = startWorker(redis, [{ tenant: 'p' }], '--concurrency', '2');
  assert.deepEqual(await c.enqueue('p', 'record', {}, { id, details: true }), { id, created: true, why: '' }); // c caches K = 1
  await ended([id]);
  await partitionTenant();
  const old = { id, created: false, why: 'exists succeeded' };
  const fresh = new Client({ url: redis.url });
  const made = [];
  try {
    // fresh reads the count after the change; c holds K = 1 until enqueue.lua says LWPARTITIONS 4.
    for (const client of [fresh, c]) {
      assert.deepEqual(await client.enqueue('p', 'record', {}, { id, details: true }), old);
      assert.equal(await client.enqueue('p', 'record', {}, { id }), id);
      const many = await client.enqueueMany('p', [{ kind: 'record', id }, { kind: 'record', payload: {} }], { details: true });
      assert.deepEqual(many[0], old);
      assert.equal(many[1].created, true);
      made.push(many[1].id);
    }
  } finally {
    await fresh.close();
  }
  await ended(made);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await worker.shutdown(), 0);
  assert.deepEqual(await lholders(id), [0]); // no second job in any partition
  assert.equal(runsOf(id), 1);
  assert.notEqual(await redis.raw.hget('lw:{p}:settings', 'legacy_until'), null);
});

test('a unique key held from before the tenant was partitioned is the job from before', async () => {
  const key = notIn0('u');
  worker = startWorker(redis, [{ tenant: 'p' }], '--concurrency', '2');
  const first = await c.enqueue('p', 'record', {}, { unique: key, uniqueFor: 600 });
  await ended([first]);
  await partitionTenant();
  const held = { id: first, created: false, why: 'held succeeded' };
  const fresh = new Client({ url: redis.url });
  let other;
  try {
    for (const client of [fresh, c]) {
      assert.deepEqual(await client.enqueue('p', 'record', {}, { unique: key, details: true }), held);
      const many = await client.enqueueMany('p', [{ kind: 'record', unique: key }, { kind: 'record', unique: key }], { details: true });
      assert.deepEqual(many, [held, held]);
    }
    // Not known in partition 0: enqueued as usual.
    other = await fresh.enqueueMany('p', [{ kind: 'record', unique: key }, { kind: 'record', id: `${key}-x` }], { details: true });
    assert.deepEqual(other[0], held);
    assert.equal(other[1].created, true);
  } finally {
    await fresh.close();
  }
  await ended([other[1].id]);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await worker.shutdown(), 0);
  assert.equal(runsOf(first), 1);
  assert.deepEqual(worker.records().filter((r) => r[0] === 'START').map((r) => r[2]).sort(), [first, `${key}-x`].sort());
  assert.deepEqual(await lholders(first), [0]);
  const jobs = [...(await redis.raw.keys('lw:{p}:job:*')), ...(await redis.raw.keys('lw:{p#*}:job:*'))];
  assert.equal(jobs.length, 2);
});

test('the jobs of a batch that need asking: one round trip to known.lua; none once the window passed', async () => {
  const now = Date.now();
  await redis.raw.hset('lw:{p}:settings', 'partitions', String(LK), 'legacy_until', String(now + 600000));
  await c.enqueue('p', 'noop'); // the library loaded (a call sent again after FUNCTION LOAD would count twice)
  const known = script('known').function;
  const rounds = []; // per pipeline sent: the known.lua calls in it
  const real = c.redis.pipeline.bind(c.redis);
  c.redis.pipeline = (...a) => {
    const p = real(...a);
    const exec = p.exec.bind(p);
    p.exec = (...b) => {
      rounds.push(p._queue.filter((q) => String(q.args[0]) === known).length);
      return exec(...b);
    };
    return p;
  };
  const ids = Array.from({ length: 2000 }, (_, i) => `n${i}`).filter((x) => refCrc(x) % LK !== 0).slice(0, 600);
  const got = await c.enqueueMany('p', [...ids.map((id) => ({ kind: 'noop', id })), { kind: 'noop' }], { details: true });
  assert.deepEqual(got.slice(0, 600).map((j) => j.id), ids);
  assert.ok(got.every((j) => j.created));
  assert.deepEqual(rounds.filter((n) => n > 0), [3]); // 600 jobs: 3 calls, one pipeline
  assert.ok(c.partitionLegacy.has('p'));
  // A client that reads the count after the window passed: asked once, then never.
  await redis.raw.hset('lw:{p}:settings', 'legacy_until', String(now - 1000));
  c.partitionCounts.delete('p');
  rounds.length = 0;
  const a = notIn0('gone');
  assert.deepEqual(await c.enqueue('p', 'noop', null, { id: a, details: true }), { id: a, created: true, why: '' });
  assert.deepEqual(await lholders(a), [refCrc(a) % LK]);
  assert.equal(await redis.raw.hget('lw:{p}:settings', 'legacy_until'), null);
  assert.equal(c.partitionLegacy.has('p'), false);
  assert.equal(await c.enqueue('p', 'noop', null, { id: notIn0('gone2-') }), notIn0('gone2-'));
  assert.deepEqual(rounds.filter((n) => n > 0), [1]); // not asked again
});

// Tenant p3 of 3 partitions, its events added with explicit entry ids so
// that several partitions hold an entry of one id (1000-0 in all three,
// 1001-5 in 0 and 2, 1003-0 in 1 and 2): the merged (id, partition) order
// decides between them, and `since` must resume between them exactly.
const P3_EVENTS = [[0, '1000-0'], [1, '1000-0'], [2, '1000-0'], [1, '1000-1'], [0, '1001-5'], [2, '1001-5'],
  [0, '1002-0'], [1, '1003-0'], [2, '1003-0'], [2, '1004-0'], [0, '1005-0']];

async function p3() {
  await redis.raw.hset('lw:{p3}:settings', 'partitions', '3');
  for (const [n, [p, eid]] of P3_EVENTS.entries()) {
    await redis.raw.xadd(p ? `lw:{p3#${p}}:events` : 'lw:{p3}:events', eid, 'type', 'enqueued', 'job', `j${n}`,
      'kind', 'noop', 'lane', `l${p}`, 'attempt', '0');
  }
  await redis.raw.xadd('lw:{t1}:events', '1000-0', 'type', 'enqueued', 'job', 'u0');
}

function cliEvents(...args) {
  const r = cli(redis, 'events', ...args);
  assert.equal(r.rc, 0, r.err);
  return r.out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function take(it, n) {
  const out = [];
  if (n) for await (const e of it) if (out.push(e) === n) break;
  return out;
}

test('a partitioned tenant\'s event ids are the CLI\'s (ID#P for partition P >= 1)', async () => {
  await p3();
  const fromCli = cliEvents('--tenant', 'p3');
  assert.deepEqual(fromCli.map((e) => e.id), P3_EVENTS.map(([p, eid]) => (p ? `${eid}#${p}` : eid)));
  assert.deepEqual(await take(c.events('p3'), Infinity), fromCli);
  assert.deepEqual(await take(c.events('p3', { follow: true }), fromCli.length), fromCli);
  assert.deepEqual((await take(c.events('t1'), Infinity)).map((e) => e.id), ['1000-0']); // unpartitioned: plain
});

// since = any id the client emitted resumes exactly after that event, as
// `lanework events --since` does: every partition after ID, those after P
// at ID too -- without follow and with (#followMerged).
test('since = every emitted id resumes as the CLI\'s --since', async () => {
  await p3();
  const evs = await take(c.events('p3'), Infinity);
  assert.equal(evs.length, P3_EVENTS.length);
  for (const [i, ev] of evs.entries()) {
    const rest = evs.slice(i + 1);
    assert.deepEqual(cliEvents('--tenant', 'p3', '--since', ev.id), rest, ev.id);
    assert.deepEqual(await take(c.events('p3', { since: ev.id }), Infinity), rest, ev.id);
    assert.deepEqual(await take(c.events('p3', { since: ev.id, follow: true }), rest.length), rest, ev.id);
  }
  // A plain id on a partitioned tenant is ID of partition 0 (ID#0), as the CLI takes it.
  const want = ['1001-5#2', '1002-0', '1003-0#1', '1003-0#2', '1004-0#2', '1005-0'];
  assert.deepEqual(cliEvents('--tenant', 'p3', '--since', '1001-5').map((e) => e.id), want);
  assert.deepEqual((await take(c.events('p3', { since: '1001-5' }), Infinity)).map((e) => e.id), want);
});

// A since the CLI refuses (not an id, #P on an unpartitioned tenant, P >= K)
// is InvalidInput with the CLI's words, before anything is read.
test('a bad since is InvalidInput, as the CLI refuses it', async () => {
  await p3();
  const bad = [['p3', 'x'], ['p3', '1000-0#0'], ['p3', '1000-0#01'], ['p3', '1000-0#64'], ['p3', '1000-0#1#2'],
    ['p3', '1-2-3'], ['p3', '18446744073709551616'], ['p3', '1000-0#3'], ['p3', '1000-0#9'], ['t1', '1000-0#1']];
  for (const [tenant, since] of bad) {
    const r = cli(redis, 'events', '--tenant', tenant, '--since', since);
    assert.equal(r.rc, 2, since);
    assert.equal(r.out, '');
    for (const follow of [false, true]) {
      await assert.rejects(take(c.events(tenant, { since, follow }), 1), (e) => {
        assert.ok(e instanceof InvalidInput, `${since}: ${e}`);
        assert.ok(!e.message.includes('\n'));
        assert.equal(e.message.split('since: ')[1], r.err.trim().split('--since: ')[1], since);
        return true;
      });
    }
  }
});

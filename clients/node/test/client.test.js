// Client: every method, its validation and its errors, against a real
// Redis; and the CLI reading what the client wrote (and the reverse).
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client, InvalidInput, JobFailed, NoSuchJob, ProtocolMismatch, RedisUnavailable, WaitTimeout, protocol } from '../src/index.js';
import { startRedis, cli } from './helpers.js';

let redis, c;
beforeEach(async () => {
  redis = await startRedis();
  c = new Client({ url: redis.url });
});
afterEach(async () => {
  await c.close();
  await redis.stop();
});

test('enqueue with defaults, status', async () => {
  const id = await c.enqueue('t1', 'noop', { a: [1, 2] });
  assert.equal(id.length, 24);
  const st = await c.status('t1', id);
  assert.deepEqual([st.queue, st.lane, st.status, st.attempt, st.attempts, st.timeout], ['default', id, 'queued', 0, 3, 180]);
  assert.deepEqual(st.payload, { a: [1, 2] });
});

test('enqueue with every option', async () => {
  const id = await c.enqueue('t1', 'noop', 'text', { lane: 'L1', queue: 'q2', id: 'job-1', unique: 'u1', delay: 60,
    attempts: 5, timeout: 1.5, expires: 120, uniqueFor: 30 });
  assert.equal(id, 'job-1');
  const st = await c.status('t1', id);
  assert.deepEqual([st.lane, st.queue, st.status, st.unique, st.attempts, st.timeout], ['L1', 'q2', 'scheduled', 'u1', 5, 1.5]);
  assert.ok(st.run_at && st.expires_at);
});

test('an existing job is returned, with details', async () => {
  await c.enqueue('t1', 'noop', null, { id: 'same' });
  assert.deepEqual(await c.enqueue('t1', 'noop', null, { id: 'same', details: true }), { id: 'same', created: false, why: 'exists queued' });
  const a = await c.enqueue('t1', 'noop', null, { unique: 'k\u{1F600}' });
  assert.equal(await c.enqueue('t1', 'noop', null, { unique: 'k\u{1F600}' }), a);
  assert.equal((await c.status('t1', a)).unique, 'k\u{1F600}');
});

test('validation: InvalidInput (code 2), nothing written', async () => {
  const cases = [
    [() => c.enqueue('bad tenant', 'k'), /tenant: "bad tenant" is not a safe name/],
    [() => c.enqueue('t1', '.x'), /kind: "\.x" is not a safe name/],
    [() => c.enqueue('t1', 'k', null, { lane: 'a/b' }), /lane: /],
    [() => c.enqueue('t1', 'k', null, { id: 'x y' }), /id: /],
    [() => c.enqueue('t1', 'k', 'x'.repeat(1 << 20)), /over the limit of 1048576/],
    [() => c.enqueue('t1', 'k', 10n), /payload: not valid JSON/],
    [() => c.enqueue('t1', 'k', null, { attempts: 0 }), /attempts: must be an integer >= 1/],
    [() => c.enqueue('t1', 'k', null, { timeout: 0 }), /timeout: must be a number of seconds > 0/],
    [() => c.enqueue('t1', 'k', null, { delay: -1 }), /delay: must be a number of seconds >= 0/],
    [() => c.enqueue('t1', 'k', null, { unique: 'a\nb' }), /unique: must not hold control characters/],
    [() => c.enqueue('t1', 'k', null, { uniqueFor: 3 }), /unique_for: needs a unique key/],
    [() => c.enqueue('t1', 'k', null, { unique: 'a\uD800' }), /unique: must be UTF-8 text/],
    [() => c.enqueueMany('t1', [{ kind: 'k' }, { kind: 'k', colour: 1 }]), /jobs\[1\]: unknown field "colour"/],
    [() => c.status('t1', '../x'), /id: /],
    [async () => { for await (const e of c.events('t1', { since: 'x' })) void e; }, /is not an event id/],
  ];
  for (const [fn, re] of cases) await assert.rejects(fn, (e) => e instanceof InvalidInput && e.code === 2 && re.test(e.message));
  assert.deepEqual(await redis.raw.keys('lw:{t1}:*'), []);
});

function callsOf(info, cmd) {
  const m = info.match(new RegExp(`^cmdstat_${cmd}:calls=(\\d+),.*failed_calls=(\\d+)`, 'm'));
  return m ? Number(m[1]) - Number(m[2]) : 0;
}

test('enqueueMany is pipelined and survives FUNCTION FLUSH', async () => {
  await redis.raw.config('RESETSTAT');
  const ids = await c.enqueueMany('t1', Array.from({ length: 700 }, (_, i) => ({ kind: 'noop', payload: i, lane: 'L' + (i % 5) })));
  assert.equal(new Set(ids).size, 700);
  assert.equal((await c.status('t1', ids[699])).payload, 699);
  await redis.raw.function('FLUSH');
  assert.equal((await c.enqueueMany('t1', Array(300).fill({ kind: 'noop' }))).length, 300);
  await redis.raw.function('FLUSH');
  assert.equal((await c.enqueue('t1', 'noop')).length, 24);
  assert.deepEqual(await c.enqueueMany('t1', []), []);
  const info = await redis.raw.info('commandstats');
  assert.ok(callsOf(info, 'fcall') >= 5 && callsOf(info, 'evalsha') === 0, info);
});

test('a user without FUNCTION and FCALL runs EVALSHA and survives SCRIPT FLUSH', async () => {
  await redis.raw.acl('SETUSER', 'nofn', 'on', '>nofnpw', '~*', '&*', '+@all', '-function', '-fcall');
  const n = new Client({ url: `unix://nofn:nofnpw@${redis.sock}` });
  try {
    await redis.raw.config('RESETSTAT');
    await redis.raw.script('FLUSH');
    assert.equal((await n.enqueueMany('t1', Array(300).fill({ kind: 'noop' }))).length, 300);
    await redis.raw.script('FLUSH');
    assert.equal((await n.enqueue('t1', 'noop')).length, 24);
    await redis.raw.script('FLUSH');
    assert.equal((await n.status('t1', (await n.enqueue('t1', 'noop')))).status, 'queued');
    const info = await redis.raw.info('commandstats');
    assert.ok(callsOf(info, 'evalsha') >= 3 && callsOf(info, 'fcall') === 0, info);
  } finally {
    await n.close();
  }
});

test('status, cancel, retry errors', async () => {
  await assert.rejects(c.status('t1', 'nope'), (e) => e instanceof NoSuchJob && e.code === 4);
  await redis.raw.set('lw:{t1}:job:str', 'x');
  await assert.rejects(c.status('t1', 'str'), (e) => e instanceof JobFailed && /corrupt record/.test(e.message));
  const id = await c.enqueue('t1', 'noop');
  await assert.rejects(c.retry('t1', id), /is queued, not failed/);
  assert.equal(await c.cancel('t1', id), 'cancelled');
  await assert.rejects(c.cancel('t1', id), (e) => e instanceof JobFailed && e.job.status === 'cancelled');
  assert.equal(await c.retry('t1', id), id);
  assert.equal((await c.status('t1', id)).status, 'queued');
  await assert.rejects(c.cancel('t1', 'nope'), NoSuchJob);
  await assert.rejects(c.retry('t1', 'nope'), NoSuchJob);
});

test('wait: timeout, failure, missing', async () => {
  const id = await c.enqueue('t1', 'noop');
  await assert.rejects(c.wait('t1', id, { timeout: 0.2 }), (e) => e instanceof WaitTimeout && e.code === 124);
  setTimeout(() => c.cancel('t1', id), 150);
  await assert.rejects(c.wait('t1', id, { timeout: 5 }), (e) => e instanceof JobFailed && e.code === 1 && e.job.status === 'cancelled');
  await assert.rejects(c.wait('t1', 'nope', { timeout: 1 }), NoSuchJob);
});

test('events: since and follow', async () => {
  const a = await c.enqueue('t1', 'noop');
  const evs = [];
  for await (const e of c.events('t1')) evs.push(e);
  assert.deepEqual(evs.map((e) => [e.type, e.job]), [['job.queued', a]]);
  assert.deepEqual(Object.keys(evs[0]).sort(), ['attempt', 'data', 'id', 'job', 'kind', 'lane', 'ts', 'type', 'worker']);
  setTimeout(() => c.enqueue('t1', 'noop', null, { id: 'later' }), 150);
  for await (const e of c.events('t1', { since: evs[0].id, follow: true })) {
    assert.deepEqual([e.type, e.job], ['job.queued', 'later']);
    break;
  }
});

test('Redis unreachable: RedisUnavailable (code 3), no password shown', async () => {
  for (const url of ['unix://' + redis.dir + '/nothing.sock', 'redis://me:s3cret@127.0.0.1:1/0']) {
    const bad = new Client({ url });
    await assert.rejects(bad.enqueue('t1', 'noop'), (e) => e instanceof RedisUnavailable && e.code === 3 && !e.message.includes('s3cret'));
    await bad.close();
  }
});

test('protocol mismatch refused, naming both versions', async () => {
  await redis.raw.set('lw:{t1}:protocol', '999');
  await assert.rejects(c.enqueue('t1', 'noop'), (e) => e instanceof ProtocolMismatch && e.code === 3 &&
    e.message.includes(`protocol ${protocol()}`) && e.message.includes('protocol 999'));
  assert.deepEqual(await redis.raw.keys('lw:{t1}:*'), ['lw:{t1}:protocol']); // nothing written but the test's key
});

test('Node enqueues, the CLI reads it (and the reverse)', async () => {
  const id = await c.enqueue('t1', 'noop', { n: 9007199254740991 }, { lane: 'L', attempts: 2, timeout: 7 });
  const r = cli(redis, 'status', '--tenant', 't1', id);
  assert.equal(r.rc, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), await c.status('t1', id));
  const e = cli(redis, 'enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '[1]', '--lane', 'M');
  assert.equal(e.rc, 0, e.err);
  const st = await c.status('t1', e.out.trim());
  assert.deepEqual([st.lane, st.payload, st.attempts, st.timeout], ['M', [1], 3, 180]);
  const w = cli(redis, 'wait', '--tenant', 't1', id, '--timeout', '0');
  assert.equal(w.rc, 124);
  assert.equal(cli(redis, 'cancel', '--tenant', 't1', id).rc, 0);
  await assert.rejects(c.wait('t1', id), JobFailed);
});

test('input is checked before Redis is asked', async () => {
  const bad = new Client({ url: 'unix://' + redis.dir + '/nothing.sock' });
  await assert.rejects(bad.enqueue('t1', 'bad kind'), InvalidInput);
  await assert.rejects(bad.enqueueMany('t1', [{ kind: 'k', delay: 'soon' }]), /jobs\[0\]: delay/);
  await assert.rejects(bad.cancel('t1', ''), InvalidInput);
  await bad.close();
});

test('a refusal says how many jobs went in', async () => {
  await c.enqueue('t1', 'noop');
  await redis.raw.config('SET', 'maxmemory', '1');
  await assert.rejects(c.enqueueMany('t1', Array(300).fill({ kind: 'noop' })),
    (e) => e instanceof RedisUnavailable && /OOM/.test(e.message) && /0 of 300 jobs enqueued/.test(e.message) && e.ids.length === 0 && !e.outage);
  await assert.rejects(c.enqueue('t1', 'noop'), (e) => e instanceof RedisUnavailable && /OOM/.test(e.message));
});

test('the record is the one the CLI writes, field for field', async () => {
  const flags = ['--lane', 'L', '--queue', 'q', '--delay', '30', '--attempts', '4', '--timeout', '2.5', '--expires', '90'];
  const r = cli(redis, 'enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{"x":[1,2.5]}', '--unique', 'u', ...flags);
  assert.equal(r.rc, 0, r.err);
  const id = await c.enqueue('t1', 'noop', { x: [1, 2.5] }, { lane: 'L', queue: 'q', delay: 30, attempts: 4, timeout: 2.5, expires: 90, unique: 'u2' });
  const a = await redis.raw.hgetall('lw:{t1}:job:' + r.out.trim());
  const b = await redis.raw.hgetall('lw:{t1}:job:' + id);
  for (const f of ['id', 'enqueued', 'run_at', 'expires', 'unique']) {
    delete a[f];
    delete b[f];
  }
  assert.deepEqual(b, a);
});

test('wait outlives a Redis restart', async () => {
  const r2 = await startRedis({ aof: true });
  const c2 = new Client({ url: r2.url });
  try {
    const id = await c2.enqueue('t1', 'noop');
    const waiting = c2.wait('t1', id, { timeout: 15 });
    await new Promise((r) => setTimeout(r, 300));
    await r2.restart();
    const other = new Client({ url: r2.url });
    assert.equal(await other.cancel('t1', id), 'cancelled');
    await other.close();
    await assert.rejects(waiting, (e) => e instanceof JobFailed && e.job.status === 'cancelled');
  } finally {
    await c2.close();
    await r2.stop();
  }
});

// rediss:// URLs against real redis-servers listening with TLS (the
// certificates made by openssl now: lwtest.TlsCA through fixture.py), and
// the URL checks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { Client, InvalidInput, RedisUnavailable } from '../src/index.js';
import { startFixture } from './helpers.js';

let fx, ca;
before(async () => {
  fx = await startFixture('tls');
  ca = fx.info;
});
after(async () => fx && fx.stop());

function tlsUrl(server, query = {}, auth = '') {
  const q = { ca: ca.ca, ...query };
  const parts = Object.entries(q).filter(([, v]) => v != null).map(([k, v]) => `${k}=${v}`);
  return `rediss://${auth}127.0.0.1:${server.port}/0${parts.length ? '?' + parts.join('&') : ''}`;
}

// Enqueues over url and reads the job back over the same client.
async function roundtrip(url) {
  const c = new Client({ url });
  try {
    const id = await c.enqueue('t1', 'k', { over: 'tls' });
    assert.deepEqual((await c.status('t1', id)).payload, { over: 'tls' });
    return id;
  } finally {
    await c.close();
  }
}

async function refused(url) {
  const c = new Client({ url });
  try {
    await assert.rejects(c.enqueue('t1', 'k'), RedisUnavailable);
    return await c.enqueue('t1', 'k').catch((e) => e.message);
  } finally {
    await c.close();
  }
}

test('verified: enqueue, read back, and the job is on that server', async () => {
  const id = await roundtrip(tlsUrl(ca.plain));
  const raw = new Redis({ path: ca.plain.sock });
  try {
    assert.equal(await raw.hget(`lw:{t1}:job:${id}`, 'status'), 'queued');
  } finally {
    raw.disconnect();
  }
});

test('wrong CA: RedisUnavailable saying the certificate did not verify', async () => {
  const msg = await refused(tlsUrl(ca.plain, { ca: ca.other_ca }));
  assert.match(msg, /certificate did not verify/);
  assert.ok(!msg.includes('\n'));
});

test('client certificate required: works with cert/key, refused without', async () => {
  await roundtrip(tlsUrl(ca.mutual, { cert: ca.cert, key: ca.key }));
  const msg = await refused(tlsUrl(ca.mutual));
  assert.match(msg, /client certificate/);
});

test('sni: a name in the certificate works, one not in it is refused', async () => {
  await roundtrip(tlsUrl(ca.plain, { sni: 'localhost' }));
  const msg = await refused(tlsUrl(ca.plain, { sni: 'not-in-the-cert.example' }));
  assert.match(msg, /certificate did not verify.*not-in-the-cert\.example/);
});

test('insecure=1 against the wrong CA works and warns once', async () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    await roundtrip(tlsUrl(ca.plain, { ca: ca.other_ca, insecure: 1 }));
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  } finally {
    process.off('warning', onWarning);
  }
  const ours = warnings.filter((w) => w.code === 'LANEWORK_TLS_INSECURE');
  assert.equal(ours.length, 1);
  assert.match(ours[0].message, /insecure=1: the server's certificate is not verified/);
});

test('the password is sent and never shown', async () => {
  const c = new Client({ url: tlsUrl(ca.plain, { ca: ca.other_ca }, 'u:s3cr3t-pw@') });
  try {
    const e = await c.enqueue('t1', 'k').catch((err) => err);
    assert.ok(e instanceof RedisUnavailable && !e.message.includes('s3cr3t-pw'), e.message);
    const { inspect } = await import('node:util');
    assert.ok(!inspect(c).includes('s3cr3t-pw'), inspect(c));
  } finally {
    await c.close();
  }
});

const BAD = [
  ['redis://127.0.0.1:1/0?ca=/x.crt', 'parameter ca is for TLS URLs only'],
  ['redis://127.0.0.1:1/0?insecure=1', 'parameter insecure is for TLS URLs only'],
  ['unix:///tmp/x.sock?sni=a', 'parameter sni is for TLS URLs only'],
  ['rediss://127.0.0.1:1/0?bogus=1', 'unknown parameter "bogus"'],
  ['rediss://127.0.0.1:1/0?cert=/x.crt', 'cert= without key='],
  ['rediss://127.0.0.1:1/0?key=/x.key', 'key= without cert='],
  ['rediss://127.0.0.1:1/0?insecure=yes', 'insecure must be 1 or 0'],
  ['rediss://127.0.0.1:1/0?ca=/no/such/ca.crt', 'ca=/no/such/ca.crt: No such file'],
  ['rediss://:pw@127.0.0.1:1/x', 'db "x" is not a non-negative integer'],
  ['rediss://:pw@127.0.0.1:1:2/0', 'expected host[:port][/db]'],
  ['redis-sentinel://127.0.0.1:1', 'the master name is missing'],
  ['redis-sentinel://127.0.0.1/m', 'sentinel "127.0.0.1" is not host:port'],
  ['redis-sentinel://127.0.0.1:1/m?ca=/x', 'parameter ca is for TLS URLs only'],
  ['redis-sentinel://127.0.0.1:1/m?db=x', 'db "x" is not a non-negative integer'],
  ['redis://127.0.0.1:1/0?sentinel_user=u', 'parameter sentinel_user is for Sentinel URLs only'],
  ['http://127.0.0.1/', 'is not a redis://, rediss://'],
];

test('bad URLs are one-line InvalidInput naming the parameter', () => {
  for (const [url, says] of BAD) {
    assert.throws(() => new Client({ url }), (e) => e instanceof InvalidInput && e.message.includes(says) && !e.message.includes('\n'), url);
  }
  for (const url of ['rediss://u:topsecret@127.0.0.1:1/0?bogus=1', 'redis-sentinel://127.0.0.1:1/m?sentinel_password=topsecret&bogus=1']) {
    assert.throws(() => new Client({ url }), (e) => e instanceof InvalidInput && !e.message.includes('topsecret') && e.message.includes('***'), url);
  }
});

test('minReplicas: checked, and read from LANEWORK_MIN_REPLICAS', () => {
  for (const v of [-1, 1.5, '2', true]) assert.throws(() => new Client({ url: 'redis://127.0.0.1:1/0', minReplicas: v }), InvalidInput);
  process.env.LANEWORK_MIN_REPLICAS = '2';
  try {
    assert.equal(new Client({ url: 'redis://127.0.0.1:1/0' }).minReplicas, 2);
    process.env.LANEWORK_MIN_REPLICAS = 'two';
    assert.throws(() => new Client({ url: 'redis://127.0.0.1:1/0' }), /LANEWORK_MIN_REPLICAS/);
  } finally {
    delete process.env.LANEWORK_MIN_REPLICAS;
  }
});

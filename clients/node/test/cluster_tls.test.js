// rediss-cluster:// against a real cluster speaking TLS (lwtest.ClusterSet
// with a TlsCA, through fixture.py): every master's certificate checked
// against the CA and the host the slot map names; a wrong CA refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { Client, RedisUnavailable } from '../src/index.js';
import { startFixture } from './helpers.js';

let fx;
before(async () => { fx = await startFixture('tls-cluster'); });
after(async () => fx && fx.stop());

test('rediss-cluster://: enqueue and status on every master, over TLS', async () => {
  assert.match(fx.info.url, /^rediss-cluster:\/\/.*[?&]ca=/);
  const c = new Client({ url: fx.info.url });
  try {
    const ports = new Set();
    for (const t of ['a', 'b', 'c', 'd', 'e']) {
      const id = await c.enqueue(t, 'k', { t });
      assert.deepEqual((await c.status(t, id)).payload, { t });
      const home = await fx.call('node_for_key', `lw:{${t}}:x`);
      ports.add(home.port);
      const raw = new Redis({ path: home.sock });
      try {
        assert.equal(await raw.exists(`lw:{${t}}:job:${id}`), 1);
      } finally {
        raw.disconnect();
      }
    }
    assert.ok(ports.size >= 2);
  } finally {
    await c.close();
  }
});

test('rediss-cluster:// with the wrong CA: RedisUnavailable saying the certificate did not verify', async () => {
  const c = new Client({ url: fx.info.other_ca_url });
  try {
    const e = await c.enqueue('a', 'k').catch((err) => err);
    assert.ok(e instanceof RedisUnavailable, String(e));
    assert.match(e.message, /TLS: the server's certificate did not verify/);
    assert.ok(!e.message.includes('\n'));
  } finally {
    await c.close();
  }
});

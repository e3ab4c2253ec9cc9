// A packed copy (src/, scripts.json, no repository around it) runs the
// scripts it carries: the same bodies as the checkout builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from './helpers.js';
import { load } from '../src/bundle.js';

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');

test('a packed copy works outside the repository', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-node-pkg-'));
  const redis = await startRedis();
  try {
    execFileSync(process.execPath, [join(PKG, 'src', 'bundle.js'), '--write']);
    const copy = join(dir, 'lanework');
    cpSync(join(PKG, 'src'), join(copy, 'src'), { recursive: true });
    cpSync(join(PKG, 'scripts.json'), join(copy, 'scripts.json'));
    cpSync(join(PKG, 'package.json'), join(copy, 'package.json'));
    symlinkSync(join(PKG, 'node_modules'), join(copy, 'node_modules'));
    const shipped = JSON.parse(readFileSync(join(copy, 'scripts.json'), 'utf8'));
    assert.equal(shipped.scripts.enqueue.sha1, load().scripts.enqueue.sha1);
    const { Client } = await import(join(copy, 'src', 'index.js'));
    const c = new Client({ url: redis.url });
    const id = await c.enqueue('t1', 'noop', { packed: true });
    assert.deepEqual((await c.status('t1', id)).payload, { packed: true });
    await c.close();
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

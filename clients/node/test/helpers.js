// A private redis-server per test on a unix socket in a temp dir (as
// tests/integration/lwtest.py starts them), and the CLI built by meson.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Redis from 'ioredis';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = process.env.LANEWORK_BIN || join(REPO, 'build', 'enqueue-cli', 'lanework');

export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'lw-node-'));
  const sock = join(dir, 'redis.sock');
  const proc = spawn('redis-server', ['--port', '0', '--unixsocket', sock, '--unixsocketperm', '700', '--dir', dir,
    '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
  const raw = new Redis({ path: sock });
  await raw.ping();
  return {
    dir, sock, url: 'unix://' + sock, raw,
    async stop() {
      raw.disconnect();
      proc.kill();
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the CLI on this Redis, without a registry: {rc, out, err}. */
export function cli(redis, ...args) {
  const env = { ...process.env, LANEWORK_NAMESPACE: 'lw' };
  delete env.LANEWORK_REGISTRY;
  const p = spawnSync(CLI, [...args, '--redis', redis.url], { env, encoding: 'utf8' });
  return { rc: p.status, out: p.stdout, err: p.stderr };
}

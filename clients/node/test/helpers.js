// A private redis-server per test on a unix socket in a temp dir (as
// tests/integration/lwtest.py starts them), and the CLI built by meson.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Redis from 'ioredis';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = process.env.LANEWORK_BIN || join(REPO, 'build', 'enqueue-cli', 'lanework');
export const WORKER = process.env.LANEWORK_WORKER_BIN || join(REPO, 'build', 'worker', 'lanework-worker');
export const TESTMOD = process.env.LANEWORK_TESTMOD || join(REPO, 'build', 'tests', 'modules', 'testmod.so');

/** A redis-server on a unix socket in a new temp dir; `aof`: every write
 * fsynced to an append-only file, so restart() keeps the data. */
export async function startRedis({ aof = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lw-node-'));
  const sock = join(dir, 'redis.sock');
  const args = ['--port', '0', '--unixsocket', sock, '--unixsocketperm', '700', '--dir', dir,
    '--save', '', '--maxmemory-policy', 'noeviction'];
  if (aof) args.push('--appendonly', 'yes', '--appendfsync', 'always');
  const boot = async () => {
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    for (let i = 0; i < 250; i++) {
      if (existsSync(sock)) {
        const probe = new Redis({ path: sock, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => {});
        const up = await probe.ping().then(() => true, () => false);
        probe.disconnect();
        if (up) break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return proc;
  };
  let proc = await boot();
  const raw = new Redis({ path: sock });
  raw.on('error', () => {});
  const kill = async () => {
    proc.kill('SIGKILL');
    await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', r)));
  };
  return {
    dir, sock, url: 'unix://' + sock, raw,
    /** kill -9, then start again on the same socket and files. */
    async restart() {
      await kill();
      proc = await boot();
    },
    async stop() {
      raw.disconnect();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the CLI on this Redis, without a registry: {rc, out, err}. */
export function cli(redis, ...args) {
  return cliInput(redis, undefined, ...args);
}

/** cli() with `input` on its stdin (enqueue --batch -). */
export function cliInput(redis, input, ...args) {
  const env = { ...process.env, LANEWORK_NAMESPACE: 'lw' };
  delete env.LANEWORK_REGISTRY;
  const p = spawnSync(CLI, [...args, '--redis', redis.url], { env, encoding: 'utf8', input });
  return { rc: p.status, out: p.stdout, err: p.stderr };
}

/**
 * A lanework-worker on this Redis serving `tenants` (registry entries,
 * e.g. {tenant: 'p8', partitions: 8}) with the test module; jobs of kind
 * "record" write START/END lines to `recordFile`. Resolves to {records(),
 * stop()}: records() is [[what, ms, id, lane, pid]...].
 */
export function startWorker(redis, tenants, ...args) {
  const recordFile = join(redis.dir, 'record.log');
  const registry = join(redis.dir, 'registry.json');
  const writeRegistry = (list) => writeFileSync(registry, JSON.stringify(list.map((t) => ({
    module: TESTMOD, config: { record_file: recordFile }, defaults: { attempts: 3, timeout: 30, backoff: 0.05 }, ...t,
  }))));
  writeRegistry(tenants);
  const env = { ...process.env, LANEWORK_NAMESPACE: 'lw' };
  delete env.LANEWORK_REDIS_URL;
  delete env.LANEWORK_REGISTRY;
  const proc = spawn(WORKER, ['--registry', registry, '--redis', redis.url, '--name', 'w1', ...args],
    { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { log += d; });
  return {
    log: () => log,
    /** Rewrites the registry with `list` and tells the worker (SIGHUP). */
    reload(list) {
      writeRegistry(list);
      proc.kill('SIGHUP');
    },
    /** SIGTERM: resolves to the worker's exit code once it exited. */
    async shutdown() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      const done = new Promise((r) => proc.once('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      return done;
    },
    records() {
      if (!existsSync(recordFile)) return [];
      return readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await new Promise((r) => proc.once('exit', r));
      }
    },
  };
}

/** Resolves once pred() (maybe async) is true; throws after timeoutMs. */
export async function waitUntil(pred, what, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The servers of tests/integration/lwtest.py (TlsCA and Redis(tls=...), or
 * a SentinelSet), run by fixture.py: `kind` 'tls' or 'sentinel'. Resolves
 * to {info, call(name, ...args), stop()}: info is what fixture.py made,
 * call() runs one of its commands (kill_master, wait_failover, rejoin...).
 */
export async function startFixture(kind) {
  const dir = mkdtempSync(join(tmpdir(), `lw-node-${kind}-`));
  const py = spawn(process.env.LANEWORK_PYTHON || 'python3', [join(dirname(fileURLToPath(import.meta.url)), 'fixture.py'), dir, kind],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiting = [];
  let buf = '';
  py.stdout.setEncoding('utf8');
  py.stdout.on('data', (d) => {
    buf += d;
    for (let nl; (nl = buf.indexOf('\n')) >= 0;) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (waiting.length) waiting.shift()(line);
      else lines.push(line);
    }
  });
  const exited = new Promise((r) => py.once('exit', r));
  const next = () => new Promise((resolve, reject) => {
    if (lines.length) return resolve(lines.shift());
    waiting.push(resolve);
    exited.then(() => reject(new Error(`fixture.py ${kind} exited`)));
  });
  const info = JSON.parse(await next());
  return {
    info,
    async call(name, ...args) {
      py.stdin.write(JSON.stringify([name, ...args]) + '\n');
      const r = JSON.parse(await next());
      if ('error' in r) throw new Error(`fixture.py ${name}: ${r.error}`);
      return r.ok;
    },
    async stop() {
      py.stdin.end();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

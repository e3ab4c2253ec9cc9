// bullmq_peer.mjs — BullMQ's side of tests/bench/peers/run.sh (run by peers.py).
//
//   node bullmq_peer.mjs enqueue SOCK QUEUE N              addBulk, 1,000 jobs per call
//   node bullmq_peer.mjs drain SOCK QUEUE keep|remove      a Worker, concurrency 50, until SIGTERM
//   node bullmq_peer.mjs lat-worker SOCK QUEUE STAMPS      a Worker, concurrency 50, until SIGTERM
//   node bullmq_peer.mjs lat-enqueue SOCK QUEUE N RATE W   N single add()s at RATE/s (W=1: warm-up)
//
// Each mode prints one JSON line on stdout. Times are CLOCK_MONOTONIC
// (process.hrtime, the clock the other peers and lanework's stamp use), so
// a start time written by the worker can be compared with the enqueue time
// the enqueuer put in the payload.
import { Queue, Worker } from 'bullmq';
import fs from 'node:fs';

const [mode, sock, queue, ...rest] = process.argv.slice(2);
// maxRetriesPerRequest null: what BullMQ asks of a Worker's connection.
const connection = { path: sock, maxRetriesPerRequest: null };
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// worker(processor, opts): runs until SIGTERM, then closes (waiting for the
// jobs in hand) and prints what it completed.
async function worker(processor, extra) {
  let completed = 0;
  let failed = 0;
  const w = new Worker(queue, processor, { connection, concurrency: 50, ...extra });
  w.on('completed', () => { completed++; });
  w.on('failed', () => { failed++; });
  w.on('error', (e) => { process.stderr.write(`bullmq worker error: ${e.message}\n`); });
  await w.waitUntilReady();
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  await new Promise((res) => { process.once('SIGTERM', res); process.once('SIGINT', res); });
  await w.close();
  process.stdout.write(JSON.stringify({ completed, failed }) + '\n');
}

async function main() {
  if (mode === 'enqueue') {
    const n = Number(rest[0]);
    const q = new Queue(queue, { connection });
    await q.waitUntilReady();
    const t0 = nowUs();
    for (let i = 0; i < n; i += 1000) {
      const jobs = [];
      for (let k = i; k < Math.min(n, i + 1000); k++) jobs.push({ name: 'noop', data: { i: k } });
      await q.addBulk(jobs);
    }
    const secs = (nowUs() - t0) / 1e6;
    await q.close();
    process.stdout.write(JSON.stringify({ jobs: n, seconds: secs }) + '\n');
  } else if (mode === 'drain') {
    // keep: completed jobs stay (BullMQ's default); remove: removeOnComplete.
    const extra = rest[0] === 'remove' ? { removeOnComplete: { count: 0 } } : {};
    await worker(async () => {}, extra);
  } else if (mode === 'lat-worker') {
    const fd = fs.openSync(rest[0], 'a');
    await worker(async (job) => {
      const start = nowUs();
      fs.writeSync(fd, `${job.data.w ? 'w' : 'm'} ${job.data.t} ${start}\n`);
    }, {});
    fs.closeSync(fd);
  } else if (mode === 'lat-enqueue') {
    const n = Number(rest[0]);
    const rate = Number(rest[1]);
    const warm = rest[2] === '1';
    const q = new Queue(queue, { connection });
    await q.waitUntilReady();
    // An absolute schedule: job i is due at t0 + i / rate.
    const t0 = nowUs() + 20000;
    let late = 0;
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1e6) / rate;
      const wait = due - nowUs();
      if (wait > 0) await sleep(wait / 1000);
      else if (wait < -1000) late++;
      await q.add('lat', { t: nowUs(), w: warm ? 1 : 0 });
    }
    const secs = (nowUs() - t0) / 1e6;
    await q.close();
    process.stdout.write(JSON.stringify({ sent: n, seconds: secs, late }) + '\n');
  } else {
    process.stderr.write(`bullmq_peer.mjs: unknown mode ${mode}\n`);
    process.exit(2);
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`bullmq_peer.mjs: ${e.stack || e}\n`);
  process.exit(1);
});

// Redis Cluster (redis-cluster:// and rediss-cluster:// URLs, CONTRACT
// section 12): which master serves each hash slot, and a plain ioredis
// connection per master.
//
// Every script call of the client names keys of one tenant partition
// (NS:{T}: or NS:{T#p}:, one hash slot), and every other command one key,
// so each request goes whole to one master, on that master's own
// connection -- the same FCALL / EVALSHA / FUNCTION LOAD / SCRIPT LOAD code
// as on a single Redis, its mode kept per connection, and a WAIT
// (minReplicas) pipelined on the very connection that ran the calls it
// confirms. ioredis' Cluster is not used: it sends a command again after
// its connection closed under it ("Connection is closed", retryDelayOnFailover),
// so an enqueue could run twice, and its pipelines cannot hold a WAIT to
// the connection of the calls of several slots before it.
//
// The slot map comes from CLUSTER SLOTS, asked of the masters known and
// then the seeds, in turn, and is read again after a MOVED, a lost
// connection or a connection that could not be made (a failover). The
// client follows MOVED (at once), ASK, TRYAGAIN, CLUSTERDOWN and "non local
// key" (a slot migrating, a failover: after a pause), and a command never
// sent (its connection could not be made), each within FOLLOW_MS: in all of
// them the call did not run, so sending it again cannot run it twice. A
// connection lost after a call was sent is never followed: the call may
// have run, and the caller gets RedisUnavailable.
import { crc16 } from './partition.js';

export const SLOTS = 16384;
// Redirections are followed for at most this long per call (a failover in
// the test cluster takes 2-3 s: cluster-node-timeout 1 s + the election).
export const FOLLOW_MS = 5000;
// An XREAD over several slots (events follow on a partitioned tenant) is
// one non-blocking XREAD per partition, again after this pause: one XREAD
// may not name keys of several slots.
export const POLL_MS = 100;

const REDIRECTS = ['MOVED', 'ASK', 'TRYAGAIN', 'CLUSTERDOWN'];

/** The hash slot of key: CRC16 of its hash tag (between the first '{'
 * and the next '}', when not empty), else of the whole key. */
export function keySlot(key) {
  let k = Buffer.from(String(key), 'utf8');
  const s = k.indexOf(0x7b);
  if (s >= 0) {
    const e = k.indexOf(0x7d, s + 1);
    if (e > s + 1) k = k.subarray(s + 1, e);
  }
  return crc16(k) % SLOTS;
}

/** The kind of redirection ioredis error e is ('MOVED', 'ASK', 'TRYAGAIN',
 * 'CLUSTERDOWN'), or null. A script that touched a key no longer on this
 * node (a slot migrating) counts as TRYAGAIN. */
export function redirection(e) {
  if (!e || e.name !== 'ReplyError') return null;
  const msg = String(e.message);
  const code = msg.split(' ', 1)[0];
  if (REDIRECTS.includes(code)) return code;
  if (msg.includes('non local key')) return 'TRYAGAIN';
  return null;
}

/** True when ioredis error e means the command was never sent: it waited
 * in the offline queue while the connection could not be made. */
export function unsent(e) {
  return Boolean(e) && (e.name === 'MaxRetriesPerRequestError' || /max retries per request/i.test(String(e.message)));
}

export class ClusterMap {
  /** seeds: [{host, port}]; make(host, port): a new ioredis connection. */
  constructor(seeds, make) {
    this.seeds = seeds;
    this.make = make;
    this.nodes = new Map(); // 'host:port' -> ioredis connection
    this.slots = null; // [{host, port} | null] by slot
    this.stale = true;
    this.refreshing = null;
  }

  node(addr) {
    const id = `${addr.host}:${addr.port}`;
    let n = this.nodes.get(id);
    if (!n) {
      n = this.make(addr.host, addr.port);
      this.nodes.set(id, n);
    }
    return n;
  }

  /** Who to ask for the map: the masters known, then the seeds. */
  candidates() {
    const seen = new Map();
    for (const a of this.slots || []) if (a) seen.set(`${a.host}:${a.port}`, a);
    for (const s of this.seeds) if (!seen.has(`${s.host}:${s.port}`)) seen.set(`${s.host}:${s.port}`, s);
    return [...seen.values()];
  }

  /** Reads the map again (one read at a time, shared by the callers);
   * rejects with the last error when no node answers. */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.#read().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async #read() {
    let last = null;
    for (const a of this.candidates()) {
      const n = this.node(a);
      try {
        this.#build(await n.call('CLUSTER', 'SLOTS'), a);
        this.#prune(a);
        return;
      } catch (e) {
        // Why its connection failed (ioredis says only "max retries"); a
        // node that serves no slot is let go, not reconnected for ever.
        last = unsent(e) && n.lwLastError ? n.lwLastError : e;
        if (!this.#serves(a)) this.#drop(a);
      }
    }
    throw last;
  }

  #serves(a) {
    return Boolean(this.slots) && this.slots.some((s) => s && s.host === a.host && s.port === a.port);
  }

  #drop(a) {
    const id = `${a.host}:${a.port}`;
    const n = this.nodes.get(id);
    if (n) {
      n.disconnect();
      this.nodes.delete(id);
    }
  }

  #build(reply, asked) {
    const slots = new Array(SLOTS).fill(null);
    const addrs = new Map();
    for (const r of reply) {
      const host = r[2][0] && r[2][0] !== '?' ? String(r[2][0]) : asked.host;
      const id = `${host}:${r[2][1]}`;
      if (!addrs.has(id)) addrs.set(id, { host, port: Number(r[2][1]) });
      const a = addrs.get(id);
      for (let s = Number(r[0]); s <= Number(r[1]); s++) slots[s] = a;
    }
    this.slots = slots;
    this.stale = false;
  }

  /** Ends the connections to nodes that serve no slot (a master failed
   * over, a seed that is a replica), but the one that answered: ioredis
   * would try to reconnect a dead one for ever. A seed is connected again
   * when the map is next asked of it. */
  #prune(asked) {
    for (const [id, n] of this.nodes) {
      const [host, port] = [id.slice(0, id.lastIndexOf(':')), Number(id.slice(id.lastIndexOf(':') + 1))];
      if (!this.#serves({ host, port }) && !(host === asked.host && port === asked.port)) {
        n.disconnect();
        this.nodes.delete(id);
      }
    }
  }

  /** The master serving slot (null: none), refreshing a stale map first. */
  async addrFor(slot) {
    if (this.stale || !this.slots) await this.refresh();
    return this.slots[slot];
  }

  /** Files a MOVED error's new owner of its slot. */
  moved(e) {
    const parts = String(e.message).split(' ');
    const slot = Number(parts[1]);
    const i = parts[2] ? parts[2].lastIndexOf(':') : -1;
    if (!this.slots || !(slot >= 0 && slot < SLOTS) || i < 0) return;
    const host = parts[2].slice(0, i) || (this.slots[slot] && this.slots[slot].host);
    this.slots[slot] = { host, port: Number(parts[2].slice(i + 1)) };
  }

  async close() {
    await Promise.all([...this.nodes.values()].map((n) => (n.status === 'ready' ? n.quit().catch(() => n.disconnect()) : n.disconnect())));
    this.nodes.clear();
  }
}

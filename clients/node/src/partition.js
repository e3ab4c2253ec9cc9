// Partitioned tenants (common/partition.h; DESIGN.md section 11): a
// tenant's lanes spread over K keyspaces, routed exactly as the C side
// routes them, so a job is where the CLI and the workers look for it.
//
// Partition 0 of tenant T is its own prefix NS:{T}: (a tenant never
// partitioned is partition 0 of itself), partition p >= 1 is NS:{T#p}:. A
// job goes to partition CRC16(routing key) % K, the routing key being its
// lane when given, else its unique key, else its id; a generated id gets
// last digits that put it in that same partition, so the id alone finds
// the job at once. K is partition 0's settings field `partitions` (absent:
// 1), read once per tenant and client; enqueue.lua refuses a call routed by
// another count with `LWPARTITIONS K` before writing anything.
//
// When the count went from 1 to K, the jobs that finished before stay in
// partition 0 until their retention ends, with their unique keys; an id or
// a unique key routes by K now, often elsewhere. Until partition 0's
// settings field `legacy_until` has passed, an enqueue of a job with its
// own id or a unique key routed to a partition other than 0 asks partition
// 0 first (known.lua, client.js): a job it answers for is that existing
// job (needsKnown).
import { newId } from './jobs.js';

export const PARTITIONS_MAX = 64;

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

/** CRC16/XMODEM (poly 0x1021, init 0, no reflection) of a Buffer or
 * string (its UTF-8 bytes): Redis Cluster's slot hash, C's lw_crc16.
 * `crc`: the CRC16 of a text `data` goes on from (lw_crc16_more). */
export function crc16(data, crc = 0) {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ b) & 0xff];
  return crc;
}

/** The partition (0..k-1) of routing key `key` (the whole key, no hash-tag
 * parsing) among k; 0 when k < 2. */
export function partitionOf(key, k) {
  return k < 2 ? 0 : crc16(key) % k;
}

/** Partition p's key prefix: NS:{T}: for 0, NS:{T#p}: else. */
export function partitionPrefix(namespace, tenant, p) {
  return p > 0 ? `${namespace}:{${tenant}#${p}}:` : `${namespace}:{${tenant}}:`;
}

/** The count a settings field holds, as the CLI reads it: absent or not
 * 1..PARTITIONS_MAX is 1. */
export function parseCount(v) {
  const k = v == null ? NaN : Number.parseInt(String(v), 10);
  return Number.isInteger(k) && k >= 1 && k <= PARTITIONS_MAX ? k : 1;
}

/** The count in force from enqueue.lua's `LWPARTITIONS K ...` refusal (an
 * error or its text), or null when it is no such refusal. */
export function refusedCount(e) {
  const m = /LWPARTITIONS (\d+)\b/.exec(String(e && e.message !== undefined ? e.message : e).split('\n')[0]);
  return m ? parseCount(m[1]) : null;
}

/** The partition (0..k-1) of checked spec `spec` (jobs.js resolve) among
 * k, as lw_job_spec_place: routed by its lane, else its unique key, else
 * its id. A generated id is drawn again until it falls in the routing
 * key's partition (the lane, when it was not given, follows the id). May
 * be called again with another k while nothing was written for the spec. */
// New id `id` (newId) made one of partition `want` among k, as
// common/partition.c id_into does: its last three hex digits stepped from
// their random value, the CRC of the rest taken once (drawing whole ids
// cost k draws and CRCs per job).
function idInto(id, k, want) {
  for (let draw = 0; draw < 64; draw++) {
    const head = crc16(id.slice(0, -3));
    const start = Number.parseInt(id.slice(-3), 16);
    for (let j = 0; j < 4096; j++) {
      const tail = ((start + j) & 0xfff).toString(16).padStart(3, '0');
      if (crc16(tail, head) % k === want) return id.slice(0, -3) + tail;
    }
    id = newId();
  }
  return id;
}

export function place(spec, k) {
  const { route } = spec;
  if (!spec.idGenerated) return partitionOf(route, k);
  if (route === null) return partitionOf(spec.id, k);
  const want = partitionOf(route, k);
  const id = k > 1 ? idInto(spec.id, k, want) : spec.id;
  spec.id = id;
  if (spec.laneIsId) spec.lane = id;
  return want;
}

/** Whether checked spec `spec`, placed in partition `part`, must be asked
 * about in partition 0 first while the tenant's legacy window is open
 * (cli_known_needed): routed elsewhere than 0, with its own id or a unique
 * key (a generated id cannot be one from before). */
export function needsKnown(spec, part) {
  return part !== 0 && (!spec.idGenerated || spec.unique !== '');
}

// Job records and events as users see them: the objects `lanework status`
// and `lanework events` print (common/views.c, CONTRACT section 4), from the
// raw Redis fields. Nothing in a record is trusted: JSON fields are decoded
// only when they are JSON (else kept as text), numbers only when numbers.

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

function json(v, emptyNull = false) {
  if (v == null || (emptyNull && v === '')) return null;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

function int(v) {
  return v != null && /^-?\d+$/.test(v) ? Number(v) : null;
}

/** Milliseconds since the epoch as RFC 3339 UTC with milliseconds. */
export function rfc3339(ms) {
  return new Date(ms).toISOString();
}

function time(v) {
  const ms = int(v);
  return ms && ms > 0 ? rfc3339(ms) : null;
}

function seconds(v) {
  const ms = int(v);
  return ms == null || ms < 0 ? null : ms / 1000;
}

function text(v, emptyNull = false) {
  return v == null || (emptyNull && v === '') ? null : v;
}

/** The status object of a job record (HGETALL as an object). */
export function jobView(tenant, f) {
  return {
    id: f.id, tenant, kind: text(f.kind), queue: text(f.queue), lane: text(f.lane), status: text(f.status),
    payload: json(f.payload), attempt: int(f.attempt), attempts: int(f.attempts), timeout: seconds(f.timeout),
    enqueued_at: time(f.enqueued), started_at: time(f.started), finished_at: time(f.finished),
    result: json(f.result, true), error: text(f.error, true), worker: text(f.worker, true),
    run_at: time(f.run_at), expires_at: time(f.expires), unique: text(f.unique, true),
    spool_dir: text(f.spool, true),
  };
}

/**
 * The event object of one stream entry [id, [field, value, ...]] of
 * partition `part`: its id is shown `ID#P` for a partition P >= 1, as
 * `lanework events` shows it (cmd_events.c shown_id).
 */
export function eventView(id, flat, part = 0) {
  const f = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]] = flat[i + 1];
  return {
    id: part >= 1 ? `${id}#${part}` : id, type: text(f.type), job: text(f.job), kind: text(f.kind), lane: text(f.lane),
    attempt: int(f.attempt), worker: text(f.worker, true), ts: time(id.split('-')[0]), data: json(f.data, true),
  };
}

/** Partitions a tenant may have (common/partition.h LW_PARTITIONS_MAX). */
export const PARTITIONS_MAX = 64;
const U64_MAX = 18446744073709551615n;

/**
 * True for MS or MS-SEQ (decimal, each part a 64-bit unsigned number),
 * with `#P` after it for an event of partition P >= 1 (1..63, no leading
 * zero): what events({since}) takes, as the CLI's --since (cmd_events.c
 * is_stream_id).
 */
export function isStreamId(s) {
  if (typeof s !== 'string' || s.length > 60) return false;
  const m = /^(\d+)(?:-(\d+))?(?:#([1-9]\d*))?$/.exec(s);
  return !!m && BigInt(m[1]) <= U64_MAX && (m[2] === undefined || BigInt(m[2]) <= U64_MAX) &&
    (m[3] === undefined || Number(m[3]) < PARTITIONS_MAX);
}

/** [entry id, partition] of an id isStreamId accepts: `ID#P` is [ID, P], a plain `ID` is [ID, 0]. */
export function splitEventId(s) {
  const i = s.indexOf('#');
  return i < 0 ? [s, 0] : [s.slice(0, i), Number(s.slice(i + 1))];
}

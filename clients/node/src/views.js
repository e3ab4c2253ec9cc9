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

/** The event object of one stream entry [id, [field, value, ...]]. */
export function eventView(id, flat) {
  const f = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]] = flat[i + 1];
  return {
    id, type: text(f.type), job: text(f.job), kind: text(f.kind), lane: text(f.lane), attempt: int(f.attempt),
    worker: text(f.worker, true), ts: time(id.split('-')[0]), data: json(f.data, true),
  };
}

/** True for MS or MS-SEQ (decimal): what events({since}) takes. */
export function isStreamId(s) {
  return typeof s === 'string' && s.length <= 60 && /^\d+(-\d+)?$/.test(s);
}

// Jobs as an application describes them, checked and completed as the CLI
// does (common/jobspec.c): the same safe names, payload limit, number
// ranges, messages and defaults, so a job is the same whoever enqueued it.
import { randomBytes } from 'node:crypto';
import { InvalidInput } from './errors.js';

export const DEFAULT_ATTEMPTS = 3;
export const DEFAULT_TIMEOUT_MS = 180 * 1000;
export const DEFAULT_BACKOFF_MS = 1000;
const NAME_MAX = 200;
const UNIQUE_MAX = 200;
const MAX_SECONDS = 315360000; // ten years: millisecond counts stay far from overflow
const MAX_DEPTH = 1000;
const SAFE_RULE = "letters, digits, '-', '_', '.'; not starting with '.'; at most 200 bytes";
const SAFE = /^[A-Za-z0-9_.-]+$/;
export const FIELDS = ['kind', 'payload', 'lane', 'queue', 'id', 'unique', 'delay', 'attempts', 'timeout',
  'expires', 'uniqueFor'];

/** Refuses an unsafe tenant/kind/queue/lane/id. */
export function checkName(what, v, required = false) {
  if (v == null) {
    if (required) throw new InvalidInput(`${what}: missing`);
    return;
  }
  if (typeof v !== 'string' || !SAFE.test(v) || v.startsWith('.') || v.length > NAME_MAX)
    throw new InvalidInput(`${what}: "${String(v).slice(0, 64)}" is not a safe name (${SAFE_RULE})`);
}

/** A new job id as the CLI makes them: 12 hex digits of milliseconds, 12 of
 * randomness. */
export function newId() {
  const ms = (Date.now() % 2 ** 48).toString(16).padStart(12, '0');
  return ms + randomBytes(6).toString('hex');
}

/** Seconds (a number or numeric text) as milliseconds, a remainder finer
 * than 1 ms rounded up, as the CLI does. */
export function secondsMs(what, v, allowZero) {
  const rule = allowZero ? '>= 0' : '> 0';
  const n = typeof v === 'string' && /^\d*\.?\d+$|^\d+\.$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > MAX_SECONDS || (n === 0 && !allowZero))
    throw new InvalidInput(`${what}: must be a number of seconds ${rule}`);
  return Math.ceil(Math.round(n * 1e6) / 1e3);
}

function depth(text) {
  let d = 0, top = 0, inStr = false, esc = false;
  for (const c of text) {
    if (inStr) {
      if (esc) esc = false;
      else if (c === '\\') esc = true;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '[' || c === '{') top = Math.max(top, ++d);
    else if (c === ']' || c === '}') d--;
  }
  return top;
}

/** The payload as compact JSON text, checked against the limit (UTF-8
 * bytes; maxPayload <= 0: no limit) and the nesting bound. */
export function encodePayload(payload, maxPayload) {
  let text;
  try {
    text = JSON.stringify(payload === undefined ? null : payload);
  } catch (e) {
    if (e instanceof RangeError) throw new InvalidInput(`payload: JSON nested deeper than ${MAX_DEPTH} levels`);
    throw new InvalidInput(`payload: not valid JSON (${e.message})`);
  }
  if (text === undefined) throw new InvalidInput('payload: not valid JSON (not a JSON value)');
  const n = Buffer.byteLength(text, 'utf8');
  if (maxPayload > 0 && n > maxPayload)
    throw new InvalidInput(`payload: ${n} bytes is over the limit of ${maxPayload} (maxPayload, LANEWORK_MAX_PAYLOAD)`);
  if (depth(text) > MAX_DEPTH) throw new InvalidInput(`payload: JSON nested deeper than ${MAX_DEPTH} levels`);
  return text;
}

// No lone surrogate (String.prototype.isWellFormed, from Node 20 on).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
function wellFormed(s) {
  return typeof s.isWellFormed === 'function' ? s.isWellFormed() : !LONE_SURROGATE.test(s);
}

/** One job (an object with FIELDS, kind required) as enqueue.lua's group
 * items, with what partition.js place() routes it by. Throws InvalidInput,
 * naming the field, before anything is sent. */
export function resolve(tenant, job, maxPayload) {
  const unknown = Object.keys(job).filter((k) => !FIELDS.includes(k) && job[k] !== undefined);
  if (unknown.length) throw new InvalidInput(`unknown field "${unknown[0].slice(0, 64)}" (known: ${FIELDS.join(', ')})`);
  checkName('tenant', tenant, true);
  checkName('kind', job.kind, true);
  for (const what of ['queue', 'lane', 'id']) checkName(what, job[what]);
  const unique = job.unique ?? null;
  if (unique !== null) {
    if (typeof unique !== 'string' || unique.length === 0 || Buffer.byteLength(unique, 'utf8') > UNIQUE_MAX)
      throw new InvalidInput(`unique: must be 1 to ${UNIQUE_MAX} bytes`);
    if (/[\x00-\x1f\x7f]/.test(unique)) throw new InvalidInput('unique: must not hold control characters');
    if (!wellFormed(unique)) throw new InvalidInput('unique: must be UTF-8 text');
  }
  const attempts = job.attempts ?? null;
  if (attempts !== null && (!Number.isInteger(attempts) || attempts < 1 || attempts > 2 ** 31 - 1))
    throw new InvalidInput('attempts: must be an integer >= 1');
  const ms = {};
  for (const [what, name, zero] of [['delay', 'delay', true], ['timeout', 'timeout', false],
    ['expires', 'expires', true], ['uniqueFor', 'unique_for', true]])
    ms[what] = job[what] == null ? 0 : secondsMs(name, job[what], zero);
  if (ms.uniqueFor > 0 && unique === null) throw new InvalidInput('unique_for: needs a unique key (unique) to hold');
  const payload = encodePayload(job.payload, maxPayload);
  const id = job.id || newId();
  return {
    // Where it goes (partition.js place): the routing key -- the lane given,
    // else the unique key, else the id given; null for a generated id
    // routed by itself -- and what place() may draw again.
    route: job.lane || unique || job.id || null,
    idGenerated: !job.id,
    laneIsId: !job.lane,
    // enqueue.lua's group items.
    id,
    kind: job.kind,
    queue: job.queue || 'default',
    lane: job.lane || id,
    payload,
    attempts: attempts || DEFAULT_ATTEMPTS,
    timeout_ms: ms.timeout || DEFAULT_TIMEOUT_MS,
    backoff_ms: DEFAULT_BACKOFF_MS,
    delay_ms: ms.delay,
    expires_ms: ms.expires,
    unique: unique || '',
    spool: '',
    unique_for_ms: ms.uniqueFor,
  };
}

// Script calls built from the "--@" interface blocks (parsed by
// common/scripts/iface.py into the bundle): KEYS and ARGV assembled by item
// name in the declared order, replies read back by item name. No argument
// position is written anywhere in the client.
import { load } from './bundle.js';

const INT_TYPES = new Set(['int', 'ms', 's']);

function arg(script, name, type, v) {
  if (INT_TYPES.has(type)) {
    if (!Number.isSafeInteger(v)) throw new TypeError(`${script}.lua: ${name} must be an integer`);
    return String(v);
  }
  return v == null ? '' : String(v);
}

function groups(items, flat) {
  const k = items.length;
  if (flat.length % k) throw new Error(`reply of ${flat.length} elements is not groups of ${k}`);
  const out = [];
  for (let i = 0; i < flat.length; i += k) {
    const o = {};
    items.forEach(([n], j) => { o[n] = flat[i + j]; });
    out.push(o);
  }
  return out;
}

/** One script of common/scripts/: its body, SHA1 and interface. */
export class Script {
  constructor(name, entry) {
    this.name = name;
    this.body = entry.body;
    this.sha1 = entry.sha1;
    this.function = entry.function; // its FCALL name in library()
    this.entry = entry;
  }

  /** {keys, argv} for a call: `fixed` the fixed ARGV items by name (a
   * group's COUNT item comes from the group's length), `grp` group name ->
   * array of objects of its items. Keys go under the tenant `prefix`. */
  callArgs(prefix, fixed, grp = {}) {
    const e = this.entry;
    const counts = {};
    for (const g of e.argv.groups) if (g.count) counts[g.count] = (grp[g.name] || []).length;
    const keys = e.keys.fixed.map(([k]) => prefix + k);
    for (const g of e.keys.groups)
      for (const item of grp[g.name] || []) for (const [k] of g.items) keys.push(prefix + k.replace('<name>', item.name));
    const argv = e.argv.fixed.map(([n, t]) => arg(this.name, n, t, n in counts ? counts[n] : fixed[n]));
    for (const g of e.argv.groups)
      for (const item of grp[g.name] || []) for (const [n, t] of g.items) argv.push(arg(this.name, n, t, item[n]));
    return { keys, argv };
  }

  /** The reply as the block describes it. */
  read(reply) {
    const e = this.entry;
    if (e.result) return reply;
    if (!Array.isArray(reply)) throw new Error(`${this.name}.lua: reply is not an array`);
    if (e.reply.groups.length) return groups(e.reply.groups[0].items, reply);
    const out = {};
    e.reply.fixed.forEach(([n, t], i) => { out[n] = t === 'list' ? groups(e.lists[n].items, reply[i]) : reply[i]; });
    return out;
  }
}

const scripts = new Map();

/** The Script NAME (enqueue, cancel, retry...). */
export function script(name) {
  if (!scripts.has(name)) scripts.set(name, new Script(name, load().scripts[name]));
  return scripts.get(name);
}

/** The lanework protocol version these scripts speak. */
/** The function library of every script: {name, text} (FUNCTION LOAD text). */
export function library() {
  return load().library;
}

export function protocol() {
  return load().protocol;
}

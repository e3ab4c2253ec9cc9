// Lanework URLs (CONTRACT sections 2 and 12) as ioredis options:
//   redis://[[user]:password@]host[:port][/db]
//   unix://[[user]:password@]/path/to.sock[?db=N]
//   rediss://[[user]:password@]host[:port][/db][?ca=FILE&cert=FILE&key=FILE&sni=NAME&insecure=1]
//   redis-sentinel://[[user]:password@]host:port[,host:port...]/MASTER[?db=N&sentinel_user=U&sentinel_password=P]
//   rediss-sentinel://...  (the sentinel form, with the TLS parameters too)
//   redis-cluster://[[user]:password@]host[:port][,host[:port]...]  (seed nodes; no db)
//   rediss-cluster://...   (the cluster form over TLS, with the TLS parameters)
// Every mistake is one InvalidInput line naming what is wrong; the URL in
// a message is redact()ed (no password, no sentinel_password).
import { readFileSync } from 'node:fs';
import { InvalidInput } from './errors.js';

const TLS_PARAMS = ['ca', 'cert', 'key', 'sni', 'insecure'];
const SENTINEL_PARAMS = ['db', 'sentinel_user', 'sentinel_password'];
// The query parameters each scheme takes (redis:// none: the db is in the path).
const PARAMS = {
  redis: [], unix: ['db'], rediss: TLS_PARAMS,
  'redis-sentinel': SENTINEL_PARAMS, 'rediss-sentinel': [...SENTINEL_PARAMS, ...TLS_PARAMS],
  'redis-cluster': [], 'rediss-cluster': TLS_PARAMS,
};
const HOST = '(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9._-]+)';

/** {options, shown, insecure}: ioredis options, the URL without its
 * secrets, and whether TLS verification is off (insecure=1). */
export function parseUrl(url) {
  const shown = redact(url);
  const bad = (why) => new InvalidInput(`lanework: redis: ${shown}: ${why}`);
  const m = /^([a-z-]+):\/\/(.*)$/s.exec(String(url));
  if (!m || !(m[1] in PARAMS)) return fail(`lanework: redis: ${shown}: is not a redis://, rediss://, unix://, redis-sentinel://, rediss-sentinel://, redis-cluster:// or rediss-cluster:// URL`);
  const scheme = m[1];
  let rest = m[2];
  const o = {};
  // The user info ends at the last '@' (as the C parser): a password
  // holding '@' is never taken for a host that messages show.
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const ui = rest.slice(0, at);
    const colon = ui.indexOf(':');
    const user = colon < 0 ? ui : ui.slice(0, colon);
    if (user) o.username = decodeURIComponent(user);
    if (colon >= 0 && colon + 1 < ui.length) o.password = decodeURIComponent(ui.slice(colon + 1));
    rest = rest.slice(at + 1);
  }
  const q = rest.indexOf('?');
  const query = q < 0 ? {} : params(scheme, rest.slice(q + 1), bad);
  rest = q < 0 ? rest : rest.slice(0, q);
  if (scheme === 'unix') {
    if (!rest.startsWith('/')) throw bad('a unix:// URL needs an absolute path');
    o.path = rest;
  } else if (scheme.endsWith('-sentinel')) {
    sentinel(o, rest, query, bad);
  } else if (scheme.endsWith('-cluster')) {
    clusterSeeds(o, rest, bad);
  } else {
    hostPortDb(o, rest, bad);
  }
  if ('db' in query) o.db = dbNumber(query.db, bad);
  let insecure = false;
  if (scheme.startsWith('rediss')) {
    insecure = query.insecure === '1';
    const tls = tlsOptions(query, bad);
    if (scheme === 'rediss' || scheme === 'rediss-cluster') o.tls = tls;
    else Object.assign(o, { tls, sentinelTLS: tls, enableTLSForSentinelMode: true });
  }
  return { options: o, shown, insecure };
}

function fail(msg) {
  throw new InvalidInput(msg);
}

// {name: value} of a query; a parameter the scheme does not take is
// refused by its name (never its value: it may be a secret).
function params(scheme, text, bad) {
  const out = {};
  for (const item of text.split('&')) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (!PARAMS[scheme].includes(name)) throw bad(unknown(scheme, name.slice(0, 40)));
    if (!value) throw bad(`parameter ${name} has no value`);
    if (name in out) throw bad(`parameter ${name} is given twice`);
    out[name] = decodeURIComponent(value);
  }
  return out;
}

function unknown(scheme, name) {
  if (TLS_PARAMS.includes(name)) return `parameter ${name} is for TLS URLs only (rediss://, rediss-sentinel:// or rediss-cluster://)`;
  if (scheme === 'redis-cluster') return `unknown parameter "${name}" (a redis-cluster:// URL takes none)`;
  if (name === 'sentinel_user' || name === 'sentinel_password') return `parameter ${name} is for Sentinel URLs only (redis-sentinel:// or rediss-sentinel://)`;
  const known = PARAMS[scheme];
  return `unknown parameter "${name}" (${known.length ? `a ${scheme}:// URL takes ${known.join(', ')}` : 'a redis:// URL takes none: the db goes in the path'})`;
}

function hostPortDb(o, rest, bad) {
  const hp = new RegExp(`^${HOST}?(?::(\\d{1,5}))?(?:/([^/]*))?$`).exec(rest);
  if (!hp) throw bad('expected host[:port][/db] after the scheme');
  o.host = (hp[1] || '127.0.0.1').replace(/^\[|\]$/g, '');
  o.port = hp[2] ? Number(hp[2]) : 6379;
  if (!(o.port > 0 && o.port < 65536)) throw bad('port must be 1..65535');
  if (hp[3]) o.db = dbNumber(hp[3], bad);
}

function sentinel(o, rest, query, bad) {
  const slash = rest.indexOf('/');
  const name = slash < 0 ? '' : rest.slice(slash + 1);
  if (!name || name.includes('/')) throw bad('the master name is missing (redis-sentinel://host:port[,host:port...]/MASTER)');
  o.name = decodeURIComponent(name);
  o.sentinels = rest.slice(0, slash).split(',').map((n) => {
    const hp = new RegExp(`^${HOST}:(\\d{1,5})$`).exec(n);
    if (!hp || !(Number(hp[2]) > 0 && Number(hp[2]) < 65536)) throw bad(`sentinel "${n.slice(0, 60)}" is not host:port`);
    return { host: hp[1].replace(/^\[|\]$/g, ''), port: Number(hp[2]) };
  });
  if (query.sentinel_user) o.sentinelUsername = query.sentinel_user;
  if (query.sentinel_password) o.sentinelPassword = query.sentinel_password;
}

// The seeds of a cluster URL (o.cluster: [{host, port}], port 6379 when not given).
function clusterSeeds(o, rest, bad) {
  if (rest.includes('/')) throw bad('a cluster URL takes no /db (a Redis Cluster has db 0 only)');
  if (!rest) throw bad('no seed node (redis-cluster://host[:port][,host[:port]...])');
  o.cluster = rest.split(',').map((n) => {
    const hp = new RegExp(`^${HOST}(?::(\\d{1,5}))?$`).exec(n);
    const port = hp ? Number(hp[2] || 6379) : 0;
    if (!hp || !(port > 0 && port < 65536)) throw bad(`seed node "${n.slice(0, 60)}" is not host:port`);
    return { host: hp[1].replace(/^\[|\]$/g, ''), port };
  });
}

function dbNumber(s, bad) {
  if (!/^\d+$/.test(s)) throw bad(`db "${s.slice(0, 20)}" is not a non-negative integer`);
  return Number(s);
}

// tls.connect options: verification and hostname checking on (against
// ca=, else Node's store) unless insecure=1; servername (sni=) is both what
// is sent and what the certificate is checked against. The files are read
// now, so a missing one is an InvalidInput at construction.
function tlsOptions(query, bad) {
  if (('cert' in query) !== ('key' in query)) {
    const [have, missing] = 'cert' in query ? ['cert', 'key'] : ['key', 'cert'];
    throw bad(`${have}= without ${missing}= (a client certificate needs both)`);
  }
  if ('insecure' in query && !['0', '1'].includes(query.insecure)) throw bad('insecure must be 1 or 0');
  const read = (name) => {
    try {
      return readFileSync(query[name]);
    } catch (e) {
      throw bad(`${name}=${query[name]}: ${e.code === 'ENOENT' ? 'No such file or directory' : e.message}`);
    }
  };
  const t = { rejectUnauthorized: query.insecure !== '1' };
  if (query.ca) t.ca = read('ca');
  if (query.cert) Object.assign(t, { cert: read('cert'), key: read('key') });
  if (query.sni) t.servername = query.sni;
  return t;
}

/** The URL without its secrets: the password in the authority (up to the
 * last '@', so a password holding '@' is hidden whole) and a
 * sentinel_password parameter. */
export function redact(url) {
  const s = String(url);
  const sep = s.indexOf('://');
  if (sep < 0) return s;
  let rest = s.slice(sep + 3);
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const colon = rest.slice(0, at).indexOf(':');
    rest = colon < 0 ? rest : `${rest.slice(0, colon)}:***${rest.slice(at)}`;
  }
  return s.slice(0, sep + 3) + rest.replace(/([?&]sentinel_password=)[^&]*/g, '$1***');
}

// Lanework URLs (CONTRACT section 2) as ioredis options:
//   redis://[[user]:password@]host[:port][/db]
//   unix://[[user]:password@]/path/to.sock[?db=N]
import { InvalidInput } from './errors.js';

const RE = /^(redis|unix):\/\/(?:([^:@/]*)(?::([^@]*))?@)?(.*)$/;

/** {options, shown}: ioredis options, and the URL without its password. */
export function parseUrl(url) {
  const m = RE.exec(url);
  if (!m) throw new InvalidInput(`lanework: redis: ${redact(url)} is not a redis:// or unix:// URL`);
  const [, scheme, user, password, rest] = m;
  const o = {};
  if (user) o.username = decodeURIComponent(user);
  if (password !== undefined) o.password = decodeURIComponent(password);
  if (scheme === 'unix') {
    const [path, query = ''] = rest.split('?');
    if (!path.startsWith('/')) throw new InvalidInput(`lanework: redis: ${redact(url)}: a unix:// URL needs an absolute path`);
    o.path = path;
    const db = new URLSearchParams(query).get('db');
    if (db != null) o.db = dbNumber(db, url);
  } else {
    const [hostport, db] = rest.split('/');
    const hp = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(hostport);
    if (!hp) throw new InvalidInput(`lanework: redis: ${redact(url)}: bad host:port`);
    o.host = hp[1].replace(/^\[|\]$/g, '') || '127.0.0.1';
    o.port = hp[2] ? Number(hp[2]) : 6379;
    if (db) o.db = dbNumber(db, url);
  }
  return { options: o, shown: redact(url) };
}

function dbNumber(s, url) {
  if (!/^\d+$/.test(s)) throw new InvalidInput(`lanework: redis: ${redact(url)}: db "${s}" is not a number`);
  return Number(s);
}

/** The URL with its password replaced by *** (never in an error). */
export function redact(url) {
  return String(url).replace(/^([a-z]+:\/\/[^:@/]*):[^@]*@/, '$1:***@');
}

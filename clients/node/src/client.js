// lanework's Client for Node: enqueue and steer jobs, on ioredis, running
// the very Lua scripts of the C fleet (common/scripts/) with the CLI's
// validation and defaults.
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import Redis from 'ioredis';
import { InvalidInput, JobFailed, LaneworkError, NoSuchJob, ProtocolMismatch, RedisUnavailable, WaitTimeout } from './errors.js';
import { library, protocol, script } from './interface.js';
import { checkName, resolve, secondsMs } from './jobs.js';
import { needsKnown, parseCount, partitionOf, partitionPrefix, place, refusedCount } from './partition.js';
import { parseUrl } from './url.js';
import { ClusterMap, FOLLOW_MS, POLL_MS, keySlot, redirection, unsent } from './cluster.js';
import { TERMINAL, eventView, isStreamId, jobView, splitEventId } from './views.js';

const CALL_JOBS = 256; // jobs per enqueue.lua call, as the CLI's --batch
const CHECK_MS = 1000; // wait: the record is read again at least this often
const EVENTS_PAGE = 1000;
const FOLLOW_BLOCK_MS = 5000;
// events follow of a partitioned tenant: a held event (#followMerged) is
// looked at again after at most this long.
const FOLLOW_POLL_MS = 100;
const WAIT_MS = 1000; // minReplicas: how long WAIT gives the replicas to confirm a change
const SENTINEL_TIMEOUT_MS = 2000; // a sentinel that does not answer within this is skipped
// After this many rounds of sentinels that all fail (down, a certificate
// that does not verify, a wrong sentinel_password), the calls waiting for
// the connection fail with RedisUnavailable; the connection keeps trying.
const SENTINEL_ROUNDS = 3;
const PROBE_MS = 100; // rediss-sentinel://: how long a TLS handshake with a sentinel gets to tell why it failed

// TLS failures worded for a user (Node's codes for a certificate that did
// not verify, and the alert of a server that wants a client certificate).
const CERT_CODES = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID']);

// The same failures as words only: ioredis's sentinel connector rewraps
// them ("All sentinels are unreachable... Last error: ...") without the code.
const CERT_TEXT = /self-signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|Hostname\/IP does not match|certificate has expired/i;

function tlsWhy(e) {
  if (!e) return null;
  if (CERT_CODES.has(e.code) || CERT_TEXT.test(String(e.message))) return `TLS: the server's certificate did not verify: ${e.message.split('\n')[0].replace(/^.*Last error: /, '')}`;
  if (/certificate required/i.test(String(e.message)) || e.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
    return 'TLS: the server requires a client certificate (cert= and key= in the URL)';
  return null;
}

function minReplicasOf(v) {
  if (v == null) return envInt('LANEWORK_MIN_REPLICAS', 0);
  if (!Number.isInteger(v) || v < 0) throw new InvalidInput(`lanework: minReplicas: ${JSON.stringify(v)} is not a non-negative integer`);
  return v;
}

function envInt(name, dflt) {
  const v = process.env[name];
  if (!v) return dflt;
  if (!/^\d+$/.test(v)) throw new InvalidInput(`lanework: ${name}: "${v}" is not an integer`);
  return Number(v);
}

/** Runs fn; an InvalidInput it throws gets "lanework: CMD: " in front, the
 * shape of every CLI error line. */
function named(cmd, fn, where = '') {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InvalidInput && !e.message.startsWith('lanework:')) throw new InvalidInput(`lanework: ${cmd}: ${where}${e.message}`);
    throw e;
  }
}

// a < b for stream entry ids "MS-SEQ".
function eidLess(a, b) {
  return pairLess(eidPair(a), eidPair(b));
}

// Stream entry id "MS-SEQ" as [ms, seq] (BigInt), and its order.
function eidPair(id) {
  const [ms, seq = '0'] = id.split('-');
  return [BigInt(ms), BigInt(seq)];
}
function pairLess(a, b) {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

// Each partition's cursor for events({since}) on a tenant of k partitions,
// as `lanework events --since` (cmd_events.c events_partitioned): {last:
// the last id read, incl: its own id is still to read}, per partition.
// `ID#P` (P >= 1): every partition starts after ID, but those after P at ID
// (inclusive) -- in the merged (id, partition) order an entry ID of
// partition Q > P comes after ID#P; a plain ID is ID#0. InvalidInput for a
// partition the tenant does not have.
function sinceCursors(since, k, tenant) {
  if (since == null) return { last: Array(k).fill(''), incl: Array(k).fill(false) };
  const [id, part] = splitEventId(since);
  if (part && k <= 1)
    throw new InvalidInput(`lanework: events: since: "${since.slice(0, 64)}" names a partition, but tenant ${tenant} is not partitioned`);
  if (part >= k)
    throw new InvalidInput(`lanework: events: since: "${since.slice(0, 64)}" names partition ${part}, but tenant ${tenant} has ${k}`);
  return { last: Array(k).fill(id), incl: Array.from({ length: k }, (_, p) => p > part) };
}

// XRANGE's start after cursor `last` ('': from the first entry; incl: at it).
function xrangeStart(last, incl) {
  if (!last) return '-';
  return incl ? last : '(' + last;
}

function checkIds(cmd, tenant, id) {
  named(cmd, () => {
    checkName('tenant', tenant, true);
    checkName('id', id, true);
  });
}

// How a script runs (as the C code and the Python client do): FCALL of the
// function library (lib.lua's closures built once per load, not once per
// call) while the server has it; "Function not found" (the server restarted
// empty, FUNCTION FLUSH) is answered by FUNCTION LOAD and the call is sent
// again. A server that refuses FCALL or FUNCTION LOAD (an ACL user without
// them, a Redis before 7) makes that connection run the scripts by EVALSHA
// for EVALSHA_FOR_MS (then FCALL is tried again, so a long-lived app finds
// a library an operator loaded after it started); NOSCRIPT is answered by
// SCRIPT LOAD. Each of these errors means the script did not run, so
// sending it again cannot run it twice.
const EVALSHA_FOR_MS = 300000;
const evalshaUntil = new WeakMap(); // connection -> until when it runs scripts by EVALSHA

function evalshaOnly(conn) {
  return (evalshaUntil.get(conn) || 0) > Date.now();
}

function setEvalshaOnly(conn) {
  evalshaUntil.set(conn, Date.now() + EVALSHA_FOR_MS);
}

function isNoscript(e) {
  return e && String(e.message).startsWith('NOSCRIPT');
}

function noFunction(e) {
  return e && String(e.message).startsWith('ERR Function not found');
}

// FCALL refused as a command (not by what the function ran).
function fcallRefused(e) {
  const m = String(e && e.message);
  return Boolean(e) && (m.includes("'fcall' command") || m.startsWith('ERR unknown command'));
}

function notRun(e) {
  return noFunction(e) || fcallRefused(e) || isNoscript(e);
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// What a slot served by no master (a failover under way) is met as: a
// CLUSTERDOWN reply, followed as the others.
function noOwner(slot) {
  const e = new Error(`CLUSTERDOWN Hash slot ${slot} is served by no master`);
  e.name = 'ReplyError';
  return e;
}

// What a command never sent on a master's connection (ioredis' "Reached
// the max retries per request limit") met: why that connection failed,
// with the node's address.
function nodeError(conn, e) {
  const why = conn.lwLastError;
  if (!why) return e;
  const out = new Error(String(why.message).includes(`${conn.options.port}`) ? why.message : `${conn.options.host}:${conn.options.port}: ${why.message}`);
  out.code = why.code;
  return out;
}

// Queues (on a pipeline) or sends script s in conn's current mode.
function sendScript(target, conn, s, keys, argv) {
  if (evalshaOnly(conn)) return target.evalsha(s.sha1, keys.length, ...keys, ...argv);
  return target.fcall(s.function, keys.length, ...keys, ...argv);
}

/** A connection to one lanework Redis. */
export class Client {
  /**
   * @param {{url?: string, namespace?: string, maxPayload?: number, minReplicas?: number}} [opts]
   * url, namespace default as for the CLI: LANEWORK_REDIS_URL (else
   * redis://127.0.0.1:6379/0), LANEWORK_NAMESPACE (else lw); maxPayload:
   * LANEWORK_MAX_PAYLOAD, else 1 MiB (0: no limit); minReplicas:
   * LANEWORK_MIN_REPLICAS, else 0 (every state change WAITs for that many
   * replicas; RedisUnavailable when fewer confirm it).
   */
  constructor({ url, namespace, maxPayload, minReplicas } = {}) {
    this.url = url || process.env.LANEWORK_REDIS_URL || 'redis://127.0.0.1:6379/0';
    this.namespace = namespace || process.env.LANEWORK_NAMESPACE || 'lw';
    this.maxPayload = maxPayload ?? envInt('LANEWORK_MAX_PAYLOAD', 1024 * 1024);
    // Fallbacks the scripts use only while no worker has published the
    // tenant's settings (lib.lua `setting`), as the CLI passes them.
    this.eventsMax = envInt('LANEWORK_EVENTS_MAX', 100000);
    this.keepFailed = envInt('LANEWORK_KEEP_FAILED', 7 * 24 * 3600);
    this.minReplicas = minReplicasOf(minReplicas);
    const { options, shown, insecure } = parseUrl(this.url);
    this.shown = shown;
    this.sentinel = Boolean(options.sentinels);
    this.options = {
      ...options,
      lazyConnect: true,
      connectTimeout: 5000,
      // A command fails soon when Redis is away (RedisUnavailable), while
      // the connection keeps trying to come back for the next one.
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    };
    // A WAIT in flight when the connection drops must not be resent alone
    // on the next one: there it would confirm nothing (that connection
    // wrote nothing) and could count replicas that never got the change.
    if (this.minReplicas) this.options.autoResendUnfulfilledCommands = false;
    if (this.sentinel) {
      Object.assign(this.options, {
        sentinelCommandTimeout: SENTINEL_TIMEOUT_MS,
        // When no sentinel answers, ioredis tries them all again after this
        // (for ever: giving up would end the connection for good, see
        // SENTINEL_ROUNDS for what the calls waiting meanwhile get). Over
        // TLS the first round also has #probeSentinel learn why (ioredis
        // keeps no TLS error of a sentinel's).
        sentinelRetryStrategy: (times) => {
          if (times === 1 && options.sentinelTLS) this.#probeSentinel();
          return Math.min(100 * times, 1000);
        },
        // READONLY: the node this connection reached was the master and is
        // a replica now (a failover). Reconnect, which asks the sentinels
        // for the new master. 1, not 2: the command is failed (outage),
        // never resent alone on the new connection -- a pipelined WAIT
        // would then have gone before the write it was to confirm.
        reconnectOnError: (e) => (String(e.message).startsWith('READONLY') ? 1 : false),
      });
    }
    if (insecure)
      process.emitWarning(`lanework: redis ${shown}: insecure=1: the server's certificate is not verified (anyone on the path can read and change the traffic)`,
        { type: 'LaneworkWarning', code: 'LANEWORK_TLS_INSECURE' });
    this.cluster = null;
    if (options.cluster) {
      // On a cluster (cluster.js) a call in flight when its connection
      // drops is never sent again: it may have run.
      this.options.autoResendUnfulfilledCommands = false;
      const { cluster, ...nodeOptions } = this.options;
      this.cluster = new ClusterMap(cluster, (host, port) => this.#watch(new Redis({ ...nodeOptions, host, port })));
      this.redis = null; // each call goes to the master of its slot (#at)
    } else {
      this.redis = this.#connection();
    }
    this.protocolChecked = new Map(); // tenant -> Promise of the check
    this.partitionCounts = new Map(); // tenant -> its partition count, read once
    // The partitioned tenants whose partition 0 may still answer for ids and
    // unique keys from before (settings legacy_until, known.lua): read with
    // the count, dropped once a known.lua reply says the window has passed.
    this.partitionLegacy = new Set();
  }

  // What console.log and util.inspect show of a client: never the URL's
  // password (this.url and this.options hold it).
  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Client { url: '${this.shown}', namespace: '${this.namespace}', minReplicas: ${this.minReplicas} }`;
  }

  #connection() {
    return this.#watch(new Redis(this.options));
  }

  /** Keeps the last connection error of `conn` (reported by the command
   * that fails: ioredis emits it apart), forgotten once connected again. */
  #watch(conn) {
    // A TLS failure is kept apart: the reset that follows a server's
    // alert would otherwise hide what went wrong.
    let rounds = 0;
    conn.on('error', (e) => {
      // On a cluster each master's connection keeps its own (another
      // master's, or a dead seed's reconnecting, would say the wrong thing).
      conn.lwLastError = e;
      if (!this.cluster) this.lastError = e;
      if (tlsWhy(e)) this.lastTlsError = e;
      // ioredis keeps the calls queued while its sentinel connector loops;
      // flushQueue (ioredis 5's own way to fail them) lets them go.
      if (String(e.message).startsWith('All sentinels are unreachable') && ++rounds >= SENTINEL_ROUNDS && typeof conn.flushQueue === 'function') {
        rounds = 0;
        conn.flushQueue(e);
      }
    });
    conn.on('ready', () => {
      conn.lwLastError = null;
      this.lastError = this.lastTlsError = null;
      this.everReady = true;
      rounds = 0;
    });
    return conn;
  }

  #fail(e, what = 'redis') {
    if (e instanceof LaneworkError) return e;
    const out = this.#failOf(e, what);
    // The ioredis error, for #route to tell a redirection or a command
    // never sent (not enumerable: it is no part of the message).
    Object.defineProperty(out, 'source', { value: e, enumerable: false });
    // A lost connection or a redirection: the map is read again before the next call.
    if (this.cluster && (!(e && e.name === 'ReplyError') || redirection(e))) this.cluster.stale = true;
    return out;
  }

  #failOf(e, what) {
    if (e && e.name === 'ReplyError') {
      // READONLY under Sentinel: a failover; the connection is being
      // re-made to the new master, so this is an outage to wait out. On
      // a cluster a redirection still there after #route followed it
      // (a slot migrating, a failover) is one too.
      const failover = (this.sentinel && e.message.startsWith('READONLY')) || Boolean(this.cluster && redirection(e));
      return new RedisUnavailable(`lanework: ${what}: redis refused: ${e.message.split('\n')[0]}`, failover);
    }
    const why = tlsWhy(this.lastTlsError) || tlsWhy(e) || this.#resetHint() || (this.lastError && this.lastError.message) || (e && e.message) || String(e);
    // The sentinels refusing the client: their password, not an outage.
    const refused = /^All sentinels are unreachable.*Last error: (WRONGPASS|NOAUTH) (.*)/.exec(why);
    const none = /^All sentinels are unreachable[^]*?(?:Last error: (.*))?$/.exec(why);
    if (refused)
      return new RedisUnavailable(`lanework: redis ${this.shown}: ${refused[1]} from the sentinels (sentinel_user/sentinel_password): ${refused[2].split('\n')[0]}`);
    if (none) return new RedisUnavailable(`lanework: redis ${this.shown}: no sentinel names a master${none[1] ? ` (last error: ${none[1].split('\n')[0]})` : ''}`, true);
    return new RedisUnavailable(`lanework: redis ${this.shown}: ${why.split('\n')[0]}`, true);
  }

  /** ioredis reports sentinels it could not reach as "Connection is
   * closed", the TLS error gone: one handshake with the first sentinel
   * finds it (a certificate that did not verify), for #fail to report. */
  #probeSentinel() {
    if (this.probing) return;
    this.probing = true;
    const { host, port } = this.options.sentinels[0];
    const sock = tlsConnect({ ...this.options.sentinelTLS, host, port, servername: this.options.sentinelTLS.servername || (isIP(host) ? undefined : host) });
    const done = () => {
      this.probing = false;
      sock.destroy();
    };
    sock.once('secureConnect', done);
    sock.once('error', (e) => {
      if (tlsWhy(e)) this.lastTlsError = e;
      done();
    });
    sock.setTimeout(PROBE_MS, done);
  }

  /** A TLS 1.3 server that wants a client certificate alerts after the
   * handshake, and the client, already writing, often sees only the reset
   * that follows: say so while no connection of this client was ever
   * accepted and it sends no certificate. */
  #resetHint() {
    const e = this.lastError;
    if (!e || !['ECONNRESET', 'EPIPE'].includes(e.code) || this.everReady || !this.options.tls || this.options.tls.cert) return null;
    return `TLS: the server reset the connection (${e.message}): if it requires a client certificate, give cert= and key= in the URL`;
  }

  /** Queues WAIT on pipeline p after its writes (same connection, same
   * round trip), when minReplicas asks for it; before it a PUBLISH on
   * channel (the partition's PREFIXsync), as the CLI's cli_confirm: a call
   * that wrote nothing (an existing job returned) still moves the
   * connection's replication offset. */
  #queueWait(p, channel) {
    if (!this.minReplicas) return;
    if (channel) p.call('PUBLISH', channel, '');
    p.call('WAIT', this.minReplicas, WAIT_MS);
  }

  // ---- where a call goes: this.redis, or on a cluster the master of its slot

  /** fn(conn) on conn when given (this.redis off a cluster, a connection
   * of its own), else (a cluster) on the master of key's slot (#route). */
  #at(conn, key, fn) {
    return conn ? fn(conn) : this.#route(keySlot(key), fn);
  }

  /** The master of key's slot (a cluster). */
  async #nodeFor(key) {
    const slot = keySlot(key);
    const a = await this.cluster.addrFor(slot).catch((e) => { throw this.#fail(e); });
    if (!a) throw new RedisUnavailable(`lanework: redis ${this.shown}: CLUSTERDOWN slot ${slot} is served by no master`, true);
    return this.cluster.node(a);
  }

  /** fn(conn) on the master of slot, following a redirection (MOVED at
   * once, to the node it names; ASK, TRYAGAIN, CLUSTERDOWN after a pause
   * and a fresh map) or a command never sent, within FOLLOW_MS: in each
   * the call did not run. Anything else goes up as fn threw it. */
  async #route(slot, fn) {
    const deadline = Date.now() + FOLLOW_MS;
    let pause = 0;
    for (;;) {
      let err;
      let thrown;
      const a = await this.cluster.addrFor(slot).catch((e) => { throw this.#fail(e); });
      if (!a) {
        err = thrown = noOwner(slot);
      } else {
        const node = this.cluster.node(a);
        try {
          return await fn(node);
        } catch (e) {
          const raw = (e && e.source) || e;
          if (!redirection(raw) && !unsent(raw)) throw e;
          err = raw;
          thrown = unsent(raw) ? this.#fail(nodeError(node, raw)) : e;
        }
      }
      if (Date.now() >= deadline) throw thrown;
      if (redirection(err) === 'MOVED') {
        await this.cluster.refresh().catch((e) => { throw this.#fail(e); });
        this.cluster.moved(err);
      } else {
        this.cluster.stale = true;
        pause = pause ? Math.min(pause * 2, 500) : 50;
        await sleep(pause);
      }
    }
  }

  /** Pipelines items ({key, send(pipeline, conn), script?, channel?}) on
   * conn, or on a cluster per master (in parallel), each master's with
   * its PUBLISH + WAIT when wait and minReplicas. Resolves to [[err,
   * reply]] in order. A call that did not run is sent again: after the
   * mend (notRun), and on a cluster after a redirection or when it was
   * never sent, routed again, within FOLLOW_MS. */
  async #pipe(conn, items, { wait = false, what = 'redis' } = {}) {
    const out = new Array(items.length);
    const waitN = wait ? this.minReplicas : 0;
    const deadline = Date.now() + FOLLOW_MS;
    let todo = items.map((_, i) => i);
    let pause = 0;
    let moved = [];
    for (let round = 0; todo.length; round++) {
      const groups = new Map();
      if (this.cluster) {
        if (this.cluster.stale || !this.cluster.slots) await this.cluster.refresh();
        for (const m of moved) this.cluster.moved(m); // newer than a seed's map may be
        moved = [];
        for (const i of todo) {
          const a = this.cluster.slots[keySlot(items[i].key)];
          const id = a ? `${a.host}:${a.port}` : '';
          if (!groups.has(id)) groups.set(id, { addr: a, idx: [] });
          groups.get(id).idx.push(i);
        }
      } else {
        groups.set('', { addr: null, idx: todo });
      }
      const again = [];
      let last = null;
      await Promise.all([...groups.values()].map(async ({ addr, idx }) => {
        if (this.cluster && !addr) {
          again.push(...idx);
          last = noOwner(keySlot(items[idx[0]].key));
          return;
        }
        const c = this.cluster ? this.cluster.node(addr) : conn;
        const p = c.pipeline();
        for (const i of idx) items[i].send(p, c);
        if (waitN) this.#queueWait(p, items[idx[0]].channel);
        const got = await p.exec();
        const mend = [];
        let notRunErr = null;
        let ran = false;
        idx.forEach((i, k) => {
          const [err] = got[k];
          if (err && notRun(err) && round < 2) {
            mend.push(i);
            notRunErr = notRunErr || err;
          } else if (this.cluster && err && (redirection(err) || unsent(err)) && Date.now() < deadline) {
            again.push(i);
            last = err;
            if (redirection(err) === 'MOVED') moved.push(err);
            else this.cluster.stale = true;
          } else {
            out[i] = unsent(err) ? [nodeError(c, err), null] : got[k];
            ran = ran || !err;
          }
        });
        if (waitN && ran) this.#confirmed(got, what);
        if (notRunErr) {
          await this.#mend(c, notRunErr, [...new Set(mend.map((i) => items[i].script).filter(Boolean))]);
          again.push(...mend);
        }
      }));
      todo = again.sort((a, b) => a - b);
      if (todo.length && this.cluster && last && redirection(last) !== 'MOVED') {
        this.cluster.stale = true;
        pause = pause ? Math.min(pause * 2, 500) : 50;
        await sleep(pause);
      }
    }
    return out;
  }

  /** Takes WAIT's reply off the end of pipeline replies `got` (when sent);
   * RedisUnavailable (.unconfirmed) when fewer replicas confirmed. */
  #confirmed(got, what) {
    if (!this.minReplicas) return got;
    const [err, n] = got[got.length - 1];
    if (err) throw this.#fail(err, what);
    if (n < this.minReplicas) {
      const e = new RedisUnavailable(`lanework: ${what}: ${n} of ${this.minReplicas} replicas confirmed the change within ${WAIT_MS} ms: it may be lost in a failover`);
      e.unconfirmed = true;
      throw e;
    }
    return got.slice(0, -1);
  }

  async #call(conn, ...args) {
    try {
      return await conn.call(...args);
    } catch (e) {
      throw this.#fail(e);
    }
  }

  /** Refuses a Redis whose lanework protocol differs from the scripts'.
   * The version sits in the tenant's own key `NS:{T}:protocol` (a Redis ACL
   * user limited to `~NS:{T}:*` can read it; in a Cluster it lives on the
   * tenant's slot); one that has none yet gets ours. Once per client and
   * tenant, before anything else is sent for it. */
  #checkProtocol(tenant) {
    let p = this.protocolChecked.get(tenant);
    if (!p) {
      p = (async () => {
        const ours = String(protocol());
        const key = `${this.#prefix(tenant)}protocol`;
        try {
          const on = (fn) => this.#at(this.redis, key, fn);
          let theirs = await on((c) => c.get(key));
          if (theirs === null) {
            await on((c) => c.set(key, ours, 'NX'));
            theirs = await on((c) => c.get(key));
          }
          if (theirs !== ours)
            return new ProtocolMismatch(`lanework: protocol: this client speaks lanework protocol ${ours}, the Redis at ${this.shown} holds protocol ${theirs} (key ${key}): upgrade the older side`);
        } catch (e) {
          return this.#fail(e);
        }
        return null;
      })();
      this.protocolChecked.set(tenant, p);
    }
    return p.then((err) => {
      if (err) {
        if (!(err instanceof ProtocolMismatch)) this.protocolChecked.delete(tenant); // an outage: ask again next time
        throw err;
      }
    });
  }

  async #script(conn, name, keys, argv, prefix) {
    if (!conn) {
      // A cluster: on the master of the partition's slot, with its WAIT there.
      const s = script(name);
      const item = { key: keys[0], script: s, channel: `${prefix}sync`, send: (p, c) => sendScript(p, c, s, keys, argv) };
      let got;
      try {
        [got] = await this.#pipe(null, [item], { wait: true, what: name });
      } catch (e) {
        throw this.#fail(e, name);
      }
      if (got[0]) throw this.#fail(got[0], name);
      return got[1];
    }
    if (this.minReplicas) return this.#scriptWaited(conn, name, keys, argv, prefix);
    const s = script(name);
    try {
      for (let tries = 0; ; tries++) {
        try {
          return await sendScript(conn, conn, s, keys, argv);
        } catch (e) {
          if (!notRun(e) || tries === 2) throw e;
          await this.#mend(conn, e, [s]);
        }
      }
    } catch (e) {
      throw this.#fail(e, name);
    }
  }

  // #script with minReplicas: the call and its WAIT in one pipeline.
  async #scriptWaited(conn, name, keys, argv, prefix) {
    const s = script(name);
    for (let tries = 0; ; tries++) {
      const p = conn.pipeline();
      sendScript(p, conn, s, keys, argv);
      this.#queueWait(p, `${prefix}sync`);
      let got;
      try {
        got = await p.exec();
      } catch (e) {
        throw this.#fail(e, name);
      }
      const [err, rep] = got[0];
      if (err && notRun(err) && tries < 2) {
        await this.#mend(conn, err, [s]).catch((e) => { throw this.#fail(e, name); });
        continue;
      }
      if (err) throw this.#fail(err, name);
      this.#confirmed(got, name);
      return rep;
    }
  }

  // Makes ready to send again calls of `scripts` that did not run (err):
  // loads the library or the scripts, or turns conn to EVALSHA.
  async #mend(conn, err, scripts) {
    if (fcallRefused(err)) {
      setEvalshaOnly(conn);
    } else if (noFunction(err)) {
      try {
        await conn.function('LOAD', library().text);
      } catch (e) {
        if (e.name !== 'ReplyError') throw e;
        // "Function ... already exists" is not ours: another library holds one of our names.
        if (e.message !== `ERR Library '${library().name}' already exists`) setEvalshaOnly(conn);
      }
    } else {
      for (const s of scripts) await this.#load(conn, s);
    }
  }

  async #load(conn, s) {
    const sha = await conn.script('LOAD', s.body);
    if (sha !== s.sha1) throw new RedisUnavailable(`lanework: redis: SCRIPT LOAD answered ${sha}, not ${s.sha1}`);
  }

  #prefix(tenant) {
    return `${this.namespace}:{${tenant}}:`;
  }

  /**
   * Enqueues one job; resolves to its id. An existing job returned instead
   * (`id` exists, `unique` held: CONTRACT 4.5) gives its id too; with
   * `details: true` the result is {id, created, why}.
   * @param {string} tenant @param {string} kind @param {*} payload any JSON value
   * @param {{lane?, queue?, id?, unique?, delay?, attempts?, timeout?, expires?, uniqueFor?, details?}} [opts]
   */
  async enqueue(tenant, kind, payload = null, opts = {}) {
    const { details, ...rest } = opts;
    const [one] = await this.#enqueue(tenant, [{ ...rest, kind, payload }], details, true);
    return one;
  }

  /**
   * Enqueues an array of jobs ({kind, payload, lane, queue, id, unique,
   * delay, attempts, timeout, expires, uniqueFor}), pipelined, 256 per
   * script call; every job is checked before anything is sent. Resolves to
   * the ids in order ({id, created, why} each with `details: true`).
   */
  async enqueueMany(tenant, jobs, { details = false } = {}) {
    return this.#enqueue(tenant, jobs, details, false);
  }

  /** The partition count in force for tenant (cached for the client's
   * life): partition 0's settings field `partitions`, absent 1 -- as the
   * CLI reads it (enqueue-cli/partitions.c), with `legacy_until` in the
   * same HMGET: partition 0 may still answer for ids and unique keys from
   * before the tenant was partitioned (#knownBefore). */
  async #partitions(tenant) {
    let k = this.partitionCounts.get(tenant);
    if (k === undefined) {
      const key = `${this.#prefix(tenant)}settings`;
      const [count, until] = await this.#at(this.redis, key, (c) => this.#call(c, 'HMGET', key, 'partitions', 'legacy_until'));
      k = parseCount(count);
      this.#setCount(tenant, k, until !== null);
    }
    return k;
  }

  #setCount(tenant, k, legacy) {
    this.partitionCounts.set(tenant, k);
    if (legacy && k > 1) this.partitionLegacy.add(tenant);
    else this.partitionLegacy.delete(tenant);
  }

  /** The key prefix of the partition holding job `id`: the id's own
   * partition first, then the others (one pipelined round trip), as the
   * CLI's cli_job_partition; none holding it: the id's own, where the
   * command finds no job and says so. */
  async #jobPrefix(conn, tenant, id, cmd) {
    let k = await this.#partitions(tenant);
    const refused = (e) => {
      if (e && e.name === 'ReplyError') return new RedisUnavailable(`lanework: ${cmd}: redis refused: ${e.message.split('\n')[0]}`);
      return this.#fail(e, cmd);
    };
    const holds = async (prefix) => {
      try {
        return (await this.#at(conn, `${prefix}job:${id}`, (c) => c.exists(`${prefix}job:${id}`))) === 1;
      } catch (e) {
        throw refused(e.source || e);
      }
    };
    if (k === 1) {
      // The one count that can be stale: 1 -> K (DESIGN.md section 11).
      // Not in partition 0: read the count again before saying "no job".
      const zero = partitionPrefix(this.namespace, tenant, 0);
      if (await holds(zero)) return zero;
      this.partitionCounts.delete(tenant);
      k = await this.#partitions(tenant);
      if (k === 1) return zero;
    }
    const own = partitionOf(id, k);
    const mine = partitionPrefix(this.namespace, tenant, own);
    if (await holds(mine)) return mine;
    const others = [];
    for (let p = 0; p < k; p++) if (p !== own) others.push(p);
    let got;
    try {
      got = await this.#pipe(conn, others.map((p) => {
        const key = `${partitionPrefix(this.namespace, tenant, p)}job:${id}`;
        return { key, send: (pipe) => pipe.exists(key) };
      }));
    } catch (e) {
      throw refused(e);
    }
    for (let i = 0; i < others.length; i++) {
      const [err, has] = got[i];
      if (err) throw refused(err);
      if (has === 1) return partitionPrefix(this.namespace, tenant, others[i]);
    }
    return mine;
  }

  // The enqueue.lua calls of specs resolved[i] for i in todo, routed among
  // k partitions (parts: i -> place()'s answer): [{keys, argv, idx:
  // [i...]}], each partition's jobs in their input order, CALL_JOBS a call.
  #enqueueCalls(tenant, resolved, todo, k, parts) {
    const byPart = new Map();
    for (const i of todo) {
      const p = parts.get(i);
      if (!byPart.has(p)) byPart.set(p, []);
      byPart.get(p).push(i);
    }
    const s = script('enqueue');
    const calls = [];
    for (const p of [...byPart.keys()].sort((a, b) => a - b)) {
      const prefix = partitionPrefix(this.namespace, tenant, p);
      const idx = byPart.get(p);
      for (let n = 0; n < idx.length; n += CALL_JOBS) {
        const part = idx.slice(n, n + CALL_JOBS);
        const { keys, argv } = s.callArgs(prefix, { prefix, events_cap: this.eventsMax, partitions: k }, { job: part.map((i) => resolved[i]) });
        calls.push({ keys, argv, idx: part, prefix });
      }
    }
    return calls;
  }

  // Sends enqueue calls pipelined (with their WAIT; on a cluster per
  // master); a call that did not run (notRun, a redirection) is sent again
  // (#pipe). Resolves to each call's reply, or its refusal (a ReplyError).
  async #sendEnqueues(calls) {
    const s = script('enqueue');
    const items = calls.map((c) => ({ key: c.keys[0], script: s, channel: `${c.prefix}sync`, send: (p, conn) => sendScript(p, conn, s, c.keys, c.argv) }));
    let got;
    try {
      got = await this.#pipe(this.redis, items, { wait: true, what: 'enqueue' });
    } catch (e) {
      throw this.#fail(e, 'enqueue');
    }
    return got.map(([err, rep]) => {
      if (err && err.name !== 'ReplyError') throw this.#fail(err, 'enqueue');
      return err || rep;
    });
  }

  // Partition 0's answers (known.lua) for the jobs of todo that need asking
  // (needsKnown): a job it answers for is that existing job, put into out[i]
  // as enqueue.lua's "existed" answer would be, and left out of the enqueue.
  // One call per CALL_JOBS of them, pipelined (on a cluster on partition
  // 0's master), in one round trip before the enqueue calls. Resolves to
  // {todo: the others, refused: the refusal met or null (its jobs are left
  // out too: not enqueued)}; drops the tenant's legacy mark once a reply
  // says the window has passed.
  async #knownBefore(tenant, resolved, todo, parts, out, details) {
    const ask = todo.filter((i) => needsKnown(resolved[i], parts.get(i)));
    if (!ask.length) return { todo, refused: null };
    const s = script('known');
    const prefix = partitionPrefix(this.namespace, tenant, 0);
    const calls = [];
    for (let n = 0; n < ask.length; n += CALL_JOBS) {
      const idx = ask.slice(n, n + CALL_JOBS);
      const { keys, argv } = s.callArgs(prefix, { prefix, events_cap: this.eventsMax },
        { job: idx.map((i) => ({ id: resolved[i].id, unique: resolved[i].unique })) });
      calls.push({ idx, item: { key: keys[0], script: s, send: (p, conn) => sendScript(p, conn, s, keys, argv) } });
    }
    let got;
    try {
      got = await this.#pipe(this.redis, calls.map((c) => c.item), { what: 'enqueue' });
    } catch (e) {
      throw this.#fail(e, 'enqueue');
    }
    const gone = new Set();
    let refused = null;
    let closed = false;
    calls.forEach(({ idx }, n) => {
      const [err, rep] = got[n];
      if (err && err.name !== 'ReplyError') throw this.#fail(err, 'enqueue');
      if (err) {
        refused = refused || err;
        for (const i of idx) gone.add(i);
        return;
      }
      const r = s.read(rep);
      closed = closed || r.open === 0;
      r.jobs.forEach((j, m) => {
        if (!j.id) return;
        out[idx[m]] = details ? { id: j.id, created: false, why: j.why } : j.id;
        gone.add(idx[m]);
      });
    });
    if (closed) this.partitionLegacy.delete(tenant);
    return { todo: todo.filter((i) => !gone.has(i)), refused };
  }

  async #enqueue(tenant, jobs, details, single) {
    if (!Array.isArray(jobs)) throw new InvalidInput('lanework: enqueue: jobs: must be an array of job objects');
    const resolved = jobs.map((j, i) => named('enqueue', () => {
      if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new InvalidInput('must be an object');
      return resolve(tenant, j, this.maxPayload);
    }, single ? '' : `jobs[${i}]: `));
    if (!resolved.length) return [];
    await this.#checkProtocol(tenant);
    const s = script('enqueue');
    let k = await this.#partitions(tenant);
    const out = new Array(resolved.length).fill(null);
    let todo = resolved.map((_, i) => i);
    let refused = null;
    // A call refused with LWPARTITIONS K (the count changed since it was
    // read: nothing was written) is routed again by K and sent once more.
    // While partition 0 may answer for ids and unique keys from before the
    // tenant was partitioned, it is asked first (#knownBefore).
    for (let round = 0; round < 2; round++) {
      const parts = new Map(todo.map((i) => [i, place(resolved[i], k)]));
      if (this.partitionLegacy.has(tenant)) {
        const known = await this.#knownBefore(tenant, resolved, todo, parts, out, details);
        todo = known.todo;
        refused = refused || known.refused;
      }
      const calls = this.#enqueueCalls(tenant, resolved, todo, k, parts);
      if (!calls.length) break;
      const replies = await this.#sendEnqueues(calls);
      let moved = null;
      todo = [];
      calls.forEach((call, n) => {
        const rep = replies[n];
        if (rep instanceof Error) {
          const got = refusedCount(rep);
          if (got !== null && round === 0) {
            moved = got;
            todo.push(...call.idx);
          } else refused = refused || rep;
          return;
        }
        s.read(rep).forEach((j, m) => {
          out[call.idx[m]] = details ? { id: j.id, created: j.created === 1, why: j.why } : j.id;
        });
      });
      if (moved === null) break;
      k = moved;
      // The count just changed: partition 0 says whether it still answers
      // for jobs from before (known.lua's open), as the CLI does.
      this.#setCount(tenant, k, true);
      todo.sort((a, b) => a - b);
    }
    if (refused) {
      // The calls of a pipeline run independently: say how many went in,
      // and which (e.ids), so the caller can re-send only the others.
      // READONLY under Sentinel: a failover (the connection is being
      // re-made to the new master): an outage, as in #fail.
      const done = out.filter((x) => x !== null);
      const failover = this.sentinel && refused.message.startsWith('READONLY');
      const e = new RedisUnavailable(`lanework: enqueue: redis refused: ${refused.message.split('\n')[0]} (${done.length} of ${resolved.length} jobs enqueued)`, failover);
      e.ids = done;
      throw e;
    }
    return out;
  }

  /** The job as an object: what `lanework status` prints. */
  async status(tenant, id) {
    checkIds('status', tenant, id);
    await this.#checkProtocol(tenant);
    return this.#status(this.redis, await this.#jobPrefix(this.redis, tenant, id, 'status'), tenant, id);
  }

  async #status(conn, prefix, tenant, id) {
    let f;
    try {
      f = await this.#at(conn, prefix + 'job:' + id, (c) => c.hgetall(prefix + 'job:' + id));
    } catch (e) {
      if (e && e.name === 'ReplyError' && e.message.startsWith('WRONGTYPE'))
        throw new JobFailed(`lanework: status: job ${id}: corrupt record (not a hash)`);
      if (e && e.source && e.source.name === 'ReplyError' && e.source.message.startsWith('WRONGTYPE'))
        throw new JobFailed(`lanework: status: job ${id}: corrupt record (not a hash)`);
      throw this.#fail(e, 'status');
    }
    if (!Object.keys(f).length) throw new NoSuchJob(`lanework: status: no such job ${id}`);
    if (!('id' in f)) throw new JobFailed(`lanework: status: job ${id}: corrupt record (no id field)`);
    return jobView(tenant, f);
  }

  /**
   * Waits until the job ends; resolves to its status object when it
   * succeeded. JobFailed (`.job`) when it ended failed, cancelled or
   * expired; WaitTimeout after `timeout` seconds; a lost connection is
   * waited out within it. As the CLI: XREAD BLOCK on the events of the
   * job's partition (on a connection of its own), and the record read at
   * least once a second, so no event can be missed.
   */
  async wait(tenant, id, { timeout } = {}) {
    checkIds('wait', tenant, id);
    const timeoutMs = timeout == null ? null : named('wait', () => secondsMs('timeout', timeout, true));
    const deadline = timeoutMs == null ? null : Date.now() + timeoutMs;
    const timedOut = (why = '') => new WaitTimeout(`lanework: wait: timed out after ${timeoutMs / 1000}s: job ${id} not ended${why}`);
    await this.#checkProtocol(tenant);
    // On a cluster: a connection of its own to the master of the job's
    // partition, made once that is known (again after an outage).
    let conn = this.redis ? this.#watch(this.redis.duplicate()) : null;
    let prefix = null;
    let tries = 0;
    try {
      for (;;) {
        try {
          if (prefix === null) prefix = await this.#jobPrefix(conn, tenant, id, 'wait');
          if (!conn) conn = this.#watch((await this.#nodeFor(`${prefix}job:${id}`)).duplicate());
          const ev = prefix + 'events';
          const key = prefix + 'job:' + id;
          const top = await this.#call(conn, 'XREVRANGE', ev, '+', '-', 'COUNT', '1');
          let last = top.length ? top[0][0] : '0-0';
          for (;;) {
            let st;
            try {
              st = await conn.hget(key, 'status');
            } catch (e) {
              if (!(e.name === 'ReplyError' && e.message.startsWith('WRONGTYPE'))) throw this.#fail(e, 'wait');
              st = 'corrupt';
            }
            tries = 0;
            if (st === null) throw new NoSuchJob(`lanework: wait: no such job ${id}`);
            if (TERMINAL.has(st) || st === 'corrupt') {
              const job = await this.#status(conn, prefix, tenant, id);
              if (job.status === 'succeeded') return job;
              throw new JobFailed(`lanework: wait: job ${id} ended ${job.status}: ${job.error || 'no error recorded'}`, job);
            }
            const checked = Date.now();
            for (;;) {
              const now = Date.now();
              if (deadline !== null && now >= deadline) throw timedOut();
              let block = CHECK_MS - (now - checked);
              if (deadline !== null) block = Math.min(block, deadline - now);
              if (block < 1) break;
              const r = await this.#call(conn, 'XREAD', 'COUNT', '1000', 'BLOCK', String(Math.floor(block)), 'STREAMS', ev, last);
              if (!r) continue;
              const entries = r[0][1];
              last = entries[entries.length - 1][0];
              if (entries.some(([, f]) => f.some((v, i) => i % 2 === 0 && v === 'job' && f[i + 1] === id))) break;
            }
          }
        } catch (e) {
          if (!(e instanceof RedisUnavailable) || !e.outage) throw e;
          if (this.cluster && conn) {
            conn.disconnect();
            conn = null;
          }
          const pause = Math.min(50 * 2 ** ++tries, 1000);
          if (deadline !== null && Date.now() + pause >= deadline) throw timedOut(` (${e.message})`);
          await new Promise((res) => setTimeout(res, pause));
        }
      }
    } finally {
      if (conn) conn.disconnect();
    }
  }

  /** Cancels the job: "cancelled" (it was waiting) or "requested" (it is
   * running: its worker stops it). JobFailed when it had ended already. */
  async cancel(tenant, id) {
    checkIds('cancel', tenant, id);
    await this.#checkProtocol(tenant);
    const prefix = await this.#jobPrefix(this.redis, tenant, id, 'cancel');
    // cancel.lua answers "cancelled" also for a job cancelled before: ask
    // first, so a second cancel is told apart (as the CLI does).
    const before = await this.#at(this.redis, prefix + 'job:' + id, (c) => this.#call(c, 'HGET', prefix + 'job:' + id, 'status')).catch((e) => {
      if (e.message.includes('WRONGTYPE')) return null;
      throw e;
    });
    if (before === 'cancelled')
      throw new JobFailed(`lanework: cancel: job ${id} already cancelled`, await this.#status(this.redis, prefix, tenant, id));
    const { keys, argv } = script('cancel').callArgs(prefix, { prefix, events_cap: this.eventsMax, keep_failed_s: this.keepFailed, id });
    const r = await this.#script(this.redis, 'cancel', keys, argv, prefix);
    if (r === 'cancelled' || r === 'requested') return r;
    if (r === 'missing') throw new NoSuchJob(`lanework: cancel: no such job ${id}`);
    if (String(r).startsWith('corrupt')) throw new JobFailed(`lanework: cancel: job ${id}: ${r}`);
    throw new JobFailed(`lanework: cancel: job ${id} already ${r}`, await this.#status(this.redis, prefix, tenant, id));
  }

  /** Queues a failed, cancelled or expired job again with a fresh set of
   * attempts; resolves to its id. */
  async retry(tenant, id) {
    checkIds('retry', tenant, id);
    await this.#checkProtocol(tenant);
    const prefix = await this.#jobPrefix(this.redis, tenant, id, 'retry');
    // retry.lua answers "queued" also for a job that was queued already.
    const before = await this.#at(this.redis, prefix + 'job:' + id, (c) => this.#call(c, 'HGET', prefix + 'job:' + id, 'status')).catch((e) => {
      if (e.message.includes('WRONGTYPE')) return null;
      throw e;
    });
    const s = script('retry');
    const { keys, argv } = s.callArgs(prefix, { prefix, events_cap: this.eventsMax, mode: 'ids' }, { arg: [{ value: id }] });
    const what = s.read(await this.#script(this.redis, 'retry', keys, argv, prefix))[0].status;
    if (what === 'queued' && before !== 'queued') return id;
    if (what === 'missing') throw new NoSuchJob(`lanework: retry: no such job ${id}`);
    if (what.startsWith('corrupt')) throw new JobFailed(`lanework: retry: job ${id}: ${what}`);
    if (what.startsWith('held: ')) throw new InvalidInput(`lanework: retry: job ${id} is not retried: its unique key is held by job ${what.slice(6)}`);
    throw new InvalidInput(`lanework: retry: job ${id} is ${what}, not failed, cancelled or expired`);
  }

  /**
   * The tenant's events, oldest first (objects as `lanework events`
   * prints), after event id `since` when given; with `follow`, then new
   * ones as they come, until the loop is left. An async iterator. A
   * partitioned tenant has a stream per partition: they are read together
   * and merged by entry id -- exact within a partition, approximate across
   * them (each stream's ids come from its own last id and the clock of the
   * server that wrote it). With follow that is the order too: an event is
   * held until every partition's master's clock has passed it
   * (#followMerged).
   *
   * Event ids are the CLI's: `ID#P` for an event of partition P >= 1 of a
   * partitioned tenant, else the plain entry id. `since` is such an id,
   * and resumes exactly after that event of the merged order, as
   * `--since`: every partition is read after ID, except that partitions
   * after P read an entry with id ID too (it comes after ID#P) --
   * sinceCursors.
   */
  async *events(tenant, { since, follow = false } = {}) {
    named('events', () => checkName('tenant', tenant, true));
    if (since != null && !isStreamId(since))
      throw new InvalidInput(`lanework: events: since: "${String(since).slice(0, 64)}" is not an event id (like 1700000000000-0)`);
    await this.#checkProtocol(tenant);
    const k = await this.#partitions(tenant);
    const keys = [];
    for (let p = 0; p < k; p++) keys.push(`${partitionPrefix(this.namespace, tenant, p)}events`);
    const { last, incl } = sinceCursors(since, k, tenant);
    if (follow && k > 1) {
      yield* this.#followMerged(keys, last, incl);
      return;
    }
    const pending = keys.map(() => []); // entries read, not yet given, per partition
    const more = keys.map(() => true); // the partition's stream may hold more
    for (;;) {
      const need = [];
      for (let p = 0; p < k; p++) if (more[p] && !pending[p].length) need.push(p);
      if (need.length) {
        let got;
        try {
          got = await this.#pipe(this.redis, need.map((p) => ({
            key: keys[p], send: (pipe) => pipe.call('XRANGE', keys[p], xrangeStart(last[p], incl[p]), '+', 'COUNT', String(EVENTS_PAGE)),
          })));
        } catch (e) {
          throw this.#fail(e, 'events');
        }
        need.forEach((p, i) => {
          const [err, page] = got[i];
          if (err) throw this.#fail(err, 'events');
          pending[p] = page;
          more[p] = page.length === EVENTS_PAGE;
          if (page.length) incl[p] = false;
        });
      }
      let best = -1;
      for (let p = 0; p < k; p++) if (pending[p].length && (best < 0 || eidLess(pending[p][0][0], pending[best][0][0]))) best = p;
      if (best < 0) break;
      const [id, f] = pending[best].shift();
      last[best] = id;
      yield eventView(id, f, best);
    }
    if (!follow) return;
    for (let p = 0; p < k; p++) last[p] = last[p] || '0-0';
    // XREAD BLOCK must not hold up this client's other calls.
    const conn = this.#watch((this.redis || (await this.#nodeFor(keys[0]))).duplicate());
    try {
      for (;;) {
        const r = await this.#call(conn, 'XREAD', 'COUNT', String(EVENTS_PAGE), 'BLOCK', String(FOLLOW_BLOCK_MS), 'STREAMS', ...keys, ...last);
        const got = [];
        for (const [stream, entries] of r || []) {
          const p = keys.indexOf(stream);
          for (const [id, f] of entries) {
            got.push([id, f]);
            last[p] = id;
          }
        }
        got.sort((a, b) => (eidLess(a[0], b[0]) ? -1 : eidLess(b[0], a[0]) ? 1 : 0));
        for (const [id, f] of got) yield eventView(id, f); // one partition: plain ids
      }
    } finally {
      conn.disconnect();
    }
  }

  // events follow of a partitioned tenant (a stream per partition, in
  // keys), yielded in merged (id, partition) order, as the CLI's `events
  // --follow` (cmd_events.c events_round) and the Python client's
  // (ops._follow_merged).
  //
  // The partitions are read one round at a time, and a partition read late
  // in a round may hold an event with a lower id than one already read of
  // another (their ids are different masters' clocks, and the reads are
  // not at one instant). So each round asks each partition's master for
  // its TIME just before reading that partition, in the same pipeline on
  // the same connection (#pipe routes TIME by the partition's key): an
  // event added there afterwards gets an id at or past that time. What was
  // read is held, and an event is yielded once nothing can come before it
  // any more: its id is below every partition's bound -- the round's TIME
  // of a partition read to its end, else the last id read of it (what it
  // holds beyond comes after). Between rounds an XREAD COUNT 1 BLOCK on a
  // connection of its own waits for something new (on a cluster, where
  // one XREAD may not name keys of several slots: a pause of POLL_MS); for
  // a held event, at most until the clocks should have passed it
  // (FOLLOW_POLL_MS at most). The cost is latency: the skew between the
  // masters' clocks. Without follow, and with one partition, no TIME is
  // asked. last, incl: sinceCursors's (each partition's cursor; owned).
  async *#followMerged(keys, last, incl) {
    const k = keys.length;
    const more = keys.map(() => false); // p's last read filled a page: it may hold more
    let held = []; // [[ms, seq], p, id, fields] read, not yielded
    let conn = null;
    try {
      for (;;) {
        const nheld = keys.map(() => 0);
        for (const h of held) nheld[h[1]]++;
        // A partition with a page's worth held beyond the others is not
        // read again until they catch up (its bound is its last id read).
        const read = [];
        for (let p = 0; p < k; p++) if (!(more[p] && nheld[p] >= EVENTS_PAGE)) read.push(p);
        const items = [];
        for (const p of read) {
          items.push({ key: keys[p], send: (pipe) => pipe.call('TIME') });
          items.push({
            key: keys[p], send: (pipe) => pipe.call('XRANGE', keys[p], xrangeStart(last[p], incl[p]), '+', 'COUNT', String(EVENTS_PAGE)),
          });
        }
        let got;
        try {
          got = await this.#pipe(this.redis, items);
        } catch (e) {
          throw this.#fail(e, 'events');
        }
        const clock = new Map();
        read.forEach((p, i) => {
          const [terr, t] = got[2 * i];
          const [xerr, page] = got[2 * i + 1];
          if (terr || xerr) throw this.#fail(terr || xerr, 'events');
          clock.set(p, BigInt(t[0]) * 1000n + BigInt(t[1]) / 1000n);
          for (const [id, f] of page) {
            held.push([eidPair(id), p, id, f]);
            last[p] = id;
            incl[p] = false;
          }
          more[p] = page.length === EVENTS_PAGE;
        });
        // Ids below `below` ([ms, seq], exclusive) cannot be preceded by any read later.
        let below = null;
        for (let p = 0; p < k; p++) {
          const [ms, seq] = more[p] ? eidPair(last[p]) : [clock.get(p), -1n];
          const b = [ms, seq + 1n];
          if (!below || pairLess(b, below)) below = b;
        }
        held.sort((a, b) => (pairLess(a[0], b[0]) ? -1 : pairLess(b[0], a[0]) ? 1 : a[1] - b[1]));
        let n = 0;
        while (n < held.length && pairLess(held[n][0], below)) n++;
        const out = held.slice(0, n);
        held = held.slice(n);
        for (const [, p, id, f] of out) yield eventView(id, f, p);
        if (more.some(Boolean)) continue;
        // Wait for a new event, or for the clocks to pass the first held one.
        const wait = held.length ? Math.min(FOLLOW_POLL_MS, Math.max(1, Number(held[0][0][0] - below[0] + 1n))) : FOLLOW_BLOCK_MS;
        if (this.cluster) {
          await sleep(Math.min(wait, POLL_MS));
          continue;
        }
        // XREAD BLOCK must not hold up this client's other calls.
        if (!conn) conn = this.#watch(this.redis.duplicate());
        await this.#call(conn, 'XREAD', 'COUNT', '1', 'BLOCK', String(wait), 'STREAMS', ...keys, ...last.map((l) => l || '0-0'));
      }
    } finally {
      if (conn) conn.disconnect();
    }
  }

  /** Closes the connection. */
  async close() {
    if (this.cluster) {
      await this.cluster.close();
      return;
    }
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }
}

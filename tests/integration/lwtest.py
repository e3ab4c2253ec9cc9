"""lwtest — what every lanework integration test needs.

A private redis-server on a unix socket in a temp dir, a small RESP client
(stdlib only), the real binaries started as processes, a registry written
for the test, and waiting helpers with deadlines. Nothing here mocks Redis or
the binaries: tests assert on what a user can see (CLI output and exit
status, job records, events, files written by handlers).

Paths come from the environment meson sets for each test:
LANEWORK_BIN, LANEWORK_WORKER_BIN, LANEWORK_TESTMOD, LANEWORK_BADABI,
LANEWORK_EXAMPLE_MODULE, LANEWORK_EXAMPLE_DIR, LANEWORK_CLOCKSKEW (the
LD_PRELOAD shim tests/modules/clockskew.c), LANEWORK_TICKER (the exec
handler handlers/ticker.py).

Chaos tooling (tests of it: test_tooling.py):
  Env.worker(..., skew_ms=N)        that worker's wall clock is N ms off
                                    (clockskew.so; monotonic clocks unchanged)
  Env.worker(..., redis_url=URL)    that worker talks to URL, e.g. a Proxy's
  Proxy(unix_path) / Env.proxy()    a TCP proxy to Redis that can cut() the
                                    network (a partition) and heal() it, or
                                    stall() the connections open now (dead
                                    paths, half-open TCP)
  TICKER                            [sys.executable, TICKER] in a registry's
                                    "exec" runs testmod's ticker as a command

TLS (test_tls.py):
  TlsCA(dir)                        a CA made by `openssl` now, a server
                                    certificate for localhost/127.0.0.1 and a
                                    client certificate signed by it
  Redis(..., tls=ca)                that server also listens with TLS on
                                    127.0.0.1 (Redis.tls_url(...)); its unix
                                    socket stays plain for the test's own use
"""
import errno
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLI = os.environ.get('LANEWORK_BIN', 'lanework')
WORKER = os.environ.get('LANEWORK_WORKER_BIN', 'lanework-worker')
TESTMOD = os.environ.get('LANEWORK_TESTMOD', '')
BADABI = os.environ.get('LANEWORK_BADABI', '')
EXAMPLE_MODULE = os.environ.get('LANEWORK_EXAMPLE_MODULE', '')
EXAMPLE_DIR = os.environ.get('LANEWORK_EXAMPLE_DIR', '')
CLOCKSKEW = os.environ.get('LANEWORK_CLOCKSKEW', '')
TICKER = os.environ.get('LANEWORK_TICKER', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          'handlers', 'ticker.py'))


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def wait_until(pred, timeout=10.0, interval=0.02, what='condition'):
    """Polls pred() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure('timed out after %.1f s waiting for %s' % (timeout, what))
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path, timeout=5):
    """(status, body text) of GET http://127.0.0.1:PORT/PATH."""
    import http.client
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        c.request('GET', path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


# ---------------------------------------------------------------- Redis --

class RespError(Exception):
    pass


class Client:
    """A blocking RESP2 client over a unix socket."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b''

    def close(self):
        self.sock.close()

    def _line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('redis closed the connection')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('redis closed the connection')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b'+':
            return rest.decode()
        if t == b'-':
            return RespError(rest.decode())
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            return None if n < 0 else self._exact(n).decode('utf-8', 'replace')
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError('bad RESP reply %r' % line)

    @staticmethod
    def _encode(args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        return b''.join(out)

    def call(self, *args):
        self.sock.sendall(self._encode(args))
        r = self._reply()
        if isinstance(r, RespError):
            raise r
        return r

    def pipeline(self, commands):
        self.sock.sendall(b''.join(self._encode(c) for c in commands))
        return [self._reply() for _ in commands]


class Redis:
    """A private redis-server on a unix socket in `dir`."""

    def __init__(self, dir, name='redis', aof=False, extra=None, password=None, tls=None,
                 tls_auth_clients='optional'):
        self.dir = os.path.join(dir, name)
        self.password = password
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        self.tls_port = free_port() if tls else 0
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 'redis.sock')
        self.url = 'unix://' + self.sock
        self.aof = aof
        self.extra = extra or []
        self.proc = None
        self.start()

    def start(self):
        args = ['redis-server', '--port', '0', '--unixsocket', self.sock, '--unixsocketperm', '700',
                '--dir', self.dir, '--save', '', '--maxmemory-policy', 'noeviction',
                '--logfile', os.path.join(self.dir, 'redis.log')]
        if self.aof:
            args += ['--appendonly', 'yes', '--appendfsync', 'always']
        args += self.extra
        if self.password:
            args += ['--requirepass', self.password]
        if self.tls:
            args += ['--tls-port', str(self.tls_port), '--bind', '127.0.0.1',
                     '--tls-cert-file', self.tls.server_cert, '--tls-key-file', self.tls.server_key,
                     '--tls-ca-cert-file', self.tls.ca_cert,
                     '--tls-auth-clients', self.tls_auth_clients]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._up, timeout=10, what='redis-server to accept connections')

    def _up(self):
        try:
            c = Client(self.sock, timeout=1)
            try:
                if self.password:
                    c.call('AUTH', self.password)
                return c.call('PING') == 'PONG'
            except RespError:
                return False  # LOADING
            finally:
                c.close()
        except OSError:
            return False

    def tls_url(self, host='127.0.0.1', db=0, **query):
        """rediss:// to this server's TLS port; query: ca=, cert=, key=,
        sni=, insecure= (ca defaults to the fixture's CA; ca=None leaves
        it out)."""
        q = dict(query)
        q.setdefault('ca', self.tls.ca_cert)
        parts = ['%s=%s' % (k, v) for k, v in q.items() if v is not None]
        auth = ':%s@' % self.password if self.password else ''
        return 'rediss://%s%s:%d/%d%s' % (auth, host, self.tls_port, db,
                                          ('?' + '&'.join(parts)) if parts else '')

    def client(self):
        c = Client(self.sock)
        if self.password:
            c.call('AUTH', self.password)
        return c

    def call(self, *args):
        c = self.client()
        try:
            return c.call(*args)
        finally:
            c.close()

    def commandstats(self):
        """{command: calls that ran and did not fail} (a rejected call is
        not in `calls`; a failed one is)."""
        out = {}
        for line in self.call('INFO', 'commandstats').splitlines():
            if line.startswith('cmdstat_'):
                name, _, rest = line[len('cmdstat_'):].partition(':')
                f = dict(kv.split('=') for kv in rest.split(','))
                out[name] = int(f['calls']) - int(f.get('failed_calls', 0))
        return out

    def libraries(self):
        """Names of the function libraries loaded on the server."""
        return [dict(zip(lib[::2], lib[1::2]))['library_name'] for lib in self.call('FUNCTION', 'LIST')]

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.kill9()
        self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class TlsCA:
    """Certificates made with `openssl` at test time, in dir/tls: a CA, a
    server certificate (localhost, 127.0.0.1, ::1) and a client certificate
    it signed, and an unrelated CA (`other_ca_cert`) a client should refuse
    the server with."""

    def __init__(self, dir, server_names=('localhost',), server_ips=('127.0.0.1', '::1')):
        self.dir = os.path.join(dir, 'tls')
        os.makedirs(self.dir, exist_ok=True)
        f = lambda n: os.path.join(self.dir, n)  # noqa: E731
        self.ca_cert, self.ca_key = f('ca.crt'), f('ca.key')
        self.other_ca_cert, other_key = f('other-ca.crt'), f('other-ca.key')
        self.server_cert, self.server_key = f('server.crt'), f('server.key')
        self.client_cert, self.client_key = f('client.crt'), f('client.key')
        self._ca(self.ca_cert, self.ca_key, 'lanework test CA')
        self._ca(self.other_ca_cert, other_key, 'some other CA')
        san = ','.join(['DNS:%s' % n for n in server_names] + ['IP:%s' % i for i in server_ips])
        self._leaf(self.server_cert, self.server_key, 'lanework test server', san, 'serverAuth')
        self._leaf(self.client_cert, self.client_key, 'lanework test client', None, 'clientAuth')

    def _openssl(self, *args):
        p = subprocess.run(['openssl'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check(p.returncode == 0, 'openssl %s: %s' % (args[0], p.stderr.decode(errors='replace')))

    def _ca(self, cert, key, cn):
        self._openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
                      '-days', '2', '-subj', '/CN=' + cn,
                      '-addext', 'basicConstraints=critical,CA:TRUE',
                      '-addext', 'keyUsage=critical,keyCertSign,cRLSign')

    def _leaf(self, cert, key, cn, san, usage):
        csr = cert + '.csr'
        ext = cert + '.ext'
        self._openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr,
                      '-subj', '/CN=' + cn)
        with open(ext, 'w') as e:
            e.write('basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' % usage)
            if san:
                e.write('subjectAltName=%s\n' % san)
        self._openssl('x509', '-req', '-in', csr, '-CA', self.ca_cert, '-CAkey', self.ca_key,
                      '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext)


# ------------------------------------------------------------ processes --

def skew_env(base, skew_ms):
    """A copy of environment `base` under which a process's wall clock is
    skew_ms milliseconds off (clockskew.so preloaded; CLOCK_MONOTONIC and
    the other clocks unchanged). Children inherit it (fork children and
    exec handlers of a worker too)."""
    check(CLOCKSKEW and os.path.exists(CLOCKSKEW),
          'LANEWORK_CLOCKSKEW is not set or missing (%r): run through meson' % CLOCKSKEW)
    env = dict(base)
    pre = env.get('LD_PRELOAD', '')
    env['LD_PRELOAD'] = CLOCKSKEW + (':' + pre if pre else '')
    env['LW_CLOCK_SKEW_MS'] = str(int(skew_ms))
    # A binary built with AddressSanitizer refuses to start when another
    # library is preloaded ahead of its runtime; the shim does not need that.
    asan = env.get('ASAN_OPTIONS', '')
    env['ASAN_OPTIONS'] = (asan + ':' if asan else '') + 'verify_asan_link_order=0'
    return env


class Worker:
    """A lanework-worker process; its stderr goes to a log file.

    redis_url: what --redis gets (default: the Env's Redis); skew_ms: shift
    this worker's wall clock (skew_env)."""

    def __init__(self, env, args, name=None, log=None, redis_url=None, skew_ms=None, preexec_fn=None):
        self.env = env
        self.name = name or 'w%d' % (len(env.workers) + 1)
        self.log_path = log or os.path.join(env.dir, '%s.log' % self.name)
        self.redis_url = redis_url or env.redis.url
        self.skew_ms = skew_ms
        self.args = [WORKER, '--registry', env.registry, '--redis', self.redis_url, '--name', self.name] + args
        penv = env.proc_env()
        if skew_ms is not None:
            penv = skew_env(penv, skew_ms)
        self.logf = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=self.logf, env=penv,
                                     preexec_fn=preexec_fn)
        env.workers.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure('worker %s did not exit within %.0f s; log:\n%s' % (self.name, timeout, self.log()))

    def running(self):
        return self.proc.poll() is None

    def log(self):
        self.logf.flush()
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


class Env:
    """One test's world: a temp dir, a Redis, a registry, workers."""

    def __init__(self, name, aof=False, redis_extra=None, ns='lw'):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix='lw-%s-' % name)
        self.redis = Redis(self.dir, aof=aof, extra=redis_extra)
        self.ns = ns
        self.workers = []
        self.registry = os.path.join(self.dir, 'registry.json')
        self.record_file = os.path.join(self.dir, 'record.log')
        self.extra_env = {}
        self.proxies = []
        self.owned = []  # more servers a test started (replicas...), stopped with the Env

    # registry
    def write_registry(self, tenants):
        tmp = self.registry + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(tenants, f, indent=1)
        os.replace(tmp, self.registry)

    def tenant(self, name='t1', **fields):
        """A tenant object using the test module."""
        t = {'tenant': name, 'module': TESTMOD, 'config': {'record_file': self.record_file},
             'defaults': {'attempts': 3, 'timeout': 30, 'backoff': 0.05}}
        t.update(fields)
        return t

    def proc_env(self):
        env = dict(os.environ)
        env.pop('LANEWORK_REDIS_URL', None)
        env.pop('LANEWORK_REGISTRY', None)
        env['LANEWORK_NAMESPACE'] = self.ns
        env.update(self.extra_env)
        return env

    # processes
    def worker(self, *args, name=None, skew_ms=None, redis_url=None, preexec_fn=None):
        """A worker on this Env's registry. redis_url replaces --redis (e.g.
        a Proxy's url); skew_ms shifts its wall clock by that many ms;
        preexec_fn runs in the child before exec (limits, another uid)."""
        return Worker(self, list(args), name=name, redis_url=redis_url, skew_ms=skew_ms, preexec_fn=preexec_fn)

    def proxy(self):
        """A Proxy to this Env's Redis, closed with the Env."""
        p = Proxy(self.redis.sock)
        self.proxies.append(p)
        return p

    def cli(self, *args, input=None, timeout=60, registry=True, redis=True):
        argv = [CLI] + list(args)
        if redis:
            argv += ['--redis', self.redis.url]
        if registry:
            argv += ['--registry', self.registry]
        p = subprocess.run(argv, input=input.encode() if isinstance(input, str) else input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=self.proc_env())
        return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')

    def enqueue(self, tenant, kind, payload=None, **flags):
        args = ['enqueue', '--tenant', tenant, '--kind', kind,
                '--payload', json.dumps(payload if payload is not None else None)]
        for k, v in flags.items():
            k = '--' + k.replace('_', '-')
            if v is True:
                args.append(k)
            else:
                args += [k, str(v)]
        rc, out, err = self.cli(*args)
        check(rc == 0, 'enqueue failed (%d): %s' % (rc, err))
        return out.strip()

    def enqueue_batch(self, lines, tenant=None):
        args = ['enqueue', '--batch', '-']
        if tenant:
            args += ['--tenant', tenant]
        text = ''.join(json.dumps(l) + '\n' for l in lines)
        rc, out, err = self.cli(*args, input=text, timeout=300)
        check(rc == 0, 'batch enqueue failed (%d): %s' % (rc, err[-2000:]))
        ids = out.split()
        check(len(ids) == len(lines), 'batch printed %d ids for %d lines' % (len(ids), len(lines)))
        return ids

    def status(self, tenant, job_id):
        rc, out, err = self.cli('status', '--tenant', tenant, job_id)
        check(rc == 0, 'status %s failed (%d): %s' % (job_id, rc, err))
        return json.loads(out)

    def statuses(self, tenant, ids):
        """Status field of many jobs in one pipelined round trip."""
        c = self.redis.client()
        try:
            prefix = '%s:{%s}:job:' % (self.ns, tenant)
            return c.pipeline([['HGET', prefix + i, 'status'] for i in ids])
        finally:
            c.close()

    def wait_all(self, tenant, ids, statuses=('succeeded',), timeout=60):
        def done():
            st = self.statuses(tenant, ids)
            return all(s in ('succeeded', 'failed', 'cancelled', 'expired') for s in st)
        wait_until(done, timeout=timeout, interval=0.05, what='%d jobs to finish' % len(ids))
        st = self.statuses(tenant, ids)
        bad = [(i, s) for i, s in zip(ids, st) if s not in statuses]
        check(not bad, 'jobs ended in unexpected statuses: %s' % bad[:10])

    def events(self, tenant):
        rc, out, err = self.cli('events', '--tenant', tenant)
        check(rc == 0, 'events failed (%d): %s' % (rc, err))
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def records(self):
        """(what, ms, id, lane, pid) tuples written by the test module."""
        if not os.path.exists(self.record_file):
            return []
        out = []
        with open(self.record_file) as f:
            for line in f:
                what, ms, jid, lane, pid = line.split()
                out.append((what, int(ms), jid, lane, int(pid)))
        return out

    def runs(self):
        """{job id: [[pid, start_ms, last_ms, ended, lane], ...]}: one entry
        per handler run (a process) of the record file, with the time of its
        last line (a frozen or killed run stops ticking) and whether it
        reached END/STOP."""
        out = {}
        open_runs = {}
        for what, ms, jid, lane, pid in self.records():
            key = (jid, pid)
            if what == 'START':
                r = [pid, ms, ms, False, lane]
                out.setdefault(jid, []).append(r)
                open_runs[key] = r
            elif key in open_runs:
                r = open_runs[key]
                r[2] = ms
                if what in ('END', 'STOP'):
                    r[3] = True
        return out

    def overlaps(self, ids):
        """Pairs of runs of one lane whose lifetimes (first to last line)
        intersect -- two jobs of one lane, or two attempts of one job, alive
        at once -- among the jobs `ids`."""
        want = set(ids)
        by_lane = {}
        for jid, rs in self.runs().items():
            if jid in want:
                for r in rs:
                    by_lane.setdefault(r[4], []).append((r[1], r[2], jid, r[0]))
        bad = []
        for lane, rs in by_lane.items():
            rs.sort()
            for a, b in zip(rs, rs[1:]):
                if b[0] < a[1]:
                    bad.append((lane, a, b))
        return bad

    def figures(self, name, tenant, ids, extra='', final=True, max_overlap_ms=0):
        """Prints the chaos figures of jobs `ids` -- accepted, executions
        (handler runs: from the record file for jobs that write one, else
        job.started events), lost (accepted without a terminal status),
        duplicates (executions beyond one per job), overlaps (runs of one
        lane alive at once) -- and checks lost == 0 (unless not `final`:
        jobs may still run) and that no overlap is longer than
        max_overlap_ms (0: none at all). Returns (status counts, executions
        per job, duplicates)."""
        st = self.statuses(tenant, ids)
        lost = [i for i, s in zip(ids, st) if s not in ('succeeded', 'failed', 'cancelled', 'expired')]
        rs = self.runs()
        started = {}
        for e in self.events(tenant):
            if e['type'] == 'job.started':
                started[e['job']] = started.get(e['job'], 0) + 1
        execs = {i: len(rs[i]) if i in rs else started.get(i, 0) for i in ids}
        nexec = sum(execs.values())
        dups = sum(max(0, n - 1) for n in execs.values())
        ov = self.overlaps(ids)
        counts = {}
        for x in st:
            counts[x] = counts.get(x, 0) + 1
        longest = max([a[1] - b[0] for _lane, a, b in ov] or [0])
        print('%s: accepted=%d executions=%d lost=%d duplicates=%d overlaps=%d%s statuses=%s%s'
              % (name, len(ids), nexec, len(lost) if final else 0, dups, len(ov),
                 ' (longest %d ms)' % longest if ov else '', counts, extra), flush=True)
        check(not final or not lost, '%d accepted jobs have no terminal status: %s' % (len(lost), lost[:5]))
        check(not ov or (max_overlap_ms and longest <= max_overlap_ms),
              'lane overlaps (lane, (start, last, job, pid) x2): %s' % ov[:3])
        return counts, execs, dups

    def own(self, thing):
        """Stops `thing` (anything with .stop() or .close()) when the Env
        closes, whether the test passed or not; returns it."""
        self.owned.append(thing)
        return thing

    def close(self, ok):
        for w in self.workers:
            w.close()
        for p in self.proxies:
            p.close()
        for o in self.owned:
            (getattr(o, 'stop', None) or o.close)()
        self.redis.stop()
        if ok and not os.environ.get('LW_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self):
        for w in self.workers:
            sys.stderr.write('---- log of %s ----\n%s\n' % (w.name, w.log()[-6000:]))


# ---------------------------------------------------------------- proxy --

class Proxy:
    """A TCP proxy on 127.0.0.1 to a unix socket (a private redis-server's),
    that can model a network partition.

        p = Proxy(env.redis.sock)          # or env.proxy()
        w = env.worker(redis_url=p.url)    # redis://127.0.0.1:PORT
        p.cut()                            # partition: nothing moves
        p.heal()                           # everything moves again
        p.stall()                          # the connections open now die
        p.close()

    Each accepted connection gets its own connection to the target and
    bytes are copied both ways by one daemon thread (select). cut(): from
    its return on, nothing is read, written or accepted: bytes stay in the
    kernel's socket buffers (and in the proxy's own, at most 256 KiB per
    direction), connections stay open, nobody gets a RST or EOF; a client
    connecting meanwhile completes the TCP handshake in the listen backlog
    but gets no service until heal(). heal(): forwarding resumes, buffered
    bytes included, and waiting connections are accepted. A connection
    whose peer closes is closed on the other side once its bytes are
    through. If the target refuses a new connection (Redis down), the client
    connection is closed. cut/heal/close may be called from any thread.
    """

    BUF = 256 * 1024

    def __init__(self, target_unix_path, host='127.0.0.1'):
        self.target = target_unix_path
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(64)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.url = 'redis://%s:%d' % (host, self.port)
        self.accepted = 0       # connections accepted so far
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._cond = threading.Condition()
        self._want = 'run'      # what the caller asked: run, cut, stop
        self._state = 'run'     # what the thread applies
        self._pairs = []        # [client, upstream, buf c->u, buf u->c, eof c, eof u, stalled]
        self._stall_asked = False
        self._thread = threading.Thread(target=self._loop, name='lwtest-proxy-%d' % self.port,
                                        daemon=True)
        self._thread.start()

    # -- control (any thread) --

    def _set(self, want, timeout=5.0):
        with self._cond:
            if self._want == 'stop':
                return
            self._want = want
            self._poke()
            if not self._cond.wait_for(lambda: self._state == want or not self._thread.is_alive(),
                                       timeout=timeout):
                raise TestFailure('proxy thread did not apply %s within %.0f s' % (want, timeout))

    def _poke(self):
        try:
            self._wake_w.send(b'x')
        except OSError:
            pass  # full (already poked) or closed

    def cut(self):
        """Partition: returns once the thread forwards nothing any more."""
        self._set('cut')

    def hold_replies(self):
        """Half a partition: what clients send still reaches Redis (and
        runs there), nothing Redis answers reaches them until heal()."""
        self._set('hold')

    def stall(self):
        """A dead path for the connections open now (half-open TCP, a NAT
        that forgot them): from its return on nothing moves on them either
        way and they stay open, while connections made later work. heal()
        does not revive them."""
        with self._cond:
            self._stall_asked = True
            self._poke()
            if not self._cond.wait_for(lambda: not self._stall_asked or not self._thread.is_alive(), timeout=5):
                raise TestFailure('proxy thread did not stall its connections within 5 s')

    def heal(self):
        """Ends the partition: returns once forwarding has resumed."""
        self._set('run')

    def is_cut(self):
        with self._cond:
            return self._state == 'cut'

    def connections(self):
        """Open client connections (racy, for diagnostics)."""
        return len(self._pairs)

    def close(self):
        with self._cond:
            if self._want == 'stop' and not self._thread.is_alive():
                return
            self._want = 'stop'
            self._poke()
        self._thread.join(timeout=5)
        for pr in list(self._pairs):
            self._drop(pr)
        for s_ in (self.lsock, self._wake_r, self._wake_w):
            try:
                s_.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the forwarding thread --

    def _drop(self, pr):
        for s_ in pr[:2]:
            try:
                s_.close()
            except OSError:
                pass
        if pr in self._pairs:
            self._pairs.remove(pr)

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.accepted += 1
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.settimeout(2)
                u.connect(self.target)
            except OSError:
                u.close()
                c.close()
                continue
            c.setblocking(False)
            u.setblocking(False)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pairs.append([c, u, bytearray(), bytearray(), False, False, False])

    def _loop(self):
        try:
            self._run()
        finally:
            with self._cond:
                self._state = 'stop'
                self._cond.notify_all()

    def _run(self):
        while True:
            with self._cond:
                self._state = self._want
                if self._stall_asked:
                    for pr in self._pairs:
                        pr[6] = True
                    self._stall_asked = False
                self._cond.notify_all()
                state = self._state
            if state == 'stop':
                return
            rl, wl = [self._wake_r], []
            if state in ('run', 'hold'):
                rl.append(self.lsock)
                for pr in self._pairs:
                    c, u, cu, uc, ec, eu, stalled = pr
                    if stalled:
                        continue
                    if not ec and len(cu) < self.BUF:
                        rl.append(c)
                    if state == 'run' and not eu and len(uc) < self.BUF:
                        rl.append(u)
                    if cu:
                        wl.append(u)
                    if uc and state == 'run':
                        wl.append(c)
            try:
                r, w, _ = select.select(rl, wl, [], 1.0)
            except (OSError, ValueError):
                # A socket closed under us: drop the pairs holding a dead fd.
                for pr in list(self._pairs):
                    if pr[0].fileno() < 0 or pr[1].fileno() < 0:
                        self._drop(pr)
                continue
            if self._wake_r in r:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except (BlockingIOError, InterruptedError, OSError):
                    pass
            with self._cond:
                if self._want != state:
                    continue  # apply cut/stop before moving one more byte
            if state not in ('run', 'hold'):
                continue
            if self.lsock in r:
                self._accept()
            for pr in list(self._pairs):
                if not pr[6]:
                    self._pump(pr, r, w, state == 'hold')

    def _pump(self, pr, r, _w, hold=False):
        c, u = pr[0], pr[1]
        try:
            # reads: client -> buf cu, upstream -> buf uc
            for src, bi, ei in ((c, 2, 4), (u, 3, 5)):
                if src in r and not (hold and src is u):
                    try:
                        data = src.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    if data:
                        pr[bi] += data
                    else:
                        pr[ei] = True
            # writes: buf cu -> upstream, buf uc -> client (non-blocking:
            # also right after a read, without waiting for a select round)
            for dst, bi in ((u, 2), (c, 3)):
                if pr[bi] and not (hold and dst is c):
                    try:
                        n = dst.send(pr[bi])
                        del pr[bi][:n]
                    except (BlockingIOError, InterruptedError):
                        pass
            # a side that ended: pass the EOF on once its bytes are through
            if pr[4] and not pr[2]:
                self._shut(u)
            if pr[5] and not pr[3]:
                self._shut(c)
            if pr[4] and pr[5] and not pr[2] and not pr[3]:
                self._drop(pr)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EINTR):
                self._drop(pr)

    @staticmethod
    def _shut(s_):
        try:
            s_.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def plain_only(fn):
    """Marks a test that runs in the plain build's pass only, not again under
    the sanitizers: a long test of timing and Lua logic whose C paths the
    sanitized pass runs in shorter tests (it keeps CI within its budget)."""
    fn.plain_only = True
    return fn


def run(tests):
    """Runs test functions; each gets a fresh Env. Exit 1 on any failure."""
    only = sys.argv[1:]
    sanitized = os.environ.get('LANEWORK_SANITIZE', 'none') != 'none'
    failed = 0
    for fn in tests:
        if only and fn.__name__ not in only:
            continue
        # Named ones too: meson's split tests name the functions they run.
        if sanitized and getattr(fn, 'plain_only', False):
            print('skip %s (plain build only)' % fn.__name__, flush=True)
            continue
        env = Env(fn.__name__.replace('test_', '')[:20])
        t0 = time.monotonic()
        ok = False
        try:
            fn(env)
            ok = True
            print('ok   %s (%.1f s)' % (fn.__name__, time.monotonic() - t0), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failed += 1
            print('FAIL %s: %s' % (fn.__name__, e), flush=True)
            env.dump_logs()
            sys.stderr.write('(test dir kept: %s)\n' % env.dir)
        finally:
            env.close(ok)
    sys.exit(1 if failed else 0)


# ------------------------------------------------------------- sentinel --

class SentinelSet:
    """A master, `replicas` replicas (redis-server --replicaof) and
    `sentinels` sentinels (redis-server --sentinel) watching it, in
    dir/sentinel, for tests of redis-sentinel:// URLs and failovers.

        ss = SentinelSet(env.dir)                 # tls=TlsCA(...): data and sentinel ports speak TLS;
                                                 # password=, sentinel_password=: requirepass of each
        url = ss.url()                           # redis-sentinel://127.0.0.1:P,...,/lwmaster
        ss.master()                              # the Redis the sentinels name as master now
        old = ss.kill_master()                   # kill -9
        new = ss.wait_failover(timeout=20)       # a replica promoted, answering ROLE master
        ss.rejoin(old)                           # restarted as a replica of the new master
        ss.close()

    Data nodes listen on 127.0.0.1 TCP ports (TLS ones with tls=) and keep
    their plain unix socket for the test's own use (`.call()`); the
    sentinels do too. The sentinels declare a master down after
    DOWN_AFTER_MS and retry a failed election after 2 x FAILOVER_TIMEOUT_MS,
    so a failover takes a few seconds. Every wait is bounded."""

    DOWN_AFTER_MS = 500
    FAILOVER_TIMEOUT_MS = 2000
    master_name = 'lwmaster'

    def __init__(self, dir, replicas=1, sentinels=3, tls=None, password=None, sentinel_password=None):
        self.dir = os.path.join(dir, 'sentinel')
        os.makedirs(self.dir, exist_ok=True)
        self.tls = tls
        self.password, self.sentinel_password = password, sentinel_password
        self.nodes, self.sentinels, self.killed = [], [], set()
        try:
            self.nodes.append(self._node('node0', None))
            for i in range(replicas):
                self.nodes.append(self._node('node%d' % (i + 1), self.nodes[0]))
            self.wait_replicas(self.nodes[0], replicas)
            for i in range(sentinels):
                self.sentinels.append(self._sentinel('sentinel%d' % i))
            self._wait_sentinels(replicas, sentinels)
        except BaseException:
            self.close()
            raise

    # -- processes
    def _node(self, name, master, extra=()):
        """A data node: master None, else a replica of that node."""
        port = free_port()
        args = ['--bind', '127.0.0.1', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']
        if self.tls:
            # A replica connects as a TLS client: with the client certificate
            # (the server one is for serverAuth only, which the master refuses).
            args += ['--tls-replication', 'yes', '--tls-client-cert-file', self.tls.client_cert,
                     '--tls-client-key-file', self.tls.client_key]
        else:
            args += ['--port', str(port)]
        if self.password:
            args += ['--masterauth', self.password]
        if master is not None:
            args += ['--replicaof', '127.0.0.1', str(master.data_port)]
        r = Redis(self.dir, name=name, tls=self.tls, extra=args + list(extra), password=self.password)
        r.data_port = r.tls_port if self.tls else port
        return r

    def _sentinel(self, name):
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        port = free_port()
        conf = os.path.join(d, 'sentinel.conf')
        lines = ['bind 127.0.0.1', 'dir ' + d, 'logfile ' + os.path.join(d, 'sentinel.log'),
                 'unixsocket ' + os.path.join(d, 'sentinel.sock'), 'unixsocketperm 700']
        if self.tls:
            lines += ['port 0', 'tls-port %d' % port, 'tls-replication yes',
                      'tls-cert-file ' + self.tls.server_cert, 'tls-key-file ' + self.tls.server_key,
                      'tls-ca-cert-file ' + self.tls.ca_cert, 'tls-auth-clients optional',
                      'tls-client-cert-file ' + self.tls.client_cert, 'tls-client-key-file ' + self.tls.client_key]
        else:
            lines.append('port %d' % port)
        m = self.master_name
        lines += ['sentinel monitor %s 127.0.0.1 %d 2' % (m, self.nodes[0].data_port),
                  'sentinel down-after-milliseconds %s %d' % (m, self.DOWN_AFTER_MS),
                  'sentinel failover-timeout %s %d' % (m, self.FAILOVER_TIMEOUT_MS),
                  'sentinel parallel-syncs %s 1' % m]
        if self.password:
            lines.append('sentinel auth-pass %s %s' % (m, self.password))
        if self.sentinel_password:  # clients and the other sentinels must give it
            lines += ['requirepass ' + self.sentinel_password, 'sentinel sentinel-pass ' + self.sentinel_password]
        with open(conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        proc = subprocess.Popen(['redis-server', conf, '--sentinel'], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        s = _SentinelProc(proc, port, os.path.join(d, 'sentinel.sock'), d, self.sentinel_password)
        wait_until(lambda: s.ping(), timeout=10, what='sentinel %s to start' % name)
        return s

    # -- waiting
    def wait_replicas(self, master, n, timeout=15):
        """Until `master` has n replicas online (synced)."""
        def online():
            info = master.call('INFO', 'replication')
            return info.count(',state=online,') >= n
        wait_until(online, timeout=timeout, what='%d replica(s) online' % n)

    def _wait_sentinels(self, replicas, sentinels, timeout=20):
        """Until every sentinel knows the master, its replicas and the
        other sentinels (hello messages every 2 s): a failover needs them."""
        def known(s):
            st = s.master_state(self.master_name)
            return (st and int(st['num-slaves']) >= replicas
                    and int(st['num-other-sentinels']) >= sentinels - 1)
        wait_until(lambda: all(known(s) for s in self.sentinels), timeout=timeout,
                   what='the sentinels to know the master, its replicas and each other')

    # -- what tests use
    def url(self, scheme=None, auth=None, **query):
        """redis-sentinel:// (rediss-sentinel:// with tls) to all sentinels;
        auth: what goes before '@' (default: the set's password);
        query: URL parameters (with tls, ca defaults to the fixture's CA,
        sentinel_password to the set's; None leaves one out)."""
        scheme = scheme or ('rediss-sentinel' if self.tls else 'redis-sentinel')
        if auth is None:
            auth = ':%s@' % self.password if self.password else ''
        q = dict(query)
        if self.sentinel_password:
            q.setdefault('sentinel_password', self.sentinel_password)
        if scheme.startswith('rediss'):
            q.setdefault('ca', self.tls.ca_cert)
        parts = ['%s=%s' % (k, v) for k, v in q.items() if v is not None]
        return '%s://%s%s/%s%s' % (scheme, auth, ','.join('127.0.0.1:%d' % s.port for s in self.sentinels),
                                   self.master_name, ('?' + '&'.join(parts)) if parts else '')

    def master_port(self):
        """The data port the first answering sentinel names as master."""
        for s in self.sentinels:
            try:
                return int(s.call('SENTINEL', 'get-master-addr-by-name', self.master_name)[1])
            except (OSError, RespError, TypeError):
                continue
        raise TestFailure('no sentinel answers')

    def master(self):
        port = self.master_port()
        for n in self.nodes:
            if n.data_port == port:
                return n
        raise TestFailure('the sentinels name port %d as master: not a node of this set' % port)

    @property
    def replicas(self):
        """The nodes other than the master, as the sentinels see it."""
        m = self.master()
        return [n for n in self.nodes if n is not m]

    def kill_master(self):
        """kill -9 of the master; returns its Redis (for rejoin)."""
        m = self.master()
        m.kill9()
        self.killed.add(m)
        return m

    def wait_failover(self, timeout=20):
        """Until every sentinel names a new master (not one killed) and it
        answers ROLE master; returns it."""
        def done():
            ports = set()
            for s in self.sentinels:
                try:
                    ports.add(int(s.call('SENTINEL', 'get-master-addr-by-name', self.master_name)[1]))
                except (OSError, RespError, TypeError):
                    return None
            if len(ports) != 1:
                return None
            node = next((n for n in self.nodes if n.data_port in ports), None)
            if node is None or node in self.killed:
                return None
            try:
                return node if node.call('ROLE')[0] == 'master' else None
            except (OSError, RespError):
                return None
        return wait_until(done, timeout=timeout, interval=0.1, what='the sentinels to fail over')

    def rejoin(self, node, timeout=15):
        """Starts a killed node again, as a replica of the current master,
        and waits until that master has it online."""
        m = self.master()
        node.extra = [a for a in node.extra]
        if '--replicaof' in node.extra:
            i = node.extra.index('--replicaof')
            del node.extra[i:i + 3]
        node.extra += ['--replicaof', '127.0.0.1', str(m.data_port)]
        node.start()
        self.killed.discard(node)
        self.wait_replicas(m, len(self.nodes) - 1, timeout)

    def close(self):
        for s in self.sentinels:
            s.stop()
        for n in self.nodes:
            n.stop()


class _SentinelProc:
    """One sentinel process; its unix socket (plain) is for the fixture."""

    def __init__(self, proc, port, sock, dir, password=None):
        self.proc, self.port, self.sock, self.dir, self.password = proc, port, sock, dir, password

    def call(self, *args):
        c = Client(self.sock, timeout=2)
        try:
            if self.password:
                c.call('AUTH', self.password)
            return c.call(*args)
        finally:
            c.close()

    def ping(self):
        try:
            return self.call('PING') == 'PONG'
        except (OSError, RespError):
            return False

    def master_state(self, name):
        try:
            r = self.call('SENTINEL', 'master', name)
        except (OSError, RespError):
            return None
        return dict(zip(r[::2], r[1::2]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -------------------------------------------------------------- cluster --

def _crc16_table():
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t.append(c & 0xFFFF)
    return t


_CRC16 = _crc16_table()


def crc16_xmodem(data):
    """CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the one
    Redis Cluster hashes keys with."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def key_slot(key):
    """The cluster slot of `key` (str or bytes): CRC16 of its hash tag (what
    is between the first '{' and the first '}' after it, when not empty),
    else of the whole key, mod 16384."""
    k = key.encode() if isinstance(key, str) else bytes(key)
    s = k.find(b'{')
    if s >= 0:
        e = k.find(b'}', s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16_xmodem(k) % 16384


class ClusterSet:
    """A Redis Cluster of `masters` masters with `replicas` replicas each
    (redis-server --cluster-enabled, made by `redis-cli --cluster create`),
    in dir/cluster, for tests of redis-cluster:// URLs, slot migrations and
    failovers.

        cs = ClusterSet(env.dir)                  # tls=TlsCA(...): data, bus and replication speak TLS
        url = cs.url()                            # redis-cluster://127.0.0.1:P1,127.0.0.1:P2,...
        n = cs.node_for_slot(cs.slot_of('{t1}'))  # the master serving that slot now
        cs.migrate_slot(slot, other_master)       # one slot and its keys moved (IMPORTING/MIGRATING/MIGRATE)
        cs.reshard(100, a, b)                     # redis-cli --cluster reshard
        cs.wait_synced(n)                         # its replicas have every write made so far
        old = cs.kill_master(n)                   # kill -9
        new = cs.wait_failover(old, timeout=20)   # its replica serves its slots, cluster_state:ok
        cs.rejoin(old)                            # restarted: it comes back as a replica
        cs.close()

    Every node is a `Redis` (its plain unix socket for the test's own calls,
    `.call()`) with `.data_port` (the TCP port, a TLS one with tls=, that
    the cluster announces and clients connect to) and `.node_id`. The
    cluster bus port is chosen free too (not port+10000, which can be past
    65535). NODE_TIMEOUT_MS is short, so a master is failed over 2-3 s after
    it dies. Every wait is bounded."""

    NODE_TIMEOUT_MS = 1000
    SLOTS = 16384

    def __init__(self, dir, masters=3, replicas=1, tls=None):
        self.dir = os.path.join(dir, 'cluster')
        os.makedirs(self.dir, exist_ok=True)
        self.tls = tls
        self.nodes, self.killed = [], set()
        self.n_masters, self.n_replicas = masters, replicas
        try:
            for i in range(masters * (1 + replicas)):
                self.nodes.append(self._node('node%d' % i))
            self._create()
            self.wait_ok(timeout=30)
            self.wait_replicas(timeout=20)
        except BaseException:
            self.close()
            raise

    # -- processes
    def _node(self, name):
        port, bus = free_port(), free_port()
        args = ['--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
                '--cluster-node-timeout', str(self.NODE_TIMEOUT_MS), '--cluster-port', str(bus),
                '--appendonly', 'no', '--save', '',
                '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']
        if self.tls:
            # Bus, replication and MIGRATE connect as TLS clients: with the
            # client certificate (the server one is for serverAuth only).
            args += ['--tls-cluster', 'yes', '--tls-replication', 'yes',
                     '--tls-client-cert-file', self.tls.client_cert,
                     '--tls-client-key-file', self.tls.client_key]
        else:
            args += ['--port', str(port)]
        r = Redis(self.dir, name=name, tls=self.tls, extra=args)
        r.data_port = r.tls_port if self.tls else port
        r.bus_port = bus
        r.node_id = r.call('CLUSTER', 'MYID')
        return r

    def cli_args(self):
        """redis-cli's TLS options for this cluster ([] without tls)."""
        if not self.tls:
            return []
        return ['--tls', '--cacert', self.tls.ca_cert, '--cert', self.tls.client_cert,
                '--key', self.tls.client_key]

    def _redis_cli(self, args, timeout, what):
        try:
            p = subprocess.run(['redis-cli'] + self.cli_args() + args, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise TestFailure('%s: redis-cli did not finish within %.0f s:\n%s'
                              % (what, timeout, (e.output or b'').decode(errors='replace')[-3000:]))
        out = p.stdout.decode(errors='replace')
        check(p.returncode == 0 and '[ERR]' not in out,
              '%s: redis-cli exited %d:\n%s' % (what, p.returncode, out[-3000:]))
        return out

    def _create(self):
        addrs = ['127.0.0.1:%d' % n.data_port for n in self.nodes]
        self._redis_cli(['--cluster', 'create'] + addrs +
                        ['--cluster-replicas', str(self.n_replicas), '--cluster-yes'],
                        timeout=60, what='cluster create')

    # -- what the nodes say
    def live(self):
        """The nodes not killed (by kill_master or kill9)."""
        return [n for n in self.nodes if n not in self.killed and n.proc and n.proc.poll() is None]

    def by_id(self, node_id):
        return next((n for n in self.nodes if n.node_id == node_id), None)

    def by_port(self, port):
        return next((n for n in self.nodes if n.data_port == int(port)), None)

    @staticmethod
    def info(node):
        """CLUSTER INFO of node as a dict (None when it does not answer)."""
        try:
            text = node.call('CLUSTER', 'INFO')
        except (OSError, RespError):
            return None
        return dict(l.split(':', 1) for l in text.splitlines() if ':' in l)

    def slot_map(self, node):
        """{slot: master node} as `node` sees it (CLUSTER SLOTS); None when
        it does not answer."""
        try:
            ranges = node.call('CLUSTER', 'SLOTS')
        except (OSError, RespError):
            return None
        out = {}
        for r in ranges:
            owner = self.by_port(r[2][1])
            for s in range(int(r[0]), int(r[1]) + 1):
                out[s] = owner
        return out

    def _owner_in_view(self, node, slot):
        try:
            for r in node.call('CLUSTER', 'SLOTS'):
                if int(r[0]) <= slot <= int(r[1]):
                    return self.by_port(r[2][1])
        except (OSError, RespError):
            return None
        return None

    def slot_of(self, key):
        """The slot of key (key_slot: CRC16 of the hash tag or key)."""
        return key_slot(key)

    def node_for_slot(self, slot):
        """The master serving `slot` now: named by a live node and agreeing
        that it owns it itself (during a failover or a migration the nodes'
        views can differ for a moment)."""
        for n in self.live():
            owner = self._owner_in_view(n, slot)
            if owner is not None and owner in self.live() and \
                    self._owner_in_view(owner, slot) is owner:
                return owner
        raise TestFailure('no live node names a live owner of slot %d' % slot)

    def node_for_key(self, key):
        return self.node_for_slot(self.slot_of(key))

    def role(self, node):
        try:
            return node.call('ROLE')
        except (OSError, RespError):
            return None

    def masters(self):
        """The live nodes that answer ROLE master."""
        return [n for n in self.live() if (self.role(n) or [None])[0] == 'master']

    def replicas(self, of=None):
        """The live nodes that answer ROLE slave (of node `of` only, if given)."""
        out = []
        for n in self.live():
            r = self.role(n)
            if r and r[0] == 'slave' and (of is None or int(r[2]) == of.data_port):
                out.append(n)
        return out

    def slots_of(self, node):
        """The slots `node` serves, as a live node that owns slots sees it."""
        view = next((v for v in (self.slot_map(n) for n in self.live()) if v), None) or {}
        return sorted(s for s, o in view.items() if o is node)

    # -- waiting
    def _consistent(self):
        """True when every live node says cluster_state:ok with all slots
        assigned, knows every node not killed, and all of them map the
        slots to the same masters; every replica's link is up."""
        live = self.live()
        views = []
        for n in live:
            i = self.info(n)
            if not i or i.get('cluster_state') != 'ok' or \
                    int(i.get('cluster_slots_assigned', 0)) != self.SLOTS or \
                    int(i.get('cluster_known_nodes', 0)) < len(live):
                return False
            v = self.slot_map(n)
            if v is None or len(v) != self.SLOTS:
                return False
            views.append(v)
        if any(v != views[0] for v in views[1:]):
            return False
        for n in live:
            r = self.role(n)
            if not r:
                return False
            if r[0] == 'slave' and r[3] != 'connected':
                return False
        return True

    def wait_ok(self, timeout=20):
        """Until the cluster is consistent (see _consistent)."""
        wait_until(self._consistent, timeout=timeout, interval=0.1,
                   what='every live cluster node to say cluster_state:ok and agree on the slots')

    def wait_replicas(self, timeout=20):
        """Until every live master has its replicas connected."""
        def ok():
            return all(len(self.replicas(of=m)) >= self.n_replicas for m in self.masters())
        wait_until(ok, timeout=timeout, interval=0.1, what='every master to have its replicas')

    def wait_synced(self, master, timeout=10):
        """Until every replica of `master` has replicated all it had
        written when called (replication is asynchronous: a master killed
        right after a write or a migration may take it with it)."""
        def offset(n, field):
            for line in n.call('INFO', 'replication').splitlines():
                if line.startswith(field + ':'):
                    return int(line.split(':', 1)[1])
            return -1
        target = offset(master, 'master_repl_offset')
        reps = self.replicas(of=master)
        check(reps, 'wait_synced: node %d has no replica' % master.data_port)
        wait_until(lambda: all(offset(r, 'slave_repl_offset') >= target for r in reps), timeout=timeout,
                   what='the replicas of node %d to reach offset %d' % (master.data_port, target))

    # -- what tests use
    def url(self, scheme=None, auth='', **query):
        """redis-cluster:// (rediss-cluster:// with tls) to every node:
        redis-cluster://127.0.0.1:P1,127.0.0.1:P2,...; query: URL
        parameters (with tls, ca defaults to the fixture's CA; ca=None
        leaves it out)."""
        scheme = scheme or ('rediss-cluster' if self.tls else 'redis-cluster')
        q = dict(query)
        if scheme.startswith('rediss'):
            q.setdefault('ca', self.tls.ca_cert)
        parts = ['%s=%s' % (k, v) for k, v in q.items() if v is not None]
        return '%s://%s%s%s' % (scheme, auth, ','.join('127.0.0.1:%d' % n.data_port for n in self.nodes),
                                ('?' + '&'.join(parts)) if parts else '')

    def kill_master(self, node=None):
        """kill -9 of a master (default: the one serving slot 0); returns
        its Redis, whose replicas and slots wait_failover checks. Writes
        not yet replicated are lost, as in production: wait_synced first
        where a test needs them on the promoted replica."""
        node = node or self.node_for_slot(0)
        node.failover_from = ([r for r in self.replicas(of=node)], self.slots_of(node))
        node.kill9()
        self.killed.add(node)
        return node

    def wait_failover(self, old, timeout=20):
        """Until a replica of `old` (killed by kill_master) is master of all
        its slots and every live node says cluster_state:ok and agrees;
        returns the new master."""
        reps, slots = old.failover_from
        check(reps and slots, 'node %s had no replica or no slot when killed' % old.node_id)

        def done():
            if not self._consistent():
                return None
            new = self._owner_in_view(self.live()[0], slots[0])
            if new not in reps or (self.role(new) or [None])[0] != 'master':
                return None
            return new if all(self._owner_in_view(new, s) is new for s in (slots[0], slots[-1])) \
                and self.slots_of(new) == slots else None
        return wait_until(done, timeout=timeout, interval=0.1, what='a replica to take over the slots of a killed master')

    def rejoin(self, node, timeout=20):
        """Starts a killed node again (its nodes.conf kept): it rejoins as a
        replica of the master that took its slots; waits until the cluster
        is consistent and it is connected."""
        node.start()
        self.killed.discard(node)

        def back():
            r = self.role(node)
            return r and r[0] == 'slave' and r[3] == 'connected' and self._consistent()
        wait_until(back, timeout=timeout, interval=0.1, what='node %s to rejoin as a replica' % node.node_id)

    def migrate_slot(self, slot, to_node, timeout=30, batch=100):
        """Moves one slot and its keys from its owner to master `to_node`
        the way `redis-cli --cluster reshard` does: CLUSTER SETSLOT
        IMPORTING on the target, MIGRATING on the source, MIGRATE of keys
        in batches (CLUSTER GETKEYSINSLOT, MIGRATE ... KEYS) until none
        is left, then SETSLOT NODE on the target, the source and the other
        masters; waits until every live node agrees. Clients meanwhile get
        ASK (and TRYAGAIN for multi-key calls over keys split between the
        two), as in production. Returns (source, keys moved)."""
        deadline = time.monotonic() + timeout
        src = self.node_for_slot(slot)
        if src is to_node:
            return src, 0
        check((self.role(to_node) or [None])[0] == 'master', 'migrate_slot: the target is not a master')
        to_node.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', src.node_id)
        src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to_node.node_id)
        moved = 0
        while True:
            keys = src.call('CLUSTER', 'GETKEYSINSLOT', slot, batch)
            if not keys:
                break
            check(time.monotonic() < deadline, 'migrate_slot %d: keys still on the source after %.0f s'
                  % (slot, timeout))
            try:
                src.call('MIGRATE', '127.0.0.1', to_node.data_port, '', 0, 5000, 'KEYS', *keys)
            except RespError as e:
                raise TestFailure('migrate_slot %d: MIGRATE of %d keys to %d: %s'
                                  % (slot, len(keys), to_node.data_port, e))
            moved += len(keys)
        to_node.call('CLUSTER', 'SETSLOT', slot, 'NODE', to_node.node_id)
        src.call('CLUSTER', 'SETSLOT', slot, 'NODE', to_node.node_id)
        for m in self.masters():
            if m is not src and m is not to_node:
                try:
                    m.call('CLUSTER', 'SETSLOT', slot, 'NODE', to_node.node_id)
                except (OSError, RespError):
                    pass  # gossip tells it anyway (the target bumped its epoch)

        def agreed():
            return all(self._owner_in_view(n, slot) is to_node for n in self.live()) and self._consistent()
        wait_until(agreed, timeout=max(1.0, deadline - time.monotonic()), interval=0.05,
                   what='every node to see slot %d on its new master' % slot)
        return src, moved

    def reshard(self, slot_count, from_node, to_node, timeout=120):
        """`redis-cli --cluster reshard` of slot_count slots from one master
        to another (keys too); waits until every live node agrees.
        Returns redis-cli's output."""
        out = self._redis_cli(['--cluster', 'reshard', '127.0.0.1:%d' % to_node.data_port,
                               '--cluster-from', from_node.node_id, '--cluster-to', to_node.node_id,
                               '--cluster-slots', str(slot_count), '--cluster-yes'],
                              timeout=timeout, what='cluster reshard')
        self.wait_ok(timeout=20)
        return out

    def close(self):
        for n in self.nodes:
            n.stop()

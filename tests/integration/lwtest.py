"""lwtest — what every lanework integration test needs.

A private redis-server on a unix socket in a temp dir, a small RESP client
(stdlib only), the real binaries started as processes, a registry written
for the test, and waiting helpers with deadlines. Nothing here mocks Redis or
the binaries: tests assert on what a user can see (CLI output and exit
status, job records, events, files written by handlers).

Paths come from the environment meson sets for each test:
LANEWORK_BIN, LANEWORK_WORKER_BIN, LANEWORK_TESTMOD, LANEWORK_BADABI,
LANEWORK_EXAMPLE_MODULE, LANEWORK_EXAMPLE_DIR.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CLI = os.environ.get('LANEWORK_BIN', 'lanework')
WORKER = os.environ.get('LANEWORK_WORKER_BIN', 'lanework-worker')
TESTMOD = os.environ.get('LANEWORK_TESTMOD', '')
BADABI = os.environ.get('LANEWORK_BADABI', '')
EXAMPLE_MODULE = os.environ.get('LANEWORK_EXAMPLE_MODULE', '')
EXAMPLE_DIR = os.environ.get('LANEWORK_EXAMPLE_DIR', '')


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

    def __init__(self, dir, name='redis', aof=False, extra=None, password=None):
        self.dir = os.path.join(dir, name)
        self.password = password
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


# ------------------------------------------------------------ processes --

class Worker:
    """A lanework-worker process; its stderr goes to a log file."""

    def __init__(self, env, args, name=None, log=None):
        self.env = env
        self.name = name or 'w%d' % (len(env.workers) + 1)
        self.log_path = log or os.path.join(env.dir, '%s.log' % self.name)
        self.args = [WORKER, '--registry', env.registry, '--redis', env.redis.url, '--name', self.name] + args
        self.logf = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=self.logf, env=env.proc_env())
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
    def worker(self, *args, name=None):
        return Worker(self, list(args), name=name)

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

    def close(self, ok):
        for w in self.workers:
            w.close()
        self.redis.stop()
        if ok and not os.environ.get('LW_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self):
        for w in self.workers:
            sys.stderr.write('---- log of %s ----\n%s\n' % (w.name, w.log()[-6000:]))


def run(tests):
    """Runs test functions; each gets a fresh Env. Exit 1 on any failure."""
    only = sys.argv[1:]
    failed = 0
    for fn in tests:
        if only and fn.__name__ not in only:
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

"""Tests of the chaos tooling itself: the clock-skew shim (clockskew.so via
Env.worker(skew_ms=...)), the partitioning Proxy (Env.worker(redis_url=...)),
the ticker exec handler (handlers/ticker.py) and testmod's kinds for hostile
tenant code and benchmarks (ticker, stamp, big_result, big_event, system,
escape, fds). If one of these fails, the chaos tests built on it prove
nothing. And that meson runs every test file there is (a file left out of
tests/integration/meson.build passes by never running)."""
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import time

import lwtest
from lwtest import check, wait_until

DAY_PLUS = 90000000  # 25 h in ms


def mono_ms():
    return time.monotonic_ns() // 1000000


def log_wall_s(worker):
    """Wall time (s since the epoch) of the worker's first log line, from
    its RFC 3339 stamp."""
    line = wait_until(lambda: worker.log().split('\n', 1)[0] if '\n' in worker.log() else None,
                      timeout=10, what='a log line of %s' % worker.name)
    stamp = line.split()[0]
    t = datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%S.%fZ')
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def stop(w):
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker %s exit status' % w.name)


def of_job(recs, jid):
    return [r for r in recs if r[2] == jid]


def check_ticks(recs, jid, end, every=20, min_ticks=5):
    """START, TICK..., END (or STOP) of one attempt, from one process,
    times non-decreasing, ticks about `every` ms apart."""
    mine = of_job(recs, jid)
    whats = [r[0] for r in mine]
    check(whats and whats[0] == 'START' and whats[-1] == end and set(whats[1:-1]) <= {'TICK'},
          'lines of %s: %s' % (jid, whats))
    ticks = [r[1] for r in mine if r[0] == 'TICK']
    check(len(ticks) >= min_ticks, '%s: only %d TICK lines' % (jid, len(ticks)))
    ms = [r[1] for r in mine]
    check(ms == sorted(ms), '%s: times go backwards: %s' % (jid, ms))
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    check(all(every * 0.5 <= g <= every * 10 for g in gaps), '%s: tick gaps %s' % (jid, gaps))
    check(len({r[4] for r in mine}) == 1, '%s: lines of several pids' % jid)
    return mine


def cancel_ticking(env, jid, timeout):
    """Waits until t1's ticker jid ticked 3 times, cancels it and checks
    it ended cancelled with STOP (it saw SIGTERM / lw_job_cancelled)."""
    wait_until(lambda: len([r for r in env.records() if r[2] == jid and r[0] == 'TICK']) >= 3,
               timeout=timeout, what='the ticker to tick')
    rc, _out, err = env.cli('cancel', '--tenant', 't1', jid)
    check(rc == 0, 'cancel: %d %s' % (rc, err))
    env.wait_all('t1', [jid], statuses=('cancelled',), timeout=20)
    check_ticks(env.records(), jid, 'STOP', every=50, min_ticks=3)


# ------------------------------------------------------------ clock skew --

def test_clock_skew(env):
    env.write_registry([env.tenant('t1')])
    m0 = mono_ms()
    t0 = time.time()
    w = env.worker(skew_ms=DAY_PLUS, name='skewed')
    plain = env.worker(name='plain')
    skew_s = log_wall_s(w) - t0
    check(DAY_PLUS / 1000 - 5 <= skew_s <= DAY_PLUS / 1000 + 10,
          'the skewed worker logs %.1f s ahead, not 25 h' % skew_s)
    plain_s = log_wall_s(plain) - t0
    check(-5 <= plain_s <= 10, 'a worker without skew_ms logs %.1f s off' % plain_s)
    stop(plain)
    # The same environment shifts other programs' wall clock too, both ways.
    for skew in (DAY_PLUS, -DAY_PLUS):
        env_ = lwtest.skew_env(env.proc_env(), skew)
        out = subprocess.run(['date', '+%s'], env=env_, stdout=subprocess.PIPE, check=True, timeout=10)
        d = int(out.stdout) - time.time()
        check(abs(d - skew / 1000) < 5, 'date under skew %d ms is %.0f s off' % (skew, d))
        out = subprocess.run([sys.executable, '-c', 'import time; print(time.time(), time.monotonic())'],
                             env=env_, stdout=subprocess.PIPE, check=True, timeout=10)
        wall, mono = (float(x) for x in out.stdout.split())
        check(abs(wall - time.time() - skew / 1000) < 5, 'python time.time() under skew %d ms' % skew)
        check(abs(mono - time.monotonic()) < 5, 'python time.monotonic() moved under skew %d ms' % skew)
    # CLOCK_MONOTONIC does not move: the skewed worker's (forked) handler
    # writes its START with it, which lies in this process's monotonic window.
    jid = env.enqueue('t1', 'record', {'ms': 20})
    env.wait_all('t1', [jid], timeout=20)
    m1 = mono_ms()
    starts = [r[1] for r in env.records() if r[0] == 'START' and r[2] == jid]
    check(len(starts) == 1 and m0 <= starts[0] <= m1,
          'START of the skewed worker\'s job at %s, outside [%d, %d]' % (starts, m0, m1))
    check(env.status('t1', jid)['worker'] == 'skewed', 'the job ran elsewhere')
    # Redis's clock is not skewed: the record's times are the server's.
    enq = env.status('t1', jid)['enqueued_at']
    et = datetime.datetime.strptime(enq, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc)
    check(abs(et.timestamp() - time.time()) < 60, 'enqueued_at %s is not now' % enq)
    stop(w)


# ----------------------------------------------------------------- proxy --

def resp_ping(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(100)
    except socket.timeout:
        return None


def test_proxy_raw(env):
    p = env.proxy()
    check(p.url == 'redis://127.0.0.1:%d' % p.port, 'url %s' % p.url)
    s = socket.create_connection(('127.0.0.1', p.port), timeout=5)
    s.sendall(b'PING\r\n')
    check(resp_ping(s, 5) == b'+PONG\r\n', 'PING through the proxy')
    p.cut()
    check(p.is_cut(), 'is_cut after cut()')
    s.sendall(b'PING\r\n')
    check(resp_ping(s, 0.7) is None, 'a reply came through a cut proxy')
    s2 = socket.create_connection(('127.0.0.1', p.port), timeout=5)  # handshake in the backlog
    s2.sendall(b'PING\r\n')
    check(resp_ping(s2, 0.5) is None, 'a new connection was served while cut')
    n = p.accepted
    p.heal()
    check(resp_ping(s, 5) == b'+PONG\r\n', 'the PING sent while cut arrives after heal')
    check(resp_ping(s2, 5) == b'+PONG\r\n', 'the connection made while cut is served after heal')
    check(p.accepted == n + 1, 'accepted %d -> %d' % (n, p.accepted))
    # Larger than every buffer on the way, both ways.
    val = b'v' * (3 << 20)
    s.sendall(b'*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n' % (len(val), val))
    check(resp_ping(s, 10) == b'+OK\r\n', 'SET of 3 MiB')
    s.sendall(b'GET k\r\n')
    want = b'$%d\r\n%s\r\n' % (len(val), val)
    got = b''
    s.settimeout(10)
    while len(got) < len(want):
        chunk = s.recv(1 << 20)
        check(chunk, 'EOF in the middle of GET')
        got += chunk
    check(got == want, 'GET of 3 MiB through the proxy')
    # Redis going away closes the client side once its bytes are through.
    env.redis.stop()
    check(resp_ping(s, 5) == b'', 'no EOF after redis-server stopped')
    s.close()
    s2.close()
    p.close()
    p.close()  # twice is fine


def test_proxy_stall(env):
    p = env.proxy()
    s = socket.create_connection(('127.0.0.1', p.port), timeout=5)
    s.sendall(b'PING\r\n')
    check(resp_ping(s, 5) == b'+PONG\r\n', 'PING through the proxy')
    p.stall()
    s.sendall(b'PING\r\n')
    check(resp_ping(s, 0.7) is None, 'a reply came through a stalled connection')
    s2 = socket.create_connection(('127.0.0.1', p.port), timeout=5)
    s2.sendall(b'PING\r\n')
    check(resp_ping(s2, 5) == b'+PONG\r\n', 'a connection made after stall() is not served')
    p.heal()
    check(resp_ping(s, 0.5) is None, 'heal() revived a stalled connection')
    s.close()
    s2.close()


def test_proxy_partition_worker(env):
    env.write_registry([env.tenant('t1')])
    p = env.proxy()
    w = env.worker(redis_url=p.url)
    a = env.enqueue('t1', 'record', {'ms': 10})
    env.wait_all('t1', [a], timeout=20)
    p.cut()
    later = [env.enqueue('t1', 'record', {'ms': 10}) for _ in range(3)]  # straight to Redis
    time.sleep(2)
    st = env.statuses('t1', later)
    check(st == ['queued'] * 3, 'jobs enqueued during the cut: %s' % st)
    check(not [r for r in env.records() if r[2] in later], 'a job started during the cut')
    check(w.running(), 'the worker died during the cut')
    p.heal()
    env.wait_all('t1', later, timeout=40)
    check(all(env.status('t1', j)['worker'] == w.name for j in later), 'ran by another worker')
    stop(w)


# ---------------------------------------------------------------- ticker --

def test_ticker_module(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--isolation', 'fork')
    m0 = mono_ms()
    a = env.enqueue('t1', 'ticker', {'ms': 300, 'every_ms': 20})
    env.wait_all('t1', [a], timeout=20)
    m1 = mono_ms()
    mine = check_ticks(env.records(), a, 'END', every=20, min_ticks=8)
    check(m0 <= mine[0][1] and mine[-1][1] <= m1, 'ticker times outside [%d, %d]: %s' % (m0, m1, mine))
    check(mine[-1][1] - mine[0][1] >= 290, 'ran %d ms, not 300' % (mine[-1][1] - mine[0][1]))
    # Stopped: STOP instead of END, LW_FAIL "stopped".
    cancel_ticking(env, env.enqueue('t1', 'ticker', {'ms': 20000, 'every_ms': 50}), timeout=10)
    stop(w)
    # Thread isolation: the same lines, this process's pid.
    w = env.worker('--isolation', 'thread')
    c = env.enqueue('t1', 'ticker', {'ms': 200})
    env.wait_all('t1', [c], timeout=20)
    check(check_ticks(env.records(), c, 'END')[0][4] == w.pid, 'thread ticker pid')
    stop(w)


def test_ticker_exec(env):
    check(os.access(lwtest.TICKER, os.X_OK), 'TICKER %s is not executable' % lwtest.TICKER)
    env.write_registry([env.tenant('t1', exec={'ticker': [sys.executable, lwtest.TICKER]})])
    w = env.worker()
    m0 = mono_ms()
    a = env.enqueue('t1', 'ticker', {'record': env.record_file, 'ms': 400, 'every_ms': 20}, lane='L1')
    env.wait_all('t1', [a], timeout=30)
    m1 = mono_ms()
    mine = check_ticks(env.records(), a, 'END', every=20, min_ticks=8)
    check(mine[0][3] == 'L1', 'lane field %s' % mine[0][3])
    check(m0 <= mine[0][1] and mine[-1][1] <= m1, 'exec ticker times outside [%d, %d]' % (m0, m1))
    check(mine[0][4] != w.pid, 'the exec ticker ran in the worker process')
    check(env.status('t1', a)['result'] == {'ticker': a}, 'result %s' % env.status('t1', a)['result'])
    # SIGTERM (a cancel) -> STOP, exit 1.
    cancel_ticking(env, env.enqueue('t1', 'ticker', {'record': env.record_file, 'ms': 30000, 'every_ms': 50}),
                   timeout=15)
    # Without a record file: failed for good (exit 65), no retry.
    c = env.enqueue('t1', 'ticker', {'ms': 10})
    env.wait_all('t1', [c], statuses=('failed',), timeout=20)
    st = env.status('t1', c)
    check(st['attempt'] == 1 and 'no record file' in (st['error'] or ''), 'bad payload: %s' % st)
    stop(w)


# ---------------------------------------------------------- other kinds --

def test_kinds(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker()
    t = time.monotonic_ns() // 1000
    s = env.enqueue('t1', 'stamp', {'t': t})
    big_r = env.enqueue('t1', 'big_result', {'bytes': 5000})
    big_e = env.enqueue('t1', 'big_event', {'bytes': 3000})
    ok = env.enqueue('t1', 'system', {'cmd': 'true'})
    bad = env.enqueue('t1', 'system', {'cmd': 'exit 3'})
    out = os.path.join(env.dir, 'fds.txt')
    fds = env.enqueue('t1', 'fds', {'out': out})
    env.wait_all('t1', [s, big_r, big_e, ok, fds], timeout=30)
    env.wait_all('t1', [bad], statuses=('failed',), timeout=30)
    stamps = [l.split() for l in open(env.record_file) if l.startswith('STAMP ')]
    check(len(stamps) == 1 and len(stamps[0]) == 4, 'STAMP lines %s' % stamps)
    _w, now_us, t_us, jid = stamps[0]
    check(int(t_us) == t and jid == s and t < int(now_us) <= time.monotonic_ns() // 1000,
          'STAMP %s for t %d' % (stamps[0], t))
    check(env.status('t1', big_r)['result'] == 'x' * 5000, 'big_result')
    ev = [e for e in env.events('t1') if e['job'] == big_e and e['type'] == 'step.created']
    check(len(ev) == 1 and ev[0]['data'] == 'x' * 3000, 'big_event: %s' % [len(str(e)) for e in ev])
    st = env.status('t1', bad)
    check(st['error'] == 'system() returned 768 (errno 0: Success)', 'system error: %r' % st['error'])
    check(st['attempt'] == 1, 'system failure retried')
    text = env.status('t1', fds)['result']
    check(isinstance(text, str) and ' 0 -> ' in text and out in text, 'fds result: %r' % text)
    stop(w)


def test_escape(env):
    env.write_registry([env.tenant('t1')])
    pids = []
    try:
        for iso in ('fork', 'thread'):
            w = env.worker('--isolation', iso)
            pidfile = os.path.join(env.dir, 'escapee-%s.pid' % iso)
            # ms: how long the escapee lives unless the worker kills it (a
            # fork child's escapee may hold the result pipe open that long).
            j = env.enqueue('t1', 'escape', {'pidfile': pidfile, 'ms': 4000, 'hold_ms': 50})
            env.wait_all('t1', [j], timeout=30)
            text = open(pidfile).read()
            check(text.endswith('\n') and text.strip().isdigit(), 'pidfile %r' % text)
            pid = int(text)
            pids.append(pid)
            check(pid not in (w.pid, os.getpid()), 'escapee pid %d' % pid)
            try:
                with open('/proc/%d/stat' % pid) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
                # Alive (the worker may also have killed it by now): its own session.
                check(fields[0] == 'Z' or int(fields[3]) == pid, 'escapee not a session leader: %s' % fields[:5])
            except (FileNotFoundError, ProcessLookupError):  # reaped by now (ESRCH: between open and read)
                pass
            check(not [n for n in os.listdir(env.dir) if n.endswith('.pid.tmp')], 'a temp pidfile is left')
            stop(w)
    finally:
        for pid in pids:  # the escapees this test made, if still theirs
            try:
                with open('/proc/%d/stat' % pid) as f:
                    if int(f.read().rsplit(')', 1)[1].split()[3]) == pid:
                        os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass


def test_every_test_file_is_run(env):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, 'meson.build')) as f:
        build = f.read()
    names = sorted(n[len('test_'):-len('.py')] for n in os.listdir(here)
                   if n.startswith('test_') and n.endswith('.py'))
    missing = [n for n in names if "'%s'" % n not in build]
    check(not missing, 'test files meson never runs: %s' % ', '.join('test_%s.py' % n for n in missing))
    # A file run as several entries (split_tests: some functions alone, the
    # others beside other tests) runs only the functions they name.
    named = {}
    for entry in re.finditer(r"'\w+' : \['(\w+)', \[([^\]]*)\]", build):
        named.setdefault(entry.group(1), set()).update(re.findall(r"'(test_\w+)'", entry.group(2)))
    check(named, 'no split_tests entries found in meson.build: this check reads them')
    for name, fns in sorted(named.items()):
        with open(os.path.join(here, 'test_%s.py' % name)) as f:
            defined = set(re.findall(r'^def (test_\w+)\(', f.read(), re.M))
        check(not defined - fns, 'test_%s.py: functions no meson entry runs: %s' % (name, sorted(defined - fns)))
        check(not fns - defined, 'meson.build names functions test_%s.py lacks: %s' % (name, sorted(fns - defined)))


if __name__ == '__main__':
    lwtest.run([test_every_test_file_is_run, test_clock_skew, test_proxy_raw, test_proxy_stall, test_proxy_partition_worker, test_ticker_module,
                test_ticker_exec, test_kinds, test_escape])

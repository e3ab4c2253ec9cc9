"""Faults (CONTRACT sections 4.1, 4.9 and 5): corrupt records in Redis,
fencing of an attempt whose lease was taken over, Redis turning read-only
(failover) and coming back, /healthz and /metrics, and the eviction-policy
warning."""
import os
import signal
import socket
import subprocess
import time

import lwtest
from lwtest import Redis, check, free_port, http_get, wait_until


def test_corrupt_records_are_skipped(env):
    env.write_registry([env.tenant('t1')])
    good = [env.enqueue('t1', 'noop', {}) for _ in range(3)]
    bad_hash = env.enqueue('t1', 'noop', {}, lane='L1')
    behind = env.enqueue('t1', 'noop', {}, lane='L1')
    bad_type = env.enqueue('t1', 'noop', {})
    # A record with garbage in its fields, and one that is not even a hash.
    env.redis.call('HSET', 'lw:{t1}:job:' + bad_hash, 'attempt', 'many', 'status', '\x00??', 'payload', '{')
    env.redis.call('DEL', 'lw:{t1}:job:' + bad_type)
    env.redis.call('SET', 'lw:{t1}:job:' + bad_type, 'not a hash')
    # A ready list entry naming a job that does not exist at all.
    env.redis.call('RPUSH', 'lw:{t1}:ready:default', 'ghost')
    w = env.worker()
    more = [env.enqueue('t1', 'noop', {}) for _ in range(3)]
    env.wait_all('t1', good + more + [behind], timeout=20)
    log = w.log()
    for jid in (bad_hash, bad_type):
        check(jid in log, 'no log line names the corrupt job %s:\n%s' % (jid, log[-3000:]))
    check(w.running(), 'worker died on a corrupt record')
    rc, out, err = env.cli('status', '--tenant', 't1', bad_type)
    check(rc in (1, 4) and bad_type in err, 'status of a corrupt record: %d %s' % (rc, err))
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_fencing_after_lease_takeover(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0.05})])
    a = env.worker('--lease', '1', '--isolation', 'fork', name='a')
    jid = env.enqueue('t1', 'record', {'ms': 1500})
    wait_until(lambda: env.statuses('t1', [jid]) == ['active'], what='a to claim the job')
    # a stops answering (a long GC pause, a frozen VM): its lease runs out.
    # Its forked child keeps running and finishes while a is frozen.
    a.signal(signal.SIGSTOP)
    try:
        b = env.worker('--lease', '1', name='b')
        env.wait_all('t1', [jid], timeout=20)
        check(env.status('t1', jid)['worker'] == 'b', 'b took the job over')
    finally:
        a.signal(signal.SIGCONT)
    time.sleep(1.5)  # a wakes up, gets its child's outcome, tries to record it
    evs = [e for e in env.events('t1') if e['job'] == jid]
    types = [e['type'] for e in evs]
    check(types.count('job.succeeded') == 1, 'the stale attempt recorded an outcome: %s' % types)
    check('job.lost' in types, 'no job.lost event: %s' % types)
    s = env.status('t1', jid)
    check(s['worker'] == 'b' and s['status'] == 'succeeded', 'record: %s' % s)
    for w in (a, b):
        w.signal(signal.SIGTERM)
        check(w.wait() == 0, 'worker %s exit' % w.name)


def test_readonly_failover_and_back(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '4')
    running = env.enqueue('t1', 'record', {'ms': 1500})
    wait_until(lambda: env.statuses('t1', [running]) == ['active'], what='job to start')
    # The server becomes a replica (a failover moved the primary away):
    # every write is refused with READONLY.
    dead_port = free_port()
    env.redis.call('REPLICAOF', '127.0.0.1', str(dead_port))
    time.sleep(2.5)  # the attempt ends while Redis refuses writes
    check(w.running(), 'worker died on READONLY')
    env.redis.call('REPLICAOF', 'NO', 'ONE')
    env.wait_all('t1', [running], timeout=20)  # its outcome was kept and written
    after = [env.enqueue('t1', 'noop', {}) for _ in range(5)]
    env.wait_all('t1', after, timeout=20)  # the claim loop came back by itself
    check('READONLY' in w.log() or 'read only' in w.log().lower() or 'readonly' in w.log().lower(),
          'READONLY not reported:\n%s' % w.log()[-2000:])
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def _log_lines(text):
    """(level, line) of each line of a text-format worker log."""
    out = []
    for line in text.splitlines():
        f = line.split(None, 2)
        if len(f) >= 2:
            out.append((f[1], line))
    return out


def test_replica_waits_for_primary(env):
    """The worker's Redis is a replica for 6 s (of a primary that is not
    there) while an attempt runs: the worker waits for a primary on a
    growing backoff instead of reconnecting, being refused with READONLY and
    warning in a loop; once the server is a primary again, the attempt's
    outcome is recorded and new jobs run within 5 s."""
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '4', '--log-level', 'debug')  # debug: every reconnection is seen
    running = env.enqueue('t1', 'record', {'ms': 1500})
    wait_until(lambda: env.statuses('t1', [running]) == ['active'], what='job to start')
    start = len(w.log())
    env.redis.call('REPLICAOF', '127.0.0.1', str(free_port()))
    time.sleep(6)  # the attempt ends while Redis refuses writes
    window = w.log()[start:]
    env.redis.call('REPLICAOF', 'NO', 'ONE')
    back = time.monotonic()
    check(w.running(), 'worker died on a replica')
    lines = _log_lines(window)
    reconnects = [l for _, l in lines if 'connected to' in l]
    warnings = [l for lvl, l in lines if lvl in ('warn', 'error')
                and ('READONLY' in l or 'replica' in l.lower())]
    check(len(reconnects) <= 8, '%d reconnections in 6 s as a replica (at most 8):\n%s'
          % (len(reconnects), '\n'.join(reconnects[:20])))
    check(len(warnings) <= 3, '%d READONLY/replica warnings in 6 s (at most 3):\n%s'
          % (len(warnings), '\n'.join(warnings[:20])))
    check(any('replica' in l for _, l in lines), 'the replica was never reported:\n%s' % window[-3000:])
    env.wait_all('t1', [running], timeout=5)  # its outcome was kept and written
    after = [env.enqueue('t1', 'noop', {}) for _ in range(3)]
    env.wait_all('t1', after, timeout=max(0.5, 5 - (time.monotonic() - back)))
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_connect_timeout_reconnects(env):
    """A Redis address that never completes a connect (a host gone from the
    network; here a TCP listener whose accept queue is full): the watchdog
    gives up on the connect after 5 s and tries again, over and over."""
    env.write_registry([env.tenant('t1')])
    lst = socket.socket()
    lst.bind(('127.0.0.1', 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: further SYNs are dropped
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(('127.0.0.1', port))
            except BlockingIOError:
                pass
            fillers.append(c)
        args = [lwtest.WORKER, '--registry', env.registry, '--redis', 'redis://127.0.0.1:%d' % port,
                '--name', 'hang', '--log-level', 'debug']
        logpath = os.path.join(env.dir, 'hang.log')
        with open(logpath, 'wb') as logf:
            p = subprocess.Popen(args, stdout=logf, stderr=logf, env=env.proc_env())
        try:
            def timeouts():
                with open(logpath) as f:
                    return [l for l in f if 'commands connection' in l and 'connect timed out' in l]
            wait_until(lambda: len(timeouts()) >= 2 or p.poll() is not None, timeout=25,
                       interval=0.2, what='two connect timeouts')
            with open(logpath) as f:
                log = f.read()
            check(p.poll() is None, 'worker died (%s) after a connect timeout:\n%s' % (p.returncode, log[-2000:]))
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
    finally:
        for c in fillers:
            c.close()
        lst.close()


def _fds_not_cloexec(pid):
    """The fds of process pid, beyond 0-2, that an exec would hand on."""
    bad = []
    for name in os.listdir('/proc/%d/fd' % pid):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            with open('/proc/%d/fdinfo/%d' % (pid, fd)) as f:
                flags = [int(l.split()[1], 8) for l in f if l.startswith('flags:')][0]
            target = os.readlink('/proc/%d/fd/%d' % (pid, fd))
        except FileNotFoundError:
            continue  # closed meanwhile
        if not flags & 0o2000000:  # O_CLOEXEC
            bad.append('%d -> %s' % (fd, target))
    return bad


def _sockets(pid):
    n = 0
    for name in os.listdir('/proc/%d/fd' % pid):
        try:
            n += os.readlink('/proc/%d/fd/%s' % (pid, name)).startswith('socket:')
        except FileNotFoundError:
            pass
    return n


def _check_cloexec(env, isolation):
    """Every fd of a worker (Redis connections of two links, a running
    attempt's pipes or eventfd) is close-on-exec: a program a module starts
    with system() inherits none of them, least of all an authenticated Redis
    connection."""
    other = Redis(env.dir, name='redis-other')
    env.write_registry([env.tenant('t1'), env.tenant('t2', redis=other.url)])
    try:
        w = env.worker('--isolation', isolation, '--concurrency', '2')
        running = env.enqueue('t1', 'record', {'ms': 3000})
        wait_until(lambda: env.statuses('t1', [running]) == ['active'], what='job to start')
        # Two links, each a command and a pub/sub connection (plus whatever
        # libevent holds).
        wait_until(lambda: _sockets(w.pid) >= 4, timeout=10, what='4 Redis connections')
        bad = _fds_not_cloexec(w.pid)
        check(not bad, '%s isolation: fds an exec would inherit: %s' % (isolation, ', '.join(bad)))
        env.wait_all('t1', [running], timeout=20)
        w.signal(signal.SIGTERM)
        check(w.wait() == 0, 'worker exit')
    finally:
        other.stop()


def test_redis_sockets_cloexec_thread(env):
    _check_cloexec(env, 'thread')


def test_redis_sockets_cloexec_fork(env):
    _check_cloexec(env, 'fork')


def test_redis_loading_after_restart(env):
    """Redis restarted from a big AOF answers LOADING for a while: the worker
    waits it out, keeps the outcome of the attempt that ended meanwhile, and
    claims again by itself."""
    env.redis.stop()
    env.redis = Redis(env.dir, name='redis-aof', aof=True,
                      extra=['--aof-use-rdb-preamble', 'no', '--enable-debug-command', 'yes'])  # a plain AOF loads slowly
    env.redis.call('DEBUG', 'POPULATE', '1500000', 'filler', '16')
    env.redis.call('BGREWRITEAOF')
    wait_until(lambda: 'aof_rewrite_in_progress:0' in env.redis.call('INFO', 'persistence')
               and 'aof_rewrite_scheduled:0' in env.redis.call('INFO', 'persistence'),
               timeout=60, what='the AOF rewrite')
    env.write_registry([env.tenant('t1')])
    w = env.worker('--lease', '30')
    running = env.enqueue('t1', 'record', {'ms': 800})
    # The handler's own START line, not the job's 'active': that is the
    # claim in Redis, whose reply may not have reached the worker yet (slow
    # under ASan beside other tests). Killed then, the claim proves nothing
    # and the job waits out its 30 s lease: no attempt ended meanwhile.
    wait_until(lambda: any(r[0] == 'START' and r[2] == running for r in env.records()), what='job to start')
    env.redis.kill9()
    # Start it again without waiting: it is LOADING while the attempt ends.
    args = ['redis-server', '--port', '0', '--unixsocket', env.redis.sock, '--unixsocketperm', '700',
            '--dir', env.redis.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
            '--aof-use-rdb-preamble', 'no', '--logfile', os.path.join(env.redis.dir, 'redis.log')]
    env.redis.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(env.redis._up, timeout=60, what='Redis to finish loading')
    env.wait_all('t1', [running], timeout=30)
    after = [env.enqueue('t1', 'noop', {}) for _ in range(3)]
    env.wait_all('t1', after, timeout=20)
    check('LOADING' in w.log(), 'the worker never met LOADING: the test did not test it')
    check(w.running(), 'worker died')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_healthz_and_metrics(env):
    # A password-protected Redis: the password must appear nowhere.
    env.redis.stop()
    env.redis = Redis(env.dir, name='redis-auth', password='s3cret-pw')
    url = 'unix://:s3cret-pw@' + env.redis.sock
    env.write_registry([env.tenant('t1')])
    port = free_port()
    args = [lwtest.WORKER, '--registry', env.registry, '--redis', url, '--name', 'hw',
            '--http', '127.0.0.1:%d' % port]
    logpath = os.path.join(env.dir, 'hw.log')
    with open(logpath, 'wb') as logf:
        p = subprocess.Popen(args, stdout=logf, stderr=logf, env=env.proc_env())
    try:
        wait_until(lambda: _status(port, '/healthz') == 200, timeout=10, what='/healthz 200')
        cli = [lwtest.CLI, '--redis', url, '--registry', env.registry]
        ids = []
        for _ in range(3):
            out = subprocess.run(cli + ['enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}'],
                                 stdout=subprocess.PIPE, env=env.proc_env(), check=True).stdout
            ids.append(out.decode().strip())
        fail = subprocess.run(cli + ['enqueue', '--tenant', 't1', '--kind', 'fail', '--payload', '{}',
                                     '--attempts', '1', '--wait'], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env.proc_env())
        check(fail.returncode == 1, '--wait on a failing job exits 1')
        env.wait_all('t1', ids)
        code, body = http_get(port, '/metrics')
        check(code == 200, '/metrics %d' % code)
        for needle in ('lanework_jobs_total{tenant="t1",queue="default",kind="noop",outcome="succeeded"} 3',
                       'lanework_jobs_total{tenant="t1",queue="default",kind="fail",outcome="failed"} 1',
                       'lanework_attempt_duration_seconds_bucket', 'lanework_active_jobs',
                       'lanework_redis_errors_total'):
            check(needle in body, 'metrics lack %r:\n%s' % (needle, body[:3000]))
        env.redis.kill9()
        wait_until(lambda: _status(port, '/healthz') == 503, timeout=15, what='/healthz 503 with Redis down')
        env.redis.start()
        wait_until(lambda: _status(port, '/healthz') == 200, timeout=15, what='/healthz 200 again')
        code, body = http_get(port, '/metrics')
        check('s3cret-pw' not in body, 'the password leaked into /metrics')
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    with open(logpath) as f:
        log = f.read()
    check('s3cret-pw' not in log, 'the password leaked into the log')
    check(p.returncode == 0, 'worker exit %d' % p.returncode)


def _status(port, path):
    try:
        return http_get(port, path)[0]
    except OSError:
        return None


def test_eviction_policy_warning(env):
    env.redis.call('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru')
    env.write_registry([env.tenant('t1')])
    w = env.worker()
    wait_until(lambda: 'noeviction' in w.log(), timeout=10, what='a warning about maxmemory-policy')
    check('allkeys-lru' in w.log(), 'the warning names the policy:\n%s' % w.log())
    w.signal(signal.SIGTERM)
    w.wait()


def test_dead_connection_is_replaced_before_the_fence(env):
    """A command connection whose path died (half-open TCP, a NAT that
    forgot it: Proxy.stall) while Redis answers new connections. With
    --lease 3 the fence freezes attempts 1.95 s after their last confirmed
    renewal; the fixed 10 s reply timeout left every attempt frozen for
    seconds. Now the link is probed after lease/4 and replaced, and the
    renewal gets through before the freeze point."""
    env.write_registry([env.tenant('t1')])
    p = env.proxy()
    w = env.worker('--lease', '3', redis_url=p.url)
    jid = env.enqueue('t1', 'record', {'ms': 6000})
    wait_until(lambda: env.status('t1', jid)['status'] == 'active', timeout=10, what='the job to start')
    time.sleep(0.6)
    p.stall()
    t0 = time.monotonic()
    wait_until(lambda: 'while a new connection got one' in w.log(), timeout=9, what='the dead connection replaced')
    took = time.monotonic() - t0
    check(took < 2.0, 'the dead connection was replaced only after %.1f s (--lease 3)' % took)
    quick = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [quick], timeout=5)
    env.wait_all('t1', [jid], timeout=20)
    st = env.status('t1', jid)
    check(st['attempt'] == 1, 'the job took %d attempts' % st['attempt'])
    check('lease.thawed' not in w.log(), 'the attempt was frozen although Redis was reachable:\n%s' % w.log()[-2000:])
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


if __name__ == '__main__':
    lwtest.run([test_corrupt_records_are_skipped, test_fencing_after_lease_takeover,
                test_readonly_failover_and_back, test_replica_waits_for_primary, test_redis_loading_after_restart,
                test_healthz_and_metrics, test_eviction_policy_warning, test_connect_timeout_reconnects,
                test_redis_sockets_cloexec_thread, test_redis_sockets_cloexec_fork,
                test_dead_connection_is_replaced_before_the_fence])

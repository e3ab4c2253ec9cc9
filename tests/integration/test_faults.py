"""Faults (CONTRACT sections 4.1, 4.9 and 5): corrupt records in Redis,
fencing of an attempt whose lease was taken over, Redis turning read-only
(failover) and coming back, /healthz and /metrics, and the eviction-policy
warning."""
import http.client
import os
import signal
import socket
import subprocess
import time

import lwtest
from lwtest import Redis, check, wait_until


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        c.request('GET', path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


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
    wait_until(lambda: env.statuses('t1', [running]) == ['active'], what='job to start')
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
        for needle in ('lanework_jobs_total{tenant="t1",kind="noop",outcome="succeeded"} 3',
                       'lanework_jobs_total{tenant="t1",kind="fail",outcome="failed"} 1',
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


if __name__ == '__main__':
    lwtest.run([test_corrupt_records_are_skipped, test_fencing_after_lease_takeover,
                test_readonly_failover_and_back, test_redis_loading_after_restart, test_healthz_and_metrics,
                test_eviction_policy_warning])

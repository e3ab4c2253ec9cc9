"""`events --follow` and `wait` live through Redis outages: a restart (from
the AOF), CLIENT KILL, a connection cut while the awaited job ends. They
reconnect and go on where they were -- every event exactly once, a job that
ended meanwhile seen -- while a refusal (NOPERM, WRONGPASS) still ends them
at once with exit 3, and --timeout still bounds wait."""
import json
import os
import signal
import subprocess
import threading
import time

from lwtest import CLI, Redis, check, run, wait_until


def aof_redis(env):
    """Replaces the test's Redis with one that keeps its data in an AOF
    (appendfsync always): a restart loses nothing."""
    env.redis.stop()
    env.redis = Redis(env.dir, name='redis-aof', aof=True)


class Follower:
    """A `lanework events --follow` running in the background; its stdout
    lines are collected by a thread."""

    def __init__(self, env, *args, url=None):
        argv = [CLI, 'events', '--follow', '--redis', url or env.redis.url, '--registry', env.registry] + list(args)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.proc_env())
        self.lines = []
        self.err = b''
        self._out = threading.Thread(target=self._read_out, daemon=True)
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out.start()
        self._err.start()

    def _read_out(self):
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self._out.join(timeout=5)
        self._err.join(timeout=5)
        return self.proc.returncode, self.err.decode('utf-8', 'replace')


def enqueue_n(env, n, tag):
    return [env.enqueue('acme', 'noop', {'tag': tag, 'i': i}) for i in range(n)]


def kill_normal_clients(env):
    """CLIENT KILL TYPE normal: every client but the one asking (SKIPME)."""
    return env.redis.call('CLIENT', 'KILL', 'TYPE', 'normal')


def warnings(err):
    return [l for l in err.splitlines() if 'warning' in l]


def test_events_follow_survives_kill_and_restart(env):
    aof_redis(env)
    env.write_registry([env.tenant('acme')])
    first = enqueue_n(env, 3, 'before')
    f = Follower(env, '--tenant', 'acme')
    try:
        wait_until(lambda: len(f.lines) >= 3, timeout=10, what='the follower to print the first events')
        check(kill_normal_clients(env) >= 1, 'CLIENT KILL found no client')
        second = enqueue_n(env, 3, 'after-kill')
        wait_until(lambda: len(f.lines) >= 6, timeout=15, what='events after CLIENT KILL')
        env.redis.restart()  # kill -9, then up again from the AOF
        third = enqueue_n(env, 3, 'after-restart')
        wait_until(lambda: len(f.lines) >= 9, timeout=20, what='events after the Redis restart')
        time.sleep(0.3)  # a duplicate would come now
    finally:
        rc, err = f.stop()
    check(f.proc.returncode is not None, 'follower did not stop')
    printed = [e['id'] for e in f.lines]
    stream = [e['id'] for e in env.events('acme')]
    check(printed == stream, 'follower printed %s, the stream holds %s' % (printed, stream))
    check([e['job'] for e in f.lines] == first + second + third, 'events not in enqueue order: %s' % f.lines)
    w = warnings(err)
    check(1 <= len(w) <= 2 and all(l.startswith('lanework: events: warning: redis ') for l in w),
          'expected one warning line per outage: %r' % err)


def test_wait_survives_restart_and_sees_a_job_that_ended_meanwhile(env):
    aof_redis(env)
    env.write_registry([env.tenant('acme', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0.05})])
    env.worker('--concurrency', '2')
    # A restart while waiting.
    jid = env.enqueue('acme', 'sleep', {'ms': 1500})
    p = subprocess.Popen([CLI, 'wait', '--tenant', 'acme', jid, '--timeout', '60', '--redis', env.redis.url,
                          '--registry', env.registry], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env.proc_env())
    time.sleep(0.5)
    env.redis.restart()
    out, err = p.communicate(timeout=60)
    err = err.decode()
    check(p.returncode == 0, 'wait across a restart: exit %d %r' % (p.returncode, err))
    check(len(warnings(err)) == 1, 'one warning line for the outage: %r' % err)

    # The job ends while wait's connection is cut (no event reaches it),
    # then the connection dies (CLIENT KILL): wait reconnects and reads the
    # status again.
    proxy = env.proxy()
    jid = env.enqueue('acme', 'sleep', {'ms': 800})
    p = subprocess.Popen([CLI, 'wait', '--tenant', 'acme', jid, '--timeout', '60', '--redis', proxy.url,
                          '--registry', env.registry], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env.proc_env())
    time.sleep(0.3)
    proxy.cut()
    wait_until(lambda: env.status('acme', jid)['status'] == 'succeeded', timeout=20, what='the job to succeed')
    kill_normal_clients(env)
    time.sleep(0.2)
    proxy.heal()
    out, err = p.communicate(timeout=30)
    err = err.decode()
    check(p.returncode == 0, 'wait with the job ended while cut off: exit %d %r' % (p.returncode, err))
    check(len(warnings(err)) == 1, 'one warning line for the outage: %r' % err)


def test_wait_timeout_bounds_the_reconnects(env):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'noop', {})  # no worker: it never ends
    p = subprocess.Popen([CLI, 'wait', '--tenant', 'acme', jid, '--timeout', '2', '--redis', env.redis.url,
                          '--registry', env.registry], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env.proc_env())
    t0 = time.monotonic()
    time.sleep(0.4)
    env.redis.stop()  # and stays down
    out, err = p.communicate(timeout=30)
    took = time.monotonic() - t0
    err = err.decode()
    check(p.returncode == 124, 'wait with Redis gone: exit %d %r' % (p.returncode, err))
    check(took < 6, 'wait --timeout 2 took %.1f s with Redis down' % took)
    check('timed out after 2s' in err, 'timeout message: %r' % err)


def test_refusals_still_end_at_once(env):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'noop', {})
    sock = env.redis.sock
    # A user who may read job records but not the stream: NOPERM is exit 3 at once.
    env.redis.call('ACL', 'SETUSER', 'noxread', 'on', '>pw1', '~*', '+@all', '-xread')
    url = 'unix://noxread:pw1@' + sock
    t0 = time.monotonic()
    rc, out, err = env.cli('events', '--tenant', 'acme', '--follow', '--redis', url, redis=False, timeout=20)
    check(rc == 3 and 'NOPERM' in err and len(err.splitlines()) == 1, 'events --follow, NOPERM: %d %r' % (rc, err))
    rc, out, err = env.cli('wait', '--tenant', 'acme', jid, '--redis', url, redis=False, timeout=20)
    check(rc == 3 and 'NOPERM' in err and len(err.splitlines()) == 1, 'wait, NOPERM: %d %r' % (rc, err))
    check(time.monotonic() - t0 < 10, 'a refusal was retried')
    # The password changes while a follower is connected, then its
    # connection is killed: the reconnect gets WRONGPASS, exit 3 at once.
    env.redis.call('ACL', 'SETUSER', 'fol', 'on', '>pw2', '~*', '+@all')
    f = Follower(env, '--tenant', 'acme', url='unix://fol:pw2@' + sock)
    try:
        wait_until(lambda: len(f.lines) >= 1, timeout=10, what='the follower to start')
        env.redis.call('ACL', 'SETUSER', 'fol', 'resetpass', '>changed')
        env.redis.call('CLIENT', 'KILL', 'USER', 'fol')
        f.proc.wait(timeout=10)
    finally:
        rc, err = f.stop()
    check(rc == 3 and 'WRONGPASS' in err and 'pw2' not in err, 'follower after a password change: %d %r' % (rc, err))
    check(len(err.splitlines()) == 2, 'a warning and the refusal: %r' % err)


def test_follower_says_when_the_cap_trimmed_past_it(env):
    """While a follower is away the stream's cap may trim past the last
    event it printed: it cannot print what is gone, but says so."""
    env.write_registry([env.tenant('acme')])
    env.redis.call('HSET', 'lw:{acme}:settings', 'events_max', '10')  # as a worker publishes it
    enqueue_n(env, 2, 'before')
    f = Follower(env, '--tenant', 'acme')
    try:
        wait_until(lambda: len(f.lines) >= 2, timeout=10, what='the first events')
        f.proc.send_signal(signal.SIGSTOP)
        try:
            env.enqueue_batch([{'kind': 'noop', 'delay': 600} for _ in range(400)], tenant='acme')
            kill_normal_clients(env)
        finally:
            f.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: b'trimmed by its cap' in f.err or len(f.lines) > 2, timeout=10, what='the follower back')
        time.sleep(0.5)
    finally:
        rc, err = f.stop()
    check('events between them were trimmed by its cap' in err, 'no word of the trimmed events: %r' % err)
    named = err.split('after the last one printed (')[1].split(')')[0]
    printed = [e['id'] for e in f.lines]
    check(named in printed, 'the warning names %s, not an event it printed' % named)


if __name__ == '__main__':
    run([test_follower_says_when_the_cap_trimmed_past_it, test_events_follow_survives_kill_and_restart, test_wait_survives_restart_and_sees_a_job_that_ended_meanwhile,
         test_wait_timeout_bounds_the_reconnects, test_refusals_still_end_at_once])

"""Hostile or careless tenant code (issue 8, items 1 and 7-14): what a
handler does must not stop, blind or block its worker, nor reach other
tenants' credentials.

  tiny timeouts      a job's own stop signal lands in the fork window: the
                     worker must not take it for its own SIGTERM
  inherited fds      programs a module starts get no worker socket
  credentials        no password in argv, environ, or a non-dumpable worker;
                     a tenant "user" runs its handlers as that user
  escapees           processes that leave an attempt's process group are
                     killed, and do not hold its outcome back
  system()           in thread isolation the worker reaps only its own
  big outputs        results, errors and events are bounded; one outcome
                     Redis refuses does not block the others
  EMFILE             a handler that cannot start for want of fds is handed
                     back, not failed
"""
import collections
import fcntl
import os
import pwd
import resource
import signal
import subprocess
import sys
import termios
import time

import lwtest
from lwtest import Redis, check, wait_until

TERMINAL = ('succeeded', 'failed', 'cancelled', 'expired')


def stop(w, code=0):
    w.signal(signal.SIGTERM)
    check(w.wait(40) == code, 'worker %s exited %s:\n%s' % (w.name, w.proc.returncode, w.log()[-2000:]))


def wait_terminal(env, ids, timeout=60):
    wait_until(lambda: all(s in TERMINAL for s in env.statuses('t1', ids)), timeout=timeout, interval=0.1,
               what='%d jobs to end' % len(ids))


def is_root():
    return os.geteuid() == 0


# ------------------------------------------------------------ timeouts --

def test_tiny_timeouts_leave_the_worker_alone(env):
    """300 attempts per runner with a 1 ms timeout: each is stopped with
    SIGTERM to its process group right after fork. Before the fix the
    signal could hit the child while it still ran the worker's libevent
    handler, which forwarded it to the worker: the worker drained, took the
    next one for a second signal, and exited."""
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0},
                                   exec={'nap': ['/bin/sleep', '0.05']})])
    workers = {'fork': env.worker('--concurrency', '16', '--isolation', 'fork', name='fork'),
               'thread': env.worker('--concurrency', '16', '--isolation', 'thread', name='thread')}
    lines = ([{'kind': 'sleep', 'payload': {'ms': 50}, 'timeout': 0.001} for _ in range(300)] +
             [{'kind': 'nap', 'payload': {}, 'timeout': 0.001} for _ in range(300)])
    ids = env.enqueue_batch(lines, tenant='t1')

    def done():
        for name, w in workers.items():
            check(w.running(), 'the %s worker exited:\n%s' % (name, w.log()[-3000:]))
        return all(s in TERMINAL for s in env.statuses('t1', ids))
    wait_until(done, timeout=120, interval=0.1, what='%d jobs to end' % len(ids))
    env.figures('tiny timeouts (fork, exec; fork and thread workers)', 't1', ids)
    for name, w in workers.items():
        log = w.log()
        check(w.running(), 'the %s worker exited:\n%s' % (name, log[-3000:]))
        for bad in ('worker.drain', 'worker.handback', 'worker.exit'):
            check(bad not in log, 'the %s worker took a job\'s signal for its own (%s):\n%s'
                  % (name, bad, log[-3000:]))
    timed_out = [i for i in ids if 'timed out' in (env.status('t1', i)['error'] or '')]
    check(len(timed_out) > 100, 'only %d attempts timed out: the timeouts did not bite' % len(timed_out))
    for w in workers.values():
        stop(w)


# ------------------------------------------------------------ fds --

def fd_lines(text):
    """The fds `ls -l /proc/$$/fd` listed, as {fd: target}."""
    out = {}
    for line in text.splitlines():
        if '->' not in line:
            continue
        left, target = line.split('->', 1)
        out[int(left.split()[-1])] = target.strip()
    return out


def test_programs_started_by_modules_inherit_no_worker_fds(env):
    env.write_registry([env.tenant('t1')])
    for iso in ('fork', 'thread'):
        w = env.worker('--isolation', iso, '--concurrency', '2', name=iso)
        out = os.path.join(env.dir, 'fds-%s.txt' % iso)
        jid = env.enqueue('t1', 'fds', {'out': out})
        env.wait_all('t1', [jid], timeout=20)
        text = env.status('t1', jid)['result']
        check(isinstance(text, str) and '->' in text, 'fds result: %r' % text)
        fds = fd_lines(text)
        # Sockets, pipes, eventfds, memfds: what the worker holds. (Files
        # may show up too: the shell's own saved copies of stdout/stderr.)
        extra = {fd: t for fd, t in fds.items() if fd > 2 and not t.startswith('/')}
        check(not extra, '%s isolation: a program started by the module inherited %s' % (iso, extra))
        stop(w)


def tty_nr(pid):
    """The controlling terminal of pid, from /proc/PID/stat (0: none)."""
    with open('/proc/%d/stat' % pid) as f:
        return int(f.read().rsplit(')', 1)[1].split()[4])


def test_fork_handlers_hold_nothing_of_the_worker(env):
    """A fork-isolation handler process keeps fds 0-2, its result pipe and
    what its module opened in init -- not the worker's Redis connections,
    signal pipe or HTTP listener, not other attempts' pipes -- does not see
    the fence table, and leads a process group of its own without the
    worker's controlling terminal (nothing to take with tcsetpgrp); exec
    commands have no terminal either, and the worker keeps its own."""
    master, slave = os.openpty()
    slave_name = os.ttyname(slave)
    os.close(slave)

    def with_terminal():
        # The worker leads a session whose controlling terminal is the pty.
        os.setsid()
        fd = os.open(slave_name, os.O_RDWR | os.O_NOCTTY)
        fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
        os.close(fd)

    no_tty = ['/bin/sh', '-c', 'if (: < /dev/tty) 2>/dev/null; then echo "has a terminal" >&2; exit 1; fi']
    env.write_registry([env.tenant('t1', exec={'nap': ['/bin/sleep', '2'], 'no_tty': no_tty})])
    try:
        w = env.worker('--isolation', 'fork', '--concurrency', '3', '--http', '127.0.0.1:%d' % lwtest.free_port(),
                       preexec_fn=with_terminal)
        check(tty_nr(w.proc.pid) != 0, 'the test did not give the worker a controlling terminal')
        other = env.enqueue('t1', 'nap', {})  # an exec attempt whose pipes are open meanwhile
        wait_until(lambda: env.statuses('t1', [other]) == ['active'], what='the exec attempt to run')
        jid = env.enqueue('t1', 'self_check', {})
        cmd = env.enqueue('t1', 'no_tty', {})
        env.wait_all('t1', [jid, cmd], timeout=20)
        r = env.status('t1', jid)['result']
        kept = [t for _fd, t in r['fds']]
        check(len(kept) == 1 and kept[0].startswith('pipe:'), 'the handler kept fds of the worker: %s' % r['fds'])
        check(not r['shared_anon'], 'the handler can reach the fence table (a shared mapping)')
        check(r['own_group'], 'the handler shares the worker\'s process group')
        check(not r['tty'], 'the handler has the worker\'s controlling terminal')
        st = env.status('t1', cmd)
        check(st['status'] == 'succeeded', 'an exec command has the worker\'s terminal: %s' % st)
        check(tty_nr(w.proc.pid) != 0, 'the worker lost its controlling terminal to an attempt')
        stop(w)
    finally:
        os.close(master)


# ------------------------------------------------------------ credentials --

def tcp_redis(env, password):
    p = lwtest.free_port()
    env.redis.stop()
    env.redis = Redis(env.dir, name='redis-pw', password=password, extra=['--port', str(p), '--bind', '127.0.0.1'])
    env.redis.url = 'unix://:%s@%s' % (password, env.redis.sock)  # for the CLI
    return 'redis://:%s@127.0.0.1:%d' % (password, p)


def test_credentials_stay_out_of_reach(env):
    """The password given with --redis and LANEWORK_REDIS_URL is in neither
    /proc/PID/cmdline nor /proc/PID/environ, and a process of the worker's
    own user cannot read the worker's /proc files (not dumpable)."""
    secret = 'S3cretPw0rd'
    url = tcp_redis(env, secret)
    env.write_registry([env.tenant('t1')])
    os.chmod(env.dir, 0o755)
    os.chmod(env.registry, 0o644)
    env.extra_env['LANEWORK_REDIS_URL'] = url
    as_nobody = None
    if is_root():
        nobody = pwd.getpwnam('nobody')

        def as_nobody():
            os.setgid(nobody.pw_gid)
            os.setgroups([])
            os.setuid(nobody.pw_uid)
    w = env.worker('--concurrency', '1', redis_url=url, preexec_fn=as_nobody)
    jid = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [jid], timeout=20)
    with open('/proc/%d/cmdline' % w.pid, 'rb') as f:
        cmdline = f.read()
    check(secret.encode() not in cmdline, 'the password is in /proc/PID/cmdline: %r' % cmdline)
    check(b'@127.0.0.1' in cmdline, 'the URL itself should still be there: %r' % cmdline)
    with open('/proc/%d/environ' % w.pid, 'rb') as f:
        environ = f.read()
    check(secret.encode() not in environ, 'the password is in /proc/PID/environ')
    if is_root():
        # A process of the worker's own user (an exec handler, say).
        p = subprocess.run(['/bin/cat', '/proc/%d/environ' % w.pid], preexec_fn=as_nobody, capture_output=True)
        check(p.returncode != 0 and b'Permission denied' in p.stderr,
              'a process of the worker\'s user read its environ (the worker is dumpable): %r %r'
              % (p.returncode, p.stderr[-200:]))
    stop(w)


def test_tenant_user_runs_handlers_as_that_user(env):
    if not is_root():
        print('skip: needs root')
        return
    nobody = pwd.getpwnam('nobody')
    probe = ['/bin/sh', '-c', 'printf \'{"uid":%s,"gid":%s,"home":"%s"}\' "$(id -u)" "$(id -g)" "$HOME"']
    env.write_registry([env.tenant('t1', user='nobody', exec={'whoami_exec': probe})])
    w = env.worker('--isolation', 'fork', '--concurrency', '2')
    ex = env.enqueue('t1', 'whoami_exec', {})
    mod = env.enqueue('t1', 'system', {'cmd': 'test "$(id -u)" = %d' % nobody.pw_uid})
    env.wait_all('t1', [ex, mod], timeout=20)
    r = env.status('t1', ex)['result']
    check(r == {'uid': nobody.pw_uid, 'gid': nobody.pw_gid, 'home': nobody.pw_dir}, 'exec handler ran as %r' % r)
    fork_home = env.enqueue('t1', 'self_check', {})
    env.wait_all('t1', [fork_home], timeout=20)
    check(env.status('t1', fork_home)['result']['home'] == nobody.pw_dir, 'a fork handler as nobody kept HOME %s'
          % env.status('t1', fork_home)['result']['home'])
    stop(w)
    # A worker that is not root, with the tenant "user" its own: nothing to
    # switch, handlers run.
    os.chmod(env.dir, 0o755)
    os.chmod(env.registry, 0o644)

    def as_nobody():
        os.setgid(nobody.pw_gid)
        os.setgroups([])
        os.setuid(nobody.pw_uid)
    port = lwtest.free_port()
    env.redis.stop()
    env.redis = lwtest.Redis(env.dir, name='redis-tcp', extra=['--port', str(port), '--bind', '127.0.0.1'])
    w = env.worker('--isolation', 'fork', redis_url='redis://127.0.0.1:%d' % port, preexec_fn=as_nobody)
    same = [env.enqueue('t1', 'whoami_exec', {}), env.enqueue('t1', 'noop', {})]
    env.wait_all('t1', same, timeout=20)
    stop(w)
    # In thread isolation a module runs inside the worker: refused clearly.
    w = env.worker('--isolation', 'thread')
    check(w.wait(10) == 2, 'thread isolation with a tenant user: exit %s' % w.proc.returncode)
    check('cannot apply to module handlers in --isolation thread' in w.log(), w.log()[-1000:])
    env.write_registry([env.tenant('t1', user='no-such-user-here')])
    w = env.worker()
    check(w.wait(10) == 2 and 'no-such-user-here' in w.log(), 'unknown user: %s' % w.log()[-1000:])


# ------------------------------------------------------------ processes --

def alive(pid):
    try:
        os.kill(pid, 0)
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (ProcessLookupError, FileNotFoundError):  # gone (also once reaped between kill(0), open and read)
        return False


def test_escapees_are_killed_and_do_not_hold_the_outcome(env):
    pidfile_exec = os.path.join(env.dir, 'escapee-exec.pid')
    escape_exec = ['/bin/sh', '-c', 'setsid sleep 30 < /dev/null > /dev/null 2>&1 & echo $! > %s' % pidfile_exec]
    env.write_registry([env.tenant('t1', exec={'escape_exec': escape_exec})])
    w = env.worker('--isolation', 'fork', '--concurrency', '2')
    pidfile = os.path.join(env.dir, 'escapee.pid')
    t0 = time.monotonic()
    mod = env.enqueue('t1', 'escape', {'pidfile': pidfile, 'ms': 30000})
    ex = env.enqueue('t1', 'escape_exec', {})
    env.wait_all('t1', [mod, ex], timeout=20)
    took = time.monotonic() - t0
    check(took < 8, 'the escapee held the attempt\'s outcome back for %.1f s' % took)
    pids = []
    for f in (pidfile, pidfile_exec):
        wait_until(lambda: os.path.exists(f) and open(f).read().strip(), timeout=5, what=f)
        pids.append(int(open(f).read().strip()))
    wait_until(lambda: not any(alive(p) for p in pids), timeout=5,
               what='the worker to kill the processes that left their attempts (%s)' % pids)
    check('job.orphan' in w.log(), 'no log line says the escapees were killed')
    check(w.running(), 'worker died')
    stop(w)


def test_modules_reap_their_own_children_in_thread_isolation(env):
    """system() in a handler waits for its child; a worker reaping every
    child (waitpid(-1)) steals it and system() fails with ECHILD."""
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0},
                                   exec={'nap': ['/bin/sleep', '0.02']})])
    w = env.worker('--isolation', 'thread', '--concurrency', '8')
    lines = [{'kind': 'system', 'payload': {'cmd': 'sleep 0.05'}} for _ in range(40)]
    lines += [{'kind': 'nap', 'payload': {}} for _ in range(40)]  # SIGCHLDs the worker must handle
    ids = env.enqueue_batch(lines, tenant='t1')
    wait_terminal(env, ids)
    bad = not_succeeded(env, ids)
    check(not bad, 'handlers lost their children to the worker: %s' % bad[:3])
    stop(w)


# ------------------------------------------------------------ outputs --

def not_succeeded(env, ids):
    """(id, error) of each of t1's jobs ids that did not succeed."""
    return [(i, env.status('t1', i)['error']) for i, s in zip(ids, env.statuses('t1', ids)) if s != 'succeeded']


def test_modules_children_that_leave_their_group_stay_theirs(env):
    """Thread isolation: a module's own child that calls setsid() and exits
    is a zombie outside the worker's group -- the module waits for it, the
    worker's orphan sweep must leave it alone."""
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0},
                                   exec={'nap': ['/bin/sleep', '0.05']})])
    w = env.worker('--isolation', 'thread', '--concurrency', '4')
    lines = [{'kind': 'setsid_wait', 'payload': {'ms': 600}} for _ in range(6)]
    lines += [{'kind': 'nap', 'payload': {}} for _ in range(20)]  # exec attempts: sweeps run
    ids = env.enqueue_batch(lines, tenant='t1')
    wait_terminal(env, ids)
    bad = not_succeeded(env, ids)
    check(not bad, 'the worker reaped a module\'s own child: %s' % bad[:3])
    stop(w)


def test_events_of_one_attempt_are_bounded(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '2')
    jid = env.enqueue('t1', 'many_events', {'count': 3000, 'bytes': 10})
    env.wait_all('t1', [jid], timeout=30)
    evs = [e['type'] for e in env.events('t1') if e['job'] == jid]
    steps = evs.count('step.created')
    check(steps == 1000 and evs.count('event.limit') == 1, 'events kept: %d step.created, %d event.limit'
          % (steps, evs.count('event.limit')))
    stop(w)


def test_fifo_registry_is_refused(env):
    fifo = os.path.join(env.dir, 'fifo.json')
    os.mkfifo(fifo)
    env.registry = fifo
    w = env.worker()
    check(w.wait(10) == 2 and 'not a regular file' in w.log(), 'a FIFO registry: %s' % w.log()[-500:])
    rc, _out, err = env.cli('stats')
    check(rc == 2 and 'not a regular file' in err, 'the CLI with a FIFO registry: %d %s' % (rc, err))


def test_outputs_are_bounded(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0},
                                   exec={'chatty': ['/bin/sh', '-c', 'head -c 70000 /dev/zero | tr "\\\\0" x']})])
    w = env.worker('--concurrency', '4', '--max-payload', '64k')
    big = env.enqueue('t1', 'big_result', {'bytes': 100000})
    ev = env.enqueue('t1', 'big_event', {'bytes': 100000})
    chatty = env.enqueue('t1', 'chatty', {})
    ok = [env.enqueue('t1', 'echo', {'n': i}) for i in range(5)]
    wait_terminal(env, [big, ev, chatty] + ok)
    s = env.status('t1', big)
    check(s['status'] == 'failed' and s['attempt'] == 1 and 'result too large' in s['error'],
          'a result over --max-payload: %.300s' % s)
    s = env.status('t1', chatty)
    check(s['status'] == 'failed' and s['attempt'] == 1 and 'result too large' in s['error'],
          'stdout over --max-payload: %.300s' % s)
    check(env.status('t1', ev)['status'] == 'succeeded', 'the job with a big event')
    evs = [e for e in env.events('t1') if e['job'] == ev and e['type'] == 'step.created']
    check(len(evs) == 1 and evs[0]['data'] and evs[0]['data'].get('error') == 'event data too large',
          'the big event: %s' % evs)
    env.wait_all('t1', ok)
    stop(w)
    # A tiny limit: an honest error is cut to it, not taken for garbage.
    w = env.worker('--concurrency', '1', '--max-payload', '30')
    f = env.enqueue('t1', 'fail', {'error': 'e' * 5000})
    wait_terminal(env, [f])
    s = env.status('t1', f)
    check(s['status'] == 'failed' and s['error'] == 'e' * 30, 'a long error under --max-payload 30: %.200s' % s)
    stop(w)


def test_an_outcome_redis_refuses_does_not_block_the_others(env):
    """Redis refuses an argument longer than proto-max-bulk-len: the batch
    holding that outcome is split until the outcome is alone, and then
    recorded as a failure; every other outcome goes through."""
    env.redis.call('CONFIG', 'SET', 'proto-max-bulk-len', str(1024 * 1024))
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    w = env.worker('--concurrency', '8', '--max-payload', '4m', '--isolation', 'thread')
    lines = [{'kind': 'ticker', 'payload': {'ms': 300, 'every_ms': 100}} for _ in range(20)]
    lines.insert(7, {'kind': 'big_result', 'payload': {'bytes': 1500000}})
    ids = env.enqueue_batch(lines, tenant='t1')
    wait_terminal(env, ids, timeout=40)
    big = ids[7]
    others = [i for i in ids if i != big]
    st = env.statuses('t1', others)
    check(all(s == 'succeeded' for s in st), 'other outcomes were blocked or lost: %s' % collections.Counter(st))
    s = env.status('t1', big)
    check(s['status'] == 'failed' and 'Redis refused the outcome' in s['error'], 'the refused outcome: %s' % s)
    stop(w)


def test_emfile_hands_the_job_back(env):
    """A worker short of fds cannot start a handler: the job is handed back
    (no attempt counted) and runs once fds are free, instead of failing."""
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0},
                                   exec={'nap': ['/bin/sleep', '0.3']})])

    def few_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))
    w = env.worker('--concurrency', '16', '--isolation', 'fork', preexec_fn=few_fds)
    ids = env.enqueue_batch([{'kind': 'nap', 'payload': {}} for _ in range(40)], tenant='t1')
    wait_terminal(env, ids, timeout=60)
    st = env.statuses('t1', ids)
    check(all(s == 'succeeded' for s in st), 'jobs failed for want of fds: %s %s'
          % (collections.Counter(st), [env.status('t1', i)['error'] for i, s in zip(ids, st) if s != 'succeeded'][:2]))
    check('worker.resources' in w.log(), 'the fd limit never bit: the test did not test it')
    stop(w)


def test_fork_handlers_start_with_default_signal_dispositions(env):
    # The worker handles SIGTERM, SIGINT, SIGTSTP, SIGHUP and SIGCHLD and
    # ignores SIGPIPE, SIGTTOU and SIGTTIN; a module's init may change more.
    # A fork child resets only the dispositions the worker noted (at start,
    # after each module load and unload): a handler must find every signal
    # at its default but the SIGTERM handler of its own runner -- also for
    # a module loaded by a reload, after the worker started.
    env.write_registry([env.tenant('t1', config={'init_ignore': [signal.SIGUSR1]})])
    w = env.worker('--isolation', 'fork', '--concurrency', '2')
    first = env.enqueue('t1', 'self_check', {})
    env.wait_all('t1', [first], timeout=20)
    want = [int(signal.SIGTERM)]
    got = env.status('t1', first)['result']['handled']
    check(got == want, 'a fork handler inherited the dispositions of signals %s' % got)
    env.write_registry([env.tenant('t1', config={'init_ignore': [signal.SIGUSR1]}),
                        env.tenant('t2', config={'init_ignore': [signal.SIGUSR2, signal.SIGWINCH]})])
    w.signal(signal.SIGHUP)
    wait_until(lambda: 'registry.reload' in w.log(), what='the reload')
    ids = [env.enqueue('t2', 'self_check', {}), env.enqueue('t1', 'self_check', {})]
    env.wait_all('t1', ids[1:], timeout=20)
    env.wait_all('t2', ids[:1], timeout=20)
    for tenant, jid in (('t2', ids[0]), ('t1', ids[1])):
        got = env.status(tenant, jid)['result']['handled']
        check(got == want, 'after a reload, a fork handler of %s inherited the dispositions of signals %s'
              % (tenant, got))
    stop(w)


if __name__ == '__main__':
    lwtest.run([test_tiny_timeouts_leave_the_worker_alone, test_programs_started_by_modules_inherit_no_worker_fds,
                test_credentials_stay_out_of_reach, test_tenant_user_runs_handlers_as_that_user,
                test_escapees_are_killed_and_do_not_hold_the_outcome,
                test_modules_reap_their_own_children_in_thread_isolation, test_fork_handlers_hold_nothing_of_the_worker,
                test_modules_children_that_leave_their_group_stay_theirs, test_events_of_one_attempt_are_bounded,
                test_fifo_registry_is_refused, test_outputs_are_bounded,
                test_an_outcome_redis_refuses_does_not_block_the_others, test_emfile_hands_the_job_back,
                test_fork_handlers_start_with_default_signal_dispositions])

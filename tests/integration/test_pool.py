"""--isolation pool (CONTRACT section 11): module handlers in pre-forked
children that serve attempts one at a time; a crash or a hard timeout fails
that attempt only, and the child is replaced after it, after
--pool-max-jobs attempts, after an attempt that left processes behind, and
when a reload retires its tenant. An idle child that dies costs no job
anything; the worker leaves no child behind."""
import os
import pwd
import signal
import subprocess
import time

from lwtest import check, run, wait_until

POOL = ('--isolation', 'pool')


def proc_state(pid):
    """The state letter of /proc/PID/stat, None when there is no such process."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return None


def alive(pid):
    return proc_state(pid) not in (None, 'Z')


def pool_pids(worker_pid):
    """The worker's children named lw:* (its pool children; the fence
    keeper is lanework-fence)."""
    out = set()
    try:
        tasks = os.listdir('/proc/%d/task' % worker_pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open('/proc/%d/task/%s/children' % (worker_pid, t)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for k in kids:
            try:
                with open('/proc/%d/comm' % k) as f:
                    if f.read().startswith('lw:'):
                        out.add(k)
            except OSError:
                pass
    return out


def pool_tenant(env, **defaults):
    d = {'attempts': 1, 'timeout': 30, 'backoff': 0}
    d.update(defaults)
    env.lifecycle = os.path.join(env.dir, 'lifecycle.log')
    return env.tenant('acme', config={'record_file': env.record_file, 'lifecycle_file': env.lifecycle},
                      defaults=d)


def lifecycle(env):
    """[(INIT|FINI, tenant, pid)] in order."""
    if not os.path.exists(env.lifecycle):
        return []
    with open(env.lifecycle) as f:
        return [(w, t, int(p)) for w, t, p in (line.split() for line in f if line.strip())]


def pid_of(env, jid):
    st = env.status('acme', jid)
    check(st['status'] == 'succeeded', 'pid job %s: %s' % (jid, st))
    return st['result']['pid'], st['result']['served'], st['result']['init_pid']


def test_jobs_events_and_state_reuse(env):
    env.write_registry([pool_tenant(env)])
    seq = [env.enqueue('acme', 'pid', {}, lane='L') for _ in range(4)]
    evs = [env.enqueue('acme', 'events', {}) for _ in range(2)]
    echo = env.enqueue('acme', 'echo', {'x': [1, 2]})
    w = env.worker('--burst', '--concurrency', '2', *POOL)
    check(w.wait(timeout=30) == 0, 'burst worker exit status')
    runs = [pid_of(env, j) for j in seq]
    pids = {p for p, _, _ in runs}
    check(w.pid not in pids, 'a pool attempt ran in the worker itself: %s' % runs)
    check(len(pids) <= 2, 'more children than --concurrency 2: %s' % runs)
    for p, _, init_pid in runs:
        check(init_pid == p, 'module init did not run in the pool child: %s' % runs)
    # 4 attempts in at most 2 children: module state lives on in one of them
    check(max(s for _, s, _ in runs) >= 2, 'no child served a second attempt with its state: %s' % runs)
    for p in pids:
        served = sorted(s for q, s, _ in runs if q == p)
        check(served == list(range(1, len(served) + 1)), 'state of child %d counted %s' % (p, served))
    for jid in evs:
        types = [e['type'] for e in env.events('acme') if e['job'] == jid]
        check(types == ['job.queued', 'job.started', 'step.created', 'tool.invoked', 'tool.succeeded',
                        'job.succeeded'], 'pool events out of order: %s' % types)
    check(env.status('acme', echo)['result'] == {'x': [1, 2]}, 'echo result')
    life = lifecycle(env)
    inits = [p for what, _, p in life if what == 'INIT']
    finis = [p for what, _, p in life if what == 'FINI']
    for p in pids:
        check(inits.count(p) == 1, 'init ran %d times in child %d: %s' % (inits.count(p), p, life))
        check(finis.count(p) == 1, 'fini did not run once at the exit of child %d: %s' % (p, life))
        check(not alive(p), 'pool child %d outlived its worker' % p)


def test_bad_attempts_replace_their_child(env):
    env.write_registry([pool_tenant(env)])
    pidfile = os.path.join(env.dir, 'escapee.pid')
    a1 = env.enqueue('acme', 'pid', {}, lane='L')
    a2 = env.enqueue('acme', 'pid', {}, lane='L')
    esc = env.enqueue('acme', 'escape', {'pidfile': pidfile, 'ms': 30000}, lane='L')
    b1 = env.enqueue('acme', 'pid', {}, lane='L')
    crash = env.enqueue('acme', 'crash', {}, lane='L')
    c1 = env.enqueue('acme', 'pid', {}, lane='L')
    hang = env.enqueue('acme', 'sleep_hard', {'ms': 20000}, lane='L', timeout='0.3')
    d1 = env.enqueue('acme', 'pid', {}, lane='L')
    w = env.worker('--burst', '--concurrency', '1', *POOL)
    check(w.wait(timeout=30) == 0, 'burst worker exit status')
    A, B, C, D = (pid_of(env, j)[0] for j in (a1, b1, c1, d1))
    check(pid_of(env, a2)[0] == A and pid_of(env, a2)[1] == 2, 'the child was not reused between good attempts')
    check(env.status('acme', esc)['status'] == 'succeeded', 'escape job: %s' % env.status('acme', esc))
    check(B != A, 'the child whose attempt left a process behind served again (pid %d)' % A)
    st = env.status('acme', crash)
    check(st['status'] == 'failed' and st['attempt'] == 1 and 'signal 11' in (st['error'] or ''),
          'crash fails its attempt only: %s' % st)
    check(C != B, 'the next attempt after a crash ran in the crashed child (pid %d)' % B)
    st = env.status('acme', hang)
    check(st['status'] == 'failed' and st['attempt'] == 1, 'timed-out job: %s' % st)
    check(D != C, 'the child killed for a timeout served again (pid %d)' % C)
    check(len({A, B, C, D}) == 4, 'children: %s' % [A, B, C, D])
    with open(pidfile) as f:
        escapee = int(f.read())
    wait_until(lambda: not alive(escapee), timeout=5, what='the escaped process to be killed')
    for p in (A, B, C, D):
        check(not alive(p), 'pool child %d outlived its worker' % p)


def test_pool_max_jobs(env):
    env.write_registry([pool_tenant(env)])
    ids = [env.enqueue('acme', 'pid', {}, lane='L') for _ in range(7)]
    w = env.worker('--burst', '--concurrency', '1', '--pool-max-jobs', '3', *POOL)
    check(w.wait(timeout=30) == 0, 'burst worker exit status')
    runs = [pid_of(env, j)[:2] for j in ids]
    pids = [p for p, _ in runs]
    check([s for _, s in runs] == [1, 2, 3, 1, 2, 3, 1], 'attempts per child with --pool-max-jobs 3: %s' % runs)
    check(pids[0] == pids[2] and pids[3] == pids[5] and len({pids[0], pids[3], pids[6]}) == 3,
          'children with --pool-max-jobs 3: %s' % runs)
    finis = [p for what, _, p in lifecycle(env) if what == 'FINI']
    for p in (pids[0], pids[3]):
        check(p in finis, 'a child retired after --pool-max-jobs did not run fini: %s' % lifecycle(env))
    usage = subprocess.run([w.args[0], '--help'], capture_output=True, text=True).stdout
    check('--pool-max-jobs' in usage and '--isolation pool' in usage, '--help lacks the pool flags')


def test_idle_child_killed_and_reload(env):
    env.write_registry([pool_tenant(env)])
    w = env.worker('--concurrency', '1', *POOL)
    j1 = env.enqueue('acme', 'pid', {})
    wait_until(lambda: env.statuses('acme', [j1])[0] == 'succeeded', what='first job')
    A = pid_of(env, j1)[0]
    check(A in pool_pids(w.pid), 'the idle child %d is not the worker\'s' % A)
    os.kill(A, signal.SIGKILL)
    wait_until(lambda: proc_state(A) is None, timeout=5, what='the killed idle child to be reaped')
    j2 = env.enqueue('acme', 'pid', {})
    wait_until(lambda: env.statuses('acme', [j2])[0] in ('succeeded', 'failed'), what='second job')
    st = env.status('acme', j2)
    check(st['status'] == 'succeeded' and st['attempt'] == 1, 'a job paid for an idle child\'s death: %s' % st)
    B = st['result']['pid']
    check(B != A, 'ran in the dead child')
    # A reload that changes the tenant retires its children: fini, and the
    # next job runs in a child of the new tenant (its config).
    t = pool_tenant(env)
    t['config']['tag'] = 'v2'
    env.write_registry([t])
    w.signal(signal.SIGHUP)
    wait_until(lambda: ('FINI', 'acme', B) in lifecycle(env), timeout=5, what='the retired tenant\'s child to run fini')
    wait_until(lambda: not alive(B), timeout=5, what='the retired tenant\'s child to exit')
    j3 = env.enqueue('acme', 'whoami', {})
    j4 = env.enqueue('acme', 'pid', {})
    env.wait_all('acme', [j3, j4], timeout=10)
    check(env.status('acme', j3)['result']['tag'] == 'v2', 'after the reload: %s' % env.status('acme', j3))
    C = pid_of(env, j4)[0]
    check(C not in (A, B), 'after the reload the job ran in an old child')
    w.signal(signal.SIGTERM)
    check(w.wait(timeout=15) == 0, 'exit status after SIGTERM')
    check(not alive(C), 'pool child %d outlived its worker' % C)
    check('worker.bug' not in w.log(), 'worker log: %s' % w.log()[-2000:])


def test_sigterm_hands_back(env):
    env.write_registry([pool_tenant(env)])
    jid = env.enqueue('acme', 'sleep', {'ms': 60000}, lane='L')
    nxt = env.enqueue('acme', 'noop', {}, lane='L')
    w = env.worker('--shutdown-timeout', '0.5', *POOL)
    wait_until(lambda: env.statuses('acme', [jid])[0] == 'active', what='job to start')
    kids = wait_until(lambda: pool_pids(w.pid), what='the pool child')
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    check(w.wait(timeout=20) == 0, 'exit status after hand-back')
    check(time.monotonic() - t0 < 8, 'hand-back took too long')
    st = env.status('acme', jid)
    check(st['status'] == 'queued' and st['attempt'] == 0, 'handed-back job: %s' % st)
    check(env.status('acme', nxt)['status'] == 'queued', 'the lane moved on past a handed-back job')
    types = [e['type'] for e in env.events('acme') if e['job'] == jid]
    check(types[-1] == 'job.handed_back', 'events: %s' % types)
    for p in kids:
        check(not alive(p), 'pool child %d outlived its worker' % p)


def test_busy_child_is_frozen_while_cut_off(env):
    # The child running an attempt is the attempt's process group: the fence
    # freezes it when the lease goes unproven and thaws it when Redis
    # confirms the lease again; it then serves on (a freeze is no stop).
    env.write_registry([pool_tenant(env)])
    p = env.proxy()
    # --lease 3: frozen at 0.65 of it, healed well before the lease could
    # run out in Redis even on a busy machine.
    w = env.worker('--lease', '3', '--concurrency', '1', *POOL, redis_url=p.url)
    jid = env.enqueue('acme', 'ticker', {'ms': 3000, 'every_ms': 20})
    wait_until(lambda: env.runs().get(jid), what='the ticker to start')
    kid = env.runs()[jid][0][0]
    check(kid in pool_pids(w.pid), 'the ticker (pid %d) is not a pool child of the worker' % kid)
    p.cut()
    wait_until(lambda: proc_state(kid) == 'T', timeout=5, what='the fence to freeze the pool child')
    time.sleep(0.2)
    check(proc_state(kid) == 'T', 'the frozen pool child was thawed while cut off')
    p.heal()
    wait_until(lambda: proc_state(kid) not in ('T', None), timeout=10, what='the pool child to be thawed')
    wait_until(lambda: env.statuses('acme', [jid])[0] == 'succeeded', timeout=15, what='the ticker to succeed')
    check(env.status('acme', jid)['attempt'] == 1, 'a freeze cost an attempt: %s' % env.status('acme', jid))
    j2 = env.enqueue('acme', 'pid', {})
    env.wait_all('acme', [j2], timeout=10)
    check(pid_of(env, j2)[0] == kid, 'the thawed child did not serve on')
    w.signal(signal.SIGTERM)
    check(w.wait(timeout=15) == 0, 'exit status after SIGTERM')
    check(not alive(kid), 'pool child %d outlived its worker' % kid)


def test_children_run_as_the_tenant_user(env):
    if os.geteuid() != 0:
        print('skip: needs root')
        return
    nobody = pwd.getpwnam('nobody')
    env.write_registry([env.tenant('acme', user='nobody', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    uid = env.enqueue('acme', 'system', {'cmd': 'test "$(id -u)" = %d' % nobody.pw_uid}, lane='L')
    home = env.enqueue('acme', 'self_check', {}, lane='L')
    again = env.enqueue('acme', 'system', {'cmd': 'test "$(id -u)" = %d' % nobody.pw_uid}, lane='L')
    w = env.worker('--burst', '--concurrency', '1', *POOL)
    check(w.wait(timeout=30) == 0, 'burst worker exit status')
    env.wait_all('acme', [uid, home, again], timeout=5)
    r = env.status('acme', home)['result']
    check(r['home'] == nobody.pw_dir and r['own_group'], 'a pool child as nobody: %s' % r)
    check(not r['shared_anon'], 'a pool child can reach the fence table: %s' % r)


def test_children_are_per_tenant(env):
    # --concurrency 1 and two tenants: each attempt runs in a child of its
    # own tenant (its init, its state), and a tenant that needs a child
    # retires the other's idle one rather than keep more than --concurrency.
    env.lifecycle = os.path.join(env.dir, 'lifecycle.log')
    cfg = {'record_file': env.record_file, 'lifecycle_file': env.lifecycle}
    d = {'attempts': 1, 'timeout': 30, 'backoff': 0}
    env.write_registry([env.tenant('acme', config=cfg, defaults=d), env.tenant('globex', config=cfg, defaults=d)])
    jobs = [(t, env.enqueue(t, 'pid', {}, lane='L')) for _ in range(3) for t in ('acme', 'globex')]
    w = env.worker('--burst', '--concurrency', '1', *POOL)
    check(w.wait(timeout=30) == 0, 'burst worker exit status')
    life = lifecycle(env)
    init_of = {p: t for what, t, p in life if what == 'INIT' and p != w.pid}
    served_by = {}
    for t, jid in jobs:
        st = env.status(t, jid)
        check(st['status'] == 'succeeded', 'job of %s: %s' % (t, st))
        r = st['result']
        check(r['tenant'] == t and init_of.get(r['pid']) == t,
              'a job of %s ran in a child of %s (pid %d): %s' % (t, init_of.get(r['pid']), r['pid'], life))
        served_by.setdefault(r['pid'], set()).add(t)
    check(all(len(ts) == 1 for ts in served_by.values()), 'a child served two tenants: %s' % served_by)
    check({t for ts in served_by.values() for t in ts} == {'acme', 'globex'}, 'tenants served: %s' % served_by)
    # With one slot, a tenant that needs a child retires the other's idle
    # one (its fini runs while the worker goes on): a child's FINI comes
    # before the INIT of a later child. (The retired child may still be in
    # its fini while the next one starts: only serving children count.)
    kids = [(what, p) for what, _, p in life if p != w.pid]
    first_fini = next((i for i, (what, _) in enumerate(kids) if what == 'FINI'), None)
    check(first_fini is not None and any(what == 'INIT' for what, _ in kids[first_fini:]),
          'no child was retired to make room for the other tenant: %s' % life)


if __name__ == '__main__':
    run([test_jobs_events_and_state_reuse, test_bad_attempts_replace_their_child, test_pool_max_jobs,
         test_idle_child_killed_and_reload, test_sigterm_hands_back, test_busy_child_is_frozen_while_cut_off,
         test_children_run_as_the_tenant_user, test_children_are_per_tenant])

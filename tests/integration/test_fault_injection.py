"""Fault injection at the resource seams (issue 10 item 5): the real
binaries with LANEWORK_FAULT set (common/fault.h) make the Nth fork, pipe,
write, fsync, rename or allocation fail, and each test checks the rules of
DESIGN section 9 and 12 hold anyway: the failure is logged on one line, the
job it hit is handed back (no attempt spent) or the command fails with its
documented exit status, and in the end every job ran exactly once -- none
lost, none run twice. Under ASan any leak on those error paths fails the
binary's exit status (a LeakSanitizer report) and so the test."""
import os
import signal
import time

import lwtest
from lwtest import check, wait_until
from test_spools import read_job


def started(env):
    """{job id: number of handler runs} from the test module's records."""
    n = {}
    for what, _ms, jid, _lane, _pid in env.records():
        if what == 'START':
            n[jid] = n.get(jid, 0) + 1
    return n


def no_sanitizer_report(text, who):
    for word in ('LeakSanitizer', 'AddressSanitizer', 'runtime error:'):
        check(word not in text, '%s: sanitizer report:\n%s' % (who, text[-3000:]))


def stop(w):
    w.signal(signal.SIGTERM)
    rc = w.wait()
    log = w.log()
    no_sanitizer_report(log, w.name)
    check(rc == 0, 'worker %s exit %d:\n%s' % (w.name, rc, log[-3000:]))
    return log


def test_nth_fork_and_pipe_fail(env):
    """The 2nd fork and the 4th pipe fail (EAGAIN, EMFILE), among
    fork-isolation handlers and exec handlers: each costs the job it hit
    one hand-back, logged once, no attempt; every job runs once. (Fork 1
    is the lease keeper's, at start: fork 2 is the first handler's.)"""
    marks = os.path.join(env.dir, 'marks')
    os.makedirs(marks)
    env.write_registry([env.tenant('t1', exec={'touch': ['sh', '-c', 'read id; echo run >> "$0/$id"', marks]})])
    env.extra_env['LANEWORK_FAULT'] = 'fork:2,pipe:4'
    w = env.worker('--isolation', 'fork', '--concurrency', '1')
    del env.extra_env['LANEWORK_FAULT']
    ids = [env.enqueue('t1', 'record', {'ms': 1}, lane='L%d' % i) for i in range(3)]
    ex = [env.enqueue('t1', 'touch', 'e%d' % i) for i in range(2)]
    env.wait_all('t1', ids + ex, timeout=30)
    check(started(env) == {i: 1 for i in ids}, 'runs per job: %s' % started(env))
    exec_runs = {n: open(os.path.join(marks, n)).read().count('run') for n in os.listdir(marks)}
    check(exec_runs == {'"e0"': 1, '"e1"': 1}, 'exec runs: %s' % exec_runs)
    attempts = [env.status('t1', i).get('attempt') for i in ids + ex]
    check(attempts == [1] * 5, 'a hand-back was charged an attempt: %s' % attempts)
    log = stop(w)
    lines = [l for l in log.splitlines() if 'cannot start the handler' in l]
    check(len(lines) == 2 and sum('Resource temporarily unavailable' in l for l in lines) == 1 and
          sum('Too many open files' in l for l in lines) == 1,
          'the two failed starts, one line each:\n%s' % log[-3000:])


def spool_enqueue(env, spool, jid, fault):
    env.extra_env['LANEWORK_FAULT'] = fault
    try:
        return env.cli('enqueue', '--tenant', 't1', '--kind', 'record', '--spool', spool, '--id', jid,
                       '--payload', '{"ms":1}')
    finally:
        del env.extra_env['LANEWORK_FAULT']


def test_cli_spool_write_faults(env):
    """`lanework enqueue --spool` with the Nth write, fsync, rename or mkdir
    failing: one clear line, exit 2, nothing in the spool and nothing in
    Redis -- or, when only the spool's sync after the rename failed, the
    whole job in the spool, which a worker then runs. Enqueued again
    without the fault, each job runs exactly once."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([env.tenant('t1', spools={'record': spool})])
    cases = ['write:1', 'fsync:1', 'fsync:2', 'fsync:3', 'rename:1', 'mkdir:1', 'open:2']
    left = []
    for k, fault in enumerate(cases):
        jid = 'j%d' % k
        rc, out, err = spool_enqueue(env, spool, jid, fault)
        no_sanitizer_report(err, fault)
        check(rc == 2 and err.startswith('lanework: enqueue: --spool: ') and len(err.splitlines()) == 1,
              '%s: exit %d, stderr %r' % (fault, rc, err))
        check(env.redis.call('EXISTS', 'lw:{t1}:job:' + jid) == 0, '%s: the job reached Redis' % fault)
        names = [n for n in os.listdir(spool) if n == jid or n.startswith('.tmp-')]
        if 'cannot sync the spool' in err:
            check(names == [jid] and read_job(spool, jid)['status'] == 'queued', '%s: %s' % (fault, names))
            left.append(jid)
        else:
            check(names == [], '%s left %s in the spool (%s)' % (fault, names, err))
    check(left, 'no case reached the sync after the rename: %s' % cases)
    ids = ['j%d' % k for k in range(len(cases))]
    for jid in ids:
        if jid not in left:
            rc, _o, err = spool_enqueue(env, spool, jid, '')
            check(rc == 0, err)
    w = env.worker()
    env.wait_all('t1', ids, timeout=30)
    check(started(env) == {i: 1 for i in ids}, 'runs per job: %s' % started(env))
    wait_until(lambda: all(read_job(spool, i)['status'] == 'done' for i in ids), timeout=10,
               what='every job.json done')
    stop(w)


def test_worker_spool_settlement_faults(env):
    """The worker's own spool writes failing: the 'processing' mark's rename
    or write (then the job is handed back and runs later) and the 'done'
    mark's (logged; Redis has the outcome, and the next scan settles
    job.json). Every job runs once, every job.json ends done."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([env.tenant('t1', spools={'record': spool})])
    ids = []
    for k, fault in enumerate(['rename:1', 'rename:2', 'write:1', 'fsync:3']):
        jid = 's%d' % k
        ids.append(jid)
        env.extra_env['LANEWORK_FAULT'] = fault
        w = env.worker('--spool-rescan', '1', name='w%d' % k)
        del env.extra_env['LANEWORK_FAULT']
        rc, _o, err = spool_enqueue(env, spool, jid, '')
        check(rc == 0, err)
        env.wait_all('t1', [jid], timeout=20)
        wait_until(lambda: read_job(spool, jid)['status'] == 'done', timeout=10, what='%s done' % jid)
        log = stop(w)
        check('spool.write' in log, '%s: the failed write is not logged:\n%s' % (fault, log[-3000:]))
    check(started(env) == {i: 1 for i in ids}, 'runs per job: %s' % started(env))


def test_cli_allocation_failures(env):
    """The CLI with its Nth allocation failing, at a few N across start-up,
    argument and registry parsing and the enqueue: a clear message and a
    documented exit status, no crash, no leak; a job it reports enqueued
    exists once, one it reports failed does not."""
    env.write_registry([env.tenant('t1')])
    for n in (1, 3, 10, 30, 100, 300):
        jid = 'a%d' % n
        env.extra_env['LANEWORK_FAULT'] = 'alloc:%d' % n
        try:
            rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--id', jid, '--payload', '{"x":[1,2]}')
        finally:
            del env.extra_env['LANEWORK_FAULT']
        no_sanitizer_report(err, 'alloc:%d' % n)
        exists = env.redis.call('EXISTS', 'lw:{t1}:job:' + jid)
        if rc == 0:
            check(out.strip() == jid and exists == 1, 'alloc:%d: exit 0, out %r, in Redis %d' % (n, out, exists))
        else:
            check(rc in (2, 3) and err.startswith('lanework: ') and err.strip(),
                  'alloc:%d: exit %d, stderr %r' % (n, rc, err))


def test_worker_allocation_failures(env):
    """The worker while allocations fail for a while (alloc:N-M: a shortage
    that passes), N across start-up, the first claims, attempts and
    outcomes, in both isolations: it never dies of a signal (the first
    argument of a command failing once made hiredis abort on a command of
    no arguments), never reports a leak or a sanitizer error, exits 2 only
    when start-up failed, and otherwise finishes every job (an outcome the
    shortage cost runs again after its lease: at-least-once) and exits 0
    on SIGTERM."""
    env.write_registry([env.tenant('t1')])
    for iso, faults in (('thread', '60-90'), ('thread', '150-170'), ('fork', '100-140'), ('thread', '250-262')):
        what = '%s alloc:%s' % (iso, faults)
        batch = [env.enqueue('t1', 'record', {'ms': 1}, lane='%s%s-%d' % (iso, faults, i)) for i in range(3)]
        env.extra_env['LANEWORK_FAULT'] = 'alloc:' + faults
        try:
            w = env.worker('--isolation', iso, '--concurrency', '2', '--lease', '1')
        finally:
            del env.extra_env['LANEWORK_FAULT']
        wait_until(lambda: 'worker.start' in w.log() or not w.running(), timeout=10, what='start')
        started_up = 'worker.start' in w.log()
        if not started_up:
            rc = w.wait()
            no_sanitizer_report(w.log(), what)
            check(rc == 2, '%s: start-up failed with exit %d (a signal is < 0):\n%s' % (what, rc, w.log()[-3000:]))
            w = env.worker('--isolation', iso, '--lease', '1')
        env.wait_all('t1', batch, timeout=20)
        stop(w)


def test_worker_out_of_memory_still_exits(env):
    """Every allocation from the 150th on failing (thread isolation, so the
    handler threads' ends are in play): SIGTERM still ends the worker, exit
    0 after the hand-back deadline, no leak. It hung: a handler thread that
    returned spun on calloc for its end message, idle to pool_free, which
    joined it forever (the end message is now made at submit)."""
    env.write_registry([env.tenant('t1')])
    for i in range(6):
        env.enqueue('t1', 'record', {'ms': 1}, lane='L%d' % i)
    env.extra_env['LANEWORK_FAULT'] = 'alloc:150+'
    try:
        w = env.worker('--isolation', 'thread', '--concurrency', '2', '--lease', '1', '--shutdown-timeout', '1')
    finally:
        del env.extra_env['LANEWORK_FAULT']
    time.sleep(0.8)
    w.signal(signal.SIGTERM)
    rc = w.wait(timeout=30)
    log = w.log()
    no_sanitizer_report(log, 'alloc:150+')
    check('worker.start' in log and rc == 0, 'exit %d (a signal is < 0):\n%s' % (rc, log[-3000:]))


def test_malformed_spec_is_exit_2(env):
    """A test that means to inject a fault must not pass by injecting none:
    a malformed LANEWORK_FAULT stops the binary that reads it, one line."""
    env.write_registry([env.tenant('t1')])
    env.extra_env['LANEWORK_FAULT'] = 'fork:3,wirte:1'
    try:
        rc, _o, err = env.cli('status', '--tenant', 't1', 'x')
        w = env.worker()
        wrc = w.wait(timeout=20)
    finally:
        del env.extra_env['LANEWORK_FAULT']
    want = 'LANEWORK_FAULT="fork:3,wirte:1" is malformed: unknown site "wirte"'
    check(rc == 2 and err.startswith('lanework: ' + want) and len(err.splitlines()) == 1,
          'CLI: exit %d, stderr %r' % (rc, err))
    log = w.log()
    check(wrc == 2 and log.startswith('lanework-worker: ' + want) and len(log.splitlines()) == 1,
          'worker: exit %d, log %r' % (wrc, log))


if __name__ == '__main__':
    lwtest.run([test_malformed_spec_is_exit_2,
                test_nth_fork_and_pipe_fail,
                test_cli_spool_write_faults,
                test_worker_spool_settlement_faults,
                test_cli_allocation_failures,
                test_worker_allocation_failures,
                test_worker_out_of_memory_still_exits])

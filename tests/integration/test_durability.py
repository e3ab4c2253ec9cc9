"""--min-replicas N (CONTRACT section 12): a state change counts as done only
once WAIT says N replicas hold it. A primary and a real replica
(redis-server --replicaof) on loopback.

  CLI confirmed      with the replica up: enqueue, --batch, cancel, retry
                     succeed, and the replica holds the jobs
  CLI unconfirmed    the replica stopped: an enqueue exits 3 with one line
                     (nothing on stdout), --batch prints no id and exits 3,
                     --spool keeps the job file for a worker (exit 0)
  repeats            a repeat of an unconfirmed enqueue (same --id) is not
                     confirmed by a stalled replica's old offset
  worker outcomes    the replica stopped under a worker: the outcome is sent
                     again (and said) until the replica is back, then the
                     job has succeeded, its handler ran once
  0 is free          without --min-replicas no WAIT is sent
"""
import json
import os
import signal

import lwtest
from lwtest import check, wait_until


def with_replica(env):
    """Gives the Env's Redis a TCP port and a replica of it."""
    env.redis.stop()
    port = lwtest.free_port()
    # Diskless sync without its default 5 s delay: the replica is up at once.
    fast = ['--bind', '127.0.0.1', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']
    env.redis = lwtest.Redis(env.dir, name='primary', extra=['--port', str(port)] + fast)
    env.replica = env.own(lwtest.Redis(env.dir, name='replica',
                               extra=['--port', str(lwtest.free_port()), '--replicaof', '127.0.0.1',
                                      str(port)] + fast))
    wait_until(lambda: 'master_link_status:up' in env.replica.call('INFO', 'replication'),
               timeout=10, what='the replica to sync')
    env.write_registry([env.tenant('t1')])


def job_on_replica(env, jid):
    return env.replica.call('EXISTS', 'lw:{t1}:job:' + jid) == 1


def test_cli_confirmed_by_the_replica(env):
    with_replica(env)
    env.redis.call('CONFIG', 'RESETSTAT')
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}',
                           '--delay', '600', '--min-replicas', '1')
    check(rc == 0, 'enqueue: %d %s' % (rc, err))
    jid = out.strip()
    check(job_on_replica(env, jid), 'the replica does not hold the acknowledged job')
    lines = ''.join('{"kind":"noop","payload":{"i":%d}}\n' % i for i in range(300))
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--batch', '-', '--min-replicas', '1', input=lines)
    check(rc == 0 and len(out.split()) == 300, 'batch: %d %s' % (rc, err))
    check(all(job_on_replica(env, i) for i in out.split()), 'the replica lacks acknowledged batch jobs')
    rc, out, err = env.cli('cancel', '--tenant', 't1', jid, '--min-replicas', '1')
    check(rc == 0, 'cancel: %d %s' % (rc, err))
    rc, out, err = env.cli('retry', '--tenant', 't1', jid, '--min-replicas', '1')
    check(rc == 0, 'retry: %d %s' % (rc, err))
    check(env.redis.commandstats().get('wait', 0) >= 4, 'no WAIT ran: %r' % env.redis.commandstats())


def test_cli_unconfirmed_is_not_acknowledged(env):
    with_replica(env)
    env.replica.stop()
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}',
                           '--min-replicas', '1')
    lines = [l for l in err.splitlines() if l.strip()]
    check(rc == 3 and out == '', 'an unconfirmed enqueue was acknowledged: %d %r %s' % (rc, out, err))
    check(len(lines) == 1 and 'only 0 of 1 replicas confirmed it within 1000 ms' in lines[0],
          'one line saying why: %r' % lines)
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--batch', '-', '--min-replicas', '1',
                           input='{"kind":"noop","payload":{}}\n' * 20)
    check(rc == 3 and out == '', 'unconfirmed batch jobs were acknowledged: %d %r %s' % (rc, out, err))
    check('only 0 of 1 replicas' in err, err)
    # With a spool the job file stays for a worker: nothing is lost.
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([env.tenant('t1', spools={'noop': spool})])
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}',
                           '--spool', spool, '--min-replicas', '1')
    check(rc == 0 and out.strip(), 'spool fallback: %d %s' % (rc, err))
    check('stays in spool' in err, err)
    with open(os.path.join(spool, out.strip(), 'job.json')) as f:
        check(json.load(f)['status'] == 'queued', 'the spooled job is not left for a worker')
    # The env variable is the same setting.
    env.extra_env['LANEWORK_MIN_REPLICAS'] = '1'
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}')
    check(rc == 3 and 'only 0 of 1' in err, 'LANEWORK_MIN_REPLICAS: %d %s' % (rc, err))
    env.extra_env['LANEWORK_MIN_REPLICAS'] = 'x'
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}')
    check(rc == 2 and 'LANEWORK_MIN_REPLICAS' in err, 'a bad value: %d %s' % (rc, err))


@lwtest.plain_only
def test_a_repeat_is_not_confirmed_before_the_first_try(env):
    # The replica is stopped (SIGSTOP), not gone: the primary still counts
    # it, at the offset it acknowledged last. A repeat of an unconfirmed
    # enqueue (the same --id: the job is on the primary, enqueue.lua writes
    # nothing) must not be confirmed by that stale offset: the PUBLISH
    # before WAIT moves the connection's offset past the first try's write.
    with_replica(env)
    os.kill(env.replica.proc.pid, signal.SIGSTOP)
    try:
        # Why the PUBLISH: on this server, a connection that wrote nothing
        # has WAIT confirmed at once by the stopped replica's old offset.
        c = env.redis.client()
        try:
            c.call('SET', 'lw:{t1}:probe-write', '1')
            fresh = env.redis.client()
            try:
                check(fresh.call('WAIT', '1', '200') == 1, 'a fresh connection was not confirmed at once')
                fresh.call('PUBLISH', 'lw:{t1}:sync', '')
                check(fresh.call('WAIT', '1', '200') == 0, 'PUBLISH did not move the offset')
            finally:
                fresh.close()
            c.call('DEL', 'lw:{t1}:probe-write')
        finally:
            c.close()
        for attempt in range(3):
            rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}',
                                   '--id', 'fixed-1', '--min-replicas', '1')
            check(rc == 3 and out == '' and 'only 0 of 1' in err,
                  'try %d was confirmed by a stopped replica: %d %r %s' % (attempt + 1, rc, out, err))
    finally:
        os.kill(env.replica.proc.pid, signal.SIGCONT)
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}',
                           '--id', 'fixed-1', '--min-replicas', '1')
    check(rc == 0 and out.strip() == 'fixed-1', 'once the replica caught up: %d %r %s' % (rc, out, err))
    check(job_on_replica(env, 'fixed-1'), 'confirmed but not on the replica')


def test_worker_outcomes_wait_for_the_replica(env):
    with_replica(env)
    w = env.worker('--concurrency', '2', '--min-replicas', '1', '--poll', '0.2')
    jid = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [jid], timeout=20)
    # The primary says "succeeded" as soon as finish.lua ran; the WAIT that
    # confirms it to the worker follows.
    wait_until(lambda: job_on_replica(env, jid), timeout=5, what='the replica to hold the job')
    env.replica.stop()
    jid2 = env.enqueue('t1', 'record', {})
    wait_until(lambda: 'replicas confirmed a change' in w.log(), timeout=15,
               what='the worker to say the replicas did not confirm')
    env.replica.start()
    wait_until(lambda: 'master_link_status:up' in env.replica.call('INFO', 'replication'),
               timeout=15, what='the replica to sync again')
    env.wait_all('t1', [jid2], timeout=30)
    runs = env.runs().get(jid2, [])
    check(len(runs) == 1, 'the handler ran %d times' % len(runs))
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck: %s %s' % (out, err))


@lwtest.plain_only
def test_zero_sends_no_wait(env):
    with_replica(env)
    env.redis.call('CONFIG', 'RESETSTAT')
    w = env.worker('--concurrency', '2')
    ids = [env.enqueue('t1', 'noop', {'i': i}) for i in range(5)]
    env.wait_all('t1', ids, timeout=20)
    check(w.running(), w.log())
    check(env.redis.commandstats().get('wait', 0) == 0, 'WAIT sent without --min-replicas')


if __name__ == '__main__':
    lwtest.run([test_cli_confirmed_by_the_replica, test_cli_unconfirmed_is_not_acknowledged,
                test_a_repeat_is_not_confirmed_before_the_first_try,
                test_worker_outcomes_wait_for_the_replica, test_zero_sends_no_wait])

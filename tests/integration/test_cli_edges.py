"""Edge cases operators and scripts meet (issue 9), found by attacking the
CLI side as an operator or a shell script would: spool enqueues racing the
workers' watchers, --batch over tenants sharing a Redis, --unique-for
against the failed index, wait bounded while Redis stalls, followers at
maxclients, stats past tombstones and after a retry. Each failed before
its fix."""
import json
import os
import signal
import subprocess
import time

from lwtest import CLI, Client, Redis, check, free_port, run, wait_until

ONE = {'attempts': 1, 'timeout': 30, 'backoff': 0}


def cli_at(env, url, *args, input=None, timeout=60):
    p = subprocess.run([CLI] + list(args) + ['--redis', url, '--registry', env.registry],
                       input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=env.proc_env())
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def spool_entries(sp):
    out = {}
    for d in sorted(os.listdir(sp)):
        try:
            with open(os.path.join(sp, d, 'job.json')) as f:
                out[d] = json.load(f)
        except OSError:
            out[d] = None
    return out


def test_spool_with_held_unique_key_runs_no_second_job(env):
    """enqueue --spool --unique K while K is held: the CLI prints the holder
    and says "held" (exit 0), but leaves DIR/NEWID/job.json queued; the
    worker's watcher gets "held" for it and does nothing (no log), and a
    later rescan, once K is free, enqueues and RUNS it: a second job."""
    sp = os.path.join(env.dir, 'spool')
    os.makedirs(sp)
    env.write_registry([env.tenant('t1', spools={'noop': sp}, defaults=ONE)])
    rc, holder, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--unique', 'K', '--delay', '600')
    holder = holder.strip()
    w = env.worker('--concurrency', '2')
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--unique', 'K', '--spool', sp)
    check(rc == 0 and out.strip() == holder and 'held by job %s' % holder in err, 'enqueue: %d %r %r' % (rc, out, err))
    env.cli('cancel', '--tenant', 't1', holder)
    w.signal(signal.SIGHUP)  # a rescan, as the periodic one would do
    time.sleep(3)
    left = {d: e for d, e in spool_entries(sp).items() if d != holder}
    ran = [d for d in left if env.redis.call('EXISTS', 'lw:{t1}:job:' + d)]
    check(not ran, 'the enqueue was answered "held by job %s", yet its spool entry became job(s) %s that ran: %s'
          % (holder, ran, [env.redis.call('HGET', 'lw:{t1}:job:' + d, 'status') for d in ran]))
    check(not [d for d, e in left.items() if e and e.get('status') == 'queued'],
          'an entry answered "held" stays queued in the spool: %s' % left)


def test_batch_of_two_module_tenants_on_one_redis(env):
    """--batch: 300 lines of t1, then one of t2 (both module tenants, one
    Redis). The --kind lookup for t2 (SMEMBERS via cli_cmd) runs on the
    connection that already holds t1's pipelined enqueue call, so it takes
    that call's reply: a valid line is refused, 256 enqueued jobs get no id,
    and the batch exits 3 with Redis healthy."""
    env.write_registry([env.tenant('t1'), env.tenant('t2')])
    lines = [{'tenant': 't1', 'kind': 'noop'}] * 300 + [{'tenant': 't2', 'kind': 'noop'}] + \
        [{'tenant': 't1', 'kind': 'noop'}] * 5
    path = os.path.join(env.dir, 'batch.jsonl')
    with open(path, 'w') as f:
        f.write(''.join(json.dumps(l) + '\n' for l in lines))
    rc, out, err = env.cli('enqueue', '--batch', path)
    ids = out.split()
    made = len(env.redis.call('KEYS', 'lw:{t1}:job:*')) + len(env.redis.call('KEYS', 'lw:{t2}:job:*'))
    check(rc == 0 and len(ids) == len(lines) and err == '',
          'batch of two tenants: exit %d, %d ids printed for %d lines, %d jobs in Redis; stderr %r'
          % (rc, len(ids), len(lines), made, err))


def test_spool_enqueue_does_not_call_its_own_job_a_duplicate(env):
    """enqueue --spool with a live worker: the watcher often enqueues the
    entry before the CLI's own enqueue, which then says its own new job
    "is held by job ID" / "exists" -- the line scripts read as "deduplicated"."""
    sp = os.path.join(env.dir, 'spool')
    os.makedirs(sp)
    env.write_registry([env.tenant('t1', spools={'noop': sp}, defaults=ONE)])
    env.worker('--concurrency', '2')
    time.sleep(1)
    bad = []
    for i in range(30):
        rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--unique', 'k%d' % i, '--spool', sp)
        if rc != 0 or err:
            bad.append((rc, out.strip(), err.strip()))
    check(not bad, '%d of 30 fresh --spool enqueues reported an existing job, e.g. %s' % (len(bad), bad[:2]))


def test_spool_refused_by_replica_is_accepted_once(env):
    """enqueue --spool against a READONLY replica (the CLI still points at
    the old primary after a failover) with a live worker on the primary:
    the job is accepted in the spool (a warning, exit 0) and the workers
    enqueue it on their Redis: each job exists and runs exactly once. (A
    first version exited 3 "not enqueued" and removed the entry, while the
    watcher had already enqueued it: the job ran, or failed on the removed
    directory, and a script retrying after exit 3 made two.)"""
    sp = os.path.join(env.dir, 'spool')
    os.makedirs(sp)
    env.write_registry([env.tenant('t1', spools={'noop': sp}, defaults=ONE)])
    port = free_port()
    env.redis.call('CONFIG', 'SET', 'port', str(port))
    rep = Redis(env.dir, name='replica', extra=['--replicaof', '127.0.0.1', str(port)])
    try:
        wait_until(lambda: 'master_link_status:up' in rep.call('INFO', 'replication'), timeout=10,
                   what='the replica to sync')
        env.worker('--concurrency', '2')
        time.sleep(1)
        ids = []
        for _ in range(10):
            rc, out, err = cli_at(env, rep.url, 'enqueue', '--tenant', 't1', '--kind', 'noop', '--spool', sp)
            check(rc == 0 and 'READONLY' in err and 'stays in spool' in err, 'enqueue on a replica: %d %r' % (rc, err))
            ids.append(out.strip())
        env.wait_all('t1', ids, timeout=20)
        check(all(spool_entries(sp)[j]['status'] == 'done' for j in ids), 'entries: %s' % spool_entries(sp))
        check(len(env.redis.call('KEYS', 'lw:{t1}:job:*')) == 10, 'not exactly one job per enqueue')
    finally:
        rep.stop()


def test_stats_oldest_sees_past_tombstones(env):
    """35 cancelled jobs at the head of ready:default (tombstones), 5 jobs
    queued behind them: OLDEST says "-" ("none is ready") and
    oldest_waiting_s is null, for as long as they wait."""
    env.write_registry([env.tenant('t1')])
    ids = env.enqueue_batch([{'tenant': 't1', 'kind': 'noop'} for _ in range(40)])
    for i in ids[:35]:
        env.cli('cancel', '--tenant', 't1', i)
    time.sleep(1.5)
    rc, out, err = env.cli('stats', '--tenant', 't1', '--json')
    q = json.loads(out)['tenants']['t1']['queues']['default']
    check(q['queued'] == 5 and q['oldest_waiting_s'] is not None and q['oldest_waiting_s'] >= 1,
          'stats with 5 runnable jobs behind 35 tombstones: %s' % q)


def test_unique_for_longer_than_keep_failed(env):
    """A failed job enqueued with --unique-for longer than keep_failed keeps
    its record (finish_job extends it) but the next finish trims it out of
    the failed index: fsck reports a problem on a healthy tenant, and
    retry --all-failed silently skips a retained failed job."""
    d = dict(ONE, keep_failed=3)
    env.write_registry([env.tenant('t1', defaults=d)])
    env.worker('--concurrency', '2')
    b = env.enqueue('t1', 'fail', unique='U', unique_for=120)
    env.wait_all('t1', [b], statuses=('failed',))
    time.sleep(4)
    x = env.enqueue('t1', 'noop')
    env.wait_all('t1', [x])
    check(env.redis.call('HGET', 'lw:{t1}:job:' + b, 'status') == 'failed', 'the record was not kept')
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck on a healthy tenant: %d %r' % (rc, out))
    rc, out, err = env.cli('retry', '--tenant', 't1', '--all-failed')
    check(out.split() == [b], 'retry --all-failed missed the kept failed job %s: %r %r' % (b, out, err))


def test_wait_timeout_holds_when_redis_stalls(env):
    """wait --timeout 2, Redis goes silent (SIGSTOP) 0.5 s in: the command
    takes ~6 s (the 6 s reply timeout is not cut to the deadline), then says
    "timed out after 2s"."""
    env.write_registry([env.tenant('t1')])
    j = env.enqueue('t1', 'noop')
    t0 = time.monotonic()
    p = subprocess.Popen([CLI, 'wait', '--tenant', 't1', j, '--timeout', '2', '--redis', env.redis.url,
                          '--registry', env.registry], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env.proc_env())
    time.sleep(0.5)
    env.redis.proc.send_signal(signal.SIGSTOP)
    try:
        _out, err = p.communicate(timeout=30)
    finally:
        env.redis.proc.send_signal(signal.SIGCONT)
    took = time.monotonic() - t0
    check(p.returncode == 124 and took < 3.5, 'wait --timeout 2: exit %d after %.1f s: %r'
          % (p.returncode, took, err.decode()))


def test_followers_back_off_when_redis_is_full(env):
    """After a blip, followers reconnect into a Redis at maxclients (a
    reconnect storm): "ERR max number of clients reached" is taken as a
    refusal and `events --follow` and `wait` exit 3 at once."""
    env.write_registry([env.tenant('t1')])
    j = env.enqueue('t1', 'noop')
    args = ['--redis', env.redis.url, '--registry', env.registry]
    f = subprocess.Popen([CLI, 'events', '--tenant', 't1', '--follow'] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.proc_env())
    w = subprocess.Popen([CLI, 'wait', '--tenant', 't1', j, '--timeout', '60'] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.proc_env())
    fill = []
    try:
        time.sleep(1)
        n = int(env.redis.call('INFO', 'clients').split('connected_clients:')[1].split()[0])
        env.redis.call('CONFIG', 'SET', 'maxclients', str(n))
        env.redis.call('CLIENT', 'KILL', 'TYPE', 'normal')
        for _ in range(10):
            try:
                c = Client(env.redis.sock)
                c.call('PING')
                fill.append(c)
            except Exception:  # noqa: BLE001 - full: that is the point
                break
        time.sleep(3)
        check(f.poll() is None and w.poll() is None,
              'a full Redis ended the followers: events %s %r, wait %s %r'
              % (f.poll(), f.stderr.read().decode() if f.poll() is not None else '',
                 w.poll(), w.stderr.read().decode() if w.poll() is not None else ''))
    finally:
        for c in fill:
            c.close()
        for p in (f, w):
            if p.poll() is None:
                p.kill()
            p.communicate()


def test_stats_oldest_of_a_job_just_retried(env):
    """A job failed long ago and retried now: OLDEST shows the age of its
    first enqueue (days, for a week-old failure), not its wait since the
    retry queued it again."""
    env.write_registry([env.tenant('t1', defaults=ONE)])
    w = env.worker('--concurrency', '1')
    a = env.enqueue('t1', 'fail')
    env.wait_all('t1', [a], statuses=('failed',))
    w.signal(signal.SIGTERM)
    w.wait()
    time.sleep(5)
    env.cli('retry', '--tenant', 't1', a)
    rc, out, err = env.cli('stats', '--tenant', 't1', '--json')
    q = json.loads(out)['tenants']['t1']['queues']['default']
    check(q['oldest_waiting_s'] is not None and q['oldest_waiting_s'] < 2,
          'a job queued by retry just now: oldest_waiting_s %s' % q['oldest_waiting_s'])


if __name__ == '__main__':
    run([test_spool_with_held_unique_key_runs_no_second_job,
         test_batch_of_two_module_tenants_on_one_redis,
         test_spool_enqueue_does_not_call_its_own_job_a_duplicate,
         test_spool_refused_by_replica_is_accepted_once,
         test_stats_oldest_sees_past_tombstones,
         test_unique_for_longer_than_keep_failed,
         test_wait_timeout_holds_when_redis_stalls,
         test_followers_back_off_when_redis_is_full,
         test_stats_oldest_of_a_job_just_retried])

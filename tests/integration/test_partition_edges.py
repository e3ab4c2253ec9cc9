"""Hostile review of partitioned tenants (DESIGN.md section 11
"Partitions"): its reproductions, kept as tests. Run as the other
integration tests (LANEWORK_BIN=... python3 test_partition_edges.py [TEST]).

Each test below failed on the code it was written against (main at
9193097) and passes with its fix:
  test_mixed_registries_exceed_cap     a worker on an older registry ran
                                       partition 0 with the whole cap (7 of 4)
  test_cap_share_when_count_not_applied  partition 0 ran at cap/K
  test_failed_jobs_kept_hold_the_count   1->K with failed jobs kept split a lane
  test_retry_of_a_job_from_before_the_count_is_refused  ... and a retried one
  test_registry_rollback_strands_partitions  partitions nobody served
  test_spool_scan_*                      spool jobs in two keyspaces, run twice
  test_events_since_bad_partition_and_huge_ids  bad --since taken
  test_events_follow_across_the_transition  a follower never saw new partitions
  test_persistent_process_after_a_reload_that_keeps_the_tenant  use-after-free
probes (passed before too): test_sighup_storm_while_partitioned_attempts_run,
test_persistent_handlers_over_partitions_and_reloads.
Left open (the issue note): unique_for keys and explicit ids of jobs kept
from before 1->K. (--follow order across partitions and partial answers
with a master down: test_partition_outages.py.)"""
import json
import os
import signal
import time

import lwtest
from lwtest import check, wait_until
from test_partitions import TERMINAL, max_parallel, part_of, pstatuses, wait_done, where


def count_is(env, k):
    return lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == k


def stop(*ws):
    for w in ws:
        w.signal(signal.SIGTERM)
        w.wait()


def test_mixed_registries_exceed_cap(env):
    """HIGH. Rolling a registry change "partitions": 4 out over a fleet: the
    worker still on the old file serves partition 0 alone with the whole
    max_active (cap_share uses its registry's count, not the count in
    force), the new one serves every partition with cap/4 shares. Partition
    0 then runs up to 4 and partitions 1..3 one each: 7 at once, cap 4."""
    q = {'default': {'max_active': 4}}
    env.write_registry([env.tenant('p', queues=q)])
    old = env.worker('--concurrency', '8', name='old')
    wait_until(lambda: env.redis.call('EXISTS', 'lw:{p}:settings') == 1, timeout=5, what='old worker up')
    env.write_registry([env.tenant('p', partitions=4, queues=q)])
    new = env.worker('--concurrency', '8', name='new')
    wait_until(count_is(env, '4'), timeout=5, what='the count 4 in force')
    ids = env.enqueue_batch([{'kind': 'record', 'payload': {'ms': 150}} for _ in range(80)], tenant='p')
    wait_done(env, 'p', ids, 4)
    peak = max_parallel(env.runs(), ids)
    print('mixed registries: at most %d ran at once with max_active 4' % peak, flush=True)
    stop(old, new)
    check(peak <= 4, '%d jobs ran at once with max_active 4 (old worker: full cap on partition 0)' % peak)


def test_cap_share_when_count_not_applied(env):
    """MED. Registry K=4 on a tenant that had a waiting job at start: the
    count in force stays 1 (right), but partition 0's struct keeps the cap
    share max_active/4, so every job (all in partition 0) runs one at a
    time instead of 4 -- until a SIGHUP after the drain."""
    env.write_registry([env.tenant('p')])
    env.enqueue('p', 'noop', {}, lane='L', delay=600)
    env.write_registry([env.tenant('p', partitions=4, queues={'default': {'max_active': 4}})])
    w = env.worker('--concurrency', '8')
    wait_until(lambda: 'routed over 1' in w.log(), timeout=5, what='the count not applied')
    ids = env.enqueue_batch([{'kind': 'record', 'payload': {'ms': 150}} for _ in range(24)], tenant='p')
    wait_done(env, 'p', ids, 4)
    peak = max_parallel(env.runs(), ids)
    print('count not applied: at most %d ran at once with max_active 4' % peak, flush=True)
    stop(w)
    check(peak >= 3, 'only %d ran at once with max_active 4: partition 0 kept the cap share 4/4=1' % peak)


def lane_not_in_0(k):
    return next(l for l in ('L%d' % i for i in range(200)) if part_of(l, k) != 0)


def repartition(env, w, k):
    env.write_registry([env.tenant('p', partitions=k)])
    w.signal(signal.SIGHUP)
    wait_until(count_is(env, str(k)), timeout=5, what='the count %d applied' % k)


def test_failed_jobs_kept_hold_the_count(env):
    """Review HIGH (fixed): settings.lua called a tenant with only failed
    jobs "empty" and applied 1->K; `retry` then put a failed job of lane L
    back in partition 0 while L's new jobs went to partition part_of(L):
    one lane in two partitions. Now a failed job kept holds the count (said
    at error), and the retried job runs in partition 0 with its lane."""
    k = 4
    lane = lane_not_in_0(k)
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '4')
    f = env.enqueue('p', 'fail', {}, lane=lane, attempts=1)
    wait_done(env, 'p', [f], 1)
    env.write_registry([env.tenant('p', partitions=k)])
    w.signal(signal.SIGHUP)
    wait_until(lambda: 'registry says partitions 4, but its jobs are routed over 1' in w.log(), timeout=5,
               what='the count held by the failed job')
    check(env.redis.call('HGET', 'lw:{p}:settings', 'partitions') is None, 'the count changed with a failed job kept')
    rc, out, err = env.cli('retry', '--tenant', 'p', f)
    check(rc == 0, 'retry: %d %s' % (rc, err))
    ids = [env.enqueue('p', 'record', {'ms': 50}, lane=lane) for _ in range(3)]
    wait_done(env, 'p', ids + [f], k)
    rc, out, err = env.cli('fsck', '--tenant', 'p')
    stop(w)
    check(rc == 0, 'fsck: %d\n%s' % (rc, out[-600:]))
    check(all(where(env, 'p', j, k) == [0] for j in ids + [f]), 'a job of lane %s left partition 0' % lane)


def test_retry_of_a_job_from_before_the_count_is_refused(env):
    """Review HIGH (fixed): a cancelled job kept in partition 0 from before
    1->K, retried, ran beside its lane's new job in the lane's new
    partition. retry.lua refuses it now, saying to enqueue it again."""
    k = 4
    lane = lane_not_in_0(k)
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '4')
    c = env.enqueue('p', 'record', {'ms': 600}, lane=lane, delay=600)
    rc, _o, err = env.cli('cancel', '--tenant', 'p', c)
    check(rc == 0, 'cancel: %s' % err)
    repartition(env, w, k)
    rc, out, err = env.cli('retry', '--tenant', 'p', c)
    check(rc == 2 and 'enqueued before the tenant had 4 partitions' in err and len(err.strip().splitlines()) == 1,
          'retry of a job from before the count: %d %r' % (rc, err))
    check(pstatuses(env, 'p', [c], k)[c] == 'cancelled', 'the refused retry changed the job')
    n = env.enqueue('p', 'record', {'ms': 100}, lane=lane)
    wait_done(env, 'p', [n], k)
    stop(w)
    check(where(env, 'p', n, k) == [part_of(lane, k)], 'the new job is not in its lane\'s partition')


def test_sighup_storm_while_partitioned_attempts_run(env):
    """Chaos: reloads that retire and rebuild every partition struct (the
    cap changes each time) while attempts of many lanes run. Nothing may
    crash (run under ASan), every job ends, no lane overlaps, the cap of
    the moment is never passed by more than the older cap."""
    k = 8

    def reg(cap):
        env.write_registry([env.tenant('p', partitions=k, queues={'default': {'max_active': cap}})])
    reg(16)
    ws = [env.worker('--concurrency', '8', name='w%d' % i) for i in range(2)]
    wait_until(count_is(env, str(k)), timeout=5, what='the count in force')
    lines = [{'kind': 'record', 'lane': 'l%d' % (i % 20), 'payload': {'ms': 30}} for i in range(400)]
    ids = env.enqueue_batch(lines, tenant='p')
    for i in range(30):
        reg(16 if i % 2 else 8)
        for w in ws:
            w.signal(signal.SIGHUP)
        time.sleep(0.1)
    st = wait_done(env, 'p', ids, k, timeout=120)
    alive = [w.running() for w in ws]
    ov = env.overlaps(ids)
    peak = max_parallel(env.runs(), ids)
    logs = ''.join(w.log() for w in ws)
    stop(*ws)
    check(all(alive), 'a worker died during the reloads:\n%s' % logs[-3000:])
    check('ERROR: AddressSanitizer' not in logs and 'runtime error' not in logs, 'sanitizer:\n%s' % logs[-3000:])
    check(set(st.values()) == {'succeeded'}, 'jobs: %s' % {s for s in st.values()})
    check(not ov, 'lane overlaps: %s' % ov[:3])
    check(peak <= 16, '%d ran at once with max_active 16' % peak)


HERE = os.path.dirname(os.path.abspath(__file__))
PERSIST = os.path.join(HERE, 'handlers', 'persist.py')
CLIENTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'clients', 'python')


def test_persistent_handlers_over_partitions_and_reloads(env):
    """Chaos: persistent exec handlers are the lead's (tenant_lead); reloads
    that retire every partition struct while attempts of all partitions run
    on them. Nothing may crash (ASan), every job ends, no lane overlaps."""
    import sys
    k = 8
    env.extra_env['PYTHONPATH'] = CLIENTS

    def reg(n):
        entry = {'command': [sys.executable, PERSIST], 'persistent': True, 'max_jobs': n}
        env.write_registry([{'tenant': 'p', 'partitions': k, 'exec': {'nap': entry, 'noop': entry},
                             'defaults': {'attempts': 3, 'timeout': 20, 'backoff': 0.05}}])
    reg(50)
    w = env.worker('--concurrency', '6', '--isolation', 'thread')
    wait_until(count_is(env, str(k)), timeout=5, what='the count in force')
    lines = [{'kind': 'noop', 'lane': 'l%d' % (i % 16)} for i in range(300)]
    ids = env.enqueue_batch(lines, tenant='p')
    for i in range(20):
        reg(50 + i % 2)
        w.signal(signal.SIGHUP)
        time.sleep(0.05)
    try:
        st = wait_done(env, 'p', ids, k, timeout=120)
    finally:
        alive = w.running()
        log = w.log()
        stop(w)
    check(alive, 'the worker died:\n%s' % log[-3000:])
    check('AddressSanitizer' not in log and 'runtime error' not in log, 'sanitizer:\n%s' % log[-4000:])
    check(set(st.values()) == {'succeeded'}, 'jobs: %s' % {s for s in st.values()})


def test_registry_rollback_strands_partitions(env):
    """MED (stuck until an operator edits the registry back). An operator
    rolls a registry change "partitions": 4 back (a bad deploy) once the
    count was applied: the count in force stays 4 (right: jobs live there),
    the CLI routes over 4, but the worker builds structs only for its
    registry's 1 partition, so every job routed to partitions 1..3 waits
    forever -- and the tenant can never drain to allow the documented HDEL.
    (Same with two workers whose registries say 2 and 4: see the cap test.)"""
    env.write_registry([env.tenant('p', partitions=4)])
    w = env.worker('--concurrency', '4')
    wait_until(count_is(env, '4'), timeout=5, what='the count 4 in force')
    env.write_registry([env.tenant('p')])
    w.signal(signal.SIGHUP)
    wait_until(lambda: 'routed over 4' in w.log(), timeout=5, what='the worker to see the rollback')
    ids = [env.enqueue('p', 'noop', {}, lane='r%d' % i) for i in range(12)]
    try:
        wait_done(env, 'p', ids, 4, timeout=10)
        stranded = []
    except lwtest.TestFailure:
        st = pstatuses(env, 'p', ids, 4)
        stranded = [(i, where(env, 'p', i, 4)) for i in ids if st.get(i) not in TERMINAL]
    stop(w)
    check(not stranded, '%d of 12 jobs never ran (in partitions nobody serves): %s' % (len(stranded), stranded[:4]))


def spool_scan_race(env, payload):
    """HIGH (a lane split over two partitions). After a reload the new
    partition-0 struct has nparts 0 until its settings publication is
    answered, and enqueue_found then routes by the registry's count. With
    the count in force 1 (the tenant was busy) and the registry saying 4, a
    spool scan that ends before that reply (a slow Redis: here its replies
    held for a moment) sends the jobs of partitions 1..3 there -- only
    partition 0 checks the count -- while every other enqueuer routes those
    lanes to partition 0."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)

    def reg(cap):
        env.write_registry([env.tenant('p', partitions=4, spools={'record': spool},
                                       queues={'default': {'max_active': cap}})])
    reg(8)
    env.enqueue('p', 'noop', {}, lane='W', delay=600)  # keeps the count at 1
    px = env.proxy()
    w = env.worker('--concurrency', '4', redis_url=px.url)
    wait_until(lambda: 'routed over 1' in w.log(), timeout=5, what='the count not applied')
    px.hold_replies()
    reg(9)
    w.signal(signal.SIGHUP)
    time.sleep(0.3)
    lanes = ['s%d' % i for i in range(8)]
    ids = []
    for lane in lanes:
        rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--lane', lane, '--payload', json.dumps(payload),
                               '--spool', spool, '--redis', 'redis://127.0.0.1:1', redis=False)
        check(rc == 0, 'enqueue --spool: %d %r' % (rc, err))
        ids.append(out.strip())
    time.sleep(1.0)
    px.heal()
    time.sleep(2.0)
    if payload:
        wait_done(env, 'p', ids, 4, timeout=30)
    runs = env.runs()
    twice = {lanes[ids.index(j)]: len(runs.get(j, [])) for j in ids if len(runs.get(j, [])) > 1}
    at = {jid: where(env, 'p', jid, 4) for jid in ids}
    stop(w)
    check(not twice, 'spool jobs ran more than once (lane: runs): %s' % twice)
    off = {jid: p for jid, p in at.items() if p and p != [0]}
    check(env.redis.call('HGET', 'lw:{p}:settings', 'partitions') is None, 'the count changed')
    check(not off, 'with 1 partition in force, spool jobs are in partitions %s (the same id in two '
          'keyspaces once the rescan by 1 enqueued them again in partition 0)'
          % {lanes[ids.index(j)]: p for j, p in off.items()})


def test_spool_scan_before_count_known_after_reload(env):
    """HIGH: see spool_scan_race."""
    spool_scan_race(env, {})


def test_spool_scan_race_runs_a_job_twice(env):
    """HIGH: as spool_scan_race, with jobs still running when the rescan by
    the count in force enqueues their second copies in partition 0."""
    spool_scan_race(env, {'ms': 2500})


def test_events_since_bad_partition_and_huge_ids(env):
    """LOW. --since ID#P with P >= the tenant's count names no partition
    but is taken (and silently means "after ID everywhere"); an id whose
    numbers overflow is bad input but exits 3 as a Redis refusal, not 2."""
    env.write_registry([env.tenant('p', partitions=4)])
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', '4')
    bad = []
    for since, want in [('1-0#4', 2), ('1-0#63', 2), ('99999999999999999999999-0', 2),
                        ('1-99999999999999999999999#1', 2)]:
        rc, out, err = env.cli('events', '--tenant', 'p', '--since', since)
        if rc != want or len(err.strip().splitlines()) != 1:
            bad.append((since, rc, err.strip()))
    check(not bad, 'bad --since taken or misreported: %s' % bad)


def test_events_follow_across_the_transition(env):
    """MED. `events --follow` reads the partition count once: a follower
    started before 1->K keeps reading partition 0 alone and never shows the
    events of the jobs routed to partitions >= 1 afterwards (no error, no
    end: a silent gap). Same in the clients (count cached for life)."""
    import subprocess
    import threading
    k = 4
    lane = lane_not_in_0(k)
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    a = env.enqueue('p', 'noop', {})
    wait_done(env, 'p', [a], 1)
    argv = [lwtest.CLI, 'events', '--tenant', 'p', '--follow', '--redis', env.redis.url, '--registry', env.registry]
    f = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.proc_env())
    lines = []
    t = threading.Thread(target=lambda: [lines.append(l.decode()) for l in f.stdout], daemon=True)
    t.start()
    try:
        wait_until(lambda: any(a in l for l in lines), timeout=5, what='the follower to show the first job')
        repartition(env, w, k)
        j = env.enqueue('p', 'noop', {}, lane=lane)
        wait_done(env, 'p', [j], k)
        time.sleep(1.5)
    finally:
        f.kill()
        f.wait()
        stop(w)
    check(any(j in l for l in lines), 'events --follow never showed job %s (partition %d) enqueued after 1->%d'
          % (j, part_of(lane, k), k))


def test_persistent_process_after_a_reload_that_keeps_the_tenant(env):
    """HIGH (heap use-after-free in the worker; run with the ASan build to
    see it; without ASan it reads freed memory and may pick a wrong process
    or crash). Not specific to partitions, found by the reload probes: a
    persistent process keeps `ex` (run_persistent.c proc_spawn: p->ex), a
    pointer into the registry it was spawned under. A SIGHUP whose tenant
    is unchanged keeps the tenant and moves it to the new registry, the old
    one is freed (reload.c regref_unref), and the next attempt's start()
    compares same_command(q->ex, ex) through the freed pointer."""
    import sys
    env.extra_env['PYTHONPATH'] = CLIENTS
    entry = {'command': [sys.executable, PERSIST], 'persistent': True}
    k = 4
    env.write_registry([{'tenant': 'p', 'partitions': k, 'exec': {'noop': entry},
                         'defaults': {'attempts': 1, 'timeout': 20, 'backoff': 0.05}}])
    w = env.worker('--concurrency', '1')
    wait_until(count_is(env, str(k)), timeout=5, what='the count in force')
    a = env.enqueue('p', 'noop', {}, lane='x')
    wait_done(env, 'p', [a], k)
    w.signal(signal.SIGHUP)  # the same file: the tenant is kept
    wait_until(lambda: '1 tenant(s) kept' in w.log() or 'kept' in w.log(), timeout=5, what='the reload')
    b = env.enqueue('p', 'noop', {}, lane='x')
    try:
        st = wait_done(env, 'p', [b], k, timeout=15)
    except lwtest.TestFailure:
        st = {}
    time.sleep(0.3)
    alive = w.running()
    log = w.log()
    stop(w)
    check(alive and 'AddressSanitizer' not in log and st.get(b) == 'succeeded',
          'after a reload that kept the tenant: job %s %s, worker alive %s:\n%s'
          % (b, st.get(b), alive, log[log.find('ERROR: AddressSanitizer'):][:1500] if 'AddressSanitizer' in log else log[-800:]))


if __name__ == '__main__':
    lwtest.run([test_mixed_registries_exceed_cap,
                test_cap_share_when_count_not_applied,
                test_failed_jobs_kept_hold_the_count,
                test_retry_of_a_job_from_before_the_count_is_refused,
                test_sighup_storm_while_partitioned_attempts_run,
                test_persistent_handlers_over_partitions_and_reloads,
                test_registry_rollback_strands_partitions,
                test_spool_scan_before_count_known_after_reload,
                test_spool_scan_race_runs_a_job_twice,
                test_events_since_bad_partition_and_huge_ids,
                test_events_follow_across_the_transition,
                test_persistent_process_after_a_reload_that_keeps_the_tenant])

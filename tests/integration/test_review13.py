"""Hostile review of issue 13's "ids and unique keys from before 1->K"
(known.lua, legacy_until, ttl_max; DESIGN.md section 11 "Partitions").
Reproductions, kept as tests. Run as the other integration tests:
LANEWORK_BIN=... python3 test_review13.py [TEST].

Each test FAILS on main at 58e1180 because of the defect it names:
  HIGH test_python_client_reused_id_after_partitioning   the clients never ask
                                      known.lua: a second job, run twice
  MED  test_spool_enqueue_known_refused_is_not_accepted_but_runs  exit 3, yet
                                      the spool entry stays and runs
  MED  test_batch_of_explicit_ids_during_the_window_is_not_pipelined  one
                                      synchronous round trip per line
  MED  test_count_changed_back_per_readme_duplicates_ids  README's "change the
                                      count later" loses dedupe of partitions >= 1
  LOW  test_count_applied_by_a_worker_of_the_previous_release  no window
  LOW  test_records_from_before_ttl_max_outlive_the_window  upgrade: no ttl_max
  LOW  test_batch_oom_after_a_known_answer_leaks  (ASan) fixed by 7c9501c
  LOW  test_spool_scan_log_counts_jobs_taken_by_known  "0 pending job(s)"
The Python client's test needs redis-py (run with /usr/bin/python3 here)."""
import json
import os
import signal
import sys
import time

import lwtest
from lwtest import check, wait_until
from test_partitions import part_of, wait_done, where

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'clients', 'python'))

K = 4


def key_not_in_0(stem, k=K):
    return next(x for x in ('%s%d' % (stem, i) for i in range(500)) if part_of(x, k) != 0)


def partition(env, w, k=K, **fields):
    """Registry "partitions": k for tenant p, applied (the tenant is idle)."""
    env.write_registry([env.tenant('p', partitions=k, **fields)])
    w.signal(signal.SIGHUP)
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == str(k), timeout=5,
               what='the count %d applied' % k)


def stop(w):
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def runs_of(env, jid):
    return len(env.runs().get(jid, []))


def test_python_client_reused_id_after_partitioning(env):
    """HIGH. DESIGN.md says every enqueuer asks partition 0 about an id
    from before 1->K ("the clients once per call"); the Python client never
    calls known.lua: an id reused through it makes a second job in the id's
    new partition, which runs again."""
    import lanework
    jid = key_not_in_0('py')
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    env.enqueue('p', 'record', {}, id=jid)
    wait_done(env, 'p', [jid], 1)
    partition(env, w)
    check(env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is not None, 'no legacy window')
    c = lanework.Client(env.redis.url, namespace=env.ns)
    try:
        got = c.enqueue('p', 'record', {}, id=jid)
    finally:
        c.close()
    time.sleep(1.0)
    stop(w)
    check(getattr(got, 'created', None) is False, 'the client created a job for an existing id: %r created=%r'
          % (got, getattr(got, 'created', None)))
    check(where(env, 'p', jid, K) == [0], 'job %s is in partitions %s' % (jid, where(env, 'p', jid, K)))
    check(runs_of(env, jid) == 1, 'job %s ran %d times' % (jid, runs_of(env, jid)))


def test_spool_enqueue_known_refused_is_not_accepted_but_runs(env):
    """MED. `enqueue --spool` promises: the job file is written first, and
    when Redis does not take the job it is still accepted (exit 0, a
    warning) for a worker's scan. The known.lua call made during the
    legacy window is outside that fallback: when Redis refuses it (here
    maxmemory: known.lua is deny-oom, as enqueue.lua) the CLI exits 3 --
    "not accepted" -- yet leaves the spool entry behind, which a worker
    enqueues and runs later. The same refusal of enqueue.lua itself (window
    closed) exits 0 with the warning."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    d = {'attempts': 3, 'timeout': 30, 'backoff': 0.05}
    env.write_registry([env.tenant('p', spools={'record': spool}, defaults=d)])
    w = env.worker('--concurrency', '2')
    old = env.enqueue('p', 'record', {})  # something finished before: a window opens
    wait_done(env, 'p', [old], 1)
    partition(env, w, spools={'record': spool}, defaults=d)
    check(env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is not None, 'no legacy window')
    stop(w)
    jid = key_not_in_0('oom')
    env.redis.call('CONFIG', 'SET', 'maxmemory', '1')
    try:
        rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--payload', '{}', '--id', jid,
                               '--spool', spool)
    finally:
        env.redis.call('CONFIG', 'SET', 'maxmemory', '0')
    left = os.path.exists(os.path.join(spool, jid, 'job.json'))
    print('enqueue --spool, known.lua refused: rc=%d out=%r err=%r spool entry left=%s' % (rc, out, err, left),
          flush=True)
    w2 = env.worker('--concurrency', '2', name='w2')
    wait_until(lambda: runs_of(env, jid) >= 1, timeout=10, what='the spooled job to run')
    stop(w2)
    check(rc == 0 and out.strip() == jid,
          'exit %d (stdout %r) for a job that was accepted (its spool entry was left and it ran): %r'
          % (rc, out, err))


def test_batch_of_explicit_ids_during_the_window_is_not_pipelined(env):
    """MED (performance). During the legacy window -- by default the
    failed retention, 7 days -- every --batch line that carries its own id
    (or a unique key) and routes to partition >= 1 costs a synchronous
    known.lua round trip on a connection of its own, one line at a time:
    the pipelining CONTRACT section 9 promises ("tens of thousands of jobs
    per second") is gone for such batches (idempotent imports). Here, on a
    unix socket, the same 4,000-line batch is ~4x slower with the window
    open than once it is closed; over a network each line pays a full RTT
    (1 ms: ~1,300 jobs/s). Suggested fix: ask known.lua per window (one
    call for all the window's asked lines, pipelined with the window's
    enqueue calls to partition 0, as the worker's spool scan does)."""
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    old = env.enqueue('p', 'record', {})
    wait_done(env, 'p', [old], 1)
    partition(env, w)
    stop(w)
    n = 4000
    took = {}
    for tag in ('open', 'closed'):
        if tag == 'closed':
            env.redis.call('HDEL', 'lw:{p}:settings', 'legacy_until')
        text = ''.join(json.dumps({'kind': 'noop', 'id': '%s-%d' % (tag, i)}) + '\n' for i in range(n))
        t0 = time.monotonic()
        rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'p', input=text, timeout=300)
        took[tag] = time.monotonic() - t0
        check(rc == 0 and len(out.split()) == n, 'batch (%s): %d %r' % (tag, rc, err[-300:]))
    print('batch of %d explicit ids: window open %.2f s (%.0f/s), closed %.2f s (%.0f/s)'
          % (n, took['open'], n / took['open'], took['closed'], n / took['closed']), flush=True)
    check(took['open'] < 2 * took['closed'] + 0.1,
          'a batch of explicit ids took %.2f s during the legacy window, %.2f s after it: one known.lua '
          'round trip per line' % (took['open'], took['closed']))


def test_count_changed_back_per_readme_duplicates_ids(env):
    """MED. README: "To change the count later: drain the tenant, HDEL
    NS:{T}:settings partitions, restart workers and enqueuers". Done by the
    book (the tenant drained: nothing waits or runs), the jobs that finished
    in partitions >= 1 stay there for their retention, but nothing asks
    them any more: an id reused after going back to 1 (or on to another K)
    makes a second job in partition 0, which runs again. known.lua's
    window covers only partition 0's records after an absent/1 -> K change.
    Suggested fix: when the count is removed or changed, keep a window too
    (legacy_from = the old K, legacy_until = now + ttl_max), and have
    enqueuers ask the id's/key's partition under the old count; or document
    that ids and unique keys of the retention period are not deduplicated
    across a manual change."""
    env.write_registry([env.tenant('p', partitions=K)])
    w = env.worker('--concurrency', '2')
    wait_until(lambda: env.redis.call('HGET', 'lw:{p}:settings', 'partitions') == str(K), timeout=5,
               what='the count applied')
    jid = key_not_in_0('back')
    env.enqueue('p', 'record', {}, id=jid)
    wait_done(env, 'p', [jid], K)
    stop(w)
    # The README's procedure: the tenant is drained; HDEL; restart.
    env.redis.call('HDEL', 'lw:{p}:settings', 'partitions')
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2', name='w2')
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--payload', '{}', '--id', jid)
    check(rc == 0, 'enqueue: %d %r' % (rc, err))
    time.sleep(1.0)
    stop(w)
    print('after going back to 1: job %s in partitions %s, ran %d times; stderr %r'
          % (jid, where(env, 'p', jid, K), runs_of(env, jid), err), flush=True)
    check('exists' in err, 'a reused id was not answered with the existing job: %r' % err)
    check(runs_of(env, jid) == 1, 'job %s ran %d times' % (jid, runs_of(env, jid)))


def test_batch_oom_after_a_known_answer_leaks(env):
    """LOW (ASan build). In cmd_batch, a line partition 0 answered for
    (ask_known: `known` malloc'd) whose lw_job_spec_resolve then fails (out
    of memory) is dropped with `g = NULL`, and `known` is never freed:
    LeakSanitizer fails the CLI's exit status (1). Swept with the alloc
    fault seam (LANEWORK_FAULT=alloc:N) over a 3-line batch; only an ASan
    build sees it. Fix (one line): free(known) in the `if (!g)` block."""
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    jid = key_not_in_0('leak')
    env.enqueue('p', 'record', {}, id=jid)
    wait_done(env, 'p', [jid], 1)
    partition(env, w)
    stop(w)
    leaks, quiet = [], 0
    for n in range(1, 600):
        env.extra_env['LANEWORK_FAULT'] = 'alloc:%d' % n
        lines = [{'kind': 'record', 'id': jid}, {'kind': 'noop', 'id': 'new-%d' % n}]
        rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'p',
                               input=''.join(json.dumps(l) + '\n' for l in lines))
        del env.extra_env['LANEWORK_FAULT']
        if 'Sanitizer' in err or 'runtime error' in err:
            leaks.append((n, rc, err[err.find('====='):][:800]))
        quiet = quiet + 1 if rc == 0 else 0
        if quiet > 40:
            break
    for x in leaks[:3]:
        print('alloc:%d exit %d\n%s' % x, flush=True)
    check(not leaks, '%d of the alloc faults gave a sanitizer report (first: alloc:%d)'
          % (len(leaks), leaks[0][0] if leaks else 0))


def test_records_from_before_ttl_max_outlive_the_window(env):
    """LOW (upgrade path). legacy_until = now + max(ttl_max, keep_*); but
    ttl_max only exists for records finished by a74c150 or later. A tenant
    upgraded from an earlier version and then partitioned has records whose
    retention nobody noted: here a --unique-for 600 hold (record kept 600
    s) with retentions of 1 s. The window is 1 s; the hold is not over, yet
    an enqueue with that unique key routed elsewhere makes a second job
    (simulated: ttl_max removed, as the older version never wrote it).
    Suggested fix: when ttl_max is absent at the change, do not trust the
    retentions alone: fall back to the longest hold/retention allowed
    (MAX_SECONDS), or have the worker note ttl_max from the records' PTTLs
    (a SCAN, once per tenant, before it may apply a count)."""
    key = key_not_in_0('up')
    d = {'attempts': 3, 'timeout': 30, 'backoff': 0.05, 'keep_succeeded': 1, 'keep_failed': 1}
    env.write_registry([env.tenant('p', defaults=d)])
    w = env.worker('--concurrency', '2')
    first = env.enqueue('p', 'record', {}, unique=key, unique_for=600)
    wait_done(env, 'p', [first], 1)
    env.redis.call('HDEL', 'lw:{p}:settings', 'ttl_max')  # as written by the version before
    partition(env, w, defaults=d)
    time.sleep(1.5)
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--payload', '{}', '--unique', key)
    time.sleep(0.5)
    stop(w)
    print('unique key %s held by %s (ttl %s s): enqueue gave %r, stderr %r' % (
        key, first, env.redis.call('TTL', 'lw:{p}:job:' + first), out.strip(), err), flush=True)
    check(rc == 0 and out.strip() == first, 'a second job for a held unique key: %r (held by %s) %r'
          % (out.strip(), first, err))


def test_count_applied_by_a_worker_of_the_previous_release(env):
    """LOW-MED (rolling upgrade). The registry is shared (a ConfigMap), so
    during a rolling upgrade the "partitions": K change can reach a worker
    still on the previous release; its settings.lua (9bf2f5e) applies K
    with a bare HSET and writes no legacy_until. The new workers, CLIs and
    clients then never ask partition 0: every id of the retention period
    reused later makes a second job. Simulated here by that HSET (exactly
    what the old script does on an idle tenant). Suggested fix: a new
    worker that finds partitions > 1 and no mark that a window was ever
    opened (say legacy_until absent and no `legacy_closed`) opens one from
    ttl_max/keep_* at start; or document "upgrade every worker before
    changing the count"."""
    jid = key_not_in_0('roll')
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    env.enqueue('p', 'record', {}, id=jid)
    wait_done(env, 'p', [jid], 1)
    stop(w)
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', str(K))  # the previous release's settings.lua
    env.write_registry([env.tenant('p', partitions=K)])
    w = env.worker('--concurrency', '2', name='new')
    time.sleep(0.5)
    rc, out, err = env.cli('enqueue', '--tenant', 'p', '--kind', 'record', '--payload', '{}', '--id', jid)
    time.sleep(1.0)
    stop(w)
    print('count applied by an old worker: legacy_until=%r; job %s in partitions %s, ran %d times'
          % (env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until'), jid, where(env, 'p', jid, K),
             runs_of(env, jid)), flush=True)
    check('exists' in err and runs_of(env, jid) == 1, 'a reused id made a second job: %r, ran %d times'
          % (err, runs_of(env, jid)))


def test_spool_scan_log_counts_jobs_taken_by_known(env):
    """LOW (operator-facing). During the legacy window the worker's scan
    hands the jobs it found to a known.lua call (ask_known), and scan_done
    then logs the scan with s.found of its own scan_ctx, which counted
    nothing: "spool ... (kind record): 0 pending job(s)" for a spool of 4
    pending jobs, which then run. Fix: count the found jobs (f.njobs minus
    the skipped) before ask_known takes them, or log from known_reply."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([env.tenant('p', spools={'record': spool})])
    w = env.worker('--concurrency', '2')
    a = env.enqueue('p', 'record', {})
    wait_done(env, 'p', [a], 1)
    partition(env, w, spools={'record': spool})
    stop(w)
    ids = list(dict.fromkeys(key_not_in_0('sl%d-' % i) for i in range(4)))
    for jid in ids:
        os.makedirs(os.path.join(spool, jid))
        with open(os.path.join(spool, jid, 'job.json'), 'w') as f:
            json.dump({'job_id': jid, 'status': 'queued', 'payload': {}}, f)
    w = env.worker('--concurrency', '2', '--burst', name='burst')
    check(w.wait(timeout=30) == 0, 'burst worker exit')
    log = w.log()
    line = next((l for l in log.splitlines() if 'spool.scan' in l and 'pending job' in l), '')
    print('scan log: %s; runs %s' % (line, {j: runs_of(env, j) for j in ids}), flush=True)
    check(all(runs_of(env, j) == 1 for j in ids), 'runs: %s' % {j: runs_of(env, j) for j in ids})
    check(' %d pending job(s)' % len(ids) in line, 'the scan of %d pending jobs is logged as: %r' % (len(ids), line))


if __name__ == '__main__':
    lwtest.run([test_python_client_reused_id_after_partitioning,
                test_spool_enqueue_known_refused_is_not_accepted_but_runs,
                test_batch_of_explicit_ids_during_the_window_is_not_pipelined,
                test_count_changed_back_per_readme_duplicates_ids,
                test_batch_oom_after_a_known_answer_leaks,
                test_records_from_before_ttl_max_outlive_the_window,
                test_count_applied_by_a_worker_of_the_previous_release,
                test_spool_scan_log_counts_jobs_taken_by_known,
                ])

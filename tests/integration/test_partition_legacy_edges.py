"""Hostile review of "ids and unique keys from before 1->K" (known.lua,
legacy_until, ttl_max; DESIGN.md section 11 "Partitions"): its
reproductions, kept as tests. Run as the other integration tests:
LANEWORK_BIN=... python3 test_partition_legacy_edges.py [TEST].

Each test failed on main at 58e1180 because of the defect it names, and
passes with its fix:
  MED  test_spool_enqueue_known_refused_is_not_accepted_but_runs  exit 3, yet
                                      the spool entry stayed and ran
  MED  test_batch_of_explicit_ids_during_the_window_is_pipelined  one
                                      synchronous round trip per line
  LOW  test_count_applied_by_a_worker_of_the_previous_release  no window
  LOW  test_batch_oom_after_a_known_answer_leaks  (ASan) a leak
  LOW  test_spool_scan_log_counts_jobs_taken_by_known  "0 pending job(s)"
Also found, and where they went:
  HIGH the clients never asked known.lua: fixed on a branch merged before
       the review's report; the clients' own suites test it
       (clients/python/tests/test_partitions.py, clients/node/test/).
  MED  README's "change the count later" (HDEL, then another count) loses
       the dedupe of ids kept in partitions >= 1 until their retention:
       documented (README, DESIGN), not built -- a window would have to
       name the old count and ask each id's old partition.
  LOW  records written before ttl_max existed (an upgrade) with a
       --unique-for hold past the retentions: the window only covers the
       retentions; documented as an upgrade note."""
import json
import os
import socket
import threading
import time

import lwtest
from lwtest import check, wait_until
from test_partition_legacy import K, key_not_in_0, partition, runs_of, stop
from test_partitions import part_of, wait_done, where


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


class SlowReplies:
    """A TCP proxy to a unix socket that holds every chunk of replies for
    `delay` s: a client that waits for each reply pays it per call, one
    that pipelines pays it per window."""

    def __init__(self, target, delay):
        self.target, self.delay = target, delay
        self.lsock = socket.socket()
        self.lsock.bind(('127.0.0.1', 0))
        self.lsock.listen(16)
        self.url = 'redis://127.0.0.1:%d' % self.lsock.getsockname()[1]
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.open:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX)
            u.connect(self.target)
            threading.Thread(target=self._pump, args=(c, u, 0), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, self.delay), daemon=True).start()

    def _pump(self, src, dst, delay):
        try:
            while True:
                b = src.recv(1 << 16)
                if not b:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(b)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.open = False
        self.lsock.close()


def test_batch_of_explicit_ids_during_the_window_is_pipelined(env):
    """MED (performance; fixed). During the legacy window every --batch
    line that carries its own id and routes to partition >= 1 cost a
    synchronous known.lua round trip: over a network, a round trip per
    line (1 ms: ~1,300 jobs/s). Now the window's questions are pipelined:
    with every reply held 20 ms, 300 such lines take a few round trips,
    not 300 (6 s)."""
    env.write_registry([env.tenant('p')])
    w = env.worker('--concurrency', '2')
    old = env.enqueue('p', 'record', {})
    wait_done(env, 'p', [old], 1)
    partition(env, w)
    stop(w)
    check(env.redis.call('HGET', 'lw:{p}:settings', 'legacy_until') is not None, 'no legacy window')
    n = 300
    text = ''.join(json.dumps({'kind': 'noop', 'id': 'id-%d' % i}) + '\n' for i in range(n))
    px = SlowReplies(env.redis.sock, 0.02)
    try:
        t0 = time.monotonic()
        rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'p', '--redis', px.url, input=text,
                               timeout=120, redis=False)
        took = time.monotonic() - t0
    finally:
        px.close()
    check(rc == 0 and len(out.split()) == n, 'batch: %d %r' % (rc, err[-300:]))
    asked = sum(1 for i in range(n) if part_of('id-%d' % i) != 0)
    print('batch of %d explicit ids (%d asked) with 20 ms replies: %.2f s' % (n, asked, took), flush=True)
    check(took < asked * 0.02 / 3, 'the batch took %.2f s: about a round trip per asked line (%d)' % (took, asked))


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
    lwtest.run([test_spool_enqueue_known_refused_is_not_accepted_but_runs,
                test_batch_of_explicit_ids_during_the_window_is_pipelined,
                test_batch_oom_after_a_known_answer_leaks,
                test_count_applied_by_a_worker_of_the_previous_release,
                test_spool_scan_log_counts_jobs_taken_by_known,
                ])

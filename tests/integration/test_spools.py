"""Spools (CONTRACT section 8): pending job directories scanned at start, on
SIGHUP, when Redis comes back and every --spool-rescan, new entries picked up
at once while running (inotify), each pending job enqueued and run once
however many workers watch the spool, job.json moved through processing -> done/failed by
write-temp-and-rename, `done` never run again, bad entries skipped with one
log line each and left untouched."""
import collections
import json
import os
import signal
import time

import lwtest
from lwtest import check, wait_until


def write_job(spool, jid, status='queued', **fields):
    d = os.path.join(spool, jid)
    os.makedirs(d, exist_ok=True)
    doc = {'job_id': jid, 'status': status}
    doc.update(fields)
    with open(os.path.join(d, 'job.json'), 'w') as f:
        json.dump(doc, f)


def read_job(spool, jid):
    with open(os.path.join(spool, jid, 'job.json')) as f:
        return json.load(f)


def spool_tenant(env, spool, **extra):
    return env.tenant('t1', spools={'record': spool, 'fail': os.path.join(env.dir, 'fails')}, **extra)


def starts_by_job(env):
    return collections.Counter(jid for what, _ms, jid, _l, _p in env.records() if what == 'START')


def start_together(env, n, *args):
    """n workers started as close to the same instant as Python can."""
    return [env.worker('--concurrency', '4', *args) for _ in range(n)]


def test_300_spooled_jobs_4_workers_exactly_once(env):
    spool = os.path.join(env.dir, 'spool')
    ids = ['job-%03d' % i for i in range(300)]
    for i, jid in enumerate(ids):
        # Half of them 'processing': a worker died while running them.
        write_job(spool, jid, status='processing' if i % 2 else 'queued',
                  payload={'ms': 1}, lane='l%d' % (i % 7))
    env.write_registry([spool_tenant(env, spool)])
    workers = start_together(env, 4)
    wait_until(lambda: all(read_job(spool, j)['status'] == 'done' for j in ids), timeout=60,
               what='every job.json to say done')
    env.wait_all('t1', ids)
    starts = starts_by_job(env)
    check(all(starts[j] == 1 for j in ids),
          'jobs not run exactly once: %s' % [(j, starts[j]) for j in ids if starts[j] != 1][:10])
    queued = [e for e in env.events('t1') if e['type'] == 'job.queued']
    check(len(queued) == 300, '%d job.queued events for 300 spooled jobs' % len(queued))
    for w in workers:
        w.signal(signal.SIGTERM)
        check(w.wait(30) == 0, 'worker exit')
    # No temp files left behind by the rename protocol.
    leftovers = [n for j in ids for n in os.listdir(os.path.join(spool, j)) if n != 'job.json']
    check(not leftovers, 'files left in job dirs: %s' % leftovers[:5])


def test_8_workers_at_once_enqueue_each_job_once(env):
    spool = os.path.join(env.dir, 'spool')
    ids = ['j%d' % i for i in range(50)]
    for jid in ids:
        write_job(spool, jid, payload={'ms': 1})
    env.write_registry([spool_tenant(env, spool)])
    workers = start_together(env, 8, '--burst')
    for w in workers:
        check(w.wait(60) == 0, 'burst worker exit')
    env.wait_all('t1', ids)
    starts = starts_by_job(env)
    check(all(starts[j] == 1 for j in ids), 'a job ran twice: %s' % dict(starts))
    check(sum(1 for e in env.events('t1') if e['type'] == 'job.queued') == 50, 'job.queued events')


def test_done_is_not_run_again(env):
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    # A job already done on disk: the scan does not enqueue it.
    write_job(spool, 'old', status='done', payload={'ms': 1})
    # A job the worker finished (file says done) but died before telling
    # Redis: Redis still has it queued. It must be recorded, not re-run.
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'record', '--payload', '{"ms":1}',
                           '--spool', spool, '--id', 'died')
    check(rc == 0 and out.strip() == 'died', 'enqueue --spool: %d %s' % (rc, err))
    doc = read_job(spool, 'died')
    doc['status'] = 'done'
    with open(os.path.join(spool, 'died', 'job.json'), 'w') as f:
        json.dump(doc, f)
    write_job(spool, 'fresh', payload={'ms': 1})
    w = env.worker('--burst')
    check(w.wait(30) == 0, 'burst worker exit')
    env.wait_all('t1', ['died', 'fresh'])
    starts = starts_by_job(env)
    check(starts['died'] == 0 and starts['old'] == 0 and starts['fresh'] == 1, 'runs: %s' % dict(starts))
    rc, out, _ = env.cli('status', '--tenant', 't1', 'old')
    check(rc == 4, 'a done spool job was enqueued: %s' % out)


def test_failed_job_json_records_error(env):
    spool = os.path.join(env.dir, 'spool')
    fails = os.path.join(env.dir, 'fails')
    os.makedirs(spool)
    write_job(fails, 'f1', payload={'error': 'bad scan'})
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker('--burst')
    check(w.wait(30) == 0, 'burst worker exit')
    env.wait_all('t1', ['f1'], statuses=('failed',))
    doc = read_job(fails, 'f1')
    check(doc['status'] == 'failed' and 'bad scan' in doc.get('error', ''), 'job.json: %s' % doc)
    check(doc['payload'] == {'error': 'bad scan'}, 'other fields kept: %s' % doc)


def test_bad_entries_skipped_and_untouched(env):
    spool = os.path.join(env.dir, 'spool')
    outside = os.path.join(env.dir, 'outside')
    os.makedirs(spool)
    write_job(outside, 'evil', payload={'ms': 1})
    os.symlink(os.path.join(outside, 'evil'), os.path.join(spool, 'evil'))
    write_job(spool, 'bad name', payload={'ms': 1})
    write_job(spool, 'ok1', payload={'ms': 1})
    os.makedirs(os.path.join(spool, 'garbage'))
    with open(os.path.join(spool, 'garbage', 'job.json'), 'w') as f:
        f.write('{"job_id": "garbage", "status": ')
    write_job(spool, 'mismatch', payload={'ms': 1})
    doc = read_job(spool, 'mismatch')
    doc['job_id'] = 'other'
    with open(os.path.join(spool, 'mismatch', 'job.json'), 'w') as f:
        json.dump(doc, f)
    write_job(spool, 'weird', status='exploded')
    os.makedirs(os.path.join(spool, 'nojson'))
    # Stray files (not directories) and a half-built .tmp- directory.
    with open(os.path.join(spool, 'README'), 'w') as f:
        f.write('not a job\n')
    write_job(spool, '.tmp-ok2', payload={'ms': 1})

    def snapshot():
        out = {}
        for root, dirs, files in os.walk(spool, followlinks=False):
            for n in files:
                p = os.path.join(root, n)
                with open(p, 'rb') as f:
                    out[p] = f.read()
        for root, dirs, files in os.walk(outside):
            for n in files:
                p = os.path.join(root, n)
                with open(p, 'rb') as f:
                    out[p] = f.read()
        return out

    env.write_registry([spool_tenant(env, spool)])
    before = snapshot()
    w = env.worker('--burst')
    check(w.wait(30) == 0, 'burst worker exit: %s' % w.log())
    env.wait_all('t1', ['ok1'])
    after = snapshot()
    changed = [p for p in before if before[p] != after.get(p) and '/ok1/' not in p]
    check(not changed, 'bad entries were modified: %s' % changed)
    starts = starts_by_job(env)
    check(set(starts) == {'ok1'}, 'only ok1 may run: %s' % dict(starts))
    log = w.log()
    for name in ('evil', 'bad name', 'garbage', 'mismatch', 'weird', 'nojson'):
        lines = [l for l in log.splitlines() if 'spool.skip' in l and name in l]
        check(len(lines) == 1, 'entry %r: %d skip lines in the log:\n%s' % (name, len(lines), log[-3000:]))


def build_job(env, jid, **fields):
    """A complete job directory outside the spool, to be renamed in."""
    stage = os.path.join(env.dir, 'stage')
    write_job(stage, jid, **fields)
    return os.path.join(stage, jid)


def scanned(w):
    return lambda: '(kind record)' in w.log()


def test_renamed_dir_runs_at_once(env):
    """A job directory renamed into the spool of a running worker runs
    within about a second (inotify), not at the next restart or SIGHUP."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker()
    wait_until(scanned(w), what="the start-up scan of the worker's spool")
    src = build_job(env, 'moved', payload={'ms': 1})
    t0 = time.monotonic()
    os.rename(src, os.path.join(spool, 'moved'))
    wait_until(lambda: read_job(spool, 'moved')['status'] == 'done', timeout=3,
               what='the renamed job to run within ~1 s')
    print('renamed job done %.0f ms after the rename' % ((time.monotonic() - t0) * 1000))
    env.wait_all('t1', ['moved'], timeout=5)
    check(starts_by_job(env)['moved'] == 1, 'runs: %s' % dict(starts_by_job(env)))
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def test_dir_written_in_place_runs_once_its_file_is(env):
    """A job directory made in the spool before its job.json: the worker
    watches the directory and runs the job once job.json is written."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker()
    wait_until(scanned(w), what='the start-up scan')
    os.makedirs(os.path.join(spool, 'slow'))
    time.sleep(0.3)
    check(starts_by_job(env)['slow'] == 0, 'a job ran without its job.json')
    # Written in place (not renamed): IN_CLOSE_WRITE on the directory.
    with open(os.path.join(spool, 'slow', 'job.json'), 'w') as f:
        json.dump({'job_id': 'slow', 'status': 'queued', 'payload': {'ms': 1}}, f)
    wait_until(lambda: read_job(spool, 'slow')['status'] == 'done', timeout=3, what='slow job.json done')
    check('spool.skip' not in w.log(), 'the directory without job.json yet was reported:\n%s' % w.log())
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def test_enqueue_spool_while_redis_down_runs_when_it_is_back(env):
    """`enqueue --spool` accepts a job while Redis is down; the running
    worker enqueues it when its Redis comes back, without restart or HUP."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker()
    wait_until(scanned(w), what='the start-up scan')
    env.redis.stop()
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'record', '--payload', '{"ms":1}',
                           '--spool', spool, '--id', 'offline')
    check(rc == 0 and out.strip() == 'offline', 'enqueue --spool with Redis down: %d %s' % (rc, err))
    time.sleep(0.5)
    env.redis.start()
    env.wait_all('t1', ['offline'], timeout=15)
    check(read_job(spool, 'offline')['status'] == 'done', 'job.json: %s' % read_job(spool, 'offline'))
    check(starts_by_job(env)['offline'] == 1, 'runs: %s' % dict(starts_by_job(env)))
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def test_two_workers_50_dirs_renamed_in_each_runs_once(env):
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    workers = start_together(env, 2)
    for w in workers:
        wait_until(scanned(w), what='the start-up scans')
    ids = ['live-%02d' % i for i in range(50)]
    srcs = [build_job(env, jid, payload={'ms': 1}, lane='l%d' % (i % 5)) for i, jid in enumerate(ids)]
    for jid, src in zip(ids, srcs):
        os.rename(src, os.path.join(spool, jid))
    wait_until(lambda: all(read_job(spool, j)['status'] == 'done' for j in ids), timeout=20,
               what='every live job.json to say done')
    env.wait_all('t1', ids)
    _counts, execs, dups = env.figures('two workers, 50 renamed in', 't1', ids)
    check(dups == 0 and all(execs[j] == 1 for j in ids), 'executions: %s' % execs)
    queued = [e for e in env.events('t1') if e['type'] == 'job.queued']
    check(len(queued) == 50, '%d job.queued events for 50 spooled jobs' % len(queued))
    for w in workers:
        w.signal(signal.SIGTERM)
        check(w.wait(30) == 0, 'worker exit')


def test_rescan_finds_what_inotify_cannot_see(env):
    """A spool created after start cannot be watched: the periodic rescan
    (--spool-rescan) finds its jobs, and the bad entry in it is reported
    once however many rescans see it."""
    spool = os.path.join(env.dir, 'spool')
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker('--spool-rescan', '0.3')
    wait_until(lambda: 'cannot watch it' in w.log(), what='the warning about the missing spool')
    wait_until(scanned(w), what='the start-up scan')
    stage = os.path.join(env.dir, 'stage-spool')
    write_job(stage, 'late', payload={'ms': 1})
    os.makedirs(os.path.join(stage, 'broken'))
    with open(os.path.join(stage, 'broken', 'job.json'), 'w') as f:
        f.write('{"job_id": ')
    os.rename(stage, spool)
    env.wait_all('t1', ['late'], timeout=10)
    time.sleep(1.5)  # a few more rescans
    log = w.log()
    lines = [l for l in log.splitlines() if 'spool.skip' in l and 'broken' in l]
    check(len(lines) == 1, '%d skip lines for the broken entry:\n%s' % (len(lines), log[-3000:]))
    missing = [l for l in log.splitlines() if 'cannot read the spool' in l and spool + ':' in l]
    check(len(missing) <= 1, 'the missing spool reported %d times' % len(missing))
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def unwatched_spool_job(env, jid):
    """A worker without the periodic rescan whose spool is made after start
    (so inotify cannot see it), and job `jid` written there, not yet seen.
    Returns (spool, worker)."""
    spool = os.path.join(env.dir, 'spool')
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker('--spool-rescan', '0')
    wait_until(lambda: 'cannot watch it' in w.log(), what='the warning about the missing spool')
    wait_until(scanned(w), what='the start-up scan')
    write_job(spool, jid, payload={'ms': 1})
    time.sleep(0.5)
    check(starts_by_job(env)[jid] == 0, 'the unwatched spool was read without a rescan')
    return spool, w


def test_redis_back_rescans(env):
    """A tenant's Redis coming back rescans its spools: a job inotify could
    not see (its spool made after start) and no periodic rescan would find
    (--spool-rescan 0) is enqueued when Redis returns."""
    spool, w = unwatched_spool_job(env, 'unseen')
    env.redis.stop()
    time.sleep(0.5)
    env.redis.start()
    env.wait_all('t1', ['unseen'], timeout=15)
    check(read_job(spool, 'unseen')['status'] == 'done', 'job.json: %s' % read_job(spool, 'unseen'))
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def test_cancelled_while_waiting_is_settled_not_rerun(env):
    """The options of `enqueue --spool` hold whoever enqueues first. A spooled
    job cancelled (or expired) while it waited was never touched
    by an attempt, so its file still says queued; a rescan marks it with the
    job's end, so that once the record's retention is over no rescan
    enqueues it anew and runs a cancelled job."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker()
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'record', '--payload', '{"ms": 1}',
                           '--spool', spool, '--delay', '600')
    jid = out.strip()
    check(rc == 0 and jid, 'enqueue --spool: %d %r' % (rc, err))
    # The watcher may enqueue the entry before the CLI does: the file carries
    # the CLI's options, so the job is the same either way.
    s = env.status('t1', jid)
    check(s['status'] == 'scheduled', 'the spooled job lost its --delay: %s' % s)
    check(read_job(spool, jid).get('delay') == 600, 'job.json: %s' % read_job(spool, jid))
    rc, _out, err = env.cli('cancel', '--tenant', 't1', jid)
    check(rc == 0, 'cancel: %r' % err)
    w.signal(signal.SIGHUP)
    wait_until(lambda: read_job(spool, jid)['status'] == 'failed', timeout=5, what='the entry to be settled')
    check(read_job(spool, jid).get('error') == 'cancelled', 'job.json: %s' % read_job(spool, jid))
    # The record's retention ends; rescans must not bring the job back.
    env.redis.call('DEL', 'lw:{t1}:job:' + jid)
    w.signal(signal.SIGHUP)
    time.sleep(1.0)
    check(env.redis.call('EXISTS', 'lw:{t1}:job:' + jid) == 0 and starts_by_job(env)[jid] == 0,
          'a cancelled spooled job was enqueued again')
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def test_entry_whose_unique_key_is_held_is_settled(env):
    """An entry written straight into a spool (no CLI) whose unique key is
    held by another job is deduplicated: its file says so (failed, naming
    the holder), and no rescan runs it once the key is free."""
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    holder = env.enqueue('t1', 'record', {'ms': 1}, unique='K', delay=600)
    w = env.worker()
    write_job(spool, 'dup', payload={'ms': 1}, unique='K')
    wait_until(lambda: read_job(spool, 'dup')['status'] == 'failed', timeout=5, what='the entry to be settled')
    check(read_job(spool, 'dup').get('error') == 'not enqueued: its unique key is held by job %s' % holder,
          'job.json: %s' % read_job(spool, 'dup'))
    env.cli('cancel', '--tenant', 't1', holder)
    w.signal(signal.SIGHUP)
    time.sleep(1.0)
    check(env.redis.call('EXISTS', 'lw:{t1}:job:dup') == 0, 'the deduplicated entry ran once the key was free')
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def test_sighup_rescans(env):
    """Without the rescan (--spool-rescan 0) a spool made after start is
    only seen on SIGHUP, which also watches it from then on."""
    spool, w = unwatched_spool_job(env, 'late')
    w.signal(signal.SIGHUP)
    env.wait_all('t1', ['late'], timeout=20)
    wait_until(lambda: read_job(spool, 'late')['status'] == 'done', what='late job.json done')
    os.rename(build_job(env, 'later', payload={'ms': 1}), os.path.join(spool, 'later'))
    env.wait_all('t1', ['later'], timeout=5)
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


def live_200(env, isolation):
    spool = os.path.join(env.dir, 'spool')
    ids = ['j%03d' % i for i in range(200)]
    for jid in ids[:100]:
        write_job(spool, jid, payload={'ms': 1}, lane=jid[-1])
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker('--isolation', isolation, '--concurrency', '8')
    for jid in ids[100:]:
        os.rename(build_job(env, jid, payload={'ms': 1}, lane=jid[-1]), os.path.join(spool, jid))
    wait_until(lambda: all(read_job(spool, j)['status'] == 'done' for j in ids), timeout=60,
               what='every job.json to say done')
    env.wait_all('t1', ids)
    starts = starts_by_job(env)
    check(all(starts[j] == 1 for j in ids), 'not run once: %s' % [(j, starts[j]) for j in ids if starts[j] != 1][:10])
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')
    leftovers = [n for j in ids for n in os.listdir(os.path.join(spool, j)) if n != 'job.json']
    check(not leftovers, 'files left in job dirs: %s' % leftovers[:5])


def test_200_spooled_jobs_fork_isolation(env):
    live_200(env, 'fork')


def test_200_spooled_jobs_thread_isolation(env):
    live_200(env, 'thread')


def test_example_upload_on_spooled_jobs(env):
    spool = os.path.join(env.dir, 'uploads')
    os.makedirs(spool)
    env.write_registry([{'tenant': 'acme', 'module': lwtest.EXAMPLE_MODULE, 'spools': {'upload': spool}}])
    tmp = os.path.join(spool, '.tmp-up1')
    os.makedirs(tmp)
    with open(os.path.join(tmp, 'grades.csv'), 'w') as f:
        f.write('ann,90\n')
    with open(os.path.join(tmp, 'job.json'), 'w') as f:
        json.dump({'job_id': 'up1', 'status': 'queued', 'payload': {'files': ['grades.csv']}}, f)
    os.rename(tmp, os.path.join(spool, 'up1'))
    write_job(spool, 'up2', payload={'files': ['missing.csv']})
    w = env.worker('--burst')
    check(w.wait(30) == 0, 'burst worker exit')
    s = env.status('acme', 'up1')
    check(s['status'] == 'succeeded' and s['result']['files'][0]['name'] == 'grades.csv'
          and s['result']['total_bytes'] == 7, 'upload result: %s' % s)
    check(read_job(spool, 'up1')['status'] == 'done', 'up1 job.json')
    s2 = env.status('acme', 'up2')
    check(s2['status'] == 'failed' and 'missing.csv' in (s2['error'] or ''), 'up2: %s' % s2)
    check(read_job(spool, 'up2')['status'] == 'failed', 'up2 job.json')


if __name__ == '__main__':
    lwtest.run([test_300_spooled_jobs_4_workers_exactly_once, test_8_workers_at_once_enqueue_each_job_once,
                test_done_is_not_run_again, test_failed_job_json_records_error, test_bad_entries_skipped_and_untouched,
                test_renamed_dir_runs_at_once, test_dir_written_in_place_runs_once_its_file_is,
                test_enqueue_spool_while_redis_down_runs_when_it_is_back,
                test_two_workers_50_dirs_renamed_in_each_runs_once, test_rescan_finds_what_inotify_cannot_see,
                test_redis_back_rescans, test_cancelled_while_waiting_is_settled_not_rerun,
                test_entry_whose_unique_key_is_held_is_settled, test_sighup_rescans, test_200_spooled_jobs_fork_isolation, test_200_spooled_jobs_thread_isolation,
                test_example_upload_on_spooled_jobs])

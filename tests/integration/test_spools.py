"""Spools (CONTRACT section 8): pending job directories scanned at start and
on SIGHUP, each pending job enqueued and run once however many workers start
together, job.json moved through processing -> done/failed by
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


def test_sighup_rescans(env):
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([spool_tenant(env, spool)])
    w = env.worker()
    # The start-up scan must be over before the job appears.
    wait_until(lambda: '(kind record)' in w.log(), what="the start-up scan of the worker's spool")
    write_job(spool, 'late', payload={'ms': 1})
    time.sleep(0.3)
    check(starts_by_job(env)['late'] == 0, 'a running worker must not pick up spool files before SIGHUP')
    w.signal(signal.SIGHUP)
    env.wait_all('t1', ['late'], timeout=20)
    wait_until(lambda: read_job(spool, 'late')['status'] == 'done', what='late job.json done')
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')


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
                test_sighup_rescans, test_example_upload_on_spooled_jobs])

"""Unique keys (CONTRACT 4.5, issue 9 item 3): a key is held while its job
waits or runs and is free once it finished, unless --unique-for holds it
longer after the enqueue; an enqueue that returns an existing job says so on
stderr and exits 0; --batch says it per line. (Before: a finished job's key
was held for its whole retention, a failed job's for 7 days, silently.)"""
import json
import signal
import time

from lwtest import check, run, wait_until


def enq(env, *args, payload='{}'):
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--payload', payload, *args)
    return rc, out.strip(), err


def test_key_is_free_once_the_job_finished(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    # Waiting: the key is held, and the second enqueue says by whom.
    rc, a, err = enq(env, '--kind', 'fail', '--unique', 'mail:1')
    check(rc == 0 and err == '', 'first enqueue: %d %r' % (rc, err))
    rc, b, err = enq(env, '--kind', 'fail', '--unique', 'mail:1')
    check(rc == 0 and b == a, 'a held key returned another job: %s %s' % (a, b))
    check(err == 'lanework: enqueue: mail:1 is held by job %s (queued)\n' % a, 'stderr: %r' % err)
    rc, c, err = enq(env, '--kind', 'noop', '--id', a)
    check(rc == 0 and c == a and err == 'lanework: enqueue: job %s exists (queued)\n' % a, 'id: %r' % err)
    w = env.worker('--concurrency', '2')
    env.wait_all('t1', [a], statuses=('failed',))
    # Failed: the key is free (it used to stay held for the 7 days of retention).
    rc, d, err = enq(env, '--kind', 'noop', '--unique', 'mail:1')
    check(rc == 0 and d != a and err == '', 'a failed job still holds its key: %s %s %r' % (a, d, err))
    env.wait_all('t1', [d])
    rc, e, err = enq(env, '--kind', 'noop', '--unique', 'mail:1')
    check(rc == 0 and e not in (a, d) and err == '', 'a succeeded job still holds its key: %r' % err)
    env.wait_all('t1', [e])
    # Retrying the failed job would make two jobs hold one key once the
    # key is taken again: refused, naming the holder.
    rc, f, _ = enq(env, '--kind', 'sleep', '--unique', 'mail:1', payload='{"ms": 3000}')
    rc, _out, err = env.cli('retry', '--tenant', 't1', a)
    check(rc == 2 and 'held by job %s' % f in err, 'retry of a job whose key is held: %d %r' % (rc, err))
    rc, out, err = env.cli('retry', '--tenant', 't1', '--all-failed')
    check(rc == 0 and out == '' and 'held by job %s' % f in err, '--all-failed: %d %r %r' % (rc, out, err))
    env.wait_all('t1', [f])
    rc, out, err = env.cli('retry', '--tenant', 't1', a)
    check(rc == 0 and out.strip() == a, 'retry once the key is free: %d %r' % (rc, err))
    env.wait_all('t1', [a], statuses=('failed',))
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck after unique keys came and went: %d %s %s' % (rc, out, err))
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_unique_for_holds_the_key_after_the_finish(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    w = env.worker('--concurrency', '2', '--keep-succeeded', '1')
    t0 = time.monotonic()
    rc, a, err = enq(env, '--kind', 'noop', '--unique', 'debounce', '--unique-for', '3')
    check(rc == 0, 'enqueue: %r' % err)
    env.wait_all('t1', [a])
    rc, b, err = enq(env, '--kind', 'noop', '--unique', 'debounce', '--unique-for', '3')
    check(b == a and err == 'lanework: enqueue: debounce is held by job %s (succeeded)\n' % a,
          'a debounced key was not held after the finish: %s %s %r' % (a, b, err))
    # The record outlives --keep-succeeded 1 while the key names it.
    time.sleep(max(0, t0 + 2.0 - time.monotonic()))
    check(env.redis.call('EXISTS', 'lw:{t1}:job:' + a) == 1, 'the record went before the key it backs')
    wait_until(lambda: env.redis.call('EXISTS', 'lw:{t1}:unique:debounce') == 0, timeout=5,
               what='the debounce to end')
    check(time.monotonic() - t0 >= 2.5, 'the key was freed before --unique-for ran out')
    rc, c, err = enq(env, '--kind', 'noop', '--unique', 'debounce')
    check(rc == 0 and c != a and err == '', 'the key is free after --unique-for: %s %r' % (c, err))
    rc, _out, err = enq(env, '--kind', 'noop', '--unique-for', '3')
    check(rc == 2 and 'needs a unique key' in err, '--unique-for without --unique: %d %r' % (rc, err))
    w.signal(signal.SIGTERM)
    w.wait()


def test_batch_reports_existing_jobs_per_line(env):
    env.write_registry([env.tenant('t1')])
    lines = [{'kind': 'noop', 'unique': 'k1', 'unique_for': 60},
             {'kind': 'noop', 'unique': 'k1'},
             {'kind': 'noop', 'id': 'fixed'},
             {'kind': 'noop', 'id': 'fixed'}]
    text = ''.join(json.dumps(l) + '\n' for l in lines)
    rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 't1', input=text)
    ids = out.split()
    check(rc == 0 and len(ids) == 4, 'batch: %d %r %r' % (rc, out, err))
    check(ids[0] == ids[1] and ids[2] == ids[3] == 'fixed', 'ids: %s' % ids)
    check(err == 'lanework: batch line 2: its unique key is held by job %s (queued)\n'
                 'lanework: batch line 4: job fixed exists (queued)\n' % ids[0], 'stderr: %r' % err)
    until = env.redis.call('HGET', 'lw:{t1}:job:' + ids[0], 'unique_until')
    check(until is not None, 'unique_for from a batch line was not kept')
    rc, _out, err = env.cli('enqueue', '--batch', '-', '--tenant', 't1',
                            input='{"kind": "noop", "unique_for": -1, "unique": "x"}\n')
    check(rc == 2 and 'unique_for: must be a number of seconds >= 0' in err, 'bad unique_for: %r' % err)


if __name__ == '__main__':
    run([test_key_is_free_once_the_job_finished, test_unique_for_holds_the_key_after_the_finish,
         test_batch_reports_existing_jobs_per_line])

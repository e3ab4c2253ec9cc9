"""Admin commands of CONTRACT section 13 on real workers: `lanework
delete` (delete.lua) and `lanework list`. Each change is checked with
fsck afterwards."""
import json
import signal
import time

import lwtest
from lwtest import check, wait_until
from test_partitions import part_of, partitioned_worker, wait_done, where


def cli_ok(env, *args):
    rc, out, err = env.cli(*args)
    check(rc == 0, '%s: %d %r' % (' '.join(args), rc, err))
    return out, err


def fsck_clean(env, tenant='t1'):
    rc, out, err = env.cli('fsck', '--tenant', tenant)
    check(rc == 0, 'fsck after the change: %d\n%s' % (rc, out[-800:]))


def stop(w):
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_delete_finished_jobs(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '2')
    ok = env.enqueue('t1', 'record', {})
    bad = env.enqueue('t1', 'fail', {}, attempts=1)
    wait_done(env, 't1', [ok, bad], 1)
    out, err = cli_ok(env, 'delete', '--tenant', 't1', ok, bad)
    check(out.split('\n')[:2] == ['deleted ' + ok, 'deleted ' + bad], 'output: %r' % out)
    check(env.redis.call('EXISTS', 'lw:{t1}:job:' + ok, 'lw:{t1}:job:' + bad) == 0, 'records left')
    check(env.redis.call('ZSCORE', 'lw:{t1}:failed', bad) is None, 'the failed index keeps %s' % bad)
    stats = json.loads(cli_ok(env, 'stats', '--tenant', 't1', '--json')[0])['tenants']['t1']
    check(stats['failed_kept'] == 0 and stats['queues']['default']['succeeded'] == 1,
          'stats after delete: %s' % stats)
    ev = [e for e in env.events('t1') if e['type'] == 'job.deleted']
    check([(e['job'], e['data']) for e in ev] == [(ok, 'succeeded'), (bad, 'failed')], 'events: %s' % ev)
    rc, out, err = env.cli('delete', '--tenant', 't1', ok)
    check(rc == 4 and 'no such job' in err, 'second delete: %d %r' % (rc, err))
    stop(w)
    fsck_clean(env)


def test_delete_waiting_jobs_of_a_lane(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '4')
    first = env.enqueue('t1', 'record', {'ms': 800}, lane='L')
    wait_until(lambda: env.status('t1', first)['status'] == 'active', timeout=5, what='the head to start')
    behind = [env.enqueue('t1', 'record', {}, lane='L') for _ in range(3)]
    head = env.enqueue('t1', 'record', {}, lane='M', delay=600)
    later = env.enqueue('t1', 'record', {}, lane='M')
    out, err = cli_ok(env, 'delete', '--tenant', 't1', behind[1], head)
    check(out.split() == ['deleted', behind[1], 'deleted', head], 'output: %r' % out)
    check(env.redis.call('LRANGE', 'lw:{t1}:lane:L', '0', '-1') == [first, behind[0], behind[2]],
          'lane L: %s' % env.redis.call('LRANGE', 'lw:{t1}:lane:L', '0', '-1'))
    check(env.redis.call('ZSCORE', 'lw:{t1}:schedule', head) is None, 'the schedule keeps %s' % head)
    # The scheduled head of M is gone: the job behind it heads M and runs now.
    wait_done(env, 't1', [first, behind[0], behind[2], later], 1, timeout=10)
    runs = env.runs()
    check(not runs.get(behind[1]) and not runs.get(head), 'deleted jobs ran: %s' % runs)
    order = sorted([first, behind[0], behind[2]], key=lambda j: runs[j][0][1])
    check(order == [first, behind[0], behind[2]], 'lane L out of order: %s' % order)
    stats = json.loads(cli_ok(env, 'stats', '--tenant', 't1', '--json')[0])['tenants']['t1']
    check(stats['queues']['default']['queued'] == 0 and stats['queues']['default']['scheduled'] == 0,
          'counters after delete: %s' % stats)
    stop(w)
    fsck_clean(env)


def test_delete_refuses_a_running_job(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '2')
    run = env.enqueue('t1', 'record', {'ms': 1000})
    wait_until(lambda: env.status('t1', run)['status'] == 'active', timeout=5, what='the job to start')
    gone = env.enqueue('t1', 'record', {}, delay=600)
    rc, out, err = env.cli('delete', '--tenant', 't1', 'nope-1', run, gone)
    check(rc == 4 and out.split() == ['deleted', gone], 'mixed delete: %d %r %r' % (rc, out, err))
    lines = err.strip().splitlines()
    check(len(lines) == 2 and 'no such job nope-1' in lines[0] and 'cancel it first' in lines[1],
          'stderr: %r' % err)
    wait_done(env, 't1', [run], 1)
    check(env.status('t1', run)['status'] == 'succeeded', 'the running job: %s' % env.status('t1', run))
    stop(w)
    fsck_clean(env)


def test_delete_frees_the_unique_key(env):
    env.write_registry([env.tenant('t1')])
    a = env.enqueue('t1', 'record', {}, unique='k1', delay=600)
    again = env.enqueue('t1', 'record', {}, unique='k1')
    check(again == a, 'the key was not held: %s %s' % (a, again))
    cli_ok(env, 'delete', '--tenant', 't1', a)
    b = env.enqueue('t1', 'record', {}, unique='k1')
    check(b != a, 'the key is still held after the delete')
    fsck_clean(env)


def test_delete_across_partitions(env):
    k = 4
    w = partitioned_worker(env, k, '--concurrency', '4')
    lanes = ['L%d' % i for i in range(8)]
    ids = [env.enqueue('p', 'record', {}, lane=l, delay=600) for l in lanes]
    check(len({part_of(l, k) for l in lanes}) > 1, 'one partition only')
    out, err = cli_ok(env, 'delete', '--tenant', 'p', *ids)
    check(sorted(out.split()[1::2]) == sorted(ids), 'output: %r' % out)
    check(all(where(env, 'p', j, k) == [] for j in ids), 'records left')
    stop(w)
    fsck_clean(env, 'p')


def listed(env, *args, tenant='t1'):
    out, err = cli_ok(env, 'list', '--tenant', tenant, *args)
    return [json.loads(l) for l in out.splitlines()]


def test_list_by_status_queue_and_lane_newest_first(env):
    env.write_registry([env.tenant('t1', queues={'default': {}, 'bulk': {}})])
    w = env.worker('--concurrency', '4', '--queue', 'default', '--queue', 'bulk')
    done = []
    for i in range(3):
        done.append(env.enqueue('t1', 'record', {}, lane='A'))
        wait_done(env, 't1', [done[-1]], 1)
        time.sleep(0.01)
    failed = []
    for i in range(2):
        failed.append(env.enqueue('t1', 'fail', {}, attempts=1, queue='bulk'))
        wait_done(env, 't1', [failed[-1]], 1)
        time.sleep(0.01)
    running = env.enqueue('t1', 'record', {'ms': 3000}, lane='A')
    wait_until(lambda: env.status('t1', running)['status'] == 'active', timeout=5, what='the job to start')
    behind = env.enqueue('t1', 'record', {}, lane='A')
    later = [env.enqueue('t1', 'record', {}, delay=600) for _ in range(2)]
    everything = listed(env)
    check([j['id'] for j in everything][:3] == [later[1], later[0], behind],
          'newest first: %s' % [(j['id'], j['status']) for j in everything])
    check({j['id'] for j in everything} == set(done + failed + [running, behind] + later),
          'list without a filter: %s' % [j['id'] for j in everything])
    f = listed(env, '--status', 'failed')
    check([j['id'] for j in f] == failed[::-1] and all(j['error'] for j in f), 'failed: %s' % f)
    check([j['id'] for j in listed(env, '--status', 'active')] == [running], 'active')
    check({j['id'] for j in listed(env, '--status', 'scheduled')} == set(later), 'scheduled')
    check([j['id'] for j in listed(env, '--status', 'queued')] == [behind], 'queued')
    check({j['id'] for j in listed(env, '--queue', 'bulk')} == set(failed), 'queue bulk')
    check([j['id'] for j in listed(env, '--lane', 'A')] == [behind, running], 'lane A (unfinished)')
    check(len(listed(env, '--limit', '2')) == 2, '--limit 2')
    check(listed(env, '--status', 'cancelled') == [], 'cancelled: none')
    stop(w)


def test_list_across_partitions(env):
    k = 4
    w = partitioned_worker(env, k, '--concurrency', '4')
    ids = []
    for i in range(8):
        ids.append(env.enqueue('p', 'fail', {}, lane='L%d' % i, attempts=1))
        wait_done(env, 'p', [ids[-1]], k)
        time.sleep(0.01)
    check(len({part_of('L%d' % i, k) for i in range(8)}) > 1, 'one partition only')
    got = [j['id'] for j in listed(env, '--status', 'failed', tenant='p')]
    check(got == ids[::-1], 'failed across partitions, newest first: %s' % got)
    check([j['id'] for j in listed(env, '--status', 'failed', '--limit', '3', tenant='p')] == ids[::-1][:3],
          '--limit across partitions')
    stop(w)


def test_list_bad_input(env):
    env.write_registry([env.tenant('t1')])
    for args, want in ((['--status', 'done'], 'not a status'),
                       (['--limit', '0'], '--limit'),
                       (['--limit', '10001'], '--limit'),
                       (['--lane', 'a b'], 'not a safe name'),
                       (['--queue', '../q'], 'not a safe name'),
                       (['extra'], 'extra')):
        rc, out, err = env.cli('list', '--tenant', 't1', *args)
        check(rc == 2 and want in err and len(err.strip().splitlines()) == 1 and out == '',
              '%s: %d %r %r' % (args, rc, out, err))
    rc, out, err = env.cli('list', '--tenant', 't1', '--redis', 'redis://127.0.0.1:1', redis=False)
    check(rc == 3 and len(err.strip().splitlines()) == 1, 'Redis away: %d %r' % (rc, err))


def test_purge_by_status_and_queue(env):
    env.write_registry([env.tenant('t1', queues={'default': {}, 'bulk': {}})])
    w = env.worker('--concurrency', '4', '--queue', 'default', '--queue', 'bulk')
    ok = env.enqueue_batch([{'kind': 'record'} for _ in range(30)], tenant='t1')
    bad = env.enqueue_batch([{'kind': 'fail', 'attempts': 1} for _ in range(700)], tenant='t1')
    bulk = env.enqueue_batch([{'kind': 'fail', 'attempts': 1, 'queue': 'bulk'} for _ in range(5)], tenant='t1')
    wait_done(env, 't1', ok + bad + bulk, 1, timeout=60)
    waiting = env.enqueue('t1', 'record', {}, delay=600)
    out, err = cli_ok(env, 'purge', '--tenant', 't1', '--status', 'failed', '--queue', 'default')
    check(out.strip() == '700', 'purge failed in default: %r %r' % (out, err))
    check(env.redis.call('ZCARD', 'lw:{t1}:failed') == 5, 'failed index: %d' % env.redis.call('ZCARD', 'lw:{t1}:failed'))
    out, err = cli_ok(env, 'purge', '--tenant', 't1', '--status', 'succeeded')
    check(out.strip() == '30', 'purge succeeded: %r' % out)
    check(env.redis.call('EXISTS', *['lw:{t1}:job:' + j for j in ok + bad]) == 0, 'records left')
    check(env.status('t1', waiting)['status'] == 'scheduled' and
          all(env.status('t1', j)['status'] == 'failed' for j in bulk), 'purge touched other jobs')
    out, err = cli_ok(env, 'purge', '--tenant', 't1', '--status', 'expired')
    check(out.strip() == '0', 'purge expired: %r' % out)
    stop(w)
    fsck_clean(env)
    for args, want in ((['--status', 'queued'], 'lanework delete'), ([], '--status is required'),
                       (['--status', 'failed', '--queue', 'a b'], 'not a safe name')):
        rc, out, err = env.cli('purge', '--tenant', 't1', *args)
        check(rc == 2 and want in err and len(err.strip().splitlines()) == 1 and out == '',
              'purge %s: %d %r %r' % (args, rc, out, err))


def test_delete_bad_input(env):
    env.write_registry([env.tenant('t1')])
    for args, want in ((['delete', '--tenant', 't1'], 'expected at least one job id'),
                       (['delete', 'x'], '--tenant'),
                       (['delete', '--tenant', 't1', '../x'], '../x')):
        rc, out, err = env.cli(*args)
        check(rc == 2 and want in err and len(err.strip().splitlines()) == 1 and out == '',
              '%s: %d %r %r' % (args, rc, out, err))


if __name__ == '__main__':
    lwtest.run([test_delete_finished_jobs,
                test_delete_waiting_jobs_of_a_lane,
                test_delete_refuses_a_running_job,
                test_delete_frees_the_unique_key,
                test_delete_across_partitions,
                test_delete_bad_input,
                test_purge_by_status_and_queue,
                test_list_by_status_queue_and_lane_newest_first,
                test_list_across_partitions,
                test_list_bad_input])

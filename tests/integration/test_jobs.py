"""Jobs end to end: status shape, events in order, handler outcomes (module and
exec), crash isolation, retries, no handler, isolation modes."""
import json
import os
import stat

from lwtest import check, run, wait_until

STATUS_FIELDS = ['id', 'tenant', 'kind', 'queue', 'lane', 'status', 'payload', 'attempt', 'attempts',
                 'timeout', 'enqueued_at', 'started_at', 'finished_at', 'result', 'error', 'worker']


def test_smoke_status_shape(env):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'echo', {'hello': 'world', 'n': [1, 2]})
    st = env.status('acme', jid)
    check(st['status'] == 'queued', 'new job not queued: %s' % st)
    check(st['lane'] == jid and st['queue'] == 'default', 'default lane/queue wrong: %s' % st)
    check(st['started_at'] is None and st['worker'] is None, 'unstarted job shows a start: %s' % st)
    w = env.worker('--burst')
    check(w.wait() == 0, 'burst worker exit status')
    st = env.status('acme', jid)
    for f in STATUS_FIELDS:
        check(f in st, 'status lacks %s: %s' % (f, st))
    check(st['status'] == 'succeeded', 'job not succeeded: %s' % st)
    check(st['result'] == {'hello': 'world', 'n': [1, 2]}, 'result is not the echoed payload: %s' % st)
    check(st['payload'] == {'hello': 'world', 'n': [1, 2]}, 'payload not a JSON value: %s' % st)
    check(st['attempt'] == 1 and st['attempts'] == 3, 'attempt counters: %s' % st)
    check(st['timeout'] == 30, 'timeout from tenant defaults: %s' % st)
    check(st['worker'] == 'w1', 'worker name: %s' % st)
    for f in ('enqueued_at', 'started_at', 'finished_at'):
        check(isinstance(st[f], str) and st[f].endswith('Z') and len(st[f]) == 24, '%s not RFC 3339 ms: %s' % (f, st[f]))
    check(st['error'] is None, 'error on success: %s' % st)


def test_module_events_in_order(env):
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'events', {})
    env.worker('--burst').wait()
    evs = [e for e in env.events('acme') if e['job'] == jid]
    types = [e['type'] for e in evs]
    check(types == ['job.queued', 'job.started', 'step.created', 'tool.invoked', 'tool.succeeded', 'job.succeeded'],
          'events out of order: %s' % types)
    step = evs[2]
    check(step['data'] == {'step': 1} and step['attempt'] == 1 and step['worker'] == 'w1' and step['kind'] == 'events',
          'handler event fields: %s' % step)
    for e in evs:
        for f in ('id', 'type', 'job', 'kind', 'lane', 'attempt', 'worker', 'ts', 'data'):
            check(f in e, 'event lacks %s: %s' % (f, e))
    # --since gives what follows
    rc, out, err = env.cli('events', '--tenant', 'acme', '--since', evs[2]['id'])
    after = [json.loads(l)['type'] for l in out.splitlines()]
    check(after[:3] == ['tool.invoked', 'tool.succeeded', 'job.succeeded'], '--since: %s' % after)


def test_thread_isolation_events_and_results(env):
    env.write_registry([env.tenant('acme')])
    ids = [env.enqueue('acme', 'events', {}) for _ in range(5)] + [env.enqueue('acme', 'echo', {'i': 1})]
    env.worker('--burst', '--isolation', 'thread', '--concurrency', '4').wait()
    env.wait_all('acme', ids)
    evs = env.events('acme')
    for jid in ids[:5]:
        types = [e['type'] for e in evs if e['job'] == jid]
        check(types[-4:] == ['step.created', 'tool.invoked', 'tool.succeeded', 'job.succeeded'], 'thread events: %s' % types)
    check(env.status('acme', ids[5])['result'] == {'i': 1}, 'thread result')


def test_crash_fails_only_its_job(env):
    env.write_registry([env.tenant('acme', defaults={'attempts': 2, 'timeout': 30, 'backoff': 0})])
    crash = env.enqueue('acme', 'crash', {})
    good = [env.enqueue('acme', 'noop', {}) for _ in range(5)]
    w = env.worker('--burst', '--concurrency', '2')
    check(w.wait(timeout=60) == 0, 'worker survived a crashing handler')
    st = env.status('acme', crash)
    check(st['status'] == 'failed' and st['attempt'] == 2, 'crash job: %s' % st)
    check('signal 11' in st['error'], 'crash error names the signal: %s' % st['error'])
    env.wait_all('acme', good)


def test_retry_then_succeed_and_fail_now(env):
    env.write_registry([env.tenant('acme', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0.05})])
    r = env.enqueue('acme', 'retry', {'succeed_on': 3})
    f = env.enqueue('acme', 'fail', {'error': 'bad input'})
    exhausted = env.enqueue('acme', 'retry', {'succeed_on': 9})
    env.worker('--burst').wait(timeout=60)
    st = env.status('acme', r)
    check(st['status'] == 'succeeded' and st['attempt'] == 3 and st['result'] == {'attempt': 3}, 'retry: %s' % st)
    st = env.status('acme', f)
    check(st['status'] == 'failed' and st['attempt'] == 1 and st['error'] == 'bad input', 'LW_FAIL not final: %s' % st)
    st = env.status('acme', exhausted)
    check(st['status'] == 'failed' and st['attempt'] == 3, 'exhausted retries: %s' % st)
    types = [e['type'] for e in env.events('acme') if e['job'] == r]
    check(types.count('job.retrying') == 2 and types[-1] == 'job.succeeded', 'retry events: %s' % types)


def test_no_handler_not_retried(env):
    env.write_registry([env.tenant('acme')])
    # With the registry the CLI refuses the kind (test_cli); enqueued
    # without one, the worker must fail it.
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'nosuchkind', '--payload', '{}', registry=False)
    check(rc == 0, 'enqueue without a registry: %d %r' % (rc, err))
    jid = out.strip()
    env.worker('--burst').wait()
    st = env.status('acme', jid)
    check(st['status'] == 'failed' and st['attempt'] == 1, 'no handler: %s' % st)
    check(st['error'] == 'no handler for kind nosuchkind', 'message: %r' % st['error'])


def write_script(path, body):
    with open(path, 'w') as f:
        f.write(body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def test_exec_handlers(env):
    ok = os.path.join(env.dir, 'ok.sh')
    write_script(ok, '#!/bin/sh\nread -r p\nprintf \'{"got":%s,"id":"%s","attempt":%s}\' "$p" "$LANEWORK_JOB_ID" "$LANEWORK_ATTEMPT"\n')
    bad = os.path.join(env.dir, 'bad.sh')
    write_script(bad, '#!/bin/sh\necho "no image given" >&2\nexit 65\n')
    flaky = os.path.join(env.dir, 'flaky.sh')
    write_script(flaky, '#!/bin/sh\nif [ "$LANEWORK_ATTEMPT" -lt 2 ]; then echo "try again" >&2; exit 3; fi\necho not-json\n')
    env.write_registry([env.tenant('acme', exec={'ok': [ok], 'bad': [bad], 'flaky': ['/bin/sh', flaky]},
                                   defaults={'attempts': 3, 'timeout': 30, 'backoff': 0})])
    a = env.enqueue('acme', 'ok', {'x': 1})
    b = env.enqueue('acme', 'bad', {})
    c = env.enqueue('acme', 'flaky', {})
    env.worker('--burst').wait(timeout=60)
    st = env.status('acme', a)
    check(st['status'] == 'succeeded' and st['result'] == {'got': {'x': 1}, 'id': a, 'attempt': 1}, 'exec ok: %s' % st)
    st = env.status('acme', b)
    check(st['status'] == 'failed' and st['attempt'] == 1 and 'no image given' in st['error'], 'exit 65: %s' % st)
    st = env.status('acme', c)
    check(st['status'] == 'succeeded' and st['attempt'] == 2 and st['result'] is None, 'retried exec: %s' % st)


def test_json_log_lines_carry_job_fields(env):
    # A log collector selects a job's lines by field, not by parsing "msg".
    env.write_registry([env.tenant('acme')])
    jid = env.enqueue('acme', 'fail', {'error': 'nope'}, lane='L1', queue='chat', attempts=1)
    slow = env.enqueue('acme', 'sleep', {'ms': 5000}, timeout=0.3, attempts=1)
    w = env.worker('--queue', 'default', '--queue', 'chat', '--log-format', 'json', '--log-level', 'debug',
                   '--burst', name='wj')
    check(w.wait(timeout=30) == 0, 'burst worker exit')
    lines = [json.loads(l) for l in w.log().splitlines() if l.startswith('{')]
    mine = [l for l in lines if l.get('job') == jid]
    check(mine, 'no JSON line has "job": %r:\n%s' % (jid, w.log()[-3000:]))
    done = [l for l in mine if l['event'] == 'job.done']
    check(len(done) == 1, 'job.done lines of %s: %s' % (jid, mine))
    want = {'job': jid, 'tenant': 'acme', 'kind': 'fail', 'queue': 'chat', 'lane': 'L1', 'attempt': 1,
            'attempts': 1, 'worker': 'wj'}
    for k, v in want.items():
        check(done[0].get(k) == v, 'job.done field %s is %r, not %r: %s' % (k, done[0].get(k), v, done[0]))
    check(isinstance(done[0].get('duration_s'), (int, float)), 'job.done without a duration_s: %s' % done[0])
    check(jid not in done[0]['msg'] and 'nope' in done[0]['msg'], 'job.done msg: %r' % done[0]['msg'])
    timeout = [l for l in lines if l.get('job') == slow and l['event'] == 'job.timeout']
    check(timeout and timeout[0].get('kind') == 'sleep' and timeout[0].get('lane') == slow
          and timeout[0].get('worker') == 'wj', 'job.timeout line without its fields: %s' % timeout)


if __name__ == '__main__':
    run([test_smoke_status_shape, test_module_events_in_order, test_thread_isolation_events_and_results,
         test_crash_fails_only_its_job, test_retry_then_succeed_and_fail_now, test_no_handler_not_retried,
         test_exec_handlers, test_json_log_lines_carry_job_fields])

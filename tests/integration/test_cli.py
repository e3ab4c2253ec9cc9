"""The CLI's contract (CONTRACT section 9): outputs, idempotency, --wait, wait,
--batch, --spool, and every error exit status with its one-line message."""
import json
import os
import re
import signal

from lwtest import check, run, wait_until

MSG = re.compile(r'^lanework: [^:\n]+: .+\n$')


def one_line_error(err, what):
    check(MSG.match(err) is not None, '%s: stderr is not one "lanework: WHAT: WHY" line: %r' % (what, err))


def test_enqueue_prints_only_the_id_and_is_idempotent(env):
    env.write_registry([env.tenant('acme')])
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'noop', '--payload', '{}')
    check(rc == 0 and re.fullmatch(r'[0-9a-f]{24}\n', out) and err == '', 'enqueue output: %r %r' % (out, err))
    a = env.enqueue('acme', 'noop', {}, id='order-17')
    b = env.enqueue('acme', 'noop', {'other': 1}, id='order-17')
    check(a == b == 'order-17', 'explicit id not idempotent: %s %s' % (a, b))
    u1 = env.enqueue('acme', 'noop', {}, unique='mail:42')
    u2 = env.enqueue('acme', 'noop', {}, unique='mail:42')
    check(u1 == u2, '--unique created a second job')
    check(env.status('acme', 'order-17')['payload'] == {}, 'the duplicate overwrote the first job')
    # payload from stdin and from a file
    rc, out, _ = env.cli('enqueue', '--tenant', 'acme', '--kind', 'echo', '--payload', '-', input='{"s":1}')
    check(env.status('acme', out.strip())['payload'] == {'s': 1}, 'payload from stdin')
    pf = os.path.join(env.dir, 'p.json')
    with open(pf, 'w') as f:
        f.write('[1,2,3]')
    rc, out, _ = env.cli('enqueue', '--tenant', 'acme', '--kind', 'echo', '--payload-file', pf)
    check(env.status('acme', out.strip())['payload'] == [1, 2, 3], 'payload from a file')


def test_enqueue_wait_exit_codes(env):
    env.write_registry([env.tenant('acme', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    env.worker('--concurrency', '2')
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'echo', '--payload', '{"r":7}', '--wait',
                           '--wait-timeout', '30')
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 2 and json.loads(lines[1]) == {'r': 7}, '--wait success: %d %r %r' % (rc, out, err))
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'fail', '--payload', '{}', '--wait')
    check(rc == 1 and 'failed on purpose' in err, '--wait on a failing job: %d %r' % (rc, err))
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'sleep', '--payload', '{"ms":5000}', '--wait',
                           '--wait-timeout', '0.5')
    check(rc == 124, '--wait-timeout: exit %d' % rc)


def test_wait_command(env):
    env.write_registry([env.tenant('acme', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    ok = [env.enqueue('acme', 'noop', {}) for _ in range(3)]
    bad = env.enqueue('acme', 'fail', {})
    rc, _, _ = env.cli('wait', '--tenant', 'acme', ok[0], '--timeout', '0.3')
    check(rc == 124, 'wait without a worker must time out: %d' % rc)
    env.worker()
    rc, out, err = env.cli('wait', '--tenant', 'acme', *ok, '--timeout', '30')
    check(rc == 0, 'wait on succeeding jobs: %d %r' % (rc, err))
    rc, out, err = env.cli('wait', '--tenant', 'acme', ok[0], bad, '--timeout', '30')
    check(rc == 1 and bad in err, 'wait with a failed job: %d %r' % (rc, err))
    rc, out, err = env.cli('wait', '--tenant', 'acme', 'nosuchjob', '--timeout', '5')
    check(rc == 4, 'wait on a missing job: %d' % rc)


def test_batch(env):
    env.write_registry([env.tenant('acme'), env.tenant('beta')])
    text = '\n'.join([
        json.dumps({'kind': 'noop', 'payload': {'a': 1}}),
        json.dumps({'tenant': 'beta', 'kind': 'noop', 'lane': 'L', 'delay': 0, 'attempts': 2}),
        '{"kind": "noop", "payload": ',            # bad JSON
        json.dumps({'kind': 'noop', 'id': '../etc'}),  # unsafe id
        '',
        json.dumps({'kind': 'echo', 'id': 'fixed-1', 'timeout': 5}),
    ]) + '\n'
    rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'acme', input=text)
    ids = out.split()
    check(rc == 2, 'a batch with bad lines exits 2 (got %d)' % rc)
    check(len(ids) == 3 and ids[2] == 'fixed-1', 'one id per accepted line, in order: %s' % ids)
    check('line 3' in err and 'line 4' in err, 'bad lines are named: %r' % err)
    check(env.status('beta', ids[1])['lane'] == 'L', 'per-line tenant and lane')
    check(env.status('acme', 'fixed-1')['timeout'] == 5, 'per-line timeout')


def test_error_exit_statuses(env):
    env.write_registry([env.tenant('acme')])
    cases = [
        (2, ['enqueue', '--tenant', 'acme', '--kind', 'noop', '--bogus']),
        (2, ['enqueue', '--tenant', 'acme', '--kind', 'noop', '--payload', '{nope']),
        (2, ['enqueue', '--tenant', 'nobody', '--kind', 'noop', '--payload', '{}']),
        (2, ['enqueue', '--tenant', 'acme', '--kind', 'noop', '--id', '../x', '--payload', '{}']),
        (2, ['enqueue', '--tenant', 'acme', '--kind', 'noop', '--attempts', 'x', '--payload', '{}']),
        (2, ['enqueue', '--tenant', 'acme', '--kind', 'noop', '--max-payload', '10', '--payload', '"%s"' % ('x' * 20)]),
        (2, ['enqueue', '--kind', 'noop', '--payload', '{}']),
        (2, ['frobnicate']),
        (4, ['status', '--tenant', 'acme', 'nosuchjob']),
        (4, ['cancel', '--tenant', 'acme', 'nosuchjob']),
    ]
    for want, args in cases:
        rc, out, err = env.cli(*args)
        check(rc == want, '%s: exit %d, want %d (%r)' % (' '.join(args), rc, want, err))
        one_line_error(err, ' '.join(args))
        check(out == '', '%s: printed on stdout on error: %r' % (args, out))
    # Redis unreachable: 3, and the password never shows
    rc, out, err = env.cli('status', '--tenant', 'acme', 'x', '--redis', 'unix://:s3cr3t@/nonexistent/r.sock',
                           redis=False)
    check(rc == 3, 'unreachable redis: exit %d' % rc)
    one_line_error(err, 'unreachable redis')
    check('s3cr3t' not in err, 'password printed: %r' % err)
    # without a registry any safe tenant name works
    rc, out, err = env.cli('enqueue', '--tenant', 'free-form.tenant_1', '--kind', 'noop', '--payload', '{}',
                           registry=False)
    check(rc == 0, 'no registry, safe tenant: %d %r' % (rc, err))
    rc, out, err = env.cli('enqueue', '--tenant', 'bad/tenant', '--kind', 'noop', '--payload', '{}', registry=False)
    check(rc == 2, 'no registry, unsafe tenant: %d' % rc)


def test_spool_enqueue_while_redis_down(env):
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([env.tenant('acme', spools={'noop': spool})])
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'noop', '--payload', '{"f":1}', '--spool', spool,
                           '--redis', 'unix:///nonexistent/r.sock', redis=False)
    jid = out.strip()
    check(rc == 0 and jid and 'warning' in err.lower(), '--spool while Redis is down: %d %r %r' % (rc, out, err))
    with open(os.path.join(spool, jid, 'job.json')) as f:
        doc = json.load(f)
    check(doc['job_id'] == jid and doc['status'] == 'queued' and doc['payload'] == {'f': 1}, 'job.json: %s' % doc)


def test_input_edge_cases(env):
    """A NUL byte in a payload is refused (not cut there), JSON nested too
    deep says so, and a secret in a URL parameter is never echoed."""
    env.write_registry([env.tenant('acme')])
    pf = os.path.join(env.dir, 'nul.json')
    with open(pf, 'wb') as f:
        f.write(b'{"a":1}\x00{"b":2}')
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'noop', '--payload-file', pf)
    check(rc == 2 and out == '' and err == 'lanework: enqueue: payload: contains a NUL byte at offset 7\n',
          'NUL in --payload-file: %d %r %r' % (rc, out, err))
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'noop', input=b'  [1]\x00')
    check(rc == 2 and out == '' and 'contains a NUL byte at offset 5' in err, 'NUL on stdin: %d %r %r' % (rc, out, err))
    one_line_error(err, 'NUL on stdin')
    deep = '[' * 1001 + ']' * 1001
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'noop', '--payload', deep)
    check(rc == 2 and err == 'lanework: enqueue: payload: JSON nested deeper than 1000 levels\n',
          'deep payload: %d %r' % (rc, err))
    rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'acme',
                           input='{"kind":"noop","payload":%s}\n' % deep)
    check(rc == 2 and err == 'lanework: batch line 1: JSON nested deeper than 1000 levels\n',
          'deep batch line: %d %r' % (rc, err))
    for url in ('unix://%s?password=s3cr3t' % env.redis.sock, 'unix://%s?db=0&s3cr3t' % env.redis.sock,
                'redis://127.0.0.1:6379/0?password=s3cr3t', 'redis://127.0.0.1?password=s3cr3t'):
        rc, out, err = env.cli('status', '--tenant', 'acme', 'x', '--redis', url, redis=False)
        check(rc == 2 and 's3cr3t' not in err, 'URL parameter %s: %d %r' % (url, rc, err))
        one_line_error(err, url)


def test_kind_is_checked_at_enqueue(env):
    """With a registry, a kind no handler of the tenant serves (the exec keys,
    the kinds its workers say its module serves) is exit 2 with one line, for
    single enqueues and per --batch line; a module serving every kind, a
    tenant no worker has published for yet, or no registry at all accepts it."""
    allkinds = os.environ['LANEWORK_ALLKINDS']
    env.write_registry([env.tenant('acme', exec={'shell': ['/bin/true']}),
                        {'tenant': 'execonly', 'exec': {'shell': ['/bin/true']}},
                        {'tenant': 'every', 'module': allkinds}])
    # No worker has said what acme's module serves yet: accepted.
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'nosuchkind', '--payload', '{}', '--delay', '600')
    check(rc == 0 and err == '', 'nothing published yet: %d %r' % (rc, err))
    # A tenant without a module serves its exec keys only: the registry says so.
    rc, out, err = env.cli('enqueue', '--tenant', 'execonly', '--kind', 'noop', '--payload', '{}')
    check(rc == 2 and 'tenant execonly has no handler for kind noop' in err, 'exec-only tenant: %d %r' % (rc, err))
    w = env.worker('--queue', 'none')  # publishes, runs nothing
    wait_until(lambda: env.redis.call('SCARD', 'lw:{acme}:kinds') > 0 and
               env.redis.call('SISMEMBER', 'lw:{every}:kinds', '*') == 1, timeout=5, what='the kinds to be published')
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'nosuchkind', '--payload', '{}')
    check(rc == 2 and out == '', 'unserved kind: %d %r %r' % (rc, out, err))
    check(err.startswith('lanework: enqueue: tenant acme has no handler for kind nosuchkind'), 'message: %r' % err)
    one_line_error(err, 'unserved kind')
    for tenant, kind in (('acme', 'noop'), ('acme', 'shell'), ('execonly', 'shell'), ('every', 'anything.at_all')):
        rc, out, err = env.cli('enqueue', '--tenant', tenant, '--kind', kind, '--payload', '{}')
        check(rc == 0 and err == '', '%s/%s must be accepted: %d %r' % (tenant, kind, rc, err))
    rc, out, err = env.cli('enqueue', '--tenant', 'acme', '--kind', 'nosuchkind', '--payload', '{}', registry=False)
    check(rc == 0, 'no registry: any kind: %d %r' % (rc, err))
    # --batch: the bad line is named, the others are enqueued, exit 2.
    lines = [{'kind': 'noop'}, {'kind': 'nosuchkind'}, {'kind': 'shell'}]
    rc, out, err = env.cli('enqueue', '--batch', '-', '--tenant', 'acme',
                           input=''.join(json.dumps(l) + '\n' for l in lines))
    check(rc == 2 and len(out.split()) == 2, 'batch with an unserved kind: %d %r %r' % (rc, out, err))
    check(err.startswith('lanework: batch line 2: tenant acme has no handler for kind nosuchkind')
          and len(err.splitlines()) == 1, 'batch message: %r' % err)
    check(all(env.status('acme', i)['kind'] in ('noop', 'shell') for i in out.split()), 'batch enqueued the wrong lines')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_spool_that_no_worker_reads_or_redis_refuses(env):
    """--spool DIR exits 0 only when a worker will see the job: a DIR that is
    not the tenant's spool of the kind is exit 2 before anything is written.
    OOM and READONLY keep the job in the spool, which the tenant's workers
    watch (a warning, exit 0): removing it raced a watcher that had already
    enqueued it (tests/integration/test_cli_edges.py)."""
    spool = os.path.join(env.dir, 'spool')
    other = os.path.join(env.dir, 'other')
    os.makedirs(spool)
    os.makedirs(other)
    env.write_registry([env.tenant('acme', spools={'noop': spool})])
    base = ['enqueue', '--tenant', 'acme', '--payload', '{}']
    rc, out, err = env.cli(*base, '--kind', 'noop', '--spool', other)
    check(rc == 2 and out == '' and "is not tenant acme's spool of kind noop" in err, 'other dir: %d %r' % (rc, err))
    one_line_error(err, 'other dir')
    rc, out, err = env.cli(*base, '--kind', 'echo', '--spool', spool)
    check(rc == 2 and 'tenant acme has no spool of kind echo' in err, 'kind without a spool: %d %r' % (rc, err))
    check(os.listdir(other) == [] and os.listdir(spool) == [], 'a refused --spool wrote files: %s %s'
          % (os.listdir(other), os.listdir(spool)))
    # The same directory by another path is the spool.
    rc, out, err = env.cli(*base, '--kind', 'noop', '--spool', os.path.join(other, '..', 'spool'))
    check(rc == 0 and err == '' and os.listdir(spool) == [out.strip()], 'spool by another path: %d %r' % (rc, err))
    # Redis refuses: the job stays accepted in the spool, a warning says why.
    for setup, undo, word in ((('CONFIG', 'SET', 'maxmemory', '1'), ('CONFIG', 'SET', 'maxmemory', '0'), 'OOM'),
                              (('REPLICAOF', '127.0.0.1', '1'), ('REPLICAOF', 'NO', 'ONE'), 'READONLY')):
        env.redis.call(*setup)
        try:
            rc, out, err = env.cli(*base, '--kind', 'noop', '--spool', spool, '--id', 'refused-' + word.lower())
        finally:
            env.redis.call(*undo)
        check(rc == 0 and out.strip() == 'refused-' + word.lower() and word in err and 'stays in spool' in err,
              '%s: %d %r %r' % (word, rc, out, err))
        one_line_error(err, word)
        check('refused-' + word.lower() in os.listdir(spool), '%s removed the spool entry' % word)


def test_protocol_mismatch_is_refused(env):
    """Tenant keys of another lanework protocol (NS:{T}:protocol, set by
    the first script that ran there) are refused by every script before
    it writes: the CLI says so in one line naming both versions (exit 3),
    and a worker claims nothing there -- one log line -- while it serves
    the other tenants."""
    env.write_registry([env.tenant('t1'), env.tenant('t2')])
    jid = env.enqueue('t1', 'noop')
    check(env.redis.call('GET', 'lw:{t1}:protocol') == '1', 'the first enqueue wrote no protocol key')
    env.redis.call('SET', 'lw:{t1}:protocol', '2')
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop')
    check(rc == 3 and not out and 'lanework protocol 2' in err and 'speaks protocol 1' in err,
          'enqueue: %d %r %r' % (rc, out, err))
    one_line_error(err, 'protocol')
    other = env.enqueue('t2', 'noop')
    w = env.worker()
    env.wait_all('t2', [other], timeout=20)
    wait_until(lambda: 'LWPROTOCOL' in w.log(), timeout=10, what='the refusal logged')
    check(env.redis.call('HGET', 'lw:{t1}:job:' + jid, 'status') == 'queued', 't1 job was claimed')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    lines = [l for l in w.log().splitlines() if 'LWPROTOCOL' in l]
    check(len(lines) == 1 and 'tenant t1' in lines[0], 'refusal lines: %s' % lines)


if __name__ == '__main__':
    run([test_enqueue_prints_only_the_id_and_is_idempotent, test_enqueue_wait_exit_codes, test_wait_command,
         test_batch, test_error_exit_statuses, test_spool_enqueue_while_redis_down,
         test_input_edge_cases, test_kind_is_checked_at_enqueue,
         test_spool_that_no_worker_reads_or_redis_refuses, test_protocol_mismatch_is_refused])

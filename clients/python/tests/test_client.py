"""Client (blocking): every method, its validation and its errors, against
a real Redis (no worker: statuses are driven through the scripts)."""
import os
import subprocess
import threading
import time

import pytest

import lanework
from lanework import interface


def test_enqueue_defaults_and_status(client):
    jid = client.enqueue('t1', 'noop', {'a': [1, 2]})
    assert isinstance(jid, str) and len(jid) == 24 and jid.created
    st = client.status('t1', jid)
    assert st['id'] == jid and st['tenant'] == 't1' and st['kind'] == 'noop'
    assert (st['queue'], st['lane'], st['status']) == ('default', jid, 'queued')
    assert st['payload'] == {'a': [1, 2]}
    assert (st['attempt'], st['attempts'], st['timeout']) == (0, 3, 180)
    assert st['enqueued_at'].endswith('Z') and st['started_at'] is None and st['result'] is None


def test_enqueue_every_option(client):
    jid = client.enqueue('t1', 'noop', 'text', lane='L1', queue='q2', id='job-1', unique='u1', delay=60,
                         attempts=5, timeout=1.5, expires=120, unique_for=30)
    assert jid == 'job-1'
    st = client.status('t1', jid)
    assert (st['lane'], st['queue'], st['status'], st['unique']) == ('L1', 'q2', 'scheduled', 'u1')
    assert (st['attempts'], st['timeout'], st['payload']) == (5, 1.5, 'text')
    assert st['run_at'] and st['expires_at']


def test_existing_job_is_returned(client):
    a = client.enqueue('t1', 'noop', id='same')
    b = client.enqueue('t1', 'noop', id='same')
    assert a == b == 'same' and a.created and not b.created and b.why == 'exists queued'
    c = client.enqueue('t1', 'noop', unique='k')
    d = client.enqueue('t1', 'noop', unique='k')
    assert d == c and not d.created and d.why == 'held queued'


@pytest.mark.parametrize('call, msg', [
    (lambda c: c.enqueue('bad tenant', 'k'), 'tenant: "bad tenant" is not a safe name'),
    (lambda c: c.enqueue('t1', '.hidden'), 'kind: ".hidden" is not a safe name'),
    (lambda c: c.enqueue('t1', 'k', lane='a/b'), 'lane: "a/b" is not a safe name'),
    (lambda c: c.enqueue('t1', 'k', queue='x' * 201), 'queue: '),
    (lambda c: c.enqueue('t1', 'k', id='x y'), 'id: "x y" is not a safe name'),
    (lambda c: c.enqueue('t1', 'k', {1, 2}), 'payload: not valid JSON'),
    (lambda c: c.enqueue('t1', 'k', float('nan')), 'payload: not valid JSON'),
    (lambda c: c.enqueue('t1', 'k', 'x' * (1 << 20)), 'is over the limit of 1048576'),
    (lambda c: c.enqueue('t1', 'k', attempts=0), 'attempts: must be an integer >= 1'),
    (lambda c: c.enqueue('t1', 'k', attempts=True), 'attempts: must be an integer >= 1'),
    (lambda c: c.enqueue('t1', 'k', timeout=0), 'timeout: must be a number of seconds > 0'),
    (lambda c: c.enqueue('t1', 'k', delay=-1), 'delay: must be a number of seconds >= 0'),
    (lambda c: c.enqueue('t1', 'k', unique=''), 'unique: must be 1 to 200 bytes'),
    (lambda c: c.enqueue('t1', 'k', unique='a\nb'), 'unique: must not hold control characters'),
    (lambda c: c.enqueue('t1', 'k', unique_for=5), 'unique_for: needs a unique key'),
    (lambda c: c.enqueue('t1', 'k', unique='a\ud800'), 'unique: must be UTF-8 text'),
    (lambda c: c.enqueue_many('t1', [{'kind': 'k'}, {'kind': 'k', 'colour': 1}]), 'jobs[1]: unknown field'),
    (lambda c: c.enqueue_many('t1', [{'payload': 1}]), 'jobs[0]: kind: missing'),
    (lambda c: c.status('t1', '../x'), 'id: "../x" is not a safe name'),
    (lambda c: list(c.events('t1', since='yesterday')), 'is not an event id'),
])
def test_validation(client, env, call, msg):
    with pytest.raises(lanework.InvalidInput) as e:
        call(client)
    assert msg in str(e.value) and e.value.code == 2
    assert env.redis.call('KEYS', 'lw:{t1}:job:*') == []  # nothing written


def test_deep_payload_refused(client):
    deep = []
    for _ in range(1001):
        deep = [deep]
    with pytest.raises(lanework.InvalidInput, match='nested deeper than 1000'):
        client.enqueue('t1', 'k', deep)


def test_max_payload_from_environment(env, monkeypatch):
    monkeypatch.setenv('LANEWORK_MAX_PAYLOAD', '10')
    c = lanework.Client(env.redis.url)
    with pytest.raises(lanework.InvalidInput, match='over the limit of 10'):
        c.enqueue('t1', 'k', 'x' * 20)


def test_enqueue_many_pipelined(client, env):
    jobs = [{'kind': 'noop', 'payload': i, 'lane': 'L%d' % (i % 7)} for i in range(700)]
    ids = client.enqueue_many('t1', jobs)
    assert len(ids) == 700 and len(set(ids)) == 700 and all(i.created for i in ids)
    assert client.status('t1', ids[699])['payload'] == 699
    assert env.redis.call('HGET', 'lw:{t1}:stats', 'queued:default') == '700'
    assert client.enqueue_many('t1', []) == []


def lanework_libraries(env):
    return [n for n in env.redis.libraries() if n.startswith('lanework_')]


def test_library_is_loaded_again(client, env):
    # FCALL of the function library; "Function not found" loads it again.
    client.enqueue('t1', 'noop')
    assert len(lanework_libraries(env)) == 1
    env.redis.call('FUNCTION', 'FLUSH')
    assert client.enqueue('t1', 'noop').created
    env.redis.call('FUNCTION', 'FLUSH')
    assert len(client.enqueue_many('t1', [{'kind': 'noop'}] * 600)) == 600
    assert len(lanework_libraries(env)) == 1
    stats = env.redis.commandstats()
    assert stats.get('fcall', 0) >= 5 and stats.get('evalsha', 0) == 0


@pytest.mark.parametrize('first', ['enqueue', 'enqueue_many'])
def test_evalsha_for_a_user_without_functions(env, first):
    # An ACL user without FUNCTION and FCALL (or a Redis before 7): every
    # call goes by EVALSHA, NOSCRIPT loads the script again, nothing is lost.
    env.redis.call('ACL', 'SETUSER', 'nofn', 'on', '>nofnpw', '~*', '&*', '+@all', '-function', '-fcall')
    c = lanework.Client(env.redis.url.replace('unix://', 'unix://nofn:nofnpw@'), namespace=env.ns)
    env.redis.call('CONFIG', 'RESETSTAT')
    if first == 'enqueue':
        assert c.enqueue('t1', 'noop').created
    else:  # the pipeline sends FCALL, then EVALSHA, then loads the script
        assert len(c.enqueue_many('t1', [{'kind': 'noop'}] * 600)) == 600
    env.redis.call('SCRIPT', 'FLUSH')
    assert c.enqueue('t1', 'noop').created
    env.redis.call('SCRIPT', 'FLUSH')
    assert len(c.enqueue_many('t1', [{'kind': 'noop'}] * 600)) == 600
    stats = env.redis.commandstats()
    assert stats.get('evalsha', 0) >= 5 and stats.get('fcall', 0) == 0
    assert lanework_libraries(env) == []
    assert env.redis.call('HGET', 'lw:{t1}:stats', 'queued:default') == str(601 + (600 if first != 'enqueue' else 1))
    c.close()


def test_status_errors(client, env):
    with pytest.raises(lanework.NoSuchJob) as e:
        client.status('t1', 'nope')
    assert e.value.code == 4 and 'no such job nope' in str(e.value)
    env.redis.call('SET', 'lw:{t1}:job:str', 'x')
    with pytest.raises(lanework.JobFailed, match='corrupt record'):
        client.status('t1', 'str')


def test_cancel_and_retry(client):
    jid = client.enqueue('t1', 'noop', lane='L')
    with pytest.raises(lanework.InvalidInput, match='is queued, not failed'):
        client.retry('t1', jid)
    assert client.cancel('t1', jid) == 'cancelled'
    with pytest.raises(lanework.JobFailed, match='already cancelled') as e:
        client.cancel('t1', jid)
    assert e.value.job['status'] == 'cancelled'
    assert client.retry('t1', jid) == jid
    assert client.status('t1', jid)['status'] == 'queued'
    with pytest.raises(lanework.NoSuchJob):
        client.cancel('t1', 'nope')
    with pytest.raises(lanework.NoSuchJob):
        client.retry('t1', 'nope')


def test_wait(client):
    jid = client.enqueue('t1', 'noop')
    with pytest.raises(lanework.WaitTimeout) as e:
        client.wait('t1', jid, timeout=0.3)
    assert e.value.code == 124
    t = threading.Timer(0.2, client.cancel, ('t1', jid))
    t.start()
    with pytest.raises(lanework.JobFailed) as e:
        client.wait('t1', jid, timeout=5)
    t.join()
    assert e.value.code == 1 and e.value.job['status'] == 'cancelled' and 'ended cancelled' in str(e.value)
    with pytest.raises(lanework.NoSuchJob):
        client.wait('t1', 'nope', timeout=1)


def test_events_since_and_follow(client):
    a = client.enqueue('t1', 'noop')
    evs = list(client.events('t1'))
    assert [(e['type'], e['job']) for e in evs] == [('job.queued', a)]
    assert set(evs[0]) == {'id', 'type', 'job', 'kind', 'lane', 'attempt', 'worker', 'ts', 'data'}
    assert list(client.events('t1', since=evs[0]['id'])) == []
    it = client.events('t1', since=evs[0]['id'], follow=True)
    t = threading.Timer(0.2, client.enqueue, ('t1', 'noop'), {'id': 'later'})
    t.start()
    ev = next(it)
    t.join()
    assert (ev['type'], ev['job']) == ('job.queued', 'later')


def test_redis_unreachable(env):
    for url in ('unix://' + env.dir + '/nothing.sock', 'redis://127.0.0.1:1/0'):
        c = lanework.Client(url)
        with pytest.raises(lanework.RedisUnavailable) as e:
            c.enqueue('t1', 'noop')
        assert e.value.code == 3 and 'lanework: redis' in str(e.value)


def test_password_never_shown(env):
    c = lanework.Client('redis://me:s3cret@127.0.0.1:1/0')
    with pytest.raises(lanework.RedisUnavailable) as e:
        c.status('t1', 'x')
    assert 's3cret' not in str(e.value) and 'me:***@' in str(e.value)


def test_protocol_mismatch_refused(env):
    env.redis.call('SET', 'lw:{t1}:protocol', '999')
    c = lanework.Client(env.redis.url)
    with pytest.raises(lanework.ProtocolMismatch) as e:
        c.enqueue('t1', 'noop')
    msg = str(e.value)
    assert 'protocol %d' % lanework.protocol() in msg and 'protocol 999' in msg and e.value.code == 3
    assert env.redis.call('KEYS', 'lw:{t1}:*') == ['lw:{t1}:protocol']  # nothing written but the test's key


def test_protocol_claimed_on_first_use(client, env):
    client.enqueue('t1', 'noop')
    assert env.redis.call('GET', 'lw:{t1}:protocol') == str(lanework.protocol())


def test_namespace(env):
    c = lanework.Client(env.redis.url, namespace='other')
    jid = c.enqueue('t1', 'noop')
    assert env.redis.call('EXISTS', 'other:{t1}:job:' + jid) == 1


def test_wait_outlives_a_redis_restart():
    """A lost connection is waited out: after Redis comes back (AOF), the
    job's status is read again and wait ends with it."""
    import lwtest
    env = lwtest.Env('wait-restart', aof=True)
    try:
        c = lanework.Client(env.redis.url)
        jid = c.enqueue('t1', 'noop')
        result = {}

        def waiter():
            try:
                c.wait('t1', jid, timeout=15)
            except lanework.LaneworkError as e:
                result['error'] = e

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.3)
        env.redis.restart()
        lanework.Client(env.redis.url).cancel('t1', jid)
        t.join(20)
        assert isinstance(result.get('error'), lanework.JobFailed), result
        assert result['error'].job['status'] == 'cancelled'
    finally:
        env.close(True)


def test_input_checked_before_redis(env):
    """As the CLI: bad input is InvalidInput (2) even with Redis away."""
    c = lanework.Client('unix://' + env.dir + '/nothing.sock')
    with pytest.raises(lanework.InvalidInput, match='^lanework: enqueue: kind: '):
        c.enqueue('t1', 'bad kind')
    with pytest.raises(lanework.InvalidInput, match=r'^lanework: enqueue: jobs\[0\]: '):
        c.enqueue_many('t1', [{'kind': 'k', 'delay': 'soon'}])
    with pytest.raises(lanework.InvalidInput, match='^lanework: cancel: id: '):
        c.cancel('t1', '')


def test_refusal_names_what_went_in(client, env):
    """At maxmemory enqueue.lua is refused (no allow-oom): RedisUnavailable,
    saying how many jobs went in, and which."""
    client.enqueue('t1', 'noop')
    env.redis.call('CONFIG', 'SET', 'maxmemory', '1')
    with pytest.raises(lanework.RedisUnavailable) as e:
        client.enqueue_many('t1', [{'kind': 'noop'}] * 300)
    assert 'OOM' in str(e.value) and '0 of 300 jobs enqueued' in str(e.value) and e.value.ids == []
    assert not e.value.outage
    with pytest.raises(lanework.RedisUnavailable, match='OOM'):
        client.enqueue('t1', 'noop')


def test_a_foreign_function_of_our_name_is_not_taken_for_the_library(env, client):
    # FUNCTION LOAD refused with "Function lw_HASH_loaded already exists"
    # (another library holds one of our names) is taken as "the library is
    # there": every FCALL then finds no function, forever, and no caller
    # turns to EVALSHA (the worker reconnects in a loop).
    h = interface.script('enqueue').function.split('_')[1]
    env.redis.call('FUNCTION', 'LOAD', "#!lua name=squat\nredis.register_function{function_name='lw_%s_loaded', "
                   "callback=function() return 1 end, flags={'no-writes'}}\n" % h)
    assert client.enqueue('t1', 'noop').created  # Python client
    p = subprocess.run([os.environ['LANEWORK_BIN'], '--redis', env.redis.url, 'enqueue', '--tenant', 't1',
                        '--kind', 'noop'], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr  # CLI

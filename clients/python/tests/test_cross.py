"""The clients, the CLI and the C worker on one Redis: a job is the same
whoever enqueued it, and each reads what the others wrote."""
import json
import os
import shutil
import subprocess

import pytest

import lanework

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'node')
NODE = shutil.which('node')
NODE_OK = NODE and os.path.isdir(os.path.join(NODE_DIR, 'node_modules', 'ioredis'))


def record(env, tenant, jid):
    c = env.redis.client()
    try:
        flat = c.call('HGETALL', 'lw:{%s}:job:%s' % (tenant, jid))
    finally:
        c.close()
    return dict(zip(flat[::2], flat[1::2]))


def test_same_record_as_the_cli(env, client):
    """Field for field, what the CLI writes (without a registry, as a client
    has none) is what the client writes; only the id and times differ."""
    flags = dict(lane='L', queue='q', unique='u', delay=30, attempts=4, timeout=2.5, expires=90)
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{"x":[1,2.5]}',
                           *sum((['--' + k, str(v)] for k, v in flags.items()), []), registry=False)
    assert rc == 0, err
    flags['unique'] = 'u2'
    jid = client.enqueue('t1', 'noop', {'x': [1, 2.5]}, **flags)
    a, b = record(env, 't1', out.strip()), record(env, 't1', jid)
    for f in ('id', 'enqueued', 'run_at', 'expires', 'unique'):
        a.pop(f), b.pop(f)
    assert a == b


def test_cli_enqueues_python_reads_and_waits(env, client):
    jid = env.enqueue('t1', 'echo', {'hello': 'world'})
    rc, out, err = env.cli('status', '--tenant', 't1', jid)
    assert rc == 0 and json.loads(out) == client.status('t1', jid)
    env.worker('--tenant', 't1')
    done = client.wait('t1', jid, timeout=20)
    assert done['status'] == 'succeeded' and done['result'] == {'hello': 'world'} and done['worker'] == 'w1'
    rc, out, err = env.cli('status', '--tenant', 't1', jid)
    assert json.loads(out) == done
    kinds = [e['type'] for e in client.events('t1')]
    assert kinds == ['job.queued', 'job.started', 'job.succeeded']
    rc, out, err = env.cli('events', '--tenant', 't1')
    assert [json.loads(l) for l in out.splitlines()] == list(client.events('t1'))


def test_python_failed_job_retried(env, client):
    jid = client.enqueue('t1', 'fail', {'error': 'boom'}, attempts=1)
    env.worker('--tenant', 't1')
    with pytest.raises(lanework.JobFailed) as e:
        client.wait('t1', jid, timeout=20)
    assert e.value.job['status'] == 'failed'
    assert client.retry('t1', jid) == jid
    with pytest.raises(lanework.JobFailed):
        client.wait('t1', jid, timeout=20)
    assert client.status('t1', jid)['attempt'] == 1


@pytest.mark.skipif(not NODE_OK, reason='node or clients/node/node_modules (npm ci) missing')
def test_python_enqueues_worker_runs_node_waits(env, client):
    jid = client.enqueue('t1', 'echo', [1, 'two'], lane='cross')
    script = ("import('%s').then(async ({Client}) => { const c = new Client({url: process.argv[1]});"
              " const st = await c.wait('t1', process.argv[2], {timeout: 20}); console.log(JSON.stringify(st));"
              " await c.close(); })" % os.path.join(NODE_DIR, 'src', 'index.js'))
    node = subprocess.Popen([NODE, '-e', script, env.redis.url, jid], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, LANEWORK_NAMESPACE=env.ns))
    env.worker('--tenant', 't1')
    out, err = node.communicate(timeout=30)
    assert node.returncode == 0, err.decode()
    st = json.loads(out)
    assert st == client.status('t1', jid) and st['result'] == [1, 'two'] and st['lane'] == 'cross'

"""Tenants (CONTRACT section 3): both registry forms, --tenant, one worker
serving tenants on two Redis servers, init/fini once per tenant, SIGHUP
reload that adds, changes and removes tenants without dropping a running
job and keeps the old registry when the new one is bad."""
import collections
import json
import os
import signal
import time

import lwtest
from lwtest import Redis, check, wait_until


def lifecycle(env):
    path = os.path.join(env.dir, 'lifecycle.log')
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [tuple(l.split()) for l in f if l.strip()]


def lt(env, name, **cfg):
    """A test-module tenant whose init/fini are logged."""
    t = env.tenant(name)
    t['config'] = dict(t['config'], lifecycle_file=os.path.join(env.dir, 'lifecycle.log'), **cfg)
    return t


def whoami(env, tenant):
    """What the worker's module says about tenant T (no CLI registry: the
    test rewrites it, sometimes with garbage)."""
    rc, out, err = env.cli('enqueue', '--tenant', tenant, '--kind', 'whoami', '--payload', '{}', registry=False)
    check(rc == 0, 'enqueue whoami: %s' % err)
    jid = out.strip()
    env.wait_all(tenant, [jid], timeout=20)
    return json.loads(env.redis.call('HGET', 'lw:{%s}:job:%s' % (tenant, jid), 'result'))


def test_registry_directory_form(env):
    d = os.path.join(env.dir, 'registry.d')
    os.makedirs(d)
    for name in ('t1', 't2'):
        with open(os.path.join(d, name + '.json'), 'w') as f:
            json.dump(env.tenant(name), f)
    with open(os.path.join(d, 'notes.txt'), 'w') as f:
        f.write('not a tenant: only *.json files are read\n')
    env.registry = d
    w = env.worker()
    check(whoami(env, 't1')['tenant'] == 't1', 'tenant t1 from a directory registry')
    check(whoami(env, 't2')['tenant'] == 't2', 'tenant t2 from a directory registry')
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')
    # A broken file in the directory names itself and stops the start.
    with open(os.path.join(d, 'broken.json'), 'w') as f:
        f.write('{"tenant": "t3", ')
    w = env.worker()
    check(w.wait(10) == 2, 'a broken registry file must exit 2')
    check('broken.json' in w.log(), 'the error names the file: %s' % w.log())


def test_tenant_filter(env):
    env.write_registry([env.tenant('t1'), env.tenant('t2')])
    w = env.worker('--tenant', 't2')
    j1 = env.enqueue('t1', 'noop', {})
    j2 = env.enqueue('t2', 'noop', {})
    env.wait_all('t2', [j2], timeout=20)
    time.sleep(0.5)
    check(env.status('t1', j1)['status'] == 'queued', 't1 was served by a --tenant t2 worker')
    w.signal(signal.SIGTERM)
    w.wait(30)
    bad = env.worker('--tenant', 'nosuch')
    check(bad.wait(10) == 2 and 'nosuch' in bad.log(), 'unknown --tenant: %s' % bad.log())


def test_two_redis_servers_one_worker(env):
    r2 = Redis(env.dir, name='redis2')
    try:
        env.write_registry([env.tenant('t1'), env.tenant('t2', redis=r2.url)])
        w = env.worker('--concurrency', '4')
        ids1 = [env.enqueue('t1', 'record', {'ms': 5}) for _ in range(20)]
        ids2 = [env.enqueue('t2', 'record', {'ms': 5}) for _ in range(20)]
        env.wait_all('t1', ids1, timeout=30)
        # t2's jobs live on the second server only.
        c = r2.client()
        try:
            def t2_done():
                st = c.pipeline([['HGET', 'lw:{t2}:job:' + i, 'status'] for i in ids2])
                return all(s == 'succeeded' for s in st)
            wait_until(t2_done, timeout=30, what="t2's jobs on the second Redis")
            check(not c.call('KEYS', 'lw:{t1}:*'), "t1's keys leaked onto t2's Redis")
        finally:
            c.close()
        check(not env.redis.call('KEYS', 'lw:{t2}:*'), "t2's keys leaked onto the default Redis")
        s = env.status('t2', ids2[0])  # the CLI finds t2's Redis in the registry
        check(s['status'] == 'succeeded', 'status through the registry: %s' % s)
        # One server going away does not stop the other tenant.
        r2.kill9()
        more = [env.enqueue('t1', 'noop', {}) for _ in range(5)]
        env.wait_all('t1', more, timeout=20)
        r2.start()
        j = env.enqueue('t2', 'noop', {})
        wait_until(lambda: env.status('t2', j)['status'] == 'succeeded', timeout=30,
                   what="t2's job after its Redis restarted")
        check(w.running(), 'worker died: %s' % w.log()[-2000:])
        w.signal(signal.SIGTERM)
        check(w.wait(30) == 0, 'worker exit')
    finally:
        r2.stop()


def test_init_fini_once_per_tenant(env):
    env.write_registry([lt(env, 't1'), lt(env, 't2')])
    w = env.worker('--isolation', 'fork', '--concurrency', '4')
    ids = [env.enqueue('t1', 'noop', {}) for _ in range(10)] + [env.enqueue('t2', 'noop', {}) for _ in range(10)]
    env.wait_all('t1', ids[:10])
    env.wait_all('t2', ids[10:])
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')
    got = collections.Counter((what, t, int(pid)) for what, t, pid in lifecycle(env))
    want = {('INIT', 't1', w.pid): 1, ('INIT', 't2', w.pid): 1, ('FINI', 't1', w.pid): 1,
            ('FINI', 't2', w.pid): 1}
    check(got == want, 'init/fini calls: %s' % dict(got))


def test_sighup_reload_add_change_remove(env):
    env.write_registry([lt(env, 't1', tag='a'), lt(env, 't2')])
    w = env.worker('--concurrency', '4')
    check(whoami(env, 't1')['tag'] == 'a', 'initial tag')
    running = env.enqueue('t2', 'sleep', {'ms': 1500})
    wait_until(lambda: env.status('t2', running)['status'] == 'active', what='t2 job to start')
    env.write_registry([lt(env, 't1', tag='b'), lt(env, 't3')])
    w.signal(signal.SIGHUP)
    wait_until(lambda: 'registry' in w.log() and 'reload' in w.log(), what='reload log line')
    check(whoami(env, 't1')['tag'] == 'b', 'changed tenant serves with its new config')
    check(whoami(env, 't3')['tenant'] == 't3', 'added tenant is served')
    env.wait_all('t2', [running], timeout=20)  # the removed tenant's running job was not dropped
    attempt = env.redis.call('HGET', 'lw:{t2}:job:' + running, 'attempt')
    check(attempt == '1', 'the running job of a removed tenant was restarted: attempt %s' % attempt)
    rc, out, err = env.cli('enqueue', '--tenant', 't2', '--kind', 'noop', '--payload', '{}', registry=False)
    check(rc == 0, 'enqueue without registry: %s' % err)
    late = out.strip()
    time.sleep(0.5)
    check(env.statuses('t2', [late]) == ['queued'], 'a removed tenant is still served')
    wait_until(lambda: ('FINI', 't2', str(w.pid)) in lifecycle(env), what='fini of removed t2')
    # A bad registry keeps the old one, with a line saying why.
    with open(env.registry, 'w') as f:
        f.write('[{"tenant": ')
    w.signal(signal.SIGHUP)
    wait_until(lambda: 'malformed' in w.log() or 'JSON' in w.log(), what='bad registry log line')
    check(whoami(env, 't3')['tenant'] == 't3', 'old registry kept after a bad reload')
    # So does one whose module refuses to initialise.
    env.write_registry([lt(env, 't1', tag='c', refuse_init=True), lt(env, 't3')])
    w.signal(signal.SIGHUP)
    wait_until(lambda: 'init' in w.log().split('malformed')[-1], what='init failure log line')
    check(whoami(env, 't1')['tag'] == 'b', 'a refused init kept the old tenant')
    check(w.running(), 'worker died on reload')
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')
    got = collections.Counter((what, t) for what, t, _pid in lifecycle(env))
    check(got[('INIT', 't1')] == got[('FINI', 't1')] and got[('INIT', 't3')] == got[('FINI', 't3')]
          and got[('INIT', 't2')] == 1 and got[('FINI', 't2')] == 1, 'init/fini balanced: %s' % dict(got))


if __name__ == '__main__':
    lwtest.run([test_registry_directory_form, test_tenant_filter, test_two_redis_servers_one_worker,
                test_init_fini_once_per_tenant, test_sighup_reload_add_change_remove])

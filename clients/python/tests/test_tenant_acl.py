"""A client as a tenant's Redis ACL user (deploy/redis-acl/users.acl): every
method works with only `~NS:{acme}:*` and the commands granted there, and
another tenant is refused, with no password in any message."""
import pytest

import lanework
from test_acl import use_acl_redis  # tests/integration/test_acl.py


def test_acme_user_runs_every_method(env):
    use_acl_redis(env)
    c = lanework.Client(env.redis.url)  # acme's URL, password included
    jid = c.enqueue('acme', 'noop', {'a': 1}, unique='k')
    assert len(c.enqueue_many('acme', [{'kind': 'noop'}] * 300)) == 300
    assert c.status('acme', jid)['status'] == 'queued'
    with pytest.raises(lanework.WaitTimeout):
        c.wait('acme', jid, timeout=0.2)
    assert c.cancel('acme', jid) == 'cancelled'
    assert c.retry('acme', jid) == jid
    assert len(list(c.events('acme'))) == 303
    with pytest.raises(lanework.RedisUnavailable) as e:
        c.enqueue('globex', 'noop')
    assert 'NOPERM' in str(e.value) and env.passwords['acme'] not in str(e.value)
    c.close()

"""Reproductions from the review of the transport change (0f00215..): each
test fails on the code as reviewed and names the defect it shows."""
import os
import signal
import socket
import threading
import time

import lwtest
from lwtest import check, wait_until


def acl_user(env, name, password, *rules):
    env.redis.call('ACL', 'SETUSER', name, 'reset', 'on', '>' + password, *rules)
    return 'unix://%s:%s@%s' % (name, password, env.redis.sock)


def test_every_refused_subscribe_is_named(env):
    # A tenant subscribes to two channels (wake, cancel). The user may use
    # every key but no channel: both SUBSCRIBEs are refused on the kept
    # connection. Each refusal must be pinned on its own channel; the
    # reviewed code blames the first unconfirmed one (wake) every time,
    # because a refused channel stays `sent` -- so cancel is never named,
    # and no refused channel is ever asked again on that connection.
    url = acl_user(env, 'nochan', 'pw-nochan-1', '~*', 'resetchannels', '+@all')
    env.write_registry([env.tenant('t1')])
    w = env.worker('--redis', url, '--concurrency', '1')
    jid = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [jid], timeout=20)
    wait_until(lambda: 'redis.subscribe' in w.log(), timeout=10, what='a subscribe refusal')
    time.sleep(1.5)
    log = w.log()
    refused = [l for l in log.splitlines() if 'redis.subscribe' in l]
    check(any('lw:{t1}:wake' in l for l in refused), 'wake refusal not logged:\n' + log)
    check(any('lw:{t1}:cancel' in l for l in refused),
          'the refusal of lw:{t1}:cancel is never named (blamed on wake):\n' + log)


if __name__ == '__main__':
    lwtest.run([test_every_refused_subscribe_is_named])

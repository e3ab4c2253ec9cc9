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


def test_insecure_failure_is_not_a_verify_failure(env):
    # insecure=1 turns verification off, yet OpenSSL still records the
    # chain's verdict (no CA loaded: "unable to get local issuer
    # certificate"). lw_tls_failure() reads that verdict first, so any
    # later TLS failure -- here the server demanding a client certificate
    # -- is reported as "certificate verify failed", and the CLI marks it
    # a configuration error of the CA (resp_sync.c: config_error).
    env.redis.stop()
    env.ca = lwtest.TlsCA(env.dir)
    env.redis = lwtest.Redis(env.dir, name='tls-redis', tls=env.ca, tls_auth_clients='yes')
    env.write_registry([env.tenant('t1')])
    url = env.redis.tls_url(ca=None, insecure=1)
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}',
                           '--redis', url, redis=False)
    check(rc != 0, 'enqueue without the demanded client certificate passed: %r' % err)
    check('certificate verify failed' not in err,
          'insecure=1, yet the failure is blamed on verification: %r' % err)


if __name__ == '__main__':
    lwtest.run([test_every_refused_subscribe_is_named, test_insecure_failure_is_not_a_verify_failure])

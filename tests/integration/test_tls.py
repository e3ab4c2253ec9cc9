"""TLS (rediss://, CONTRACT section 12) for the worker and the CLI, against
Debian's redis-server listening with --tls-port and certificates made by
openssl at test time (lwtest.TlsCA).

  verified          worker and CLI over TLS, the CA given by ca=: jobs run,
                    and the server sees their connections on its TLS port
  wrong CA          the CLI exits 3 with one line saying the certificate did
                    not verify; the worker says so and runs nothing
  client certs      a server that demands one: refused without cert/key,
                    served with them (worker and CLI)
  names             the certificate must name the host, or sni=: a host or
                    sni= it does not name is refused
  insecure=1        skips verification (the wrong CA passes) and says so
                    once, in the CLI and in the worker
  bad files         a CA, certificate or key file that cannot be used is one
                    line naming the file; cert= without key= is a bad URL
  OpenSSL on demand a worker without a rediss:// link never maps libcrypto
                    (lanework-tls.so is loaded at the first TLS connection);
                    a TLS module that cannot be loaded is one line naming it
"""
import lwtest
from lwtest import check, wait_until


def tls_env(env, auth_clients='optional'):
    """Replaces the Env's Redis by one that also listens with TLS."""
    env.redis.stop()
    env.ca = lwtest.TlsCA(env.dir)
    env.redis = lwtest.Redis(env.dir, name='tls-redis', tls=env.ca, tls_auth_clients=auth_clients)
    env.write_registry([env.tenant('t1')])
    return env.redis


def cli(env, url, *args, input=None):
    return env.cli(*(list(args) + ['--redis', url]), redis=False, input=input)


def enqueue(env, url, n=1):
    rc, out, err = cli(env, url, 'enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}')
    return rc, out.strip(), err


def tls_clients(redis):
    """Connections the server holds on its TLS port, by name."""
    out = []
    for line in redis.call('CLIENT', 'LIST').splitlines():
        f = dict(kv.split('=', 1) for kv in line.split(' ') if '=' in kv)
        if f.get('laddr', '').endswith(':%d' % redis.tls_port):
            out.append(f)
    return out


def one_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    check(len(lines) == 1, 'expected one error line, got:\n' + err)
    return lines[0]


def test_worker_and_cli_verified(env):
    r = tls_env(env)
    url = r.tls_url()
    w = env.worker('--concurrency', '4', redis_url=url)
    ids = []
    for i in range(5):
        rc, jid, err = enqueue(env, url)
        check(rc == 0, 'enqueue over TLS failed (%d): %s' % (rc, err))
        ids.append(jid)
    lines = '\n'.join('{"kind":"noop","payload":{"i":%d}}' % i for i in range(200)) + '\n'
    rc, out, err = cli(env, url, 'enqueue', '--tenant', 't1', '--batch', '-', input=lines)
    check(rc == 0, 'batch over TLS failed (%d): %s' % (rc, err))
    ids += out.split()
    check(len(ids) == 205, 'ids: %d' % len(ids))
    env.wait_all('t1', ids, timeout=60)
    # The worker's links are TLS connections (the unix socket is plain).
    wait_until(lambda: len(tls_clients(r)) >= 2, timeout=5, what='the worker on the TLS port')
    rc, out, err = cli(env, url, 'status', '--tenant', 't1', ids[0])
    check(rc == 0 and 'succeeded' in out, 'status over TLS: %d %s %s' % (rc, out, err))
    rc, out, err = cli(env, url, 'fsck', '--tenant', 't1')
    check(rc == 0, 'fsck over TLS: %d %s %s' % (rc, out, err))
    check('certificate' not in w.log(), w.log())


def test_wrong_ca_is_refused(env):
    r = tls_env(env)
    url = r.tls_url(ca=env.ca.other_ca_cert)
    rc, out, err = enqueue(env, url)
    check(rc == 3, 'enqueue with the wrong CA: exit %d %s' % (rc, err))
    line = one_line(err)
    check('certificate verify failed' in line and r.tls_url(ca=env.ca.other_ca_cert) in line,
          'the line should name the URL and the failed verification: ' + line)
    check(r.call('DBSIZE') == 0, 'something was written through an unverified connection')
    # The system's store does not hold the test CA either.
    rc, out, err = enqueue(env, r.tls_url(ca=None))
    check(rc == 3 and 'certificate verify failed' in one_line(err), 'system store: %d %s' % (rc, err))
    # A job queued over the plain socket is never taken by a worker whose
    # TLS link does not verify.
    jid = env.enqueue('t1', 'noop', {})
    w = env.worker('--concurrency', '2', redis_url=url)
    wait_until(lambda: 'certificate verify failed' in w.log(), timeout=10,
               what='the worker to say the certificate did not verify')
    lwtest.time.sleep(1.0)
    said = [l for l in w.log().splitlines() if 'certificate verify failed' in l and ' error ' in l]
    check(len(said) == 1, 'the worker should say it once at error level (a minute apart):\n' + w.log()[-3000:])
    st = env.status('t1', jid)['status']
    check(st == 'queued', 'a worker on an unverified link ran a job: %s' % st)
    check(w.running(), 'the worker should keep trying, not exit')


def test_client_certificates(env):
    r = tls_env(env, auth_clients='yes')
    rc, out, err = enqueue(env, r.tls_url())
    check(rc == 3, 'no client certificate but served: %d %s' % (rc, err))
    one_line(err)
    url = r.tls_url(cert=env.ca.client_cert, key=env.ca.client_key)
    rc, jid, err = enqueue(env, url)
    check(rc == 0, 'with a client certificate: %d %s' % (rc, err))
    w = env.worker('--concurrency', '2', redis_url=url)
    env.wait_all('t1', [jid], timeout=30)
    check(w.running(), w.log())
    # A key that is not the certificate's.
    rc, out, err = enqueue(env, r.tls_url(cert=env.ca.client_cert, key=env.ca.server_key))
    line = one_line(err)
    check(rc == 3 and 'key=%s' % env.ca.server_key in line and 'mismatch' in line, 'mismatched key: %d %s' % (rc, err))


def test_names_are_checked(env):
    r = tls_env(env)
    rc, jid, err = enqueue(env, r.tls_url(host='localhost'))
    check(rc == 0, 'localhost is in the certificate: %d %s' % (rc, err))
    rc, jid, err = enqueue(env, r.tls_url(sni='localhost'))
    check(rc == 0, 'sni=localhost is in the certificate: %d %s' % (rc, err))
    rc, out, err = enqueue(env, r.tls_url(sni='redis.elsewhere.example'))
    check(rc == 3 and 'certificate verify failed' in one_line(err) and 'mismatch' in err.lower(),
          'a name the certificate does not hold: %d %s' % (rc, err))


def test_insecure_skips_verification_and_says_so(env):
    r = tls_env(env)
    url = r.tls_url(ca=env.ca.other_ca_cert, insecure=1)
    rc, jid, err = enqueue(env, url)
    check(rc == 0, 'insecure=1 with the wrong CA: %d %s' % (rc, err))
    line = one_line(err)
    check('warning' in line and 'insecure=1' in line, 'the CLI should warn: ' + line)
    w = env.worker('--concurrency', '2', redis_url=url)
    env.wait_all('t1', [jid], timeout=30)
    said = [l for l in w.log().splitlines() if 'is not verified' in l]
    check(len(said) == 1, 'the worker should warn once:\n' + w.log()[-2000:])


def test_bad_files(env):
    r = tls_env(env)
    missing = env.dir + '/no-such-ca.pem'
    rc, out, err = enqueue(env, r.tls_url(ca=missing))
    line = one_line(err)
    check(rc == 3 and ('ca=%s: No such file or directory' % missing) in line, '%d %s' % (rc, line))
    rc, out, err = enqueue(env, r.tls_url(cert=env.ca.client_cert))
    check(rc == 2 and 'cert= needs key=' in one_line(err), 'cert without key: %d %s' % (rc, err))
    # The worker: said at error level, and again only once a minute.
    w = env.worker('--concurrency', '2', redis_url=r.tls_url(ca=missing))
    wait_until(lambda: 'No such file or directory' in w.log(), timeout=10, what='the worker to name the file')
    lwtest.time.sleep(1.0)
    said = [l for l in w.log().splitlines() if 'no-such-ca.pem: No such file' in l and ' error ' in l]
    check(len(said) == 1, 'the missing CA should be said once at error level:\n' + w.log()[-3000:])


def mapped(pid, name):
    with open('/proc/%d/maps' % pid) as f:
        return any(name in line for line in f)


def test_openssl_only_when_tls_is_used(env):
    r = tls_env(env)
    plain = env.worker('--concurrency', '2', name='plain')
    jid = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [jid], timeout=20)
    check(not mapped(plain.pid, 'libcrypto'), 'a worker without TLS mapped libcrypto')
    tls = env.worker('--concurrency', '2', name='tls', redis_url=r.tls_url())
    wait_until(lambda: len(tls_clients(r)) >= 2, timeout=10, what='the TLS worker connected')
    check(mapped(tls.pid, 'lanework-tls.so') and mapped(tls.pid, 'libcrypto'), 'the TLS worker has no OpenSSL')
    # A module that is not there: one line naming it, exit 3.
    env.extra_env['LANEWORK_TLS_MODULE'] = env.dir + '/missing-tls.so'
    rc, out, err = enqueue(env, r.tls_url())
    line = one_line(err)
    check(rc == 3 and 'cannot load %s/missing-tls.so: not found' % env.dir in line, '%d %s' % (rc, line))
    # A file that is not a module.
    env.extra_env['LANEWORK_TLS_MODULE'] = env.ca.ca_cert
    rc, out, err = enqueue(env, r.tls_url())
    check(rc == 3 and 'cannot load %s' % env.ca.ca_cert in one_line(err), '%d %s' % (rc, err))


def test_rotated_certificates_are_used_without_a_restart(env):
    """The server moves to a certificate of another CA and the worker's `ca`
    file is replaced in place (what cert-manager does): the worker's next
    connection verifies with the new file, no restart."""
    import shutil
    r = tls_env(env)
    ca_file = env.dir + '/worker-ca.crt'
    shutil.copy(env.ca.ca_cert, ca_file)
    url = r.tls_url(ca=ca_file)
    w = env.worker('--concurrency', '2', redis_url=url)
    first = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [first], timeout=20)
    # A new CA and server certificate; Redis reloads them for new connections.
    new = lwtest.TlsCA(env.dir + '/rotated')
    shutil.copy(new.ca_cert, ca_file + '.tmp')
    import os
    os.replace(ca_file + '.tmp', ca_file)
    r.call('CONFIG', 'SET', 'tls-cert-file', new.server_cert, 'tls-key-file', new.server_key,
           'tls-ca-cert-file', new.ca_cert)
    # Its connections cut: the worker must come back through the new files.
    for c in tls_clients(r):
        r.call('CLIENT', 'KILL', 'ID', c['id'])
    later = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [later], timeout=20)
    check('certificate files changed' in w.log(), 'the worker did not say it took the new files:\n' + w.log())
    check('certificate verify failed' not in w.log(), 'verification failed after the rotation:\n' + w.log())


if __name__ == '__main__':
    lwtest.run([test_worker_and_cli_verified, test_wrong_ca_is_refused, test_client_certificates,
                test_names_are_checked, test_insecure_skips_verification_and_says_so, test_bad_files,
                test_openssl_only_when_tls_is_used, test_rotated_certificates_are_used_without_a_restart])

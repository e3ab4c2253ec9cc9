"""rediss:// URLs against a real redis-server listening with TLS
(lwtest.TlsCA: certificates made by openssl now), and the URL checks."""
import warnings

import pytest

import lwtest
import lanework


@pytest.fixture(scope='module')
def tls(tmp_path_factory):
    """One CA and two TLS servers for the module: `plain` takes clients
    without a certificate, `mutual` requires one."""
    d = str(tmp_path_factory.mktemp('tls'))
    ca = lwtest.TlsCA(d)
    plain = lwtest.Redis(d, name='plain', tls=ca)
    mutual = lwtest.Redis(d, name='mutual', tls=ca, tls_auth_clients='yes')
    yield ca, plain, mutual
    plain.stop()
    mutual.stop()


def _roundtrip(url):
    """Enqueues over `url`, reads the job back over the same client."""
    with lanework.Client(url) as c:
        jid = c.enqueue('t1', 'k', {'over': 'tls'})
        assert c.status('t1', jid)['payload'] == {'over': 'tls'}
        return jid


def _refused(url):
    with lanework.Client(url) as c:
        with pytest.raises(lanework.RedisUnavailable) as e:
            c.enqueue('t1', 'k')
    return str(e.value)


def test_verified_enqueue_and_read_back(tls):
    _, plain, _ = tls
    jid = _roundtrip(plain.tls_url())
    # It went to that server: its plain unix socket sees the job.
    assert plain.call('HGET', 'lw:{t1}:job:' + jid, 'status') == 'queued'


def test_wrong_ca_refused_naming_the_certificate(tls):
    ca, plain, _ = tls
    msg = _refused(plain.tls_url(ca=ca.other_ca_cert))
    assert "certificate did not verify" in msg, msg
    assert '\n' not in msg


def test_password_never_in_the_error(tmp_path):
    ca = lwtest.TlsCA(str(tmp_path))
    r = lwtest.Redis(str(tmp_path), tls=ca, password='s3cr3t-pw')
    try:
        msg = _refused(r.tls_url(ca=ca.other_ca_cert))
        assert 'certificate did not verify' in msg and 's3cr3t-pw' not in msg, msg
        c = lanework.Client(r.tls_url())
        assert not any('s3cr3t-pw' in x for x in (repr(c), repr(c._redis), c._url_shown))
        _roundtrip(r.tls_url())  # the password is sent
    finally:
        r.stop()


def test_client_certificate_required(tls):
    ca, _, mutual = tls
    _roundtrip(mutual.tls_url(cert=ca.client_cert, key=ca.client_key))
    msg = _refused(mutual.tls_url())
    assert 'client certificate' in msg, msg


def test_sni_name_in_the_certificate_works_and_others_are_refused(tls):
    _, plain, _ = tls
    _roundtrip(plain.tls_url(sni='localhost'))
    msg = _refused(plain.tls_url(sni='not-in-the-cert.example'))
    assert 'certificate did not verify' in msg and 'not-in-the-cert.example' in msg, msg


def test_hostname_checked_by_default(tmp_path):
    """A certificate the CA signed for localhost only: reached as
    127.0.0.1 (not in it) it is refused, as localhost it is taken."""
    ca = lwtest.TlsCA(str(tmp_path), server_ips=())
    r = lwtest.Redis(str(tmp_path), tls=ca)
    try:
        msg = _refused(r.tls_url(host='127.0.0.1'))
        assert 'certificate did not verify' in msg and '127.0.0.1' in msg, msg
        _roundtrip(r.tls_url(host='localhost'))
    finally:
        r.stop()


def test_insecure_skips_verification_and_warns(tls):
    ca, plain, _ = tls
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        _roundtrip(plain.tls_url(ca=ca.other_ca_cert, insecure=1))
    said = [str(x.message) for x in w if 'insecure=1' in str(x.message)]
    assert len(said) == 1 and 'not verified' in said[0], [str(x.message) for x in w]


def test_async_client_over_tls(tls, run):
    ca, plain, mutual = tls

    async def go():
        async with lanework.AsyncClient(mutual.tls_url(cert=ca.client_cert, key=ca.client_key, sni='localhost')) as c:
            jid = await c.enqueue('t1', 'k', 1)
            assert (await c.status('t1', jid))['payload'] == 1
        async with lanework.AsyncClient(plain.tls_url(ca=ca.other_ca_cert)) as c:
            with pytest.raises(lanework.RedisUnavailable, match='certificate did not verify'):
                await c.enqueue('t1', 'k')
    run(go())


@pytest.mark.parametrize('url,says', [
    ('redis://127.0.0.1:1/0?ca=/x.crt', 'parameter ca is for TLS URLs only'),
    ('redis://127.0.0.1:1/0?insecure=1', 'parameter insecure is for TLS URLs only'),
    ('unix:///tmp/x.sock?sni=a', 'parameter sni is for TLS URLs only'),
    ('rediss://127.0.0.1:1/0?bogus=1', 'unknown parameter "bogus"'),
    ('rediss://127.0.0.1:1/0?cert=/x.crt', 'cert= without key='),
    ('rediss://127.0.0.1:1/0?key=/x.key', 'key= without cert='),
    ('rediss://127.0.0.1:1/0?insecure=yes', 'insecure must be 1 or 0'),
    ('rediss://127.0.0.1:1/0?ca=/no/such/ca.crt', 'ca=/no/such/ca.crt: No such file'),
    ('rediss://:pw@127.0.0.1:1/x', 'db "x" is not a non-negative integer'),
    ('rediss://:pw@127.0.0.1:1:2/0', 'expected host[:port][/db]'),
    ('redis-sentinel://127.0.0.1:1', 'the master name is missing'),
    ('redis-sentinel://127.0.0.1/m', 'sentinel "127.0.0.1" is not host:port'),
    ('redis-sentinel://127.0.0.1:1/m?ca=/x', 'parameter ca is for TLS URLs only'),
    ('redis-sentinel://127.0.0.1:1/m?db=x', 'db "x" is not a non-negative integer'),
    ('redis://127.0.0.1:1/0?sentinel_user=u', 'parameter sentinel_user is for Sentinel URLs only'),
    ('http://127.0.0.1/', 'is not a redis://, rediss://'),
])
def test_bad_urls_are_invalid_input(url, says):
    for cls in (lanework.Client, lanework.AsyncClient):
        with pytest.raises(lanework.InvalidInput) as e:
            cls(url)
        assert says in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_secrets_never_in_url_errors():
    for url in ('rediss://u:topsecret@127.0.0.1:1/0?bogus=1',
                'redis-sentinel://127.0.0.1:1/m?sentinel_password=topsecret&bogus=1',
                'redis-sentinel://:topsecret@127.0.0.1:1/m?db=x'):
        with pytest.raises(lanework.InvalidInput) as e:
            lanework.Client(url)
        assert 'topsecret' not in str(e.value) and '***' in str(e.value), str(e.value)


def test_min_replicas_checked():
    for bad in (-1, 1.5, '2', True):
        with pytest.raises(lanework.InvalidInput, match='min_replicas'):
            lanework.Client('redis://127.0.0.1:1/0', min_replicas=bad)


def test_min_replicas_from_the_environment(monkeypatch):
    monkeypatch.setenv('LANEWORK_MIN_REPLICAS', '2')
    assert lanework.Client('redis://127.0.0.1:1/0')._cfg.min_replicas == 2
    monkeypatch.setenv('LANEWORK_MIN_REPLICAS', 'two')
    with pytest.raises(lanework.InvalidInput, match='LANEWORK_MIN_REPLICAS'):
        lanework.Client('redis://127.0.0.1:1/0')

"""Where a client's Redis is: the URL forms of CONTRACT sections 2 and 12,
checked, and the redis-py client (blocking or asyncio) for each.

    redis://[[user]:password@]host[:port][/db]
    unix://[[user]:password@]/path/to.sock[?db=N]
    rediss://[[user]:password@]host[:port][/db][?ca=FILE&cert=FILE&key=FILE&sni=NAME&insecure=1]
    redis-sentinel://[[user]:password@]host:port[,host:port...]/MASTER[?db=N&sentinel_user=U&sentinel_password=P]
    rediss-sentinel://...   (the sentinel form, with the TLS parameters too)
    redis-cluster://[[user]:password@]host[:port][,host[:port]...]   (seed nodes; no db)
    rediss-cluster://...    (the cluster form over TLS, with the TLS parameters)

Every mistake is one InvalidInput line naming what is wrong; the URL shown
in any message is `redact`ed (no password, no sentinel_password)."""
import re
import ssl
import warnings
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.connection
import redis.sentinel

from .errors import InvalidInput

TLS_PARAMS = ('ca', 'cert', 'key', 'sni', 'insecure')
SENTINEL_PARAMS = ('db', 'sentinel_user', 'sentinel_password')
# The query parameters each scheme takes (redis:// takes none: the db is in the path).
PARAMS = {
    'redis': (), 'unix': ('db',), 'rediss': TLS_PARAMS,
    'redis-sentinel': SENTINEL_PARAMS, 'rediss-sentinel': SENTINEL_PARAMS + TLS_PARAMS,
    'redis-cluster': (), 'rediss-cluster': TLS_PARAMS,
}
# A sentinel that does not answer within this is skipped for the next one;
# a master's connections get no read timeout (XREAD BLOCK waits on purpose).
SENTINEL_TIMEOUT_S = 2
CONNECT_TIMEOUT_S = 5


def redact(url):
    """The URL without its secrets: the password in the authority (up to
    its last '@', so a password holding '@' is hidden whole) and a
    sentinel_password parameter."""
    scheme, sep, rest = str(url).partition('://')
    if not sep:
        return url
    at = rest.rfind('@')
    if at >= 0:
        user, colon, _ = rest[:at].partition(':')
        rest = user + (':***' if colon else '') + rest[at:]
    return scheme + sep + re.sub(r'([?&]sentinel_password=)[^&]*', r'\1***', rest)


class Target:
    """One parsed URL: scheme, user, password, db, and per scheme the
    host/port, the socket path, or the sentinels and master name; `tls`
    (a dict of the TLS parameters, or None) and `query` (the others)."""

    def __init__(self, url):
        self.url = url
        self.shown = redact(url)
        self.scheme, sep, rest = url.partition('://')
        if not sep or self.scheme not in PARAMS:
            raise self.bad('is not a redis://, rediss://, unix://, redis-sentinel://, rediss-sentinel://, '
                           'redis-cluster:// or rediss-cluster:// URL')
        rest, self.query = self._split_query(rest)
        self.user = self.password = None
        at = rest.rfind('@')
        if at >= 0:
            self.user, _, self.password = (unquote(p) for p in rest[:at].partition(':'))
            self.user = self.user or None
            self.password = self.password or None
            rest = rest[at + 1:]
        self.rest = rest
        self.tls = {k: self.query.pop(k) for k in TLS_PARAMS if k in self.query} if self.scheme.startswith('rediss') else None
        if self.tls is not None:
            _check_tls(self, self.tls)
        if self.scheme.endswith('-sentinel'):
            self._parse_sentinel(rest)
        if self.scheme.endswith('-cluster'):
            self._parse_cluster(rest)

    def bad(self, why):
        return InvalidInput('lanework: redis: %s: %s' % (self.shown, why))

    def _split_query(self, rest):
        """(rest before '?', {name: value}); a parameter the scheme does not
        take is refused by its name (never its value: it may be a secret)."""
        rest, q, query = rest.partition('?')
        if not q:
            return rest, {}
        out = {}
        for item in query.split('&'):
            name, eq, value = item.partition('=')
            if name not in PARAMS[self.scheme]:
                raise self.bad(_unknown(self.scheme, name[:40]))
            if not eq or not value:
                raise self.bad('parameter %s has no value' % name)
            if name in out:
                raise self.bad('parameter %s is given twice' % name)
            out[name] = unquote(value)
        return rest, out

    def _parse_sentinel(self, rest):
        nodes, slash, master = rest.partition('/')
        if not slash or not master or '/' in master:
            raise self.bad('the master name is missing (redis-sentinel://host:port[,host:port...]/MASTER)')
        self.master = unquote(master)
        self.sentinels = [self._node(n) for n in nodes.split(',')]
        self.db = _db(self, self.query.get('db', '0'))

    def _parse_cluster(self, rest):
        if '/' in rest:
            raise self.bad('a cluster URL takes no /db (a Redis Cluster has db 0 only)')
        if not rest:
            raise self.bad('no seed node (redis-cluster://host[:port][,host[:port]...])')
        self.seeds = [self._node(n, 'seed node', 6379) for n in rest.split(',')]

    def _node(self, text, what='sentinel', default_port=None):
        m = re.fullmatch(r'(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?', text)
        port = m and (m.group(2) or default_port)
        if not m or port is None or not 0 < int(port) < 65536:
            raise self.bad('%s "%s" is not host:port' % (what, text[:60]))
        return m.group(1).strip('[]'), int(port)

    def host_port_db(self):
        """(host, port, db) of a rediss:// URL."""
        m = re.fullmatch(r'(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?(?:/([^/]*))?', self.rest)
        if not m:
            raise self.bad('expected host[:port][/db] after the scheme')
        port = int(m.group(2) or 6379)
        if not 0 < port < 65536:
            raise self.bad('port must be 1..65535')
        return m.group(1).strip('[]'), port, _db(self, m.group(3) or '0')


def _unknown(scheme, name):
    if name in TLS_PARAMS:
        return 'parameter %s is for TLS URLs only (rediss://, rediss-sentinel:// or rediss-cluster://)' % name
    if name in ('sentinel_user', 'sentinel_password'):
        return 'parameter %s is for Sentinel URLs only (redis-sentinel:// or rediss-sentinel://)' % name
    known = PARAMS[scheme]
    if not known and scheme == 'redis-cluster':
        return 'unknown parameter "%s" (a redis-cluster:// URL takes none)' % name
    return 'unknown parameter "%s" (%s)' % (name, 'a %s:// URL takes %s' % (scheme, ', '.join(known)) if known
                                            else 'a redis:// URL takes none: the db goes in the path')


def _db(t, text):
    if not text.isdigit():
        raise t.bad('db "%s" is not a non-negative integer' % text[:20])
    return int(text)


def _check_tls(t, tls):
    if ('cert' in tls) != ('key' in tls):
        have, missing = ('cert', 'key') if 'cert' in tls else ('key', 'cert')
        raise t.bad('%s= without %s= (a client certificate needs both)' % (have, missing))
    if tls.get('insecure', '0') not in ('1', '0'):
        raise t.bad('insecure must be 1 or 0')
    tls['insecure'] = tls.get('insecure') == '1'


# ---- TLS -------------------------------------------------------------------

class _Context(ssl.SSLContext):
    """An SSLContext that sends `sni` (when set) as the server name and
    checks the certificate against it, in place of the host connected to:
    redis-py 4.3 always passes the host, in blocking (wrap_socket) and in
    asyncio code (wrap_bio)."""

    sni = None

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
        return super().wrap_socket(sock, *args, server_hostname=self.sni or server_hostname, **kwargs)

    def wrap_bio(self, incoming, outgoing, server_side=False, server_hostname=None, session=None):
        return super().wrap_bio(incoming, outgoing, server_side, self.sni or server_hostname, session)


def tls_context(t):
    """The context of every TLS connection of a client, built once, so a
    missing or bad file is an InvalidInput now rather than at the first
    call. Verification and hostname checking are on unless insecure=1."""
    tls = t.tls
    ctx = _Context(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    ctx.sni = tls.get('sni')
    try:
        if 'ca' in tls:
            ctx.load_verify_locations(cafile=tls['ca'])
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError) as e:
        raise t.bad('ca=%s: %s' % (tls['ca'], getattr(e, 'strerror', None) or e)) from None
    try:
        if 'cert' in tls:
            ctx.load_cert_chain(tls['cert'], tls['key'])
    except (OSError, ssl.SSLError) as e:
        raise t.bad('cert=/key=: %s' % (getattr(e, 'strerror', None) or e)) from None
    if tls['insecure']:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        warnings.warn('lanework: redis %s: insecure=1: the server\'s certificate is not verified '
                      '(anyone on the path can read and change the traffic)' % t.shown, stacklevel=4)
    return ctx


def _ssl_kwargs(t, ctx):
    """redis-py's own names for the TLS settings (they describe the
    connection; the context they would build is replaced by `ctx`)."""
    tls = t.tls
    return {'ssl_ca_certs': tls.get('ca'), 'ssl_certfile': tls.get('cert'), 'ssl_keyfile': tls.get('key'),
            'ssl_cert_reqs': 'none' if tls['insecure'] else 'required',
            'ssl_check_hostname': not tls['insecure'], 'lw_context': ctx}


class TlsConnection(redis.connection.SSLConnection):
    """redis-py's SSLConnection on our context: SSLConnection._connect
    builds a new context per connection and always sends the host as SNI."""

    def __init__(self, lw_context=None, **kwargs):
        super().__init__(**kwargs)
        self._lw_context = lw_context

    def _connect(self):
        sock = redis.connection.Connection._connect(self)  # the TCP connection
        return self._lw_context.wrap_socket(sock, server_hostname=self.host)


class AsyncTlsConnection(redis.asyncio.connection.SSLConnection):
    """The same for redis.asyncio: its RedisSSLContext hands out the
    context it holds, so it is given ours."""

    def __init__(self, lw_context=None, **kwargs):
        super().__init__(**kwargs)
        self.ssl_context.context = lw_context


class SentinelTlsConnection(redis.sentinel.SentinelManagedConnection, TlsConnection):
    pass


class AsyncSentinelTlsConnection(redis.asyncio.sentinel.SentinelManagedConnection, AsyncTlsConnection):
    pass


# ---- Sentinel ----------------------------------------------------------------
# redis-py's discover_master skips a sentinel it cannot reach and then says
# only "No master found": when every sentinel failed, ask one again for the
# reason (a certificate that did not verify, a refused connection) and
# raise from it, so the user learns that rather than a riddle.

def _sentinel_refused(e):
    """A sentinel's refusal of the client (redis-py lets the sentinels'
    WRONGPASS / NOAUTH out as a bare ResponseError, which reads as the
    master's): said to be the sentinels', as an AuthenticationError (not
    an outage); None for another refusal."""
    text = str(e).splitlines()[0] if str(e) else ''
    code = text.split(' ', 1)[0]
    if code not in ('WRONGPASS', 'NOAUTH'):
        return None
    return redis.exceptions.AuthenticationError('%s from the sentinels (sentinel_user/sentinel_password): %s'
                                                % (code, text[len(code):].strip()))


def _why_none(e, probe_error):
    if probe_error is None:
        return e  # the sentinels answer: they know no usable master (a failover in progress)
    err = redis.sentinel.MasterNotFoundError('%s (sentinel %s)' % (e, str(probe_error).splitlines()[0]))
    err.__cause__ = probe_error
    return err


class Sentinel(redis.sentinel.Sentinel):
    def discover_master(self, service_name):
        try:
            return super().discover_master(service_name)
        except redis.ResponseError as e:
            raise _sentinel_refused(e) or e
        except redis.sentinel.MasterNotFoundError as e:
            try:
                self.sentinels[0].ping()
                probe = None
            except redis.RedisError as p:
                probe = p
            raise _why_none(e, probe)


class AsyncSentinel(redis.asyncio.sentinel.Sentinel):
    async def discover_master(self, service_name):
        try:
            return await super().discover_master(service_name)
        except redis.ResponseError as e:
            raise _sentinel_refused(e) or e
        except redis.asyncio.sentinel.MasterNotFoundError as e:
            try:
                await self.sentinels[0].ping()
                probe = None
            except redis.RedisError as p:
                probe = p
            raise _why_none(e, probe)


# ---- clients ---------------------------------------------------------------

_KINDS = {  # blocking / asyncio: the redis-py module and classes each uses
    False: (redis, TlsConnection, SentinelTlsConnection, Sentinel, redis.connection),
    True: (redis.asyncio, AsyncTlsConnection, AsyncSentinelTlsConnection, AsyncSentinel, redis.asyncio.connection),
}


def connect(url, base_kwargs, asyncio=False):
    """The redis-py client (redis.Redis, or redis.asyncio.Redis) for URL;
    base_kwargs: the options of every connection (decoding...)."""
    t = Target(url)
    mod, tls_conn, sentinel_tls_conn, sentinel_cls, conn_mod = _KINDS[asyncio]
    if t.scheme in ('redis', 'unix'):
        # As before TLS and Sentinel came: redis-py reads these URLs itself.
        try:
            return mod.Redis.from_url(url, **base_kwargs)
        except ValueError as e:
            raise t.bad(str(e)) from None
    auth = {'username': t.user, 'password': t.password}
    ctx = tls_context(t) if t.tls is not None else None
    tls_kw = _ssl_kwargs(t, ctx) if ctx else {}
    if t.scheme.endswith('-cluster'):
        from . import cluster
        node_kw = dict(base_kwargs, socket_connect_timeout=CONNECT_TIMEOUT_S, **auth, **tls_kw)
        conn_class = tls_conn if ctx else conn_mod.Connection

        def node(host, port):
            return mod.Redis(connection_pool=mod.ConnectionPool(connection_class=conn_class, host=host,
                                                                port=port, **node_kw))
        return (cluster.AsyncCluster if asyncio else cluster.Cluster)(t, node)
    if t.scheme == 'rediss':
        host, port, db = t.host_port_db()
        pool = mod.ConnectionPool(connection_class=tls_conn, host=host, port=port, db=db,
                                  socket_connect_timeout=CONNECT_TIMEOUT_S, **auth, **tls_kw, **base_kwargs)
        return mod.Redis(connection_pool=pool)
    return _sentinel(t, mod, sentinel_cls, conn_mod, tls_conn if ctx else None,
                     sentinel_tls_conn if ctx else None, auth, tls_kw, base_kwargs)


def _sentinel(t, mod, sentinel_cls, conn_mod, tls_conn, sentinel_tls_conn, auth, tls_kw, base_kwargs):
    """master_for(MASTER) of a Sentinel on t's sentinels. The sentinels get
    the sentinel_user/sentinel_password of the query; the master the
    authority's credentials. Both get the TLS settings."""
    s = sentinel_cls([], sentinel_kwargs={})
    node_kw = dict(base_kwargs, username=t.query.get('sentinel_user'), password=t.query.get('sentinel_password'),
                   socket_connect_timeout=SENTINEL_TIMEOUT_S, socket_timeout=SENTINEL_TIMEOUT_S, **tls_kw)
    node_class = tls_conn or conn_mod.Connection
    s.sentinels = [mod.Redis(connection_pool=mod.ConnectionPool(connection_class=node_class, host=h, port=p, **node_kw))
                   for h, p in t.sentinels]
    kw = dict(base_kwargs, db=t.db, socket_connect_timeout=CONNECT_TIMEOUT_S, **auth, **tls_kw)
    if sentinel_tls_conn:
        kw['connection_class'] = sentinel_tls_conn
    return s.master_for(t.master, redis_class=mod.Redis, **kw)


def sentinel_nodes(r):
    """The redis-py clients of the sentinels behind r (none for the other
    forms), for close(): a master's pool does not close them."""
    return list(getattr(getattr(r.connection_pool, 'sentinel_manager', None), 'sentinels', ()))

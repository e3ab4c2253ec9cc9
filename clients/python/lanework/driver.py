"""Carrying out the requests of ops.py on redis-py: blocking (run,
iterate) or on redis.asyncio (run_async, iter_async). redis-py's exceptions
become lanework's: a lost connection or a refusal is RedisUnavailable, with
`.outage` telling the two apart, thrown into the operation so that it can
wait an outage out (wait) or let it go up."""
import asyncio
import ssl
import time

import redis.exceptions as rx

from . import cluster, interface, ops
from .errors import RedisUnavailable

# min_replicas: how long WAIT gives the replicas to confirm a state change.
WAIT_MS = 1000


# redis-py turns these error replies into classes and drops the code from
# the text; put it back, it is what an operator searches for.
_CODES = [(getattr(rx, name), code) for name, code in (
    ('NoPermissionError', 'NOPERM'), ('ReadOnlyError', 'READONLY'), ('BusyLoadingError', 'LOADING'),
    ('OutOfMemoryError', 'OOM'), ('AuthenticationError', 'WRONGPASS')) if hasattr(rx, name)]


def why(e):
    """One line saying what redis-py exception e is, with its Redis code."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    for cls, code in _CODES:
        if isinstance(e, cls) and not text.startswith(code):
            return '%s %s' % (code, text)
    return text


def _causes(e):
    """e and the exceptions it was raised from or while handling."""
    seen = []
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def tls_why(e):
    """What a TLS failure under redis-py exception e was, in words a user
    can act on (redis-py words it "Error connecting to HOST:PORT. [SSL:
    ...]"), or None when e is no TLS failure."""
    for c in _causes(e):
        if isinstance(c, ssl.SSLCertVerificationError):
            return "TLS: the server's certificate did not verify: %s" % (c.verify_message or c.reason)
        if isinstance(c, ssl.SSLError) and 'CERTIFICATE_REQUIRED' in str(c).upper():
            return 'TLS: the server requires a client certificate (cert= and key= in the URL)'
    text = str(e)
    if 'CERTIFICATE_VERIFY_FAILED' in text:
        return "TLS: the server's certificate did not verify: %s" % text.splitlines()[0]
    if 'certificate required' in text.lower():
        return 'TLS: the server requires a client certificate (cert= and key= in the URL)'
    return None


def unavailable(url_shown, e):
    """The RedisUnavailable for redis-py exception e (one line, no password)."""
    outage = isinstance(e, (rx.ConnectionError, rx.TimeoutError)) and not isinstance(e, rx.AuthenticationError)
    # On a cluster a redirection still there after it was followed for
    # cluster.FOLLOW_S (a slot moving, a failover) is one too: wait() waits it out.
    outage = outage or bool(cluster.redirection(e))
    err = RedisUnavailable('lanework: redis %s: %s' % (url_shown, tls_why(e) or why(e)))
    err.outage = outage
    if isinstance(e, rx.ResponseError):
        err.refusal = why(e)
    return err


# How a script runs. FCALL of the function library (interface.library():
# lib.lua's closures built once per load, not once per call) while the server
# has it; "Function not found" (the server restarted empty, FUNCTION FLUSH)
# is answered by FUNCTION LOAD and the call is sent again. A server that
# refuses FCALL or FUNCTION LOAD (an ACL user without them, a Redis before 7)
# makes the client run the scripts by EVALSHA, as the C code does; NOSCRIPT is answered by SCRIPT LOAD. Each of these errors means the
# script did not run, so sending it again cannot run it twice. The choice is
# kept on the redis-py client object (one per Client, one server), for
# EVALSHA_FOR_S: then FCALL is tried again, so a long-lived app finds a
# library an operator loaded after it started.
_MODE = '_lanework_evalsha_until'
EVALSHA_FOR_S = 300


def _evalsha_only(r):
    return getattr(r, _MODE, 0) > time.monotonic()


def _set_evalsha_only(r):
    setattr(r, _MODE, time.monotonic() + EVALSHA_FOR_S)


def _is_noscript(r):
    return isinstance(r, rx.NoScriptError) or (isinstance(r, rx.ResponseError) and str(r).startswith('NOSCRIPT'))


def _no_function(r):
    return isinstance(r, rx.ResponseError) and str(r).startswith('Function not found')


def _fcall_refused(r):
    """FCALL refused as a command (not by what the function ran)."""
    return isinstance(r, rx.ResponseError) and (
        "'fcall' command" in str(r) or str(r).startswith('unknown command'))


def _library_taken(e):
    """After FUNCTION LOAD answered e (None: no error): the server has the
    library (loaded now or before). "Function ... already exists" is not
    ours: another library holds one of our names."""
    return e is None or str(e) == "Library '%s' already exists" % interface.library_name()


def _not_run(rep):
    """1 when reply rep says the script did not run, and why."""
    return _no_function(rep) or _fcall_refused(rep) or _is_noscript(rep)


def _load_checked(sha, loaded):
    if loaded != sha:
        raise RedisUnavailable('lanework: redis: SCRIPT LOAD answered %s, not %s' % (loaded, sha))


def _script_cmd(r, s, keys, argv):
    """The command that runs script s in r's current mode."""
    if _evalsha_only(r):
        return ('EVALSHA', s.sha1, len(keys), *keys, *argv)
    return ('FCALL', s.function, len(keys), *keys, *argv)


def _after_load(r, e):
    """Files the answer to FUNCTION LOAD (e: its ResponseError, or None)."""
    if not _library_taken(e):
        _set_evalsha_only(r)


def _mend(r, rep):
    """What to do before sending again a call whose reply rep said it did
    not run: 'library' (FUNCTION LOAD first), 'script' (SCRIPT LOAD first)
    or None (the mode changed: just send again)."""
    if _fcall_refused(rep):
        _set_evalsha_only(r)
        return None
    return 'library' if _no_function(rep) else 'script'


def run(r, url_shown, gen):
    """Runs operation `gen` (one that emits nothing) on redis.Redis `r`;
    returns its value."""
    send, exc = None, None
    while True:
        try:
            op = gen.throw(exc) if exc else gen.send(send)
        except StopIteration as stop:
            return stop.value
        send, exc = _answer(r, url_shown, op)


def iterate(r, url_shown, gen):
    """Runs `gen` on `r`, yielding what it Emits."""
    send, exc = None, None
    while True:
        try:
            op = gen.throw(exc) if exc else gen.send(send)
        except StopIteration:
            return
        if isinstance(op, ops.Emit):
            send, exc = None, None
            yield op.value
        else:
            send, exc = _answer(r, url_shown, op)


def _answer(r, url_shown, op):
    """(reply, None) or (None, the lanework exception to throw into the op)."""
    try:
        return (_do_cluster(r, op) if isinstance(r, cluster.Cluster) else _do(r, op)), None
    except rx.RedisError as e:
        return None, unavailable(url_shown, e)
    except RedisUnavailable as e:  # a change the replicas did not confirm
        return None, e


def _do(r, op):
    if isinstance(op, ops.Cmd):
        try:
            return r.execute_command(*op.args)
        except rx.ResponseError as e:
            if op.errors_ok and not isinstance(e, rx.NoScriptError):
                return e
            raise
    if isinstance(op, ops.Script):
        return _script(r, op) if not op.replicas else _one(_pipe(r, [op], op.replicas, op.name))
    if isinstance(op, ops.Pipe):
        return _pipe(r, op.items, op.replicas, _name(op))
    if isinstance(op, ops.Sleep):
        time.sleep(op.seconds)
        return None
    raise TypeError(op)


def _load_library(r):
    try:
        r.execute_command('FUNCTION', 'LOAD', interface.library())
        _after_load(r, None)
    except rx.ResponseError as e:
        if isinstance(e, (rx.BusyLoadingError, rx.ReadOnlyError)):
            raise
        _after_load(r, e)


def _script(r, op):
    s = op.script
    for _ in range(3):  # FCALL, then FCALL or EVALSHA after a mend, then once more
        try:
            return r.execute_command(*_script_cmd(r, s, op.keys, op.argv))
        except rx.ResponseError as e:
            if not _not_run(e):
                raise
            how = _mend(r, e)
            if how == 'library':
                _load_library(r)
            elif how == 'script':
                _load_checked(s.sha1, r.script_load(s.body))
    return r.execute_command(*_script_cmd(r, s, op.keys, op.argv))


def _name(pipe):
    """What a pipeline does, for the message of an unconfirmed change."""
    return getattr(pipe.items[0], 'name', None) or 'redis'


def _one(replies):
    """The reply of a script sent alone through _pipe (with its WAIT): a
    refusal raised, as _script raises it."""
    if isinstance(replies[0], Exception):
        raise replies[0]
    return replies[0]


def _queue_wait(p, replicas, items):
    """WAIT after the calls, in the same round trip and on the same
    connection (a pipeline holds one), so it waits for exactly their
    writes; before it a PUBLISH on the first call's PREFIXsync, as the
    CLI's cli_confirm (a call that wrote nothing -- an existing job
    returned -- still moves the connection's replication offset)."""
    if replicas:
        channel = next((i.channel for i in items if getattr(i, 'channel', None)), None)
        if channel:
            p.execute_command('PUBLISH', channel, '')
        p.execute_command('WAIT', replicas, WAIT_MS)


def _confirmed(got, replicas, name):
    """Takes WAIT's reply off the end of `got` (when sent) and raises
    RedisUnavailable when fewer than `replicas` replicas confirmed."""
    if not replicas:
        return got
    n = got[-1]
    if isinstance(n, Exception):
        raise n
    if n < replicas:
        e = RedisUnavailable('lanework: %s: %d of %d replicas confirmed the change within %d ms: '
                             'it may be lost in a failover' % (name, n, replicas, WAIT_MS))
        e.unconfirmed = True
        raise e
    return got[:-1]


def _pipe(r, items, replicas=0, name=None):
    replies = [None] * len(items)
    todo = list(range(len(items)))
    for round_ in range(3):
        p = r.pipeline(transaction=False)
        for i in todo:
            _queue(r, p, items[i])
        _queue_wait(p, replicas, [items[i] for i in todo])
        got = p.execute(raise_on_error=False)
        again, how = _sort(r, todo, got[:len(todo)], round_, replies)
        if not all(cluster.redirection(replies[i]) for i in todo if i not in again):
            _confirmed(got, replicas, name)
        if not again:
            break
        if 'library' in how:
            _load_library(r)
        if 'script' in how:
            for sha, body in {items[i].script.sha1: items[i].script.body for i in again}.items():
                _load_checked(sha, r.script_load(body))
        todo = again
    return replies


def _sort(r, todo, got, round_, replies):
    """Files the replies `got` of calls `todo` into `replies`; returns the
    calls to send again (they did not run: _not_run) and what to mend
    first (a set of _mend's answers). A lost connection is raised; a
    refusal stays a value, its text with its Redis code (the other calls of
    the pipeline ran)."""
    again, how = [], set()
    for i, rep in zip(todo, got):
        if _not_run(rep) and round_ < 2:
            again.append(i)
            how.add(_mend(r, rep))
        elif isinstance(rep, (rx.ConnectionError, rx.TimeoutError)):
            raise rep
        else:
            replies[i] = rx.ResponseError(why(rep)) if isinstance(rep, rx.RedisError) else rep
    return again, how


def _queue(r, p, item):
    if isinstance(item, ops.Script):
        p.execute_command(*_script_cmd(r, item.script, item.keys, item.argv))
    else:
        p.execute_command(*item.args)


# ---- asyncio ---------------------------------------------------------------

async def run_async(r, url_shown, gen):
    """Runs operation `gen` (one that emits nothing) on redis.asyncio.Redis
    `r`; returns its value."""
    send, exc = None, None
    while True:
        try:
            op = gen.throw(exc) if exc else gen.send(send)
        except StopIteration as stop:
            return stop.value
        try:
            send, exc = await _do_any_async(r, op), None
        except rx.RedisError as e:
            send, exc = None, unavailable(url_shown, e)
        except RedisUnavailable as e:  # a change the replicas did not confirm
            send, exc = None, e


async def iter_async(r, url_shown, gen):
    """An async iterator over what `gen` Emits."""
    send, exc = None, None
    while True:
        try:
            op = gen.throw(exc) if exc else gen.send(send)
        except StopIteration:
            return
        send, exc = None, None
        if isinstance(op, ops.Emit):
            yield op.value
            continue
        try:
            send = await _do_any_async(r, op)
        except rx.RedisError as e:
            exc = unavailable(url_shown, e)
        except RedisUnavailable as e:  # a change the replicas did not confirm
            exc = e


async def _load_library_async(r):
    try:
        await r.execute_command('FUNCTION', 'LOAD', interface.library())
        _after_load(r, None)
    except rx.ResponseError as e:
        if isinstance(e, (rx.BusyLoadingError, rx.ReadOnlyError)):
            raise
        _after_load(r, e)


async def _do_async(r, op):
    if isinstance(op, ops.Cmd):
        try:
            return await r.execute_command(*op.args)
        except rx.ResponseError as e:
            if op.errors_ok and not isinstance(e, rx.NoScriptError):
                return e
            raise
    if isinstance(op, ops.Script) and op.replicas:
        return _one(await _pipe_async(r, [op], op.replicas, op.name))
    if isinstance(op, ops.Script):
        s = op.script
        for _ in range(3):
            try:
                return await r.execute_command(*_script_cmd(r, s, op.keys, op.argv))
            except rx.ResponseError as e:
                if not _not_run(e):
                    raise
                how = _mend(r, e)
                if how == 'library':
                    await _load_library_async(r)
                elif how == 'script':
                    _load_checked(s.sha1, await r.script_load(s.body))
        return await r.execute_command(*_script_cmd(r, s, op.keys, op.argv))
    if isinstance(op, ops.Pipe):
        return await _pipe_async(r, op.items, op.replicas, _name(op))
    if isinstance(op, ops.Sleep):
        await asyncio.sleep(op.seconds)
        return None
    raise TypeError(op)


async def _pipe_async(r, items, replicas=0, name=None):
    replies = [None] * len(items)
    todo = list(range(len(items)))
    for round_ in range(3):
        p = r.pipeline(transaction=False)
        for i in todo:
            _queue(r, p, items[i])
        _queue_wait(p, replicas, [items[i] for i in todo])
        got = await p.execute(raise_on_error=False)
        again, how = _sort(r, todo, got[:len(todo)], round_, replies)
        if not all(cluster.redirection(replies[i]) for i in todo if i not in again):
            _confirmed(got, replicas, name)
        if not again:
            break
        if 'library' in how:
            await _load_library_async(r)
        if 'script' in how:
            for sha, body in {items[i].script.sha1: items[i].script.body for i in again}.items():
                _load_checked(sha, await r.script_load(body))
        todo = again
    return replies


# ---- Redis Cluster (cluster.py) ------------------------------------------------
# Each request goes to the master of its slot, on that master's own client,
# through the code above (_do / _pipe). A redirection -- or a connect that
# failed, so nothing was sent -- is followed within cluster.FOLLOW_S: MOVED
# at once to the node it names, the others after a pause and a fresh map.
# A call that did not run; sending it again cannot run it twice. A
# connection lost after sending is raised (the map is read again next time).

def _follow(c, err, pause):
    """Before sending again after redirection (or unsent connect) err:
    the map read again (MOVED: and its slot set to the node named);
    returns the pause to take first."""
    c.stale = True
    if cluster.redirection(err) == 'MOVED':
        return 0
    return min(pause * 2, 0.5) if pause else 0.05


def _retriable(e):
    """A connect that failed for an outage (not TLS: a certificate that
    does not verify will not verify in a moment)."""
    return isinstance(e, (rx.ConnectionError, rx.TimeoutError)) and cluster.unsent(e) and not tls_why(e)


def _do_cluster(c, op):
    if isinstance(op, ops.Sleep):
        time.sleep(op.seconds)
        return None
    if isinstance(op, ops.Pipe):
        return _cluster_pipe(c, op.items, op.replicas, _name(op))
    if isinstance(op, ops.Cmd) and len({cluster.key_slot(k) for k in cluster.cmd_keys(op.args)}) > 1:
        return _cluster_xread(c, op)
    slot = cluster.op_slot(op)
    deadline = time.monotonic() + cluster.FOLLOW_S
    pause = 0
    while True:
        addr = c.addr_for(slot)
        if addr is None:
            err = c.no_owner(slot)
        else:
            try:
                rep = _do(c.node(addr), op)
                err = rep if cluster.redirection(rep) else None
                if err is None:
                    return rep
            except rx.ResponseError as e:
                if not cluster.redirection(e):
                    raise
                err = e
            except (rx.ConnectionError, rx.TimeoutError) as e:
                c.stale = True
                if not _retriable(e):
                    raise
                err = e
        if time.monotonic() >= deadline:
            raise err
        pause = _follow(c, err, pause)
        time.sleep(pause)
        if cluster.redirection(err) == 'MOVED':
            c.refresh()
            c.moved(err)


def _lost(e):
    """The reply of a call whose connection was lost after others of its
    pipeline (on other masters) ran: it may have run too."""
    err = RedisUnavailable('lanework: redis: %s' % why(e))
    err.outage, err.refusal = True, 'connection lost: %s' % why(e)
    return err


def _groups(c_addr, todo, items):
    groups = {}
    for i in todo:
        groups.setdefault(c_addr(cluster.op_slot(items[i])), []).append(i)
    return groups


def _cluster_pipe(c, items, replicas=0, name=None):
    """_pipe per master: the items of each master pipelined with their
    WAIT on its connection; items redirected are routed and sent again. A
    master whose connection was lost after others ran: its items get the
    error as their reply (the others' replies stand)."""
    replies = [None] * len(items)
    todo = list(range(len(items)))
    deadline = time.monotonic() + cluster.FOLLOW_S
    pause = 0
    ran = False
    moved = []
    while todo:
        if c.stale or c.slots is None:
            c.refresh()
        for m in moved:  # a MOVED names a newer owner than a seed's map may
            c.moved(m)
        again, last, moved = [], None, []
        for addr, idx in _groups(c.addr, todo, items).items():
            if addr is None:
                again += idx
                last = c.no_owner(cluster.op_slot(items[idx[0]]))
                continue
            try:
                got = _pipe(c.node(addr), [items[i] for i in idx], replicas, name)
            except (rx.ConnectionError, rx.TimeoutError) as e:
                c.stale = True
                if _retriable(e) and time.monotonic() < deadline:
                    again += idx
                    last = e
                    continue
                if not ran:
                    raise
                for i in idx:
                    replies[i] = _lost(e)
                continue
            for i, rep in zip(idx, got):
                if cluster.redirection(rep):
                    again.append(i)
                    last = rep
                    if cluster.redirection(rep) == 'MOVED':
                        moved.append(rep)
                else:
                    replies[i] = rep
                    ran = ran or not isinstance(rep, Exception)
        if not again:
            break
        if time.monotonic() >= deadline:
            for i in again:
                replies[i] = last if isinstance(last, rx.ResponseError) else rx.ResponseError(why(last))
            break
        pause = _follow(c, last, pause)
        time.sleep(pause)
        todo = sorted(again)
    return replies


def _xread_parts(op):
    """(count, block_ms, [(key, id)]) of an XREAD Cmd."""
    args = [str(a) for a in op.args]
    up = [a.upper() for a in args]
    count = args[up.index('COUNT') + 1] if 'COUNT' in up else '1000'
    block = int(args[up.index('BLOCK') + 1]) if 'BLOCK' in up else None
    rest = args[up.index('STREAMS') + 1:]
    n = len(rest) // 2
    return count, block, list(zip(rest[:n], rest[n:]))


def _xread_merged(replies, streams):
    out = []
    for (key, _), rep in zip(streams, replies):
        if isinstance(rep, Exception):
            raise rep
        for stream, entries in rep or ():
            out.append([stream, entries])
    return out or None


def _cluster_xread(c, op):
    """An XREAD over streams of several slots: one XREAD per stream (no
    BLOCK), pipelined per master, again every POLL_S until something
    comes or the BLOCK time is over."""
    count, block, streams = _xread_parts(op)
    cmds = [ops.Cmd('XREAD', 'COUNT', count, 'STREAMS', k, i) for k, i in streams]
    end = time.monotonic() + (block or 0) / 1000
    while True:
        got = _xread_merged(_cluster_pipe(c, cmds), streams)
        if got or block is None or time.monotonic() >= end:
            return got
        time.sleep(min(cluster.POLL_S, max(0.0, end - time.monotonic())))


async def _do_any_async(r, op):
    if not isinstance(r, cluster.AsyncCluster):
        return await _do_async(r, op)
    c = r
    if isinstance(op, ops.Sleep):
        await asyncio.sleep(op.seconds)
        return None
    if isinstance(op, ops.Pipe):
        return await _cluster_pipe_async(c, op.items, op.replicas, _name(op))
    if isinstance(op, ops.Cmd) and len({cluster.key_slot(k) for k in cluster.cmd_keys(op.args)}) > 1:
        return await _cluster_xread_async(c, op)
    slot = cluster.op_slot(op)
    deadline = time.monotonic() + cluster.FOLLOW_S
    pause = 0
    while True:
        addr = await c.addr_for(slot)
        if addr is None:
            err = c.no_owner(slot)
        else:
            try:
                rep = await _do_async(c.node(addr), op)
                err = rep if cluster.redirection(rep) else None
                if err is None:
                    return rep
            except rx.ResponseError as e:
                if not cluster.redirection(e):
                    raise
                err = e
            except (rx.ConnectionError, rx.TimeoutError) as e:
                c.stale = True
                if not _retriable(e):
                    raise
                err = e
        if time.monotonic() >= deadline:
            raise err
        pause = _follow(c, err, pause)
        await asyncio.sleep(pause)
        if cluster.redirection(err) == 'MOVED':
            await c.refresh()
            c.moved(err)


async def _cluster_pipe_async(c, items, replicas=0, name=None):
    """_cluster_pipe on redis.asyncio."""
    replies = [None] * len(items)
    todo = list(range(len(items)))
    deadline = time.monotonic() + cluster.FOLLOW_S
    pause = 0
    ran = False
    moved = []
    while todo:
        if c.stale or c.slots is None:
            await c.refresh()
        for m in moved:  # a MOVED names a newer owner than a seed's map may
            c.moved(m)
        again, last, moved = [], None, []
        for addr, idx in _groups(c.addr, todo, items).items():
            if addr is None:
                again += idx
                last = c.no_owner(cluster.op_slot(items[idx[0]]))
                continue
            try:
                got = await _pipe_async(c.node(addr), [items[i] for i in idx], replicas, name)
            except (rx.ConnectionError, rx.TimeoutError) as e:
                c.stale = True
                if _retriable(e) and time.monotonic() < deadline:
                    again += idx
                    last = e
                    continue
                if not ran:
                    raise
                for i in idx:
                    replies[i] = _lost(e)
                continue
            for i, rep in zip(idx, got):
                if cluster.redirection(rep):
                    again.append(i)
                    last = rep
                    if cluster.redirection(rep) == 'MOVED':
                        moved.append(rep)
                else:
                    replies[i] = rep
                    ran = ran or not isinstance(rep, Exception)
        if not again:
            break
        if time.monotonic() >= deadline:
            for i in again:
                replies[i] = last if isinstance(last, rx.ResponseError) else rx.ResponseError(why(last))
            break
        pause = _follow(c, last, pause)
        await asyncio.sleep(pause)
        todo = sorted(again)
    return replies


async def _cluster_xread_async(c, op):
    count, block, streams = _xread_parts(op)
    cmds = [ops.Cmd('XREAD', 'COUNT', count, 'STREAMS', k, i) for k, i in streams]
    end = time.monotonic() + (block or 0) / 1000
    while True:
        got = _xread_merged(await _cluster_pipe_async(c, cmds), streams)
        if got or block is None or time.monotonic() >= end:
            return got
        await asyncio.sleep(min(cluster.POLL_S, max(0.0, end - time.monotonic())))


def connect_kwargs(url):
    """Options of every connection: decoded replies (records are UTF-8
    text; a bad byte is replaced, not fatal), a connect timeout so an
    unreachable Redis fails fast, and no read timeout (XREAD BLOCK waits on
    purpose)."""
    kw = {'decode_responses': True, 'encoding_errors': 'replace'}
    if url.startswith('redis://'):  # a unix socket connects at once or not at all
        kw['socket_connect_timeout'] = 5
    return kw

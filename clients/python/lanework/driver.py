"""Carrying out the requests of ops.py on redis-py: blocking (run,
iterate) or on redis.asyncio (run_async, iter_async). redis-py's exceptions
become lanework's: a lost connection or a refusal is RedisUnavailable, with
`.outage` telling the two apart, thrown into the operation so that it can
wait an outage out (wait) or let it go up."""
import asyncio
import time

import redis.exceptions as rx

from . import ops
from .errors import RedisUnavailable


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


def unavailable(url_shown, e):
    """The RedisUnavailable for redis-py exception e (one line, no password)."""
    outage = isinstance(e, (rx.ConnectionError, rx.TimeoutError)) and not isinstance(e, rx.AuthenticationError)
    err = RedisUnavailable('lanework: redis %s: %s' % (url_shown, why(e)))
    err.outage = outage
    return err


def _is_noscript(r):
    return isinstance(r, rx.NoScriptError) or (isinstance(r, rx.ResponseError) and str(r).startswith('NOSCRIPT'))


def _load_checked(sha, loaded):
    if loaded != sha:
        raise RedisUnavailable('lanework: redis: SCRIPT LOAD answered %s, not %s' % (loaded, sha))


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
        return _do(r, op), None
    except rx.RedisError as e:
        return None, unavailable(url_shown, e)


def _do(r, op):
    if isinstance(op, ops.Cmd):
        try:
            return r.execute_command(*op.args)
        except rx.ResponseError as e:
            if op.errors_ok and not isinstance(e, rx.NoScriptError):
                return e
            raise
    if isinstance(op, ops.Script):
        return _script(r, op)
    if isinstance(op, ops.Pipe):
        return _pipe(r, op.items)
    if isinstance(op, ops.Sleep):
        time.sleep(op.seconds)
        return None
    raise TypeError(op)


def _script(r, op):
    s = op.script
    try:
        return r.evalsha(s.sha1, len(op.keys), *op.keys, *op.argv)
    except rx.NoScriptError:
        # The script did not run (Redis restarted, SCRIPT FLUSH): load it
        # and call again -- it cannot run twice.
        _load_checked(s.sha1, r.script_load(s.body))
        return r.evalsha(s.sha1, len(op.keys), *op.keys, *op.argv)


def _pipe(r, items):
    replies = [None] * len(items)
    todo = list(range(len(items)))
    for round_ in range(2):
        p = r.pipeline(transaction=False)
        for i in todo:
            _queue(p, items[i])
        got = p.execute(raise_on_error=False)
        again = _sort(todo, got, round_, replies)
        if not again:
            break
        for sha, body in {items[i].script.sha1: items[i].script.body for i in again}.items():
            _load_checked(sha, r.script_load(body))
        todo = again
    return replies


def _sort(todo, got, round_, replies):
    """Files the replies `got` of calls `todo` into `replies`; returns the
    calls to send again (NOSCRIPT: they did not run). A lost connection is
    raised; a refusal stays a value, its text with its Redis code (the
    other calls of the pipeline ran)."""
    again = []
    for i, rep in zip(todo, got):
        if _is_noscript(rep) and round_ == 0:
            again.append(i)
        elif isinstance(rep, (rx.ConnectionError, rx.TimeoutError)):
            raise rep
        else:
            replies[i] = rx.ResponseError(why(rep)) if isinstance(rep, rx.RedisError) else rep
    return again


def _queue(p, item):
    if isinstance(item, ops.Script):
        p.evalsha(item.script.sha1, len(item.keys), *item.keys, *item.argv)
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
            send, exc = await _do_async(r, op), None
        except rx.RedisError as e:
            send, exc = None, unavailable(url_shown, e)


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
            send = await _do_async(r, op)
        except rx.RedisError as e:
            exc = unavailable(url_shown, e)


async def _do_async(r, op):
    if isinstance(op, ops.Cmd):
        try:
            return await r.execute_command(*op.args)
        except rx.ResponseError as e:
            if op.errors_ok and not isinstance(e, rx.NoScriptError):
                return e
            raise
    if isinstance(op, ops.Script):
        s = op.script
        try:
            return await r.evalsha(s.sha1, len(op.keys), *op.keys, *op.argv)
        except rx.NoScriptError:
            _load_checked(s.sha1, await r.script_load(s.body))
            return await r.evalsha(s.sha1, len(op.keys), *op.keys, *op.argv)
    if isinstance(op, ops.Pipe):
        items = op.items
        replies = [None] * len(items)
        todo = list(range(len(items)))
        for round_ in range(2):
            p = r.pipeline(transaction=False)
            for i in todo:
                _queue(p, items[i])
            got = await p.execute(raise_on_error=False)
            again = _sort(todo, got, round_, replies)
            if not again:
                break
            for sha, body in {items[i].script.sha1: items[i].script.body for i in again}.items():
                _load_checked(sha, await r.script_load(body))
            todo = again
        return replies
    if isinstance(op, ops.Sleep):
        await asyncio.sleep(op.seconds)
        return None
    raise TypeError(op)


def connect_kwargs(url):
    """Options of every connection: decoded replies (records are UTF-8
    text; a bad byte is replaced, not fatal), a connect timeout so an
    unreachable Redis fails fast, and no read timeout (XREAD BLOCK waits on
    purpose)."""
    kw = {'decode_responses': True, 'encoding_errors': 'replace'}
    if url.startswith('redis://'):  # a unix socket connects at once or not at all
        kw['socket_connect_timeout'] = 5
    return kw

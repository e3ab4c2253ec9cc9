"""lanework: enqueue and steer lanework jobs from Python.

    import lanework
    c = lanework.Client()                       # LANEWORK_REDIS_URL, LANEWORK_NAMESPACE
    job_id = c.enqueue("acme", "thumbnail", {"path": "a.png"}, lane="user-42")
    print(c.wait("acme", job_id, timeout=30)["result"])

Client (blocking) and AsyncClient (asyncio) have the same methods:
enqueue, enqueue_many, status, wait, cancel, retry, events. They run the
very Lua scripts of the C fleet (common/scripts/), with the CLI's
validation and defaults: a job enqueued here is indistinguishable from one
`lanework enqueue` made. Errors are LaneworkError subclasses, one per CLI
exit status (`.code`).
"""
# The handler side (lanework.handler, Fail: CONTRACT section 11) needs the
# standard library only: a handler process imports no redis-py. The client
# side is imported on first use of one of its names (PEP 562), so
# `from lanework import handler` works where redis-py is not installed.
from typing import TYPE_CHECKING

from . import handler
from .handler import Fail

if TYPE_CHECKING:  # what type checkers see; at run time these load on first use
    from .aio import AsyncClient
    from .client import Client
    from .errors import (InvalidInput, JobFailed, LaneworkError, NoSuchJob, ProtocolMismatch,
                         RedisUnavailable, WaitTimeout)
    from .interface import protocol
    from .jobs import JobId

__version__ = '0.1.0'

_CLIENT_NAMES = {
    'AsyncClient': 'aio', 'Client': 'client', 'JobId': 'jobs', 'protocol': 'interface',
    'LaneworkError': 'errors', 'JobFailed': 'errors', 'InvalidInput': 'errors', 'RedisUnavailable': 'errors',
    'ProtocolMismatch': 'errors', 'NoSuchJob': 'errors', 'WaitTimeout': 'errors',
}

__all__ = sorted(_CLIENT_NAMES) + ['handler', 'Fail']


def __getattr__(name):
    mod = _CLIENT_NAMES.get(name)
    if mod is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    import importlib
    value = getattr(importlib.import_module('.' + mod, __name__), name)
    globals()[name] = value
    return value

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
from .aio import AsyncClient
from .client import Client
from .errors import (InvalidInput, JobFailed, LaneworkError, NoSuchJob, ProtocolMismatch,
                     RedisUnavailable, WaitTimeout)
from .interface import protocol
from .jobs import JobId

__version__ = '0.1.0'

__all__ = [
    'AsyncClient', 'Client', 'JobId', 'protocol',
    'LaneworkError', 'JobFailed', 'InvalidInput', 'RedisUnavailable', 'ProtocolMismatch', 'NoSuchJob',
    'WaitTimeout',
]

from . import handler  # noqa: E402  (the handler side: CONTRACT section 11)
from .handler import Fail  # noqa: E402

__all__ += ['handler', 'Fail']

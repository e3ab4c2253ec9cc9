"""lanework.AsyncClient: the same methods as Client, as coroutines on
redis.asyncio, for asyncio applications (FastAPI and the like)."""
import asyncio
import time
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional

from . import cluster, driver, ops, partition, target
from .jobs import JobId
from .config import Config, redact
from .errors import RedisUnavailable


# An enqueue waits behind its tenant's call in flight for at most this
# long (a healthy call takes a millisecond or so); past it that call is
# taken for stuck -- a connection gone silent, there is no read timeout --
# and the enqueue goes alone, on another connection.
STALL_S = 0.25


def _settle(batch, exc, value=None):
    """Gives each waiter of batch the call's answer (exc, else value)."""
    for _, fut in batch:
        if fut.done():
            continue
        if exc is None:
            fut.set_result(value)
        elif isinstance(exc, asyncio.CancelledError):
            fut.cancel()
        else:
            fut.set_exception(exc)


class AsyncClient:
    """Client's methods as coroutines (events: an async iterator). Create
    it anywhere; connections are made in the running loop at first use.

    Concurrent enqueue() calls of one tenant share round trips: while one
    call of the tenant is in flight, the enqueues that come meanwhile wait
    and then go out together, up to 256 in one enqueue.lua call. Each
    caller still gets its own JobId from Redis's reply, or its own
    exception: a call Redis refuses is sent again job by job, a caller
    cancelled while it waits is left out, and a waiter whose call does not
    leave within STALL_S (a connection gone silent) goes alone. So an app
    enqueueing one job per request gets enqueue_many's throughput under
    load and one round trip when idle."""

    def __init__(self, url: Optional[str] = None, namespace: Optional[str] = None, *,
                 max_payload: Optional[int] = None, min_replicas: Optional[int] = None) -> None:
        self._cfg = Config(url, namespace, max_payload, min_replicas)
        self._url_shown = redact(self._cfg.url)
        self._redis = target.connect(self._cfg.url, driver.connect_kwargs(self._cfg.url), asyncio=True)
        self._protocol = ops.ProtocolState()
        self._counts = partition.Counts()  # tenant -> its partition count, read once
        self._inflight = {}     # tenant -> monotonic time its enqueue call in flight left
        self._waiting = {}      # tenant -> [(checked spec, future)] for the next call
        self._tasks = set()     # the calls sending them

    @property
    def namespace(self) -> str:
        return self._cfg.namespace

    def _checked(self, tenant, gen):
        return ops.checked(self._cfg, self._url_shown, self._protocol, tenant, gen)

    async def _run(self, tenant, gen):
        return await driver.run_async(self._redis, self._url_shown, self._checked(tenant, gen))

    async def enqueue(self, tenant: str, kind: str, payload: Any = None, *, lane: Optional[str] = None,
                queue: Optional[str] = None, id: Optional[str] = None, unique: Optional[str] = None,
                delay: Optional[float] = None, attempts: Optional[int] = None,
                timeout: Optional[float] = None, expires: Optional[float] = None,
                unique_for: Optional[float] = None) -> JobId:
        """See Client.enqueue."""
        opts = dict(lane=lane, queue=queue, id=id, unique=unique, delay=delay, attempts=attempts,
                    timeout=timeout, expires=expires, unique_for=unique_for)
        spec = ops.resolve_one(self._cfg, tenant, kind, payload, opts)  # InvalidInput: nothing sent
        since = self._inflight.get(tenant)
        if since is None:
            self._inflight[tenant] = time.monotonic()
            try:
                return (await self._send(tenant, [spec]))[0]
            finally:
                self._next_call(tenant)
        if time.monotonic() - since < STALL_S:
            entry = (spec, asyncio.get_running_loop().create_future())
            self._waiting.setdefault(tenant, []).append(entry)
            try:
                return await asyncio.wait_for(asyncio.shield(entry[1]), STALL_S)
            except asyncio.TimeoutError:
                if not self._take_back(tenant, entry):
                    return await entry[1]  # in a call already: its answer comes from there
            except asyncio.CancelledError:
                self._take_back(tenant, entry)  # not sent yet: never will be
                raise
        # The call in flight seems stuck (a connection gone silent: there is
        # no read timeout): this job goes alone, on another connection.
        return (await self._send(tenant, [spec]))[0]

    async def _send(self, tenant, specs):
        return await self._run(tenant, ops.enqueue_resolved(self._cfg, self._counts, tenant, specs))

    def _take_back(self, tenant, entry):
        """Removes a waiter not yet taken into a call; False if it was."""
        waiting = self._waiting.get(tenant, [])
        for i, e in enumerate(waiting):
            if e is entry:
                del waiting[i]
                return True
        return False

    def _next_call(self, tenant):
        """After a call of tenant's: the next one for those who waited."""
        if self._waiting.get(tenant):
            self._inflight[tenant] = time.monotonic()
            task = asyncio.get_running_loop().create_task(self._send_waiting(tenant))
            self._tasks.add(task)  # a task nothing refers to may be collected mid-call
            task.add_done_callback(self._tasks.discard)
        else:
            self._inflight.pop(tenant, None)

    async def _send_waiting(self, tenant):
        waiting = self._waiting[tenant]
        batch = [e for e in waiting[:ops.CALL_JOBS] if not e[1].done()]
        del waiting[:ops.CALL_JOBS]
        try:
            if batch:
                await self._send_batch(tenant, batch)
        finally:
            self._next_call(tenant)

    async def _send_batch(self, tenant, batch):
        try:
            ids = await self._send(tenant, [spec for spec, _ in batch])
        except RedisUnavailable as e:
            # Unconfirmed by the replicas (min_replicas): the whole call was
            # written and not confirmed, so every waiter gets that answer
            # (sent again job by job, each would wait WAIT's second again).
            if e.outage or e.unconfirmed or len(batch) == 1:
                _settle(batch, e)
                return
            # Refused: a call of several jobs may fail on one of them
            # half-way, and Redis keeps what it wrote before. Each job goes
            # again alone, so each caller learns what its own job met (one
            # that went in already comes back as existing: created False).
            rest = list(batch)
            try:
                while rest:
                    entry = rest.pop(0)
                    try:
                        _settle([entry], None, (await self._send(tenant, [entry[0]]))[0])
                    except Exception as e1:  # noqa: BLE001 - that caller's own answer
                        _settle([entry], e1)
            except BaseException as e2:  # noqa: B902 - cancelled: the others are told too
                _settle(rest, e2)
                raise
        except BaseException as e:  # noqa: B902 - every waiter learns what this call met
            _settle(batch, e)
            if not isinstance(e, Exception):
                raise
        else:
            for entry, jid in zip(batch, ids):
                _settle([entry], None, jid)

    async def enqueue_many(self, tenant: str, jobs: Iterable[Dict[str, Any]]) -> List[JobId]:
        """See Client.enqueue_many."""
        return await self._run(tenant, ops.enqueue_many(self._cfg, self._counts, tenant, list(jobs) if not isinstance(jobs, (str, dict)) else jobs))

    async def status(self, tenant: str, job_id: str) -> Dict[str, Any]:
        """See Client.status."""
        return await self._run(tenant, ops.status(self._cfg, self._counts, tenant, job_id))

    async def wait(self, tenant: str, job_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """See Client.wait."""
        return await self._run(tenant, ops.wait(self._cfg, self._counts, tenant, job_id, timeout))

    async def cancel(self, tenant: str, job_id: str) -> str:
        """See Client.cancel."""
        return await self._run(tenant, ops.cancel(self._cfg, self._counts, tenant, job_id))

    async def retry(self, tenant: str, job_id: str) -> str:
        """See Client.retry."""
        return await self._run(tenant, ops.retry(self._cfg, self._counts, tenant, job_id))

    async def events(self, tenant: str, since: Optional[str] = None, follow: bool = False) -> AsyncIterator[Dict[str, Any]]:
        """See Client.events: `async for ev in c.events(...)`."""
        async for ev in driver.iter_async(self._redis, self._url_shown,
                                          self._checked(tenant, ops.events(self._cfg, self._counts, tenant, since, follow))):
            yield ev

    async def close(self) -> None:
        """Closes the connections."""
        if isinstance(self._redis, cluster.AsyncCluster):
            await self._redis.close()
            return
        await self._redis.close()
        await self._redis.connection_pool.disconnect()
        for node in target.sentinel_nodes(self._redis):
            await node.connection_pool.disconnect()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

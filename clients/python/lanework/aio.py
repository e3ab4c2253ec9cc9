"""lanework.AsyncClient: the same methods as Client, as coroutines on
redis.asyncio, for asyncio applications (FastAPI and the like)."""
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional

import redis.asyncio

from . import driver, ops
from .jobs import JobId
from .config import Config, redact
from .errors import InvalidInput


class AsyncClient:
    """Client's methods as coroutines (events: an async iterator). Create
    it anywhere; connections are made in the running loop at first use."""

    def __init__(self, url: Optional[str] = None, namespace: Optional[str] = None, *,
                 max_payload: Optional[int] = None) -> None:
        self._cfg = Config(url, namespace, max_payload)
        self._url_shown = redact(self._cfg.url)
        try:
            self._redis = redis.asyncio.Redis.from_url(self._cfg.url, **driver.connect_kwargs(self._cfg.url))
        except ValueError as e:
            raise InvalidInput('lanework: redis: %s: %s' % (self._url_shown, e)) from None
        self._protocol = ops.ProtocolState()

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
        return await self._run(tenant, ops.enqueue(self._cfg, tenant, kind, payload, opts))

    async def enqueue_many(self, tenant: str, jobs: Iterable[Dict[str, Any]]) -> List[JobId]:
        """See Client.enqueue_many."""
        return await self._run(tenant, ops.enqueue_many(self._cfg, tenant, list(jobs) if not isinstance(jobs, (str, dict)) else jobs))

    async def status(self, tenant: str, job_id: str) -> Dict[str, Any]:
        """See Client.status."""
        return await self._run(tenant, ops.status(self._cfg, tenant, job_id))

    async def wait(self, tenant: str, job_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """See Client.wait."""
        return await self._run(tenant, ops.wait(self._cfg, tenant, job_id, timeout))

    async def cancel(self, tenant: str, job_id: str) -> str:
        """See Client.cancel."""
        return await self._run(tenant, ops.cancel(self._cfg, tenant, job_id))

    async def retry(self, tenant: str, job_id: str) -> str:
        """See Client.retry."""
        return await self._run(tenant, ops.retry(self._cfg, tenant, job_id))

    async def events(self, tenant: str, since: Optional[str] = None, follow: bool = False) -> AsyncIterator[Dict[str, Any]]:
        """See Client.events: `async for ev in c.events(...)`."""
        async for ev in driver.iter_async(self._redis, self._url_shown,
                                          self._checked(tenant, ops.events(self._cfg, tenant, since, follow))):
            yield ev

    async def close(self) -> None:
        """Closes the connections."""
        await self._redis.close()
        await self._redis.connection_pool.disconnect()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

"""lanework.Client: enqueue and steer jobs from blocking Python code."""
from typing import Any, Dict, Iterable, Iterator, List, Optional

from . import cluster, driver, ops, partition, target
from .jobs import JobId
from .config import Config, redact


class Client:
    """A connection pool to one lanework Redis.

    url and namespace default as for the CLI: LANEWORK_REDIS_URL (else
    redis://127.0.0.1:6379/0) and LANEWORK_NAMESPACE (else lw);
    max_payload: LANEWORK_MAX_PAYLOAD, else 1 MiB (0: no limit);
    min_replicas: LANEWORK_MIN_REPLICAS, else 0 (N: every state change is
    followed by WAIT N 1000, and RedisUnavailable when fewer confirm it).
    url may be redis://, unix://, rediss:// (TLS: ca, cert, key, sni,
    insecure), redis-sentinel:// / rediss-sentinel:// or redis-cluster:// /
    rediss-cluster:// (each call on the master of its slot; README). Nothing is
    sent before the first call, which first checks that the Redis speaks
    this client's lanework protocol (ProtocolMismatch otherwise).
    Thread-safe, like the redis-py client under it."""

    def __init__(self, url: Optional[str] = None, namespace: Optional[str] = None, *,
                 max_payload: Optional[int] = None, min_replicas: Optional[int] = None) -> None:
        self._cfg = Config(url, namespace, max_payload, min_replicas)
        self._url_shown = redact(self._cfg.url)
        self._redis = target.connect(self._cfg.url, driver.connect_kwargs(self._cfg.url), asyncio=False)
        self._protocol = ops.ProtocolState()
        self._counts = partition.Counts()  # tenant -> its partition count, read once

    @property
    def namespace(self) -> str:
        return self._cfg.namespace

    def _run(self, tenant, gen):
        return driver.run(self._redis, self._url_shown, self._checked(tenant, gen))

    def _checked(self, tenant, gen):
        return ops.checked(self._cfg, self._url_shown, self._protocol, tenant, gen)

    def enqueue(self, tenant: str, kind: str, payload: Any = None, *, lane: Optional[str] = None,
                queue: Optional[str] = None, id: Optional[str] = None, unique: Optional[str] = None,
                delay: Optional[float] = None, attempts: Optional[int] = None,
                timeout: Optional[float] = None, expires: Optional[float] = None,
                unique_for: Optional[float] = None) -> JobId:
        """Enqueues one job; returns its id (a str; a JobId whose .created
        is False when an existing job was returned: `id` exists, or
        `unique` is held -- CONTRACT 4.5).

        payload: any JSON-serialisable value (None: null). lane: jobs of
        one lane run one at a time, in order (default: the job's own id).
        queue: default "default". delay, timeout, expires, unique_for:
        seconds. attempts: the maximum (default 3; timeout 180 s).
        Raises InvalidInput (nothing sent), RedisUnavailable,
        ProtocolMismatch."""
        opts = dict(lane=lane, queue=queue, id=id, unique=unique, delay=delay, attempts=attempts,
                    timeout=timeout, expires=expires, unique_for=unique_for)
        return self._run(tenant, ops.enqueue(self._cfg, self._counts, tenant, kind, payload, opts))

    def enqueue_many(self, tenant: str, jobs: Iterable[Dict[str, Any]]) -> List[JobId]:
        """Enqueues a list of job dicts (keys as enqueue's arguments: kind,
        payload, lane, queue, id, unique, delay, attempts, timeout, expires,
        unique_for), pipelined, 256 per script call. Every job is checked
        before anything is sent. Returns the ids in order (JobId, as
        enqueue)."""
        return self._run(tenant, ops.enqueue_many(self._cfg, self._counts, tenant, list(jobs) if not isinstance(jobs, (str, dict)) else jobs))

    def status(self, tenant: str, job_id: str) -> Dict[str, Any]:
        """The job as a dict: what `lanework status` prints. NoSuchJob when
        there is none; JobFailed (job None) when its record is corrupt."""
        return self._run(tenant, ops.status(self._cfg, self._counts, tenant, job_id))

    def wait(self, tenant: str, job_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Waits until the job ends; returns its status dict when it
        succeeded. JobFailed (with .job) when it ended failed, cancelled or
        expired; WaitTimeout after `timeout` seconds (None: no limit); a
        lost connection is waited out within the timeout."""
        return self._run(tenant, ops.wait(self._cfg, self._counts, tenant, job_id, timeout))

    def cancel(self, tenant: str, job_id: str) -> str:
        """Cancels the job: "cancelled" (it was waiting), or "requested" (it
        is running: its worker stops it). JobFailed when it had ended
        already; NoSuchJob."""
        return self._run(tenant, ops.cancel(self._cfg, self._counts, tenant, job_id))

    def retry(self, tenant: str, job_id: str) -> str:
        """Queues a failed, cancelled or expired job again with a fresh set
        of attempts; returns its id. InvalidInput when the job is in
        another status; NoSuchJob."""
        return self._run(tenant, ops.retry(self._cfg, self._counts, tenant, job_id))

    def events(self, tenant: str, since: Optional[str] = None, follow: bool = False) -> Iterator[Dict[str, Any]]:
        """Iterates over the tenant's events (dicts as `lanework events`
        prints), oldest first, after event id `since` when given; with
        follow, then waits for new ones for ever. A partitioned tenant's
        are merged in (id, partition) order, with follow too (an event is
        held until every partition's master's clock has passed it). Ids
        are the CLI's (`ID#P` for an event of partition P >= 1), and
        `since` takes any of them, resuming exactly after that event, as
        `lanework events --since`; InvalidInput for one that is not an
        event id, or names a partition the tenant does not have."""
        return driver.iterate(self._redis, self._url_shown, self._checked(tenant, ops.events(self._cfg, self._counts, tenant, since, follow)))

    def close(self) -> None:
        """Closes the connections (the client can not be used after)."""
        if isinstance(self._redis, cluster.Cluster):
            self._redis.close()
            return
        self._redis.close()
        self._redis.connection_pool.disconnect()
        for node in target.sentinel_nodes(self._redis):
            node.connection_pool.disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""The exceptions of lanework: one per exit status of the `lanework` CLI, so
code that shells out and code that imports the client handle failures the
same way. Each carries `.code`, the CLI's exit status."""


class LaneworkError(Exception):
    """Every error the client raises. `.code` is the CLI's exit status."""

    code = 1


class JobFailed(LaneworkError):
    """The job ended failed, cancelled or expired (exit 1), or its record is
    corrupt. `.job` is its status dict (None when it could not be read)."""

    code = 1

    def __init__(self, message, job=None):
        super().__init__(message)
        self.job = job


class InvalidInput(LaneworkError):
    """Bad input, refused before anything is written (exit 2): an unsafe
    name, a payload that is not JSON or over the limit, a bad number."""

    code = 2


class RedisUnavailable(LaneworkError):
    """Redis is unreachable or refused the command (exit 3): connection
    refused, timeout, OOM, READONLY, NOPERM... `.outage` is True for a lost
    connection (worth retrying) rather than a refusal. From enqueue_many,
    `.ids` lists the jobs that did go in (its calls run independently).
    `.unconfirmed` is True when the change was made on the master but
    fewer replicas than min_replicas confirmed it (it may be lost in a
    failover; sending it again is safe: an id or unique key returns the
    existing job)."""

    code = 3
    outage = False
    unconfirmed = False
    ids = None
    refusal = None  # the error reply's text when Redis refused (internal)


class ProtocolMismatch(LaneworkError):
    """This client and the Redis speak different lanework protocol versions
    (exit 3: Redis is refused, nothing was written). The message names
    both."""

    code = 3


class NoSuchJob(LaneworkError):
    """No job has that id (exit 4): never enqueued, or its retention ended."""

    code = 4


class WaitTimeout(LaneworkError):
    """wait() gave up before the job ended (exit 124)."""

    code = 124

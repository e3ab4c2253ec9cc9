"""rq_jobs.py — RQ's job for tests/bench/peers/run.sh (the worker imports it
from this directory, `rq worker --path`)."""


def noop(i):
    """A no-op: what the drain measures is the queue, not the job."""
    return None

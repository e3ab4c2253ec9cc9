"""A persistent handler for tests/integration/test_persistent.py, on
lanework.handler (clients/python on PYTHONPATH)."""
import os
import threading
import time

import lanework


@lanework.handler.kind("noop")
def noop(job):
    return {"pid": os.getpid()}


@lanework.handler.kind("steps")
def steps(job):
    print("this print goes to stderr, not the protocol")
    for i in range(job.payload.get("n", 3)):
        job.event("step.created", {"i": i})
    return {"pid": os.getpid(), "attempt": job.attempt, "id": job.id, "lane": job.lane, "tenant": job.tenant,
            "kind": job.kind, "payload": job.payload, "attempts": job.attempts, "timeout": job.timeout,
            "queue": job.queue, "spool_dir": job.spool_dir}


@lanework.handler.kind("chatty")
def chatty(job):
    import sys
    sys.stderr.write("x" * 5000 + "\n")
    for i in range(200):
        sys.stderr.write("chatty line %d\n" % i)
    sys.stderr.flush()
    return {"pid": os.getpid()}


@lanework.handler.kind("nap")
def nap(job):
    time.sleep(job.payload.get("s", 0.3))
    return {"pid": os.getpid(), "size": len(job.payload.get("blob", ""))}


@lanework.handler.kind("boom")
def boom(job):
    if job.attempt < job.payload.get("ok_at", 99):
        raise ValueError("boom on attempt %d" % job.attempt)
    return {"pid": os.getpid(), "attempt": job.attempt}


@lanework.handler.kind("fail")
def fail(job):
    raise lanework.Fail("nope: %s" % job.payload.get("why"))


@lanework.handler.kind("crash")
def crash(job):
    if job.attempt == 1:
        os._exit(3)
    return {"pid": os.getpid(), "attempt": job.attempt}


@lanework.handler.kind("hang")
def hang(job):
    time.sleep(600)


@lanework.handler.kind("exit_after")
def exit_after(job):
    threading.Timer(0.05, os._exit, (0,)).start()
    return {"pid": os.getpid()}


@lanework.handler.kind("cancellable")
def cancellable(job):
    job.event("step.created", {"waiting": True})
    if job.wait_cancelled(30):
        raise lanework.Fail("cancelled")
    return {"pid": os.getpid()}


if __name__ == "__main__":
    lanework.handler.run()

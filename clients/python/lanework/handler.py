"""The handler side of persistent exec handlers (CONTRACT section 11).

    import lanework

    @lanework.handler.kind("exam")
    def exam(job):
        job.event("step.created", {"step": 1})
        return {"score": 42}

    if __name__ == "__main__":
        lanework.handler.run()

The worker starts this process with LANEWORK_PROTOCOL=1 and writes one JSON
line per attempt on its stdin; run() answers each on stdout with "event"
lines, then one "result" or "error" line. stdout is the protocol, so while a
function runs, sys.stdout points at stderr: its print() calls land in the
worker's log instead of corrupting the protocol. An exception is an error
the worker retries (its text: the traceback's last line); Fail is one it
does not retry. A cancel line from the worker sets job.cancelled; stdin is
read on a thread so that it is seen while the function runs.
"""
import json
import os
import queue
import sys
import threading
import traceback

PROTOCOL = "1"
EX_PROTOCOL = 78  # EX_CONFIG: the worker fails the job without retrying

_kinds = {}


class Fail(Exception):
    """Raise to fail the job without a retry."""


def kind(name):
    """Decorator: registers fn(job) as the handler of jobs of kind `name`."""
    def register(fn):
        _kinds[name] = fn
        return fn
    return register


class Job:
    """One attempt, as the worker described it."""

    def __init__(self, msg, emit, cancel=None):
        self.id = msg.get("id")
        self.kind = msg.get("kind")
        self.tenant = msg.get("tenant")
        self.queue = msg.get("queue")
        self.lane = msg.get("lane")
        self.payload = msg.get("payload")
        self.attempt = msg.get("attempt")
        self.attempts = msg.get("attempts")
        self.timeout = msg.get("timeout")
        self.spool_dir = msg.get("spool_dir")
        self._emit = emit
        self._cancel = cancel or threading.Event()

    @property
    def cancelled(self):
        """True once the worker asked this attempt to stop (a cancel)."""
        return self._cancel.is_set()

    def wait_cancelled(self, timeout=None):
        """Sleeps until cancelled or `timeout` seconds; returns .cancelled."""
        return self._cancel.wait(timeout)

    def event(self, type, data=None):
        """Appends an event (e.g. "step.created") to the job's events."""
        self._emit({"type": "event", "event": str(type), "data": data})


def _reader(stream, jobs, flags):
    """stdin: job lines go to the queue with a cancel flag made here, so a
    cancel that follows its job at once is not lost; cancel lines set it.
    EOF (the worker closed stdin to stop us) ends the queue."""
    for raw in stream:
        try:
            msg = json.loads(raw)
        except ValueError:
            sys.stderr.write("lanework.handler: ignoring a line that is not JSON from the worker\n")
            continue
        if msg.get("type") == "cancel":
            flag = flags.get(msg.get("id"))
            if flag is not None:
                flag.set()
        elif msg.get("type") == "job":
            flag = flags[msg.get("id")] = threading.Event()
            jobs.put((msg, flag))
    jobs.put(None)


def _error_text(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def run(kinds=None):
    """Serves jobs until the worker closes stdin. `kinds` (a dict name ->
    function) adds to what @kind registered."""
    table = dict(_kinds)
    table.update(kinds or {})
    got = os.environ.get("LANEWORK_PROTOCOL")
    if got != PROTOCOL:
        sys.stderr.write("lanework.handler: the worker speaks LANEWORK_PROTOCOL=%s, this handler speaks %s only; "
                         "upgrade lanework on one side\n" % (got, PROTOCOL))
        sys.stderr.flush()
        sys.exit(EX_PROTOCOL)
    # The protocol channel is our own duplicate of fd 1; fd 1 and sys.stdout
    # become stderr, so print() and child processes cannot write into it.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def emit_line(line):
        with lock:
            out.write(line + "\n")

    def emit(obj):
        emit_line(json.dumps(obj, separators=(",", ":"), default=str))

    jobs = queue.Queue()
    flags = {}
    stdin = os.fdopen(os.dup(0), "r", buffering=1, encoding="utf-8")
    threading.Thread(target=_reader, args=(stdin, jobs, flags), daemon=True).start()
    while True:
        item = jobs.get()
        if item is None:
            return
        msg, flag = item
        job = Job(msg, emit, flag)
        fn = table.get(job.kind)
        try:
            if fn is None:
                raise Fail("this handler has no function for kind %r (has: %s)" % (job.kind, ", ".join(sorted(table))))
            result = fn(job)
            try:
                answer = json.dumps({"type": "result", "result": result}, separators=(",", ":"))
            except (TypeError, ValueError) as e:
                raise Fail("the result is not JSON: %s" % e)
        except Fail as e:
            answer = {"type": "error", "error": str(e) or "failed", "retry": False}
        except Exception as e:  # noqa: BLE001 - every error is the job's, never the loop's
            traceback.print_exc(file=sys.stderr)
            answer = {"type": "error", "error": _error_text(e), "retry": True}
        finally:
            flags.pop(job.id, None)
        sys.stderr.flush()
        emit_line(answer if isinstance(answer, str) else json.dumps(answer, separators=(",", ":")))

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
lines, then one "result" or "error" line. The protocol's pipes are moved to
private descriptors: while a function runs, fd 0 is /dev/null and fd 1 and
sys.stdout are stderr, so its print() calls (and its child processes) land
in the worker's log instead of corrupting the protocol. An exception is an
error the worker retries (its text: the traceback's last line); Fail is one
it does not retry.

Cancellation: the worker may send a cancel line while a function runs.
job.cancelled reads what has arrived (without waiting); job.wait_cancelled
starts a watcher thread. A function that never asks pays no thread hand-off
per job: the main thread reads the next job itself.
"""
import json
import os
import select
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


class _Input:
    """The worker's lines on a private non-blocking descriptor. Both the
    main thread (between jobs) and a job's cancel watcher read it; the lock
    guards the buffer, never a blocking call."""

    def __init__(self, fd):
        self.fd = fd
        os.set_blocking(fd, False)
        self.buf = b""
        self.eof = False
        self.lock = threading.Lock()

    def _fill(self):
        """Reads what is there (under the lock): bytes read, 0 when none
        are waiting, -1 at EOF."""
        if self.eof:
            return -1
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return 0
        if not chunk:
            self.eof = True
            return -1
        self.buf += chunk
        return len(chunk)

    def take(self, want_job):
        """The next whole line as a dict, or None. want_job False: only
        cancel lines are taken (a job line stays for the main thread)."""
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0:
                return None
            line = self.buf[:nl]
            try:
                msg = json.loads(line) if line.strip() else None
            except ValueError:
                msg = "bad"
            if not want_job and isinstance(msg, dict) and msg.get("type") == "job":
                return None
            self.buf = self.buf[nl + 1:]
            if msg == "bad":
                sys.stderr.write("lanework.handler: ignoring a line that is not JSON from the worker\n")
            elif isinstance(msg, dict):
                return msg

    def wait(self, timeout):
        """Until readable or `timeout` (None: forever)."""
        try:
            select.select([self.fd], [], [], timeout)
        except InterruptedError:
            pass


class Job:
    """One attempt, as the worker described it."""

    def __init__(self, msg, emit, inp=None):
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
        self._inp = inp
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._watcher = None
        self._watch_lock = threading.Lock()

    def _poll(self):
        """Takes the cancel lines that have arrived, without waiting.
        -1 at EOF, else the bytes read (0: nothing new). Under the lock, and
        only while the job runs: once it is done, a cancel in the buffer may
        be the next job's."""
        inp = self._inp
        with inp.lock:
            if self._done.is_set():
                return -1
            got = 0
            while True:
                msg = inp.take(False)
                while msg is not None:
                    if msg.get("type") == "cancel" and msg.get("id") == self.id:
                        self._cancel.set()
                    msg = inp.take(False)
                if got != 0:
                    return got
                got = inp._fill()
                if got <= 0:
                    return got

    def _watch(self):
        while not self._cancel.is_set():
            got = self._poll()
            if got < 0:
                if not self._done.is_set():
                    # The worker closed stdin (it wants us gone): a function
                    # that listens for a cancel should hear it too.
                    self._cancel.set()
                return
            if got == 0:
                self._inp.wait(0.05)

    def _ensure_watcher(self):
        if self._inp is None or self._watcher is not None:
            return
        with self._watch_lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="lanework-cancel", daemon=True)
                self._watcher.start()

    @property
    def cancelled(self):
        """True once the worker asked this attempt to stop (a cancel)."""
        if self._inp is not None and not self._cancel.is_set():
            self._poll()
        return self._cancel.is_set()

    def wait_cancelled(self, timeout=None):
        """Sleeps until cancelled or `timeout` seconds; returns .cancelled."""
        self._ensure_watcher()
        return self._cancel.wait(timeout)

    def event(self, type, data=None):
        """Appends an event (e.g. "step.created") to the job's events."""
        self._emit({"type": "event", "event": str(type), "data": data})


def _error_text(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def _next_job(inp):
    """The next job line (cancel lines of jobs already over are dropped),
    or None at EOF: the worker closed stdin to stop us."""
    while True:
        with inp.lock:
            msg = inp.take(True)
            while msg is not None and msg.get("type") != "job":
                msg = inp.take(True)
            if msg is not None:
                return msg
            got = inp._fill()
            if got < 0:
                return None
        if got == 0:
            inp.wait(None)


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
    # The protocol keeps private duplicates of fds 0 and 1; the function
    # and its children get /dev/null and stderr there instead.
    out_fd, in_fd = os.dup(1), os.dup(0)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    inp = _Input(in_fd)
    lock = threading.Lock()

    def emit_line(line):
        data = (line + "\n").encode("utf-8")
        with lock:
            while data:
                data = data[os.write(out_fd, data):]

    def emit(obj):
        emit_line(json.dumps(obj, separators=(",", ":"), default=str, allow_nan=False))

    while True:
        msg = _next_job(inp)
        if msg is None:
            return
        job = Job(msg, emit, inp)
        fn = table.get(job.kind)
        try:
            if fn is None:
                raise Fail("this handler has no function for kind %r (has: %s)" % (job.kind, ", ".join(sorted(table))))
            result = fn(job)
            try:
                answer = json.dumps({"type": "result", "result": result}, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as e:
                raise Fail("the result is not JSON: %s" % e)
        except Fail as e:
            answer = {"type": "error", "error": str(e) or "failed", "retry": False}
        except Exception as e:  # noqa: BLE001 - every error is the job's, never the loop's
            traceback.print_exc(file=sys.stderr)
            answer = {"type": "error", "error": _error_text(e), "retry": True}
        finally:
            job._done.set()
        sys.stderr.flush()
        emit_line(answer if isinstance(answer, str) else json.dumps(answer, separators=(",", ":")))

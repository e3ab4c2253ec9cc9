#!/usr/bin/env python3
"""ticker.py — testmod's `ticker` kind as an exec handler (Python 3, stdlib).

Run by lanework-worker once per attempt (registry:
`"exec": {"ticker": [sys.executable, lwtest.TICKER]}`):
  stdin        the payload JSON: {"record": PATH, "ms": 1000, "every_ms": 20}
  environment  LANEWORK_JOB_ID, LANEWORK_LANE (set by the worker)

It appends to the file payload.record (when absent: $LW_RECORD_FILE; the
worker passes every variable not starting with LANEWORK_ through) lines in
the format of testmod's record file, which lwtest's Env.records() parses
when the file is env.record_file:
  START <ms> <id> <lane> <pid>    at the start
  TICK  <ms> <id> <lane> <pid>    every payload.every_ms (default 20)
  END   <ms> <id> <lane> <pid>    after payload.ms (default 1000); exit 0
  STOP  <ms> <id> <lane> <pid>    on SIGTERM (timeout, cancel, hand-back); exit 1
ms is time.monotonic() in milliseconds (CLOCK_MONOTONIC, the clock testmod
uses), pid os.getpid(). Each line is one os.write() to a file opened
O_APPEND, so lines of concurrent attempts never interleave. Bad input
(no record file, payload not an object): exit 65, failed without retry.
"""
import json
import os
import signal
import sys
import time

EX_DATAERR = 65


def main():
    try:
        payload = json.loads(sys.stdin.read() or 'null')
    except ValueError as e:
        sys.stderr.write('ticker: payload is not JSON: %s\n' % e)
        return EX_DATAERR
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        sys.stderr.write('ticker: payload must be a JSON object\n')
        return EX_DATAERR
    path = payload.get('record') or os.environ.get('LW_RECORD_FILE')
    if not path:
        sys.stderr.write('ticker: no record file (payload.record or LW_RECORD_FILE)\n')
        return EX_DATAERR
    total = float(payload.get('ms', 1000))
    every = max(1.0, float(payload.get('every_ms', 20)))
    jid = os.environ.get('LANEWORK_JOB_ID', '-')
    lane = os.environ.get('LANEWORK_LANE', jid)
    pid = os.getpid()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def line(what):
        ms = time.monotonic_ns() // 1000000
        os.write(fd, ('%s %d %s %s %d\n' % (what, ms, jid, lane, pid)).encode())

    stopped = []

    def on_term(_sig, _frame):
        stopped.append(True)

    signal.signal(signal.SIGTERM, on_term)
    line('START')
    t0 = time.monotonic() * 1000
    end, nxt = t0 + total, t0 + every
    while not stopped:
        now = time.monotonic() * 1000
        if now >= end:
            break
        if now >= nxt:
            line('TICK')
            nxt += every
            if nxt <= now:  # fell behind (frozen): no burst of ticks
                nxt = now + every
            continue
        time.sleep(min(min(nxt, end) - now, 10) / 1000)
    if stopped:
        line('STOP')
        sys.stderr.write('ticker: stopped (SIGTERM)\n')
        return 1
    line('END')
    print(json.dumps({'ticker': jid}))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""scale.py — does a drained job cost Redis the same whatever the tenant holds?

Issue 12's goal 6: claim and finish cost per job within 1.2x from 1,000 to
1,000,000 queued jobs, and from 10 to 100,000 lanes. For each backlog below,
a plain redis-server (a unix socket in a temp dir) is filled by FCALL of
enqueue.lua (256 jobs per call, pipelined), SAVEd, and loaded again by a
redis-server under callgrind (scriptcount.py's Counted: instructions inside
EVAL/FCALL only, which do not move with the machine's load). There
claim.lua and finish.lua run in turns of 8 jobs (scriptcount.turns: as
many turns to warm up as are counted), and the instructions per drained job
are printed with their ratio to the smallest backlog's.

    tests/bench/scale.py [--big 1000000] [--rounds 8] [--batch 8]

  own lanes   1,000 and --big jobs queued, each on its own lane (no --lane)
  lanes       100,000 jobs over 10 lanes, and over 100,000 lanes

Needs valgrind and redis-server; takes a few minutes (filling --big jobs
and loading them under valgrind). Exits 2 when valgrind is missing.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import latency  # noqa: E402 (its RESP encoder)
import scriptcost  # noqa: E402
import scriptcount  # noqa: E402

P, EV = scriptcount.P, scriptcount.EV


def fill_calls(n, lanes):
    """enqueue.lua's (keys, argv) for n no-op jobs, 256 per call: each on its
    own lane (lanes None) or spread round-robin over `lanes` lanes."""
    keys = [P + k for k in ('events', 'schedule', 'stats', 'queues', 'expiring')]
    for start in range(0, n, 256):
        batch = range(start, min(n, start + 256))
        argv = [P, EV, len(batch), 1]  # 1: unpartitioned
        for i in batch:
            jid = 'j%09d' % i
            lane = jid if lanes is None else 'lane-%d' % (i % lanes)
            argv += [jid, 'noop', 'default', lane, '{"i":%d}' % i, 3, 60000, 100, 0, 0, '', '', 0]
        yield keys, argv


def fill(tmp, n, lanes):
    """A dump.rdb in tmp holding the function library and n queued jobs."""
    sock = os.path.join(tmp, 'fill.sock')
    proc = subprocess.Popen(['redis-server', '--port', '0', '--unixsocket', sock, '--dir', tmp,
                             '--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if time.monotonic() > deadline:
                raise SystemExit('scale.py: redis-server did not start')
            time.sleep(0.05)
        time.sleep(0.1)
        r = scriptcost.Redis(sock)
        text, h = scriptcost.library()
        r.call('FUNCTION', 'LOAD', 'REPLACE', text)
        fn = 'lw_%s_enqueue' % h
        pending = []

        def drain_replies():
            for _ in pending:
                rep = r._reply()
                if not isinstance(rep, list) or len(rep) % 3:
                    raise SystemExit('scale.py: enqueue.lua replied %r' % (rep,))
            pending.clear()

        for keys, argv in fill_calls(n, lanes):
            r.s.sendall(latency.Redis.encode(['FCALL', fn, len(keys)] + keys + argv))
            pending.append(1)
            if len(pending) == 32:
                drain_replies()
        drain_replies()
        queued = r.call('HGET', P + 'stats', 'queued:default')
        if int(queued) != n:
            raise SystemExit('scale.py: %s jobs queued, not %d' % (queued, n))
        r.call('SAVE')
    finally:
        proc.terminate()
        proc.wait()


def measure(n, lanes, batch, rounds):
    tmp = tempfile.mkdtemp(prefix='lw-scale-')
    try:
        t0 = time.monotonic()
        fill(tmp, n, lanes)
        c = scriptcount.Counted(tmp, ['--dir', tmp, '--dbfilename', 'dump.rdb'])
        try:
            deadline = time.monotonic() + 900
            while True:  # the RDB loads under valgrind: LOADING until then
                try:
                    c.r.call('PING')
                    break
                except RuntimeError as e:
                    if not str(e).startswith('LOADING') or time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            call = scriptcount.Caller(c.r, True)
            ci, fi = scriptcount.turns(c, call, batch, rounds)
        finally:
            c.stop()
        return ci, fi, time.monotonic() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--big', type=int, default=1000000, help='the large backlog (default 1,000,000)')
    ap.add_argument('--lane-jobs', type=int, default=100000, help='jobs of the lanes measures (default 100,000)')
    ap.add_argument('--rounds', type=int, default=8)
    ap.add_argument('--batch', type=int, default=8)
    a = ap.parse_args()
    if not shutil.which('valgrind') or not shutil.which('callgrind_control'):
        print('scale.py: valgrind is not installed (scripts/install-deps.sh --dev)', file=sys.stderr)
        return 2
    groups = [('queued jobs, own lanes', [('1,000 queued', 1000, None),
                                          ('{:,} queued'.format(a.big), a.big, None)]),
              ('lanes, {:,} jobs'.format(a.lane_jobs), [('10 lanes', a.lane_jobs, 10),
                                                       ('{:,} lanes'.format(a.lane_jobs), a.lane_jobs, a.lane_jobs)])]
    print('Instructions Redis ran per drained job (FCALL; claim/finish turns of %d; callgrind):' % a.batch)
    print('  %-24s %-22s %10s %10s %12s %6s' % ('measure', 'backlog', 'claim', 'finish', 'drained job', 'ratio'))
    for name, cases in groups:
        base = None
        for label, n, lanes in cases:
            ci, fi, secs = measure(n, lanes, a.batch, a.rounds)
            base = base or ci + fi
            print('  %-24s %-22s %10.0f %10.0f %12.0f %5.2fx   (%.0f s)'
                  % (name, label, ci, fi, ci + fi, (ci + fi) / base, secs), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""scriptcost.py — Redis CPU per job of each lanework Lua script.

Drives enqueue.lua, claim.lua and finish.lua directly (no worker, no CLI),
with the same KEYS/ARGV layout and batch sizes the binaries send, on a Redis
given by its unix socket, and reads INFO commandstats around each phase. For
each script it prints the microseconds Redis spent per job (EVALSHA time),
how many redis.call commands per job the script ran, and how much of the time
those commands themselves took (the rest is Lua and redis.call glue). It
ends with the commands that cost the most per drained job.

Used by bench.sh; can be run on its own against a scratch Redis:
    scriptcost.py --socket /path/redis.sock [--jobs N] [--ns NS]
It FLUSHALLs that Redis. The script bodies are built by common/scripts/embed.py,
as for the binaries.
"""
import argparse
import os
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, 'common', 'scripts')


class Redis:
    """A minimal blocking RESP2 client over a unix socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile('rb')

    def call(self, *args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        self.s.sendall(b''.join(out))
        return self._reply()

    def _reply(self):
        line = self.f.readline()[:-2]
        t, rest = line[:1], line[1:]
        if t == b'+':
            return rest.decode()
        if t == b'-':
            raise RuntimeError(rest.decode())
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode('utf-8', 'replace')
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError('bad reply %r' % line)


def embed_module():
    """common/scripts/embed.py of SCRIPTS."""
    sys.path.insert(0, SCRIPTS)
    try:
        import embed  # noqa: E402
        return embed
    finally:
        sys.path.remove(SCRIPTS)


def script_body(name):
    """The script as the binaries send it (common/scripts/embed.py)."""
    sys.path.insert(0, SCRIPTS)
    try:
        import embed  # noqa: E402
        return embed.load(name)
    finally:
        sys.path.remove(SCRIPTS)


def library():
    """(text, hash) of the function library of every script, as the binaries
    FUNCTION LOAD it (common/scripts/embed.py)."""
    sys.path.insert(0, SCRIPTS)
    try:
        import embed  # noqa: E402
        with open(os.path.join(SCRIPTS, 'lib.lua'), encoding='utf-8') as f:
            lib = f.read()
        scripts = []
        for fn in sorted(os.listdir(SCRIPTS)):
            if fn.endswith('.lua') and fn != 'lib.lua':
                with open(os.path.join(SCRIPTS, fn), encoding='utf-8') as f:
                    scripts.append((fn[:-4], f.read()))
        return embed.library(lib, scripts)
    finally:
        sys.path.remove(SCRIPTS)


def enqueue_calls(P, ev, n, per_call=256):
    """(keys, argv) of each enqueue.lua call that enqueues n no-op jobs,
    `per_call` per call (256: as the CLI's --batch sends them): 9 in 10 jobs
    on their own lane, 1 in 10 on one of n/200 shared lanes."""
    lanes = max(1, n // 200)
    keys = [P + k for k in ('events', 'schedule', 'stats', 'queues', 'expiring')]
    for start in range(0, n, per_call):
        batch = range(start, min(n, start + per_call))
        argv = [P, ev, len(batch), 1]  # 1: unpartitioned
        for i in batch:
            jid = 'j%09d' % i
            lane = 'shared-%d' % ((i // 10) % lanes) if i % 10 == 0 else jid
            argv += [jid, 'noop', 'default', lane, '{"i":%d}' % i, 3, 60000, 100, 0, 0, '', '', 0]
        yield keys, argv


def cmdstats(r):
    """{command: (calls, usec)} from INFO commandstats."""
    out = {}
    for line in r.call('INFO', 'commandstats').splitlines():
        if not line.startswith('cmdstat_'):
            continue
        name, _, rest = line[len('cmdstat_'):].partition(':')
        f = dict(kv.split('=') for kv in rest.split(','))
        out[name] = (int(f['calls']), int(f['usec']))
    return out


def delta(a, b):
    d = {}
    for k, (c, u) in b.items():
        c0, u0 = a.get(k, (0, 0))
        if c - c0:
            d[k] = (c - c0, u - u0)
    return d


class Phase:
    def __init__(self, r):
        self.r = r
        self.total = {}

    def __enter__(self):
        self.before = cmdstats(self.r)
        return self

    def __exit__(self, *exc):
        for k, (c, u) in delta(self.before, cmdstats(self.r)).items():
            c0, u0 = self.total.get(k, (0, 0))
            self.total[k] = (c0 + c, u0 + u)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--socket', required=True)
    ap.add_argument('--jobs', type=int, default=20000)
    ap.add_argument('--ns', default='lw')
    ap.add_argument('--tenant', default='bench')
    ap.add_argument('--events-max', type=int, default=100000)
    ap.add_argument('--repeat', type=int, default=3,
                    help='measure each phase this many times and keep the cheapest (default 3): '
                         'on a shared machine the slower repeats are other processes taking the CPU')
    args = ap.parse_args()

    r = Redis(args.socket)
    sha = {n: r.call('SCRIPT', 'LOAD', script_body(n)) for n in ('enqueue', 'claim', 'finish')}
    P = '%s:{%s}:' % (args.ns, args.tenant)
    ev = args.events_max
    n = args.jobs
    best = {}  # (script, batch) -> row with the fewest us/job over the repeats
    drain_best = None  # (us/job, commands) of the cheapest claim+finish pass of batches of 8

    def enqueue_all():
        for keys, argv in enqueue_calls(P, ev, n):
            r.call('EVALSHA', sha['enqueue'], len(keys), *keys, *argv)

    def claim(want):
        keys = [P + k for k in ('events', 'schedule', 'stats', 'expiring', 'fence')]
        keys += [P + 'ready:default', P + 'active:default']
        argv = [P, ev, 'scriptcost', 15000, want, 604800, 1, 'default', 0]
        rep = r.call('EVALSHA', sha['claim'], len(keys), *keys, *argv)
        jobs = rep[0]
        return [(jobs[k], jobs[k + 1]) for k in range(0, len(jobs), 12)]

    def finish(done):
        keys = [P + k for k in ('events', 'schedule', 'stats', 'failed')]
        argv = [P, ev, 'scriptcost', 3600, 604800, len(done)]
        for jid, token in done:
            argv += [jid, token, 'ok', '', 0, '']
        rep = r.call('EVALSHA', sha['finish'], len(keys), *keys, *argv)
        bad = [x for x in rep if x != 'succeeded']
        if bad:
            raise RuntimeError('finish.lua said %s' % bad[:5])

    def row(name, batch, st):
        calls, usec = st.get('evalsha', (0, 0))
        inner = {k: v for k, v in st.items() if k != 'evalsha'}
        icalls = sum(c for c, _ in inner.values())
        iusec = sum(u for _, u in inner.values())
        r_ = (name, batch, calls, usec / n, icalls / n, iusec / n)
        if (name, batch) not in best or r_[3] < best[(name, batch)][3]:
            best[(name, batch)] = r_
        return r_[3], inner

    for claim_batch, finish_batch in ((8, 8), (256, 1000)) * args.repeat:
        r.call('FLUSHALL')
        enq = Phase(r)
        with enq:
            enqueue_all()
        if claim_batch == 8:
            row('enqueue.lua', 256, enq.total)
        cl, fi = Phase(r), Phase(r)
        left = n
        while left > 0:
            claimed = []
            with cl:
                while True:
                    got = claim(claim_batch)
                    if not got:
                        break
                    claimed += got
            if not claimed:
                raise RuntimeError('claim.lua found nothing with %d jobs left' % left)
            with fi:
                for k in range(0, len(claimed), finish_batch):
                    finish(claimed[k:k + finish_batch])
            left -= len(claimed)
        ua_, a = row('claim.lua', claim_batch, cl.total)
        ub_, b = row('finish.lua', finish_batch, fi.total)
        if claim_batch == 8 and (drain_best is None or ua_ + ub_ < drain_best[0]):
            cmds = {}
            for k in set(a) | set(b):
                ca, ua = a.get(k, (0, 0))
                cb, ub = b.get(k, (0, 0))
                cmds[k] = (ca + cb, ua + ub)
            drain_best = (ua_ + ub_, cmds)
    r.call('FLUSHALL')
    rows = [best[k] for k in (('enqueue.lua', 256), ('claim.lua', 8), ('finish.lua', 8),
                              ('claim.lua', 256), ('finish.lua', 1000))]
    drain_cmds = drain_best[1]

    print('Redis time per job of each script (%d no-op jobs, 1 in 10 on shared lanes; EVALSHA time, '
          'cheapest of %d):' % (n, args.repeat))
    print('  %-12s %6s %8s %10s %14s %14s %12s' % ('script', 'batch', 'calls', 'us/job', 'commands/job',
                                                   'commands us', 'Lua+glue us'))
    for name, batch, calls, us, cj, cu in rows:
        print('  %-12s %6d %8d %10.1f %14.1f %14.1f %12.1f' % (name, batch, calls, us, cj, cu, us - cu))
    print('  drain (claim + finish, batches of 8): %.1f us of Redis time per job -> at most %s jobs/s '
          'with Redis 100%% busy' % (drain_best[0], format(int(1e6 / drain_best[0]), ',')))
    top = sorted(drain_cmds.items(), key=lambda kv: -kv[1][1])[:8]
    print('  commands inside claim+finish, per drained job: ' +
          ', '.join('%s %.2fx %.1fus' % (k.upper(), c / n, u / n) for k, (c, u) in top))


if __name__ == '__main__':
    try:
        main()
    except (OSError, RuntimeError) as e:
        sys.stderr.write('scriptcost: %s\n' % e)
        sys.exit(1)

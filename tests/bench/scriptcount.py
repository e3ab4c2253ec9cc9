#!/usr/bin/env python3
"""scriptcount.py — instructions Redis executes per job in each lanework script.

The same calls as scriptcost.py (enqueue.lua, claim.lua, finish.lua, with the
KEYS/ARGV the binaries send), on a private redis-server run under
`valgrind --tool=callgrind`, collecting only inside EVAL/EVALSHA
(evalGenericCommand) and FCALL (fcallCommand). Each figure is
given for both ways of calling: EVALSHA of the scripts' bodies, and FCALL
of the function library (docs/DESIGN.md section 10). Instruction counts do not depend on the machine's load,
so two versions of the scripts can be compared on a busy machine, where
microseconds move by +-25 % from run to run.

    tests/bench/scriptcount.py [--scripts DIR] [--batch 8 --batch 64] [--costs] [--evalsha-only]

--scripts DIR measures the scripts of another checkout (a directory holding
lib.lua, embed.py and the scripts), e.g. to compare with an older commit:
    mkdir /tmp/old && for f in common/scripts/*; do
        git show OLD:$f > /tmp/old/${f##*/}; done
    tests/bench/scriptcount.py --scripts /tmp/old
--costs also prints what single commands and pieces of script set-up cost,
measured the same way (the cost model of docs/DESIGN.md section 10).

Needs valgrind (callgrind_control comes with it) and redis-server. Takes
about a minute. Exits 2 when valgrind is missing.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scriptcost  # noqa: E402  (the RESP client and the script bodies)

P = 'lw:{bench}:'
EV = 100000


class Counted:
    """A redis-server under callgrind; total() is the instruction count
    inside EVAL since the previous total()."""

    def __init__(self, tmp, extra=()):
        self.tmp = tmp
        self.sock = os.path.join(tmp, 'redis.sock')
        self.proc = subprocess.Popen(
            ['valgrind', '--tool=callgrind', '--toggle-collect=evalGenericCommand',
             '--toggle-collect=fcallCommand',
             '--callgrind-out-file=' + os.path.join(tmp, 'cg.out'),
             'redis-server', '--port', '0', '--unixsocket', self.sock, '--save', '', '--appendonly', 'no']
            + list(extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit('scriptcount.py: redis-server under valgrind did not start')
            time.sleep(0.2)
        self.r = scriptcost.Redis(self.sock)
        self.total()

    def total(self):
        for f in glob.glob(os.path.join(self.tmp, 'cg.out*')):
            os.unlink(f)
        subprocess.check_call(['callgrind_control', '-d', str(self.proc.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for f in glob.glob(os.path.join(self.tmp, 'cg.out.*')):
                with open(f) as fh:
                    text = fh.read()
                for line in text.splitlines():
                    if line.startswith('totals:') or line.startswith('summary:'):
                        return int(line.split()[1])
            time.sleep(0.05)
        raise SystemExit('scriptcount.py: callgrind wrote no dump')

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Caller:
    """Calls a script by EVALSHA of its body or by FCALL of its function."""

    def __init__(self, r, fcall):
        self.r, self.fcall = r, fcall
        if fcall:
            text, self.h = scriptcost.library()
            r.call('FUNCTION', 'LOAD', 'REPLACE', text)
        else:
            self.sha = {n: r.call('SCRIPT', 'LOAD', scriptcost.script_body(n)) for n in ('enqueue', 'claim', 'finish')}

    def __call__(self, name, keys, argv):
        if self.fcall:
            return self.r.call('FCALL', 'lw_%s_%s' % (self.h, name), len(keys), *keys, *argv)
        return self.r.call('EVALSHA', self.sha[name], len(keys), *keys, *argv)


def enqueue_one(c, call, jobs):
    """Ir per job of enqueue.lua called with one job per call (a client's
    enqueue())."""
    c.r.call('FLUSHALL')
    c.total()
    for keys, argv in scriptcost.enqueue_calls(P, EV, jobs, per_call=1):
        call('enqueue', keys, argv)
    return c.total() / jobs


def drain(c, call, jobs, batch, rounds):
    """Ir per job: enqueue (batches of 256), then claim and finish in turns
    (batches of `batch`), counted over `rounds` turns after as many to warm
    up. 1 in 10 jobs is on a shared lane, as in scriptcost.py."""
    r = c.r
    r.call('FLUSHALL')
    c.total()
    for keys, argv in scriptcost.enqueue_calls(P, EV, jobs):
        call('enqueue', keys, argv)
    enq = c.total() / jobs
    ci, fi = turns(c, call, batch, rounds)
    return enq, ci, fi


def turns(c, call, batch, rounds, prefix=P):
    """Ir per job of claim.lua and of finish.lua over `rounds` claim+finish
    turns of `batch` jobs on what the tenant holds, after as many turns to
    warm up."""
    ck = [prefix + k for k in ('events', 'schedule', 'stats', 'expiring', 'fence')]
    ck += [prefix + 'ready:default', prefix + 'active:default']
    fk = [prefix + k for k in ('events', 'schedule', 'stats', 'failed')]

    def claim():
        rep = call('claim', ck, [prefix, EV, 'scriptcount', 15000, batch, 604800, 1, 'default', 0])
        js = rep[0]
        return [(js[k], js[k + 1]) for k in range(0, len(js), 12)]

    def finish(part):
        argv = [prefix, EV, 'scriptcount', 3600, 604800, len(part)]
        for jid, tok in part:
            argv += [jid, tok, 'ok', '', 0, '']
        out = call('finish', fk, argv)
        if any(x != 'succeeded' for x in out):
            raise SystemExit('scriptcount.py: finish.lua said %s' % out[:3])

    for _ in range(rounds):
        finish(claim())
    c.total()
    ci = fi = n = 0
    for _ in range(rounds):
        got = claim()
        ci += c.total()
        finish(got)
        fi += c.total()
        n += len(got)
    if not n:
        raise SystemExit('scriptcount.py: nothing was claimed')
    return ci / n, fi / n


def costs(c):
    """Instructions of single commands (inside one EVAL, per iteration) and of
    script set-up (per call)."""
    r = c.r
    loops = 500

    def per_iter(setup, body):
        r.call('FLUSHALL')
        if setup:
            r.call('EVAL', 'local n=tonumber(ARGV[1]) ' + setup, 0, loops)
        c.total()
        r.call('EVAL', 'local n=tonumber(ARGV[1]) ' + body, 0, loops)
        t1 = c.total()
        r.call('EVAL', 'local n=tonumber(ARGV[1]) ', 0, loops)
        return (t1 - c.total()) / loops

    def per_call(body, keys=(), args=(), calls=100):
        sha = r.call('SCRIPT', 'LOAD', body)
        r.call('EVALSHA', sha, len(keys), *keys, *args)
        c.total()
        for _ in range(calls):
            r.call('EVALSHA', sha, len(keys), *keys, *args)
        return c.total() / calls

    rec = ("'id','0123456789abcdef','kind','noop','queue','default','lane','0123456789abcdef',"
           "'payload','{\"i\":1}','attempt','0','attempts','3','timeout','60000','backoff','100',"
           "'enqueued','1700000000000','status','queued'")
    mk = "for i=1,n do redis.call('HSET','j'..i,%s) end " % rec
    claim_fields = ("'status','queue','lane','kind','attempt','attempts','run_at','expires','cancel',"
                    "'payload','timeout','backoff','spool','enqueued','queued_at'")
    ev7 = ("'type','job.started','job','0123456789abcdef','kind','noop','lane','0123456789abcdef',"
           "'attempt','1','worker','w1','data',''")
    concat = per_iter(None, "for i=1,n do local k='j'..i end")
    rows = [
        ('a key name built in Lua (..)', concat),
        ('INCR', per_iter(None, "for i=1,n do redis.call('INCR','f') end")),
        ('HSET of a new 11-field record', per_iter(None, mk) - concat),
        ('HMGET of 1 field', per_iter(mk, "for i=1,n do redis.call('HMGET','j'..i,'status') end") - concat),
        ('HMGET of 5 fields', per_iter(mk, "for i=1,n do redis.call('HMGET','j'..i,'status','queue','lane',"
                                           "'kind','attempt') end") - concat),
        ("HMGET of claim.lua's 15 fields", per_iter(mk, "for i=1,n do redis.call('HMGET','j'..i,%s) end"
                                                    % claim_fields) - concat),
        ("HSET of claim.lua's 5 fields", per_iter(mk, "for i=1,n do redis.call('HSET','j'..i,'status','active',"
                                                  "'attempt','1','started','1700000000000','worker','w1',"
                                                  "'token','123-1700000000000000') end") - concat),
        ('EXPIRE', per_iter(mk, "for i=1,n do redis.call('EXPIRE','j'..i,'3600') end") - concat),
        ('XADD, 7 field pairs, MAXLEN ~', per_iter(None, "for i=1,n do redis.call('XADD','ev','MAXLEN','~',"
                                                         "'100000','*',%s) end" % ev7)),
        ('XADD, 7 field pairs', per_iter(None, "for i=1,n do redis.call('XADD','ev','*',%s) end" % ev7)),
        ('XADD, 1 packed field pair', per_iter(None, "for i=1,n do redis.call('XADD','ev','*','job.started',"
                                                     "'0123456789abcdef\\031noop\\0310123456789abcdef\\0311"
                                                     "\\031w1\\031') end")),
        ('LPOP 2 of a 1-entry lane', per_iter("for i=1,n do redis.call('RPUSH','l'..i,'j'..i) end",
                                              "for i=1,n do redis.call('LPOP','l'..i,'2') end") - concat),
        ('a Lua table of 14 fields', per_iter(None, "for i=1,n do local t={id='a',status='b',queue='c',"
                                                    "lane='d',kind='e',attempt=1,attempts=2,run_at=0,"
                                                    "expires=0,cancel=false,payload='x',timeout='1',"
                                                    "backoff='2',spool=false} end")),
    ]
    empty = per_call('return 1')
    keys7 = [P + 'k%d' % i for i in range(7)]
    args9 = [P, EV, 'w', 15000, 8, 604800, 1, 'default', 0]
    # lib.lua and the begin() every call runs first (embed.py), without a
    # script's idle fast path, which may answer before lib.lua is reached.
    with open(os.path.join(scriptcost.SCRIPTS, 'lib.lua'), encoding='utf-8') as f:
        closures = f.read() + '\n'
    lib = closures + scriptcost.embed_module().BEGIN
    rows += [
        ('EVALSHA of "return 1" (per call)', empty),
        ('each KEYS/ARGV entry (per call, 16 entries)', (per_call('return 1', keys7, args9) - empty) / 16),
        ('lib.lua set-up: its closures and begin() (per EVAL call)',
         per_call(lib + 'return 1', (), args9) - per_call('return 1', (), args9)),
        ('  of which begin(): per-call values, protocol check (FCALL too)',
         per_call(lib + 'return 1', (), args9) - per_call(closures + 'return 1', (), args9)),
    ]
    print('\nWhat pieces cost inside EVAL (instructions; per command unless marked):')
    for name, v in rows:
        print('  %-62s %7.0f' % (name, v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--scripts', default=scriptcost.SCRIPTS, help='the directory of the scripts to measure')
    ap.add_argument('--jobs', type=int, default=3000)
    ap.add_argument('--batch', type=int, action='append', help='claim/finish batch (default 8 and 64)')
    ap.add_argument('--rounds', type=int, default=8, help='claim+finish turns counted (after as many to warm up)')
    ap.add_argument('--costs', action='store_true', help='also the cost of single commands and of set-up')
    ap.add_argument('--evalsha-only', action='store_true', help='skip the FCALL figures (scripts of an older checkout)')
    args = ap.parse_args()
    if not shutil.which('valgrind') or not shutil.which('callgrind_control'):
        print('scriptcount.py: valgrind is not installed (scripts/install-deps.sh --dev)', file=sys.stderr)
        return 2
    scriptcost.SCRIPTS = os.path.abspath(args.scripts)
    tmp = tempfile.mkdtemp(prefix='lw-scriptcount-')
    c = Counted(tmp)
    try:
        for fcall in ([False] if args.evalsha_only else [False, True]):
            call = Caller(c.r, fcall)
            how = 'FCALL of the function library' if fcall else 'EVALSHA of the bodies'
            print('Instructions Redis ran per job, %s (callgrind; scripts of %s):' % (how, args.scripts))
            print('  enqueue.lua, 1 job per call: %.0f' % enqueue_one(c, call, 500))
            print('  batch   enqueue.lua (256)   claim.lua   finish.lua   drained job')
            for b in args.batch or [8, 64]:
                e, cl, fi = drain(c, call, args.jobs, b, args.rounds)
                print('  %5d   %17.0f   %9.0f   %10.0f   %11.0f' % (b, e, cl, fi, cl + fi))
        if args.costs:
            costs(c)
    finally:
        c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

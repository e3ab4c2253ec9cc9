"""Hostile review of pause/resume, partial answers with a master down, the
periodic re-publication of a refused count and `events --follow` over
partitions: its reproductions, kept as tests. Run as the other
integration tests (LANEWORK_BIN=... python3 test_partition_ops_edges.py
[TEST]).

Each test failed on main at 05e4115 because of the defect it names, and
passes with its fix:
  MED test_pause_races_the_count_change        pause read the count, a
        worker applied 1->K before pause.lua ran: "paused default", exit
        0, and 13 of 16 jobs ran in partitions 1..3 (pause.lua now
        returns partition 0's count, which a pause there holds)
  MED test_stats_of_every_tenant_with_a_master_down   `stats` of the
        registry's tenants printed nothing when one tenant's partition 0
        was on the dead master
  MED test_a_worker_of_the_previous_release_ignores_a_pause   an old
        claim.lua claims from a paused queue: README now says to upgrade
        every worker before the first pause
  MED test_follow_misses_the_transition_while_partition_0_is_busy
        an unpartitioned follower re-read the count only after a quiet
        XREAD block
  MED test_partition_0_frozen_after_connect_hangs   stats / events /
        retry --all-failed hung on a partition-0 master that froze after
        connect (their replies are bounded now)
  LOW test_follow_holds_every_event_ahead_and_resorts_it_each_poll
        an idle follower held 120k events ahead in memory (it now reads
        each partition only up to the lowest master clock)
  LOW test_a_paused_key_of_another_type_breaks_settings_publication
  LOW test_one_pause_of_a_partitioned_tenant_is_k_events
  LOW test_fsck_misses_a_queue_paused_in_some_partitions_only
  LOW test_deploy_docs_still_say_a_quiet_worker_is_unready
Left open: a partition that stops answering in the middle of `stats` or
`retry --all-failed` is named on one line, after the connection's own
error line (two lines for one problem).
Probes that held (not kept as tests): a paused queue with a 200-job backlog
costs 4 claim calls in 5 s (no busy loop); retries, hand-backs and due
jobs of a paused queue only reach its ready list (claim.lua is the one
claimer); a SIGHUP storm over 20 refused tenants and two workers, registry
flapping 4/8, under ASan: no sanitizer report, every count applied once
the tenants drained; `events --follow` with a master frozen mid-round
warns once and reconnects; `events` (no --follow) with a partition frozen
mid-read names it on one line."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import lwtest
from lwtest import check, wait_until
from test_partitions import part_of, prefix, wait_done

K = 4


def stop(*ws):
    for w in ws:
        w.signal(signal.SIGTERM)
        w.wait()


def runs_started(env, ids):
    r = env.runs()
    return [i for i in ids if r.get(i)]


class TapProxy:
    """A TCP proxy to a unix socket (the Env's Redis) that calls
    before(data) once, with the first client bytes holding `marker`, before
    forwarding them: a way to run something between two commands of a
    client, at the exact point where a concurrent writer could."""

    def __init__(self, target, marker, before):
        self.target, self.marker, self.before = target, marker, before
        self.fired = False
        self.lock = threading.Lock()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(16)
        self.url = 'redis://127.0.0.1:%d' % self.ls.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(self.target)
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, tap):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if tap and self.marker in data:
                    with self.lock:
                        if not self.fired:
                            self.fired = True
                            self.before(data)
                dst.sendall(data)
        except OSError:
            return

    def close(self):
        for s in [self.ls] + self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_pause_races_the_count_change(env):
    """MED. `lanework pause` reads the partition count (HMGET settings
    partitions) and then runs pause.lua in each of the partitions it
    counted. settings.lua refuses a count change while a queue is paused,
    but the check is only atomic with pause.lua itself: a worker whose
    settings.lua applies 1 -> K between the CLI's count read and its
    pause.lua in partition 0 leaves partitions 1..K-1 unpaused (the CLI
    said "paused default", exit 0). Jobs of the paused queue routed there
    run. Here the tap runs the HSET settings.lua would do (the tenant is
    empty: unfinished() is false) just before pause.lua reaches Redis.
    Fix: pause.lua returns partition 0's count in force (same slot: after
    it no change can happen); the CLI pauses the partitions it had not
    counted (and resume likewise)."""
    env.write_registry([env.tenant('p', partitions=K)])

    def count_applied(_data):
        env.redis.call('HSET', 'lw:{p}:settings', 'partitions', str(K))

    tap = TapProxy(env.redis.sock, b':paused', count_applied)
    try:
        rc, out, err = env.cli('pause', '--tenant', 'p', '--queue', 'default', '--redis', tap.url,
                               redis=False)
    finally:
        tap.close()
    check(tap.fired, 'the pause call was not seen')
    print('pause while the count changed: %d %r %r' % (rc, out, err), flush=True)
    w = env.worker('--concurrency', '4')
    lanes = ['L%d' % i for i in range(16)]
    check(len({part_of(l, K) for l in lanes}) == K, 'lanes do not cover every partition')
    ids = [env.enqueue('p', 'record', {}, lane=l) for l in lanes]
    time.sleep(1.5)
    ran = runs_started(env, ids)
    stop(w)
    parts = sorted({part_of(lanes[ids.index(i)], K) for i in ran})
    check(not ran or rc != 0, 'pause said %r (exit %d), yet %d jobs of the paused queue ran in partitions %s'
          % (out.strip(), rc, len(ran), parts))


@lwtest.plain_only
def test_stats_of_every_tenant_with_a_master_down(env):
    """MED. The partial answer is per tenant only: `lanework stats` (every
    tenant of the registry) on a cluster with one master down prints
    nothing at all (exit 3) as soon as one tenant's partition 0 -- or an
    unpartitioned tenant -- lives on that master, although the other
    tenants, the partitioned one included, are readable: read_tenant's
    failure without `nmissing` is `goto out` for the whole command (and
    `stats --tenant p --tenant q` likewise). README: stats "give what the
    partitions they reach hold" and exit 3. Expected: every readable
    tenant printed, one stderr line naming the tenant that could not be
    read, exit 3. Fix: note the tenant as unreadable (a row flag, printed
    after the table, "unreadable": true or a list in --json) and go on."""
    k = 12
    env.redis.stop()
    cs = env.own(lwtest.ClusterSet(env.dir, masters=3, replicas=0))
    for n in cs.nodes:
        n.call('CONFIG', 'SET', 'cluster-require-full-coverage', 'no')
    home = cs.node_for_key(prefix('p', 0) + 'x')
    dead = next(n for n in cs.nodes if n is not home)
    q = next('q%d' % i for i in range(1000) if cs.node_for_key(prefix('q%d' % i, 0) + 'x') is dead)
    env.write_registry([env.tenant('p', partitions=k), env.tenant(q)])
    home.call('HSET', 'lw:{p}:settings', 'partitions', str(k))

    def cli(*args):
        return env.cli(*(list(args) + ['--redis', cs.url()]), redis=False, timeout=90)

    rc, out, err = cli('stats', '--json')
    check(rc == 0 and set(json.loads(out)['tenants']) == {'p', q}, 'stats before: %d %r %r' % (rc, out, err))
    dead.kill9()
    cs.killed.add(dead)
    rc, out, err = cli('stats')
    print('stats of every tenant, %s\'s master down: %d %r %r' % (q, rc, out, err), flush=True)
    check(rc == 3, 'exit %d, not 3' % rc)
    check(any(l.startswith('p ') or l.startswith('p: ') for l in out.splitlines()),
          'tenant p (readable but for the partitions on the dead master) is not printed: stdout %r' % out)
    rc, out, err = cli('stats', '--json')
    check(rc == 3 and out.strip() and 'p' in json.loads(out)['tenants'],
          'stats --json: %d %r %r' % (rc, out, err))


SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common', 'scripts')


def previous_release(name, line):
    """The EVAL body of NAME.lua as the release before pause.lua had it:
    today's text without `line` (ee0148d added exactly these checks)."""
    sys.path.insert(0, SCRIPTS)
    import embed
    with open(os.path.join(SCRIPTS, 'lib.lua'), encoding='utf-8') as f:
        lib = f.read()
    with open(os.path.join(SCRIPTS, name + '.lua'), encoding='utf-8') as f:
        text = f.read()
    check(line in text, '%s.lua: %r not found' % (name, line))
    return embed.body(lib, text.replace(line, ''), name)


def test_a_worker_of_the_previous_release_ignores_a_pause(env):
    """MED (rolling upgrade, undocumented). The pause lives in claim.lua
    and settings.lua, and the scripts travel with each binary (EVAL body /
    a function library named by its hash): a worker of the release before
    pause.lua still claims from a paused queue, and its settings.lua still
    applies 1 -> K while a queue is paused, leaving partitions 1..K-1
    unpaused. README says "every worker, restarted or new, claims nothing
    from the queue" and its upgrade notes say nothing. Here the previous
    release's claim.lua and settings.lua (today's text without the lines
    ee0148d added) run as such a worker would run them. Expected: either a
    guard, or README saying to upgrade every worker before the first pause
    (this test then passes on the README text)."""
    env.write_registry([env.tenant('t1')])
    rc, out, err = env.cli('pause', '--tenant', 't1', '--queue', 'default')
    check(rc == 0, 'pause: %d %r' % (rc, err))
    jid = env.enqueue('t1', 'record', {})
    c = env.redis.client()
    old_claim = previous_release('claim', 'if PAUSED[qname] then room = 0 end')
    p = 'lw:{t1}:'
    keys = [p + k for k in ('events', 'schedule', 'stats', 'expiring', 'fence', 'ready:default', 'active:default')]
    got = c.call('EVAL', old_claim, len(keys), *keys, p, '1000', 'old-worker', '15000', '4', '600', '1',
                 'default', '0')
    claimed = got[0][0::11] if got and got[0] else []
    # Another tenant, empty but for its pause: the old settings.lua applies K.
    env.write_registry([env.tenant('t1'), env.tenant('t2', partitions=K)])
    rc, out, err = env.cli('pause', '--tenant', 't2', '--queue', 'default')
    check(rc == 0, 'pause t2: %d %r' % (rc, err))
    old_settings = previous_release('settings', "if type(paused) == 'number' and paused > 0 then return true end")
    q = 'lw:{t2}:'
    c.call('EVAL', old_settings, 2, q + 'settings', q + 'kinds', q, '1000', '1', 'partitions', str(K))
    count = env.redis.call('HGET', q + 'settings', 'partitions')
    print('previous release: claimed %r from the paused queue; count now %r' % (claimed, count), flush=True)
    if claimed or count == str(K):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'README.md'),
                  encoding='utf-8') as f:
            readme = f.read()
        para = readme[readme.index('Pausing a queue'):][:2000].split('\n\n')[0]
        check('release' in para or 'upgrad' in para,
              'a worker of the previous release claimed %r from a paused queue (count applied: %r), '
              'and README\'s pause paragraph does not warn about it: %r' % (claimed, count, para))


@lwtest.plain_only
def test_follow_holds_every_event_ahead_and_resorts_it_each_poll(env):
    """LOW. events --follow of a partitioned tenant reads each partition's
    new events whole (XRANGE to "+") and keeps in memory every one whose
    id is not below the lowest master TIME of the round; each round then
    qsorts the whole held buffer again, every 200 ms, even when nothing new
    came. A partition whose ids run ahead (a master whose clock is ahead
    of another's, or a stream whose top id is in the future after a clock
    step back or a failover to a slower replica) makes an idle follower
    hold all of them -- unbounded, as many as the stream holds and as many
    as arrive meanwhile -- and burn CPU re-sorting them. Here 120k events
    one hour ahead in partition 1, nothing else happening: the idle
    follower used far more than 0.5 s CPU in 10 s (the unpartitioned
    follower blocks in XREAD and uses none). Fix: take every master's
    TIME first, then read each partition only up to below-1 ms
    (`XRANGE key (last below-1`): nothing read is ever held, the rest stays
    in Redis until it can be printed; or sort only what a round adds."""
    env.write_registry([env.tenant('p', partitions=2)])
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', '2')
    t = env.redis.call('TIME')
    ahead = int(t[0]) * 1000 + 3600 * 1000
    c = env.redis.client()
    n = 120000
    for i in range(0, n, 5000):
        c.pipeline([('XADD', 'lw:{p#1}:events', '%d-%d' % (ahead, j), 'type', 'job.queued', 'job', 'x%d' % j,
                     'kind', 'k', 'lane', '', 'attempt', '0', 'worker', '', 'data', '')
                    for j in range(i + 1, i + 5001)])
    f = subprocess.Popen([lwtest.CLI, 'events', '--tenant', 'p', '--follow', '--redis', env.redis.url,
                          '--registry', env.registry], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env.proc_env())
    try:
        def cpu():
            st = open('/proc/%d/stat' % f.pid).read().rsplit(')', 1)[1].split()
            return (int(st[11]) + int(st[12])) / os.sysconf('SC_CLK_TCK')

        def rss_kb():
            for line in open('/proc/%d/status' % f.pid):
                if line.startswith('VmRSS'):
                    return int(line.split()[1])
        time.sleep(4)  # the first round read everything
        c0 = cpu()
        time.sleep(10)
        used, rss = cpu() - c0, rss_kb()
    finally:
        f.send_signal(signal.SIGTERM)
        f.wait()
    print('idle follower holding %d events ahead: %.2f s CPU in 10 s, RSS %d kB' % (n, used, rss), flush=True)
    check(used < 0.5, 'an idle follower used %.2f s CPU in 10 s re-sorting %d held events (RSS %d kB)'
          % (used, n, rss))


def frozen_at(env, marker, args, timeout):
    """Runs the CLI through a TapProxy that SIGSTOPs the Env's Redis just
    before the first command holding `marker` reaches it (a master that
    freezes after the CLI connected: a VM pause, a stuck disk, SIGSTOP).
    Returns (rc or 'hung', stdout, stderr, seconds)."""
    pid = env.redis.proc.pid
    tap = TapProxy(env.redis.sock, marker, lambda _d: os.kill(pid, signal.SIGSTOP))
    t0 = time.monotonic()
    try:
        p = subprocess.run([lwtest.CLI] + list(args) + ['--redis', tap.url, '--registry', env.registry],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.proc_env(), timeout=timeout)
        rc, out, err = p.returncode, p.stdout.decode(), p.stderr.decode()
    except subprocess.TimeoutExpired as e:
        rc, out, err = 'hung', (e.stdout or b'').decode(), (e.stderr or b'').decode()
    finally:
        os.kill(pid, signal.SIGCONT)
        tap.close()
    return rc, out, err, time.monotonic() - t0


@lwtest.plain_only
def test_partition_0_frozen_after_connect_hangs(env):
    """MED. The count in force is read from partition 0 (HMGET settings
    partitions legacy_until) on the tenant's plain connection, which has
    no reply timeout (only cli_part_open bounds replies, and only for the
    partitions read after it): a partition-0 master that freezes once the
    CLI is connected hangs `stats`, `events` and `retry --all-failed` of a
    partitioned tenant for ever (so `pause` at its pause.lua). README: "A
    frozen master (no reply) counts as down too, but only after the
    connect and reply timeouts ... Partition 0 is needed: without it they
    exit 3 having printed nothing." Expected: exit 3 with one line within
    the reply bound (10 s). Fix: bound the replies of every read-only
    command's connections (cli_set_reply_timeout(CLI_PART_REPLY_MS) in
    cli_tenant_open for stats/events/retry/pause, or in cli_partitions)."""
    env.write_registry([env.tenant('p', partitions=K)])
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', str(K))
    bad = []
    for args in (['stats', '--tenant', 'p'], ['events', '--tenant', 'p'], ['retry', '--tenant', 'p', '--all-failed']):
        rc, out, err, took = frozen_at(env, b'legacy_until', args, 30)
        print('%s, partition 0 frozen at the count read: %s after %.1f s %r' % (' '.join(args), rc, took, err), flush=True)
        if rc != 3:
            bad.append('%s: %s after %.0f s' % (args[0], rc, took))
    check(not bad, 'a partition-0 master frozen after connect: %s' % '; '.join(bad))


def test_a_paused_key_of_another_type_breaks_settings_publication(env):
    """LOW. claim.lua reads a `paused` key of another type as nothing
    paused ("rather than stopping every claim (fsck reports it)"), but
    settings.lua's unfinished() does `redis.call('SCARD', P..'paused')`:
    WRONGTYPE aborts the whole script for a tenant whose registry asks for
    a count not in force yet. The retention fields before the partitions
    entry were written (a Lua error rolls nothing back), the kinds after
    it never are (the CLI's kind check then has nothing to go by), the
    count never applies (and is not asked again: the error path sets no
    parts_retry_at), and the worker falls back to serving the registry's
    count while enqueuers route by the one in force. Expected: settings
    published, the count held or applied. Fix: pcall the SCARD in
    unfinished() and hold the count on an error (or read it as empty, as
    claim.lua does)."""
    env.write_registry([env.tenant('p', partitions=K)])
    env.redis.call('SET', 'lw:{p}:paused', 'x')
    w = env.worker('--concurrency', '2')
    wait_until(lambda: 'redis.ready' in w.log(), timeout=10, what='the worker up')
    time.sleep(1.5)
    log = w.log()
    kinds = env.redis.call('SMEMBERS', 'lw:{p}:kinds')
    stop(w)
    failed = [l for l in log.splitlines() if 'publishing settings failed' in l]
    print('paused key a string: kinds %r; %s' % (kinds, failed[:1]), flush=True)
    check(not failed and kinds, 'settings.lua failed on a paused key of another type (kinds %r): %s'
          % (kinds, failed[:1]))


def test_one_pause_of_a_partitioned_tenant_is_k_events(env):
    """LOW. pause.lua runs in every partition, and each run emits its own
    queue.paused (and resume its own queue.resumed) into that
    partition's stream: `lanework events` of a 4-partition tenant shows 4
    queue.paused events for one `lanework pause` (ids ID, ID#1, ID#2,
    ID#3). README: "the event stream gets queue.paused / queue.resumed".
    A consumer counting or alerting on pauses sees K of them; a pause
    that failed part-way shows as some. Expected: one event per state
    change of the tenant's queue (emit in partition 0 only, where the CLI
    runs it first; the other partitions change their set silently)."""
    env.write_registry([env.tenant('p', partitions=K)])
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', str(K))
    for cmd in ('pause', 'resume'):
        rc, out, err = env.cli(cmd, '--tenant', 'p', '--queue', 'default')
        check(rc == 0, '%s: %d %r' % (cmd, rc, err))
    rc, out, err = env.cli('events', '--tenant', 'p')
    evs = [json.loads(l) for l in out.splitlines()]
    types = [e['type'] for e in evs if e['type'].startswith('queue.')]
    print('one pause and one resume of a %d-partition tenant: %s' % (K, types), flush=True)
    check(types == ['queue.paused', 'queue.resumed'], 'events: %s' % types)


def test_fsck_misses_a_queue_paused_in_some_partitions_only(env):
    """LOW. fsck reads each partition's paused set on its own (a key
    type, queues-set membership) and never compares them: a queue paused
    in some partitions only -- a pause or resume that failed part-way
    ("run it again"), the race of test_pause_races_the_count_change, a
    count applied by an older worker under a pause -- is clean to fsck,
    while `stats` says "paused" (it ORs the partitions) and jobs of the
    other partitions run. Expected: exit 1 naming the queue and the
    partitions that differ (--repair cannot know which way: report only).
    Here partition 2's set is emptied as a failed resume would leave the
    others."""
    env.write_registry([env.tenant('p', partitions=K)])
    env.redis.call('HSET', 'lw:{p}:settings', 'partitions', str(K))
    rc, out, err = env.cli('pause', '--tenant', 'p', '--queue', 'default')
    check(rc == 0, 'pause: %d %r' % (rc, err))
    env.redis.call('SREM', 'lw:{p#2}:paused', 'default')
    rc, out, err = env.cli('stats', '--tenant', 'p')
    row = [l for l in out.splitlines() if l.startswith('p ')]
    rcf, outf, errf = env.cli('fsck', '--tenant', 'p')
    print('default paused in partitions 0, 1, 3 only: stats %r; fsck %d %r' % (row, rcf, outf[-300:]), flush=True)
    check(rcf == 1 and 'default' in outf, 'fsck exit %d for a queue paused in 3 of %d partitions: %r'
          % (rcf, K, outf[-400:]))


def test_deploy_docs_still_say_a_quiet_worker_is_unready(env):
    """LOW (docs). ee0148d made a quiet (SIGTSTP) worker healthy: /healthz
    200 saying "quiet" (CONTRACT 13, README, test_pause), but
    deploy/README.md ("Health.": 503 "while the worker is quiet or
    draining") and deploy/k8s/deployment.yaml (the probe comment: "/healthz
    ... is 503 while Redis is unreachable or the worker is quiet") still
    say the opposite: an operator keeps relying on SIGTSTP taking a pod
    out of service, and it no longer does."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
    stale = []
    for rel, bad in (('deploy/README.md', 'while the worker is quiet or\n  draining'),
                     ('deploy/k8s/deployment.yaml', 'or the worker is quiet')):
        with open(os.path.join(root, rel), encoding='utf-8') as f:
            if bad in f.read():
                stale.append(rel)
    check(not stale, '%s still say /healthz is 503 for a quiet worker' % ', '.join(stale))


def test_follow_misses_the_transition_while_partition_0_is_busy(env):
    """MED. An unpartitioned follower learns that the tenant became
    partitioned only when its XREAD BLOCK 1000 comes back empty
    (cmd_events.c: "Quiet for a block"). After 1 -> K partition 0 keeps
    the lanes routed to it, so a busy tenant keeps partition 0's stream
    busy too: the follower never has a quiet second, never re-reads the
    count, and never prints an event of partitions 1..K-1 -- silently.
    The periodic re-publication (24ff950) makes the count apply on its
    own while followers run (within 10 s of partition 0 draining, which
    on a steady tenant is a short lull). Here partition 0 gets an event
    every 0.3 s; the job enqueued in another partition after the count change
    never shows. Expected: shown within a few seconds. Fix: re-read the
    count every N s (or every block) whatever XREAD returned."""
    import threading
    env.write_registry([env.tenant('p')])
    in0 = next(l for l in ('b%d' % i for i in range(100)) if part_of(l, K) == 0)
    other = next(l for l in ('c%d' % i for i in range(100)) if part_of(l, K) != 0)
    argv = [lwtest.CLI, 'events', '--tenant', 'p', '--follow', '--redis', env.redis.url, '--registry', env.registry]
    f = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.proc_env())
    lines = []
    threading.Thread(target=lambda: [lines.append(l.decode()) for l in f.stdout], daemon=True).start()
    busy = threading.Event()

    def keep_partition_0_busy():
        while not busy.is_set():
            env.cli('enqueue', '--tenant', 'p', '--kind', 'noop', '--payload', '{}', '--lane', in0)
            time.sleep(0.3)
    t = threading.Thread(target=keep_partition_0_busy, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(lines) >= 2, timeout=10, what='the follower to print partition 0\'s events')
        # What a worker's settings.lua does once the tenant is empty for a
        # moment (the enqueues above find the new count: LWPARTITIONS).
        env.redis.call('HSET', 'lw:{p}:settings', 'partitions', str(K))
        env.write_registry([env.tenant('p', partitions=K)])
        j = env.enqueue('p', 'noop', {}, lane=other)
        time.sleep(6)
        n0 = len(lines)
    finally:
        busy.set()
        t.join(timeout=10)
        f.kill()
        f.wait()
    check(any(j in l for l in lines), 'events --follow printed %d lines of partition 0 but never job %s '
          '(partition %d) enqueued after 1->%d' % (n0, j, part_of(other, K), K))


if __name__ == '__main__':
    lwtest.run([test_pause_races_the_count_change,
                test_stats_of_every_tenant_with_a_master_down,
                test_a_worker_of_the_previous_release_ignores_a_pause,
                test_follow_holds_every_event_ahead_and_resorts_it_each_poll,
                test_partition_0_frozen_after_connect_hangs,
                test_a_paused_key_of_another_type_breaks_settings_publication,
                test_one_pause_of_a_partitioned_tenant_is_k_events,
                test_fsck_misses_a_queue_paused_in_some_partitions_only,
                test_deploy_docs_still_say_a_quiet_worker_is_unready,
                test_follow_misses_the_transition_while_partition_0_is_busy])

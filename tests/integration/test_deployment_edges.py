"""The edges of Redis deployments (CONTRACT section 12), found by a hostile
review of the transport change: each test failed on the code as reviewed.

  refused SUBSCRIBEs     each refusal on the kept pub/sub connection names its
                         own channel, and is asked again
  insecure=1 failures    not reported as "certificate verify failed"
  stale sentinels        a sentinel naming a dead master is moved past; a
                         blackholed one holds worker and CLI only for the
                         connect timeout
  replica shortfalls     (--min-replicas) outcomes are sent again until
                         confirmed, resends are not "lease lost", WAITs do not
                         hold renewals back (their own connection), and more
                         replicas than there are pauses claims instead of
                         piling outcomes up in memory
  pub/sub over TLS       wake-ups arrive over rediss://
"""
import os
import signal
import socket
import threading
import time

import lwtest
from lwtest import check, wait_until


def acl_user(env, name, password, *rules):
    env.redis.call('ACL', 'SETUSER', name, 'reset', 'on', '>' + password, *rules)
    return 'unix://%s:%s@%s' % (name, password, env.redis.sock)


class FakeSentinel:
    """Answers every command with the address it is given: a sentinel whose
    view is stale (it names a master that is gone)."""

    def __init__(self, host, port):
        self.answer = ('*2\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n' % (len(host), host, len(str(port)), port)).encode()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.asked = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b''
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
                # one reply per complete command (*N ... with N bulk strings)
                while buf.startswith(b'*'):
                    head, _, rest = buf.partition(b'\r\n')
                    n = int(head[1:])
                    parts = rest.split(b'\r\n')
                    if len(parts) < 2 * n + 1:
                        break
                    buf = b'\r\n'.join(parts[2 * n:])
                    self.asked += 1
                    c.sendall(self.answer)
        except OSError:
            pass
        finally:
            c.close()


def test_every_refused_subscribe_is_named(env):
    # A tenant subscribes to two channels (wake, cancel). The user may use
    # every key but no channel: both SUBSCRIBEs are refused on the kept
    # connection. Each refusal must be pinned on its own channel; the
    # reviewed code blames the first unconfirmed one (wake) every time,
    # because a refused channel stays `sent` -- so cancel is never named,
    # and no refused channel is ever asked again on that connection.
    url = acl_user(env, 'nochan', 'pw-nochan-1', '~*', 'resetchannels', '+@all')
    env.write_registry([env.tenant('t1')])
    w = env.worker('--redis', url, '--concurrency', '1')
    jid = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [jid], timeout=20)
    wait_until(lambda: 'redis.subscribe' in w.log(), timeout=10, what='a subscribe refusal')
    time.sleep(1.5)
    log = w.log()
    refused = [l for l in log.splitlines() if 'redis.subscribe' in l]
    check(any('lw:{t1}:wake' in l for l in refused), 'wake refusal not logged:\n' + log)
    check(any('lw:{t1}:cancel' in l for l in refused),
          'the refusal of lw:{t1}:cancel is never named (blamed on wake):\n' + log)


def test_insecure_failure_is_not_a_verify_failure(env):
    # insecure=1 turns verification off, yet OpenSSL still records the
    # chain's verdict (no CA loaded: "unable to get local issuer
    # certificate"). lw_tls_failure() reads that verdict first, so any
    # later TLS failure -- here the server demanding a client certificate
    # -- is reported as "certificate verify failed", and the CLI marks it
    # a configuration error of the CA (resp_sync.c: config_error).
    env.redis.stop()
    env.ca = lwtest.TlsCA(env.dir)
    env.redis = lwtest.Redis(env.dir, name='tls-redis', tls=env.ca, tls_auth_clients='yes')
    env.write_registry([env.tenant('t1')])
    url = env.redis.tls_url(ca=None, insecure=1)
    rc, out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}',
                           '--redis', url, redis=False)
    check(rc != 0, 'enqueue without the demanded client certificate passed: %r' % err)
    check('certificate verify failed' not in err,
          'insecure=1, yet the failure is blamed on verification: %r' % err)


def test_worker_moves_past_a_sentinel_naming_a_dead_master(env):
    # Two sentinels: the first has a stale view (it names a port nobody
    # listens on), the second names the real master. The CLI moves on to
    # the second sentinel when the first one's master cannot be reached;
    # the worker asks "the last that answered first" -- the stale one, which
    # did answer -- at every attempt, and never reaches the master.
    env.redis.stop()
    port = lwtest.free_port()
    env.redis = lwtest.Redis(env.dir, name='master', extra=['--port', str(port), '--bind', '127.0.0.1'])
    env.write_registry([env.tenant('t1')])
    stale = FakeSentinel('127.0.0.1', lwtest.free_port())
    good = FakeSentinel('127.0.0.1', port)
    url = 'redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster' % (stale.port, good.port)
    rc, out, err = env.cli('stats', '--tenant', 't1', '--redis', url, redis=False)
    check(rc == 0, 'the CLI did not move past the stale sentinel: %d %s' % (rc, err))
    w = env.worker('--concurrency', '1', redis_url=url)
    jid = env.enqueue('t1', 'noop', {})
    try:
        env.wait_all('t1', [jid], timeout=15)
    except Exception:
        raise lwtest.TestFailure('the worker never reached the master the second sentinel names '
                                 '(stale sentinel asked %d times, the good one %d):\n%s'
                                 % (stale.asked, good.asked, w.log()[-1500:]))


@lwtest.plain_only
def test_worker_bounded_by_a_blackholed_sentinel(env):
    # Coverage (passes before and after the fixes): a sentinel that accepts
    # and never answers holds the attempt only until the watchdog's connect
    # timeout (5 s); the next attempt asks the next sentinel. Also the CLI.
    env.redis.stop()
    port = lwtest.free_port()
    env.redis = lwtest.Redis(env.dir, name='master', extra=['--port', str(port), '--bind', '127.0.0.1'])
    env.write_registry([env.tenant('t1')])
    hole = socket.socket()
    hole.bind(('127.0.0.1', 0))
    hole.listen(64)  # accepted by the kernel, never read
    good = FakeSentinel('127.0.0.1', port)
    url = 'redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster' % (hole.getsockname()[1], good.port)
    t0 = time.monotonic()
    rc, out, err = env.cli('stats', '--tenant', 't1', '--redis', url, redis=False, timeout=30)
    check(rc == 0 and time.monotonic() - t0 < 8, 'CLI: %d after %.1f s: %s' % (rc, time.monotonic() - t0, err))
    w = env.worker('--concurrency', '1', redis_url=url)
    jid = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [jid], timeout=15)
    hole.close()


def shortfall_run(env):
    """--min-replicas 1, the replica stopped (SIGSTOP) for 7 s under six
    tenants' traffic, lease 3 s. Returns the worker's log."""
    from test_durability import with_replica
    with_replica(env)
    env.write_registry([env.tenant('t%d' % i) for i in range(1, 7)])
    w = env.worker('--concurrency', '8', '--min-replicas', '1', '--lease', '3', '--poll', '0.2')
    long_id = env.enqueue('t1', 'sleep', {'ms': 9000})
    time.sleep(1)
    os.kill(env.replica.proc.pid, signal.SIGSTOP)
    ids = {}
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 7:
            for i in range(2, 7):
                ids.setdefault('t%d' % i, []).append(env.enqueue('t%d' % i, 'noop', {}))
            time.sleep(0.3)
    finally:
        os.kill(env.replica.proc.pid, signal.SIGCONT)
    env.wait_all('t1', [long_id], timeout=40)
    for t, l in ids.items():
        env.wait_all(t, l, timeout=40)
    return w.log()


@lwtest.plain_only
def test_shortfall_resends_and_renewals(env):
    # Defects of the reviewed code, one run:
    # - every outcome resent after a shortfall was recorded on the primary
    #   the first time: finish.lua answers the repeat 'stale', and the worker
    #   logged "job.fenced ... refused: the attempt no longer holds the job
    #   (lease lost)" at warn for jobs that succeeded;
    # - each WAIT held the shared command connection for wait_ms (lease/8):
    #   renewals queued behind one WAIT per tenant and the worker reported
    #   "no lease renewal or reaper could reach Redis" (giving leases time
    #   back) while Redis answered at once. Durable changes now have a
    #   connection of their own.
    log = shortfall_run(env).splitlines()
    # And a third: while the script and its WAIT shared the durable
    # connection, the tenants' WAITs queued there and a finished job's
    # outcome waited seconds behind them before it even ran -- its lease
    # (no longer renewed: the attempt was over) ran out and the reaper took
    # the job back. The script now runs on the command connection at once;
    # only the confirmation waits.
    lost = [l for l in log if 'job.lost' in l]
    check(not lost, '%d jobs lost their lease while their outcome waited, e.g.\n%s'
          % (len(lost), lost[0] if lost else ''))
    fenced = [l for l in log if 'job.fenced' in l]
    check(not fenced, '%d succeeded jobs logged as "lease lost" after a shortfall resend, e.g.\n%s'
          % (len(fenced), fenced[0] if fenced else ''))
    outage = [l for l in log if 'lease.outage' in l]
    check(not outage, 'Redis answered, yet %d "could not reach Redis" lines, e.g.\n%s'
          % (len(outage), outage[0] if outage else ''))


def test_wakeups_over_tls(env):
    # Coverage (no test had it): the pub/sub connection over rediss://
    # subscribes, and a wake-up on it starts a job on an idle worker long
    # before its next poll (--poll 20).
    env.redis.stop()
    env.ca = lwtest.TlsCA(env.dir)
    env.redis = lwtest.Redis(env.dir, name='tls-redis', tls=env.ca)
    env.write_registry([env.tenant('t1')])
    url = env.redis.tls_url()
    w = env.worker('--poll', '20', '--isolation', 'thread', '--concurrency', '2', redis_url=url)
    wait_until(lambda: env.redis.call('PUBSUB', 'NUMSUB', 'lw:{t1}:wake')[1] >= 1, timeout=10,
               what='the wake-up subscription over TLS')
    time.sleep(1)  # the first claims are behind it
    t0 = time.monotonic()
    jid = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [jid], timeout=10)
    dt = time.monotonic() - t0
    check(dt < 3, 'the job waited %.1f s: no wake-up over TLS' % dt)
    check(w.running(), w.log())


def vm_rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS'):
                return int(line.split()[1])
    return 0


@lwtest.plain_only
def test_more_replicas_than_there_are_is_bounded(env):
    # --min-replicas 2 with one replica. On the reviewed code claims went on
    # (they are not waited for) and every outcome stayed in the worker's
    # memory, resent forever: RSS grew ~2 kB per job of 2 kB results, without
    # bound (12000 jobs: ~25 MB). Now a tenant whose outcomes back up past
    # 256 + 4 x concurrency claims nothing more, and says so.
    from test_durability import with_replica
    with_replica(env)
    w = env.worker('--concurrency', '8', '--min-replicas', '2', '--isolation', 'thread',
                   '--poll', '0.2')
    time.sleep(1)
    r0 = vm_rss_kb(w.pid)
    lines = ''.join('{"kind":"echo","payload":{"pad":"%s"}}\n' % ('x' * 2000) for _ in range(4000))
    for _ in range(3):
        rc, out, err = env.cli('enqueue', '--tenant', 't1', '--batch', '-', input=lines)
        check(rc == 0, err)
        time.sleep(3)
    grown = vm_rss_kb(w.pid) - r0
    check(grown < 8000, 'worker RSS grew %d kB holding outcomes it can never confirm' % grown)
    check('no new claims until they are' in w.log(), 'the claim pause was not said:\n' + w.log()[-2000:])


def test_shortfall_outcome_is_sent_again(env):
    # test_durability's worker test passes when a shortfall is logged and
    # the outcome then taken as confirmed (never sent again: checked by
    # mutating durable_wait_reply): it only looks for the log line, and the
    # restarted replica resyncs the outcome anyway. Here: while the replica
    # is stopped, the outcome keeps coming (WAITs go on being sent).
    from test_durability import with_replica
    with_replica(env)
    w = env.worker('--concurrency', '2', '--min-replicas', '1', '--poll', '0.2')
    os.kill(env.replica.proc.pid, signal.SIGSTOP)
    try:
        jid = env.enqueue('t1', 'noop', {})
        wait_until(lambda: 'replicas confirmed a change' in w.log(), timeout=15,
                   what='the shortfall to be said')
        env.redis.call('CONFIG', 'RESETSTAT')
        time.sleep(2.5)
        waits = env.redis.commandstats().get('wait', 0)
    finally:
        os.kill(env.replica.proc.pid, signal.SIGCONT)
    check(waits >= 2, 'the unconfirmed outcome was not sent again (%d WAITs in 2.5 s)' % waits)
    env.wait_all('t1', [jid], timeout=20)


def test_resent_events_are_appended_once(env):
    # Review finding 7: a finish.lua batch sent again (a lost reply, a
    # --min-replicas shortfall) while its job still ran appended the
    # handler's events a second time. Numbered events are appended once per
    # attempt; unnumbered ones (0: older callers) as before.
    from test_partitions import function_name
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '1')
    done = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [done])  # the library is loaded
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    jid = env.enqueue('t1', 'noop', {}, delay=600)
    jk = 'lw:{t1}:job:' + jid
    env.redis.call('HSET', jk, 'status', 'active', 'token', 'tok-1', 'attempt', '1')
    fn = function_name(env, '_finish')
    keys = ['lw:{t1}:' + k for k in ('events', 'schedule', 'stats', 'failed')]

    def send(entries):
        argv = ['lw:{t1}:', '1000', 'w1', '3600', '3600', str(len(entries))]
        for seq, typ in entries:
            argv += [jid, 'tok-1', 'event', '{}', str(seq), typ]
        return env.redis.call('FCALL', fn, str(len(keys)), *keys, *argv)

    batch = [(1, 'step.created'), (2, 'tool.invoked')]
    check(send(batch) == ['event', 'event'], 'first send')
    check(send(batch) == ['event', 'event'], 'the resend is answered like the first')
    send([(2, 'tool.invoked'), (3, 'tool.succeeded')])  # overlapping: only 3 is new
    send([(0, 'legacy'), (0, 'legacy')])
    types = [e['type'] for e in env.events('t1') if e['job'] == jid and e['type'] not in ('job.scheduled',)]
    check(types == ['step.created', 'tool.invoked', 'tool.succeeded', 'legacy', 'legacy'],
          'events of the resent batches: %s' % types)
    # A new attempt (another token) numbers from 1 again.
    env.redis.call('HSET', jk, 'token', 'tok-2')
    argv = ['lw:{t1}:', '1000', 'w1', '3600', '3600', '1', jid, 'tok-2', 'event', '{}', '1', 'step.created']
    env.redis.call('FCALL', fn, str(len(keys)), *keys, *argv)
    n = sum(1 for e in env.events('t1') if e['job'] == jid and e['type'] == 'step.created')
    check(n == 2, 'the next attempt\'s first event was taken for a repeat (%d step.created)' % n)


if __name__ == '__main__':
    lwtest.run([test_every_refused_subscribe_is_named, test_insecure_failure_is_not_a_verify_failure,
                test_worker_moves_past_a_sentinel_naming_a_dead_master,
                test_worker_bounded_by_a_blackholed_sentinel, test_shortfall_resends_and_renewals,
                test_wakeups_over_tls, test_shortfall_outcome_is_sent_again,
                test_more_replicas_than_there_are_is_bounded, test_resent_events_are_appended_once])

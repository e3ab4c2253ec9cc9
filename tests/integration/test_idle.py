"""What an idle fleet costs Redis, and that it still starts work at once.

  idle polls back off   while a tenant's wake channel is confirmed on a live
                        pub/sub connection, its idle claims double their
                        period up to 8 s; a job enqueued then still starts
                        at once (its wake-up)
  a lost pub/sub connection   brings the polls back to --poll, and the
                        re-subscription claims once: a job whose wake-up
                        went nowhere does not wait for the backed-off poll
  one reaper a period   reap.lua does the work for the first caller of each
                        period, the others only ask when the next is due;
                        a dead worker's job is taken back within its lease
                        all the same
  fast paths            the idle answers of claim.lua and reap.lua before
                        lib.lua are the full paths' answers (a body without
                        the block is the reference)
"""
import os
import re
import sys
import time

import lwtest
from lwtest import check, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common', 'scripts'))
import embed  # noqa: E402 - the script bodies, built as the binaries build them

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common', 'scripts')


def calls(c, name):
    """Calls of command `name` since the last CONFIG RESETSTAT (scripts' own
    redis.call()s included)."""
    m = re.search(r'cmdstat_%s:calls=(\d+)' % name, c.call('INFO', 'commandstats'))
    return int(m.group(1)) if m else 0


def subscribed(env, channel, n=1):
    c = env.redis.client()
    try:
        return int(c.call('PUBSUB', 'NUMSUB', channel)[1]) >= n
    finally:
        c.close()


def start_delay_ms(env, tenant, jid):
    """ms from enqueue to first start (Redis's clock), once it started."""
    c = env.redis.client()
    try:
        def started():
            return c.call('HGET', 'lw:{%s}:job:%s' % (tenant, jid), 'started')
        wait_until(started, timeout=20, what='job %s to start' % jid)
        enq, st = c.call('HMGET', 'lw:{%s}:job:%s' % (tenant, jid), 'enqueued', 'started')
        return int(st) - int(enq)
    finally:
        c.close()


def idle_worker(env, name=None):
    """A worker that polls every 0.05 s until its polls back off; --lease 60
    (one reap every 10 s), so a window of a few seconds counts claims."""
    kw = {'name': name} if name else {}
    return env.worker('--poll', '0.05', '--lease', '60', '--isolation', 'thread', '--concurrency', '2', **kw)


@lwtest.plain_only  # timing of the backed-off polls: the C paths run sanitized elsewhere
def test_idle_polls_back_off_and_wakeups_still_start_jobs(env):
    env.write_registry([env.tenant('t1')])
    idle_worker(env)
    wait_until(lambda: subscribed(env, 'lw:{t1}:wake'), what='the wake-up subscription')
    time.sleep(6)
    c = env.redis.client()
    try:
        c.call('CONFIG', 'RESETSTAT')
        time.sleep(6)
        n = calls(c, 'evalsha')
    finally:
        c.close()
    # Every 50-75 ms that would be ~100 claims; backed off, after 6 s of
    # polls every 3.2 s and more, at most a few.
    check(n <= 6, 'an idle tenant was asked %d times in 6 s after 6 s idle (--poll 0.05)' % n)
    jid = env.enqueue('t1', 'noop')
    d = start_delay_ms(env, 't1', jid)
    check(d < 1000, 'a job enqueued into the backed-off tenant started %d ms after its enqueue' % d)


@lwtest.plain_only  # timing of the backed-off polls: the C paths run sanitized elsewhere
def test_lost_pubsub_connection_does_not_wait_for_the_backed_off_poll(env):
    env.write_registry([env.tenant('t1')])
    idle_worker(env)
    wait_until(lambda: subscribed(env, 'lw:{t1}:wake'), what='the wake-up subscription')
    time.sleep(8)
    c = env.redis.client()
    try:
        # Right after a poll (claim.lua's idle path runs LLEN; nothing else
        # here does), the next one is 3.2 s or more away.
        c.call('CONFIG', 'RESETSTAT')
        wait_until(lambda: calls(c, 'llen') > 0, timeout=15, interval=0.01, what='an idle poll')
        # Gone by the time CLIENT KILL returns: the wake-up of the job
        # enqueued next goes to nobody.
        check(c.call('CLIENT', 'KILL', 'TYPE', 'pubsub') >= 1, 'no pub/sub connection to kill')
        jid = env.enqueue('t1', 'noop')
    finally:
        c.close()
    d = start_delay_ms(env, 't1', jid)
    check(d < 2000, 'a job whose wake-up was lost with the pub/sub connection waited %d ms' % d)


def test_one_reaper_per_period_and_deaths_still_found(env):
    env.write_registry([env.tenant('t1')])
    a = env.worker('--lease', '3', '--isolation', 'fork', '--concurrency', '2', name='a')
    jid = env.enqueue('t1', 'sleep', {'ms': 60000})
    c = env.redis.client()
    try:
        wait_until(lambda: c.call('HGET', 'lw:{t1}:job:' + jid, 'worker') == 'a', what='worker a to run the job')
        others = [env.worker('--lease', '3', '--isolation', 'fork', '--concurrency', '2', name=n)
                  for n in ('b', 'c')]
        wait_until(lambda: subscribed(env, 'lw:{t1}:wake', 3), what='three subscriptions')
        time.sleep(2)
        c.call('CONFIG', 'RESETSTAT')
        time.sleep(5)
        # SMEMBERS of P queues: once per reap that does the work, nowhere
        # else while nothing fails over. Three workers each reaping every
        # 0.4-0.6 s would make ~30 in 5 s; one per period ~10.
        n = calls(c, 'smembers')
        check(n <= 16, '%d reaps did the work in 5 s with 3 workers and a 0.5 s period' % n)
        a.kill9()
        t_kill = time.monotonic()

        def retried():
            w, att = c.call('HMGET', 'lw:{t1}:job:' + jid, 'worker', 'attempt')
            return w in ('b', 'c') and att == '2'
        wait_until(retried, timeout=15, what='the dead worker\'s job to run again')
        took = time.monotonic() - t_kill
        # Its lease ran out at most 3 s after the kill (renewed every 0.5 s);
        # the reaper of the period after that takes it back.
        check(took < 4.5, 'the job of a killed worker (--lease 3) ran again %.1f s after the kill' % took)
        for w in others:
            check(w.running(), 'worker %s exited' % w.name)
    finally:
        c.close()


@lwtest.plain_only  # timing of the backed-off polls: the C paths run sanitized elsewhere
def test_cap_freed_by_another_worker_does_not_wait_for_the_backed_off_poll(env):
    # A claim refused by max_active answers "nothing", like an empty tenant,
    # and a slot freed by another worker's finish announces nothing: the
    # waiting job is found by a poll only.
    env.write_registry([env.tenant('t1', queues={'default': {'max_active': 1}})])
    a = idle_worker(env, 'a')
    b = idle_worker(env, 'b')
    wait_until(lambda: subscribed(env, 'lw:{t1}:wake', 2), what='two wake-up subscriptions')
    time.sleep(8)
    c = env.redis.client()
    try:
        s = env.enqueue('t1', 'sleep', {'ms': 3000})
        wait_until(lambda: c.call('HGET', 'lw:{t1}:job:' + s, 'worker') in ('a', 'b'), what='the sleep job to start')
        runner = a if c.call('HGET', 'lw:{t1}:job:' + s, 'worker') == 'a' else b
        other = b if runner is a else a
        jid = env.enqueue('t1', 'noop')
        time.sleep(0.3)
        check(c.call('HGET', 'lw:{t1}:job:' + jid, 'status') == 'queued', 'the cap did not hold the second job')
        # The runner finishes its job and leaves: only the other can take it.
        runner.signal(15)
        wait_until(lambda: c.call('HGET', 'lw:{t1}:job:' + s, 'status') == 'succeeded', timeout=10,
                   what='the sleep job to end')
        fin = int(c.call('HGET', 'lw:{t1}:job:' + s, 'finished'))
        start_delay_ms(env, 't1', jid)
        st = int(c.call('HGET', 'lw:{t1}:job:' + jid, 'started'))
        check(c.call('HGET', 'lw:{t1}:job:' + jid, 'worker') == other.name, 'the job did not go to the other worker')
        check(st - fin < 2000, 'a job held by max_active started %d ms after the slot freed' % (st - fin))
    finally:
        c.close()


@lwtest.plain_only  # timing of the backed-off polls: the C paths run sanitized elsewhere
def test_expiry_in_a_backed_off_tenant_is_on_time(env):
    # Jobs waiting behind a running lane head, with --expires: nothing but a
    # claim expires them, and their expiry is no due time of the schedule.
    env.write_registry([env.tenant('t1')])
    idle_worker(env)
    wait_until(lambda: subscribed(env, 'lw:{t1}:wake'), what='the wake-up subscription')
    c = env.redis.client()
    try:
        h = env.enqueue('t1', 'sleep', {'ms': 30000}, lane='L')
        wait_until(lambda: c.call('HGET', 'lw:{t1}:job:' + h, 'status') == 'active', what='the lane head to start')
        time.sleep(8)
        # Right after an idle poll: the next one is 3.2 s or more away.
        c.call('CONFIG', 'RESETSTAT')
        wait_until(lambda: calls(c, 'llen') > 0, timeout=15, interval=0.01, what='an idle poll')
        ids = [env.enqueue('t1', 'noop', lane='L', expires=e) for e in (1, 2)]
        for jid, e in zip(ids, (1, 2)):
            k = 'lw:{t1}:job:' + jid
            wait_until(lambda: c.call('HGET', k, 'status') == 'expired', timeout=20, what='job %s to expire' % jid)
            enq, fin = (int(v) for v in c.call('HMGET', k, 'enqueued', 'finished'))
            late = fin - enq - e * 1000
            check(late < 1000, 'a job with --expires %d in a backed-off tenant expired %d ms late' % (e, late))
    finally:
        c.close()


def test_a_mass_death_is_reaped_at_once_not_200_a_period(env):
    # reap.lua takes back at most 200 leases per queue and call, and now one
    # call per period does the work: a worker that died holding more than
    # that must not have its jobs trickle back 200 a period.
    env.write_registry([env.tenant('t1', defaults={'attempts': 3, 'timeout': 120, 'backoff': 0.05})])
    n = 650
    a = env.worker('--lease', '3', '--isolation', 'thread', '--concurrency', str(n), name='a')
    # b reaps the tenant but claims nothing of it (another queue).
    env.worker('--lease', '3', '--isolation', 'thread', '--concurrency', '2', '--queue', 'other', name='b')
    ids = env.enqueue_batch([{'tenant': 't1', 'kind': 'sleep', 'payload': {'ms': 120000}} for _ in range(n)])
    c = env.redis.client()
    try:
        wait_until(lambda: c.call('ZCARD', 'lw:{t1}:active:default') == n, timeout=30, what='%d jobs running' % n)
        time.sleep(1)
        a.kill9()

        def lost():
            return [e for e in c.call('XRANGE', 'lw:{t1}:events', '-', '+')
                    if 'job.lost' in e[1]]
        wait_until(lambda: len(lost()) == n, timeout=20, what='every job of the dead worker to be taken back')
        ms = [int(e[0].split('-')[0]) for e in lost()]
        spread = max(ms) - min(ms)
        check(spread < 400, 'the %d jobs of a dead worker came back over %d ms (a 500 ms reap period)' % (n, spread))
    finally:
        c.close()


def without_fast_path(name):
    """The body of NAME.lua with its before-lib.lua block left out: the
    full path only, the reference the fast path must agree with."""
    with open(os.path.join(SCRIPTS, 'lib.lua'), encoding='utf-8') as f:
        lib = f.read()
    with open(os.path.join(SCRIPTS, name + '.lua'), encoding='utf-8') as f:
        text = f.read()
    text = embed.BEFORE_LIB_RE.sub('', text)
    return embed.body(lib, text, name)


def test_fast_paths_answer_as_the_full_paths(env):
    c = env.redis.client()
    try:
        fast = {n: c.call('SCRIPT', 'LOAD', embed.load(n)) for n in ('claim', 'reap')}
        full = {n: c.call('SCRIPT', 'LOAD', without_fast_path(n)) for n in ('claim', 'reap')}
        check(fast['claim'] != full['claim'] and fast['reap'] != full['reap'], 'no fast path found')

        def claim(sha, t):
            p = 'lw:{%s}:' % t
            keys = [p + k for k in ('events', 'schedule', 'stats', 'expiring', 'fence', 'ready:default',
                                    'active:default')]
            return c.call('EVALSHA', sha, len(keys), *keys, p, '1000', 'w', '15000', '4', '600', '1',
                          'default', '0')

        # Each state in two tenants, one per body.
        for t in ('f', 'r'):
            c.call('SET', 'lw:{%s}:protocol' % t, '1')
        for label, setup in (('empty', None),
                             ('scheduled later', ('ZADD', 'schedule', '99999999999999', 'x')),
                             ('expiry later', ('ZADD', 'expiring', '99999999999999', 'y'))):
            if setup:
                for t in ('f', 'r'):
                    c.call(setup[0], 'lw:{%s}:%s' % (t, setup[1]), setup[2], setup[3])
            got, want = claim(fast['claim'], 'f'), claim(full['claim'], 'r')
            # due_in: both computed from Redis's clock a moment apart.
            check(got[:2] == want[:2] and got[3:] == want[3:] and abs(got[2] - want[2]) < 1000,
                  'claim.lua, %s: fast path %r, full path %r' % (label, got, want))

        def reap(sha, t, lease='15000'):
            p = 'lw:{%s}:' % t
            return c.call('EVALSHA', sha, 4, p + 'events', p + 'queues', p + 'stats', p + 'failed', p,
                          '1000', '600', '200', lease)

        # The first run of each starts P alive; the second is idle in both.
        for t, sha in (('f', fast['reap']), ('r', full['reap'])):
            reap(sha, t)
            c.call('DEL', 'lw:{%s}:reaped' % t)
            check(reap(sha, t) == [[], 0, 0], 'an idle reap did not answer "nothing, no gap"')
            check(c.call('ZRANGE', 'lw:{%s}:leases' % t, '0', '-1') == ['15000'], 'P leases not kept')
        # A second call within the period is told when the next is due.
        wait = reap(fast['reap'], 'f')[2]
        check(0 < wait <= 2500, 'a reap within the period answered wait %r' % wait)
        # An expired lease, in both: taken back the same way.
        for t in ('f', 'r'):
            p = 'lw:{%s}:' % t
            c.call('DEL', p + 'reaped')
            c.call('SADD', p + 'queues', 'default')
            c.call('ZADD', p + 'active:default', '1', 'gone')
        got, want = reap(fast['reap'], 'f'), reap(full['reap'], 'r')
        check(got == want and got[0] == ['gone', 'missing'], 'expired lease: fast %r, full %r' % (got, want))
    finally:
        c.close()


if __name__ == '__main__':
    lwtest.run([test_idle_polls_back_off_and_wakeups_still_start_jobs,
                test_lost_pubsub_connection_does_not_wait_for_the_backed_off_poll,
                test_one_reaper_per_period_and_deaths_still_found,
                test_cap_freed_by_another_worker_does_not_wait_for_the_backed_off_poll,
                test_expiry_in_a_backed_off_tenant_is_on_time,
                test_a_mass_death_is_reaped_at_once_not_200_a_period,
                test_fast_paths_answer_as_the_full_paths])

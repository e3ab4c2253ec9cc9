"""The queue metrics of /metrics (CONTRACT section 13; worker/queue_stats.c,
claim.lua's wait_ms): lanework_queue_jobs{tenant,queue,state} and
lanework_queue_oldest_seconds read by the worker itself from Redis, the
histogram lanework_queue_wait_seconds, the queue label of
lanework_jobs_total and lanework_attempt_duration_seconds; a partitioned
tenant reported once, summed over its partitions; reads only while
someone scrapes; and the whole page in valid Prometheus text format."""
import json
import re
import shutil
import signal
import subprocess
import time

import lwtest
from lwtest import check, free_port, http_get, wait_until
from test_partitions import part_of, partitioned_worker, wait_done

QUEUES = {'default': {}, 'bulk': {}}

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r'^(%s)(\{%s(?:,%s)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$' % (NAME, LABEL, LABEL))
HELP_RE = re.compile(r'^# HELP (%s) \S.*$' % NAME)
TYPE_RE = re.compile(r'^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$' % NAME)


def parse_exposition(text):
    """Checks Prometheus text format 0.0.4: every line parses, each family
    has one HELP and one TYPE before its samples, a family's samples are
    together, histogram samples are NAME_bucket (with le), _sum and _count.
    Returns {(name, frozenset(labels.items())): value}."""
    check(text.endswith('\n'), 'the page does not end with a newline')
    helps, types, seen_done, samples = set(), {}, set(), {}
    current = None
    for n, line in enumerate(text.split('\n')[:-1], 1):
        where = 'line %d %r' % (n, line)
        m = HELP_RE.match(line)
        if m:
            check(m.group(1) not in helps, '%s: a second HELP' % where)
            helps.add(m.group(1))
            continue
        m = TYPE_RE.match(line)
        if m:
            fam = m.group(1)
            check(fam not in types, '%s: a second TYPE' % where)
            check(fam in helps, '%s: TYPE before HELP' % where)
            types[fam] = m.group(2)
            if current:
                seen_done.add(current)
            current = fam
            continue
        m = SAMPLE_RE.match(line)
        check(m, '%s: not a sample, HELP or TYPE line' % where)
        name, labels = m.group(1), m.group(2) or ''
        fam = name
        if current and types.get(current) == 'histogram' and name in (
                current + '_bucket', current + '_sum', current + '_count'):
            fam = current
        check(fam == current, '%s: sample of family %s outside its group (TYPE %s)' % (where, fam, current))
        check(fam not in seen_done, '%s: family %s split' % (where, fam))
        lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        if types[fam] == 'histogram':
            check(name != fam, '%s: a bare histogram sample' % where)
            check((name == fam + '_bucket') == ('le' in lab), '%s: le on a non-bucket or missing' % where)
        key = (name, frozenset(lab.items()))
        check(key not in samples, '%s: the same series twice' % where)
        samples[key] = float(m.group(3))
    check(helps == set(types), 'HELP without TYPE: %s' % (helps - set(types)))
    return samples


def promtool_check(text):
    """Prometheus's own parser and linter on the page, where promtool is
    installed (Debian: prometheus): it refuses, e.g., a label value that
    is not UTF-8 -- and Prometheus then drops the whole scrape."""
    promtool = shutil.which('promtool')
    if not promtool:
        return
    p = subprocess.run([promtool, 'check', 'metrics'], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    check(p.returncode == 0, 'promtool check metrics: %s' % p.stdout.decode('utf-8', 'replace'))


def scrape(port):
    code, body = http_get(port, '/metrics')
    check(code == 200, '/metrics %d' % code)
    return parse_exposition(body)


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def gauges(port, tenant, queue):
    s = scrape(port)
    g = {st: value(s, 'lanework_queue_jobs', tenant=tenant, queue=queue, state=st)
         for st in ('queued', 'scheduled', 'active', 'paused')}
    g['oldest'] = value(s, 'lanework_queue_oldest_seconds', tenant=tenant, queue=queue)
    return g


def wait_gauges(port, tenant, queue, want, timeout=20):
    """Scrapes until the gauges of (tenant, queue) are `want` (a dict of
    state -> value); returns them."""
    last = {}

    def ok():
        last.update(gauges(port, tenant, queue))
        return last if all(last.get(k) == v for k, v in want.items()) else None
    try:
        return wait_until(ok, timeout=timeout, interval=0.25, what='gauges %s of %s/%s' % (want, tenant, queue))
    except lwtest.TestFailure as e:
        raise lwtest.TestFailure('%s; last seen %s' % (e, last))


def wait_ready(port):
    def up():
        try:
            return http_get(port, '/healthz')[0] == 200
        except OSError:
            return False
    wait_until(up, timeout=10, what='/healthz 200')


def cli_ok(env, *args):
    rc, out, err = env.cli(*args)
    check(rc == 0, '%s: %d %r' % (' '.join(args), rc, err))
    return out


def stop(w):
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_queue_gauges_count_queued_scheduled_active_and_paused(env):
    env.write_registry([env.tenant('t1', queues=QUEUES)])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port, '--concurrency', '4', '--queue', 'default',
                   '--queue', 'bulk')
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'bulk')
    t0 = time.monotonic()
    queued = [env.enqueue('t1', 'record', {}, queue='bulk') for _ in range(5)]
    scheduled = [env.enqueue('t1', 'record', {}, queue='bulk', delay=600) for _ in range(3)]
    running = [env.enqueue('t1', 'record', {'ms': 8000}) for _ in range(2)]
    wait_until(lambda: all(env.status('t1', j)['status'] == 'active' for j in running), timeout=10,
               what='the long jobs started')
    wait_gauges(port, 't1', 'bulk', {'queued': 5, 'scheduled': 3, 'active': 0, 'paused': 1})
    g = wait_gauges(port, 't1', 'default', {'queued': 0, 'scheduled': 0, 'active': 2, 'paused': 0})
    check(g['oldest'] == 0, 'nothing waits in default, yet oldest is %s' % g['oldest'])
    # The oldest queued job of bulk is as old as the first enqueue, on Redis's clock.
    g = gauges(port, 't1', 'bulk')
    age = time.monotonic() - t0
    check(g['oldest'] is not None and 0 < g['oldest'] <= age + 0.5,
          'oldest of bulk %s, the first job was enqueued %.1f s ago' % (g['oldest'], age))
    # A tombstone at the head (a queued job cancelled) is skipped.
    cli_ok(env, 'cancel', '--tenant', 't1', queued[0])
    g = wait_gauges(port, 't1', 'bulk', {'queued': 4})
    check(g['oldest'] is not None and g['oldest'] > 0,
          'oldest of bulk %s with a tombstone at the head of its ready list' % g['oldest'])
    # Resumed: the gauges follow.
    cli_ok(env, 'resume', '--tenant', 't1', '--queue', 'bulk')
    env.wait_all('t1', queued[1:], timeout=20)
    wait_gauges(port, 't1', 'bulk', {'queued': 0, 'scheduled': 3, 'paused': 0, 'oldest': 0})
    stop(w)


def test_wait_histogram_counts_each_start_with_the_queue_label(env):
    env.write_registry([env.tenant('t1', queues=QUEUES)])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port, '--concurrency', '4', '--queue', 'default',
                   '--queue', 'bulk')
    wait_ready(port)
    before = scrape(port)
    check(value(before, 'lanework_queue_wait_seconds_count', tenant='t1', queue='bulk') is None,
          'a wait counted before any job ran')
    # Held back 1.5 s by a pause: each start waited at least that long.
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'bulk')
    held = [env.enqueue('t1', 'record', {}, queue='bulk') for _ in range(4)]
    time.sleep(1.5)
    cli_ok(env, 'resume', '--tenant', 't1', '--queue', 'bulk')
    # A delayed job waits from the end of its delay, not from its enqueue.
    delayed = env.enqueue('t1', 'record', {}, delay=2)
    quick = [env.enqueue('t1', 'record', {}) for _ in range(3)]
    env.wait_all('t1', held + quick + [delayed], timeout=20)
    s = scrape(port)
    n_bulk = value(s, 'lanework_queue_wait_seconds_count', tenant='t1', queue='bulk')
    n_def = value(s, 'lanework_queue_wait_seconds_count', tenant='t1', queue='default')
    check(n_bulk == 4 and n_def == 4, 'wait counts bulk %s default %s, want 4 and 4' % (n_bulk, n_def))
    sum_bulk = value(s, 'lanework_queue_wait_seconds_sum', tenant='t1', queue='bulk')
    check(sum_bulk >= 4 * 1.4, 'the paused jobs waited %.3f s in all, want >= %.1f' % (sum_bulk, 4 * 1.4))
    sum_def = value(s, 'lanework_queue_wait_seconds_sum', tenant='t1', queue='default')
    check(sum_def < 1.5, 'default waited %.3f s in all: the delayed job counted its delay' % sum_def)
    inf = value(s, 'lanework_queue_wait_seconds_bucket', tenant='t1', queue='bulk', le='+Inf')
    le1 = value(s, 'lanework_queue_wait_seconds_bucket', tenant='t1', queue='bulk', le='1')
    check(inf == 4 and le1 == 0, 'bulk buckets: <=1 s %s, +Inf %s' % (le1, inf))
    promtool_check(http_get(port, '/metrics')[1])
    # The queue label on the counters of ended attempts and their durations.
    jt = value(s, 'lanework_jobs_total', tenant='t1', queue='bulk', kind='record', outcome='succeeded')
    check(jt == 4, 'lanework_jobs_total of bulk %s' % jt)
    dc = value(s, 'lanework_attempt_duration_seconds_count', tenant='t1', queue='default')
    check(dc == 4, 'lanework_attempt_duration_seconds_count of default %s' % dc)
    stop(w)


def test_partitioned_tenant_is_reported_once_summed(env):
    k = 4
    port = free_port()
    w = partitioned_worker(env, k, '--http', '127.0.0.1:%d' % port, '--concurrency', '4')
    cli_ok(env, 'pause', '--tenant', 'p', '--queue', 'default')
    lanes = ['L%d' % i for i in range(12)]
    check(len({part_of(l, k) for l in lanes}) == k, 'the lanes do not cover every partition')
    ids = [env.enqueue('p', 'record', {}, lane=l) for l in lanes]
    later = [env.enqueue('p', 'record', {}, lane=l, delay=600) for l in ('M1', 'M2', 'M3')]
    wait_gauges(port, 'p', 'default', {'queued': 12, 'scheduled': 3, 'paused': 1, 'active': 0})
    s = scrape(port)
    series = [key for key in s if key[0] == 'lanework_queue_jobs' and ('tenant', 'p') in key[1]]
    check(len(series) == 4, 'tenant p has %d lanework_queue_jobs series, want 4 (one per state): %s'
          % (len(series), series))
    check(len([key for key in s if key[0] == 'lanework_queue_oldest_seconds']) == 1,
          'oldest reported more than once')
    cli_ok(env, 'resume', '--tenant', 'p', '--queue', 'default')
    wait_done(env, 'p', ids, k)
    wait_gauges(port, 'p', 'default', {'queued': 0, 'scheduled': 3, 'paused': 0})
    s = scrape(port)
    check(value(s, 'lanework_queue_wait_seconds_count', tenant='p', queue='default') == 12,
          'wait count of p: %s' % value(s, 'lanework_queue_wait_seconds_count', tenant='p', queue='default'))
    del later
    stop(w)


def test_no_reads_while_nobody_scrapes(env):
    env.write_registry([env.tenant('t1')])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port)
    wait_ready(port)
    env.enqueue('t1', 'record', {}, delay=600)
    time.sleep(6)  # more than a period of the reader (5 s)
    # LRANGE and ZCARD come only from the reader here: the claims of an
    # idle tenant take claim.lua's fast path, and probes ask /healthz.
    st = env.redis.commandstats()
    check(not st.get('lrange') and not st.get('zcard'), 'reads without a scrape: %s' % st)
    wait_gauges(port, 't1', 'default', {'scheduled': 1, 'queued': 0})
    check(env.redis.commandstats().get('lrange'), 'no LRANGE after the scrape')
    stop(w)


def wait_observed(port, tenant, queue, n, timeout=30):
    """Scrapes until (tenant, queue) has n waits counted; returns their sum."""
    def got():
        s = scrape(port)
        if value(s, 'lanework_queue_wait_seconds_count', tenant=tenant, queue=queue) == n:
            return (value(s, 'lanework_queue_wait_seconds_sum', tenant=tenant, queue=queue),)
        return None
    return wait_until(got, timeout=timeout, interval=0.1, what='%d waits of %s/%s' % (n, tenant, queue))[0]


def test_wait_after_a_hand_back_or_a_lost_lease_runs_from_the_requeue(env):
    """A job handed back at shutdown, or whose lease was lost, is runnable
    again from then: its next start's wait does not include the earlier
    run (it counted from the enqueue, and a job that ran 3 s before its
    worker stopped showed a wait of 3 s and more)."""
    env.write_registry([env.tenant('t1')])
    # Handed back: a worker stopped twice (the second TERM hands back at once).
    a = env.worker('--concurrency', '1')
    job = env.enqueue('t1', 'record', {'ms': 3000})
    wait_until(lambda: env.status('t1', job)['status'] == 'active', timeout=10, what='the job started')
    time.sleep(2.5)
    a.signal(signal.SIGTERM)
    time.sleep(0.2)
    a.signal(signal.SIGTERM)
    check(a.wait() == 0, 'worker A exit')
    check(env.status('t1', job)['status'] == 'queued', 'not handed back: %s' % env.status('t1', job))
    handed_back = time.monotonic()
    port = free_port()
    b = env.worker('--http', '127.0.0.1:%d' % port, '--concurrency', '1')
    wait_ready(port)
    total = wait_observed(port, 't1', 'default', 1)
    bound = time.monotonic() - handed_back
    check(total <= bound + 0.3, 'the handed-back job waited %.3f s, yet it was queued again %.3f s ago '
          '(it ran 2.5 s before)' % (total, bound))
    env.wait_all('t1', [job], timeout=20)
    stop(b)
    # Lost: a worker killed with the job running; the lease ends 2 s later.
    a = env.worker('--concurrency', '1', '--lease', '2')
    job = env.enqueue('t1', 'record', {'ms': 4000})
    wait_until(lambda: env.status('t1', job)['status'] == 'active', timeout=10, what='the job started')
    time.sleep(3)
    a.kill9()
    a.wait()
    killed = time.monotonic()
    b = env.worker('--http', '127.0.0.1:%d' % port, '--concurrency', '1', '--lease', '2')
    wait_ready(port)
    total = wait_observed(port, 't1', 'default', 1)
    check(env.status('t1', job)['attempt'] == 2, 'not claimed anew: %s' % env.status('t1', job))
    bound = time.monotonic() - killed
    # Runnable again at the lease's end, at most 2 s after the kill.
    check(total <= bound - 3 + 2.5 and total < 2.5,
          'the lost job waited %.3f s (killed %.3f s ago, after 3 s of its run)' % (total, bound))
    env.wait_all('t1', [job], timeout=20)
    stop(b)


def test_oldest_of_a_delayed_job_counts_from_the_end_of_its_delay(env):
    """A job enqueued with --delay is runnable once the delay ends: the
    oldest gauge ages it from then, as the wait histogram does (it aged it
    from the enqueue, so a job delayed an hour showed 3600 s the moment it
    became due, and an autoscaler on it scaled to its maximum)."""
    env.write_registry([env.tenant('t1')])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port)
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'default')
    job = env.enqueue('t1', 'record', {}, delay=4)
    due = time.monotonic() + 4
    wait_until(lambda: env.status('t1', job)['status'] == 'queued', timeout=15, what='the job promoted')
    g = wait_gauges(port, 't1', 'default', {'queued': 1, 'scheduled': 0})
    since_due = time.monotonic() - due
    check(g['oldest'] is not None and g['oldest'] <= since_due + 0.5,
          'oldest %s s, yet the job became runnable %.1f s ago (enqueued 4 s before that)'
          % (g['oldest'], since_due))
    # `lanework stats` ages it the same way (its OLDEST).
    st = json.loads(cli_ok(env, 'stats', '--tenant', 't1', '--json'))
    oldest = st['tenants']['t1']['queues']['default']['oldest_waiting_s']
    since_due = time.monotonic() - due
    check(oldest is not None and oldest <= since_due + 0.5,
          'stats: oldest %s s, the job became runnable %.1f s ago' % (oldest, since_due))
    stop(w)


@lwtest.plain_only  # 30 s of a frozen Redis's timeouts: the C paths run sanitized in the others
def test_a_frozen_tenant_redis_does_not_stale_the_other_tenants_gauges(env):
    """A round of reads ends once every tenant's read has: a tenant whose
    Redis froze holds the round until its read fails (the reply timeout of
    --lease 60 is 10 s), yet the other tenants' gauges stay fresh
    throughout (a round held past 15 s would drop them as stale, and an
    autoscaler would see their backlog vanish). Its own go once stale."""
    p = env.proxy()
    env.write_registry([env.tenant('t1'), env.tenant('t2', redis=p.url)])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port, '--lease', '60')
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'default')
    env.enqueue('t1', 'record', {})
    wait_gauges(port, 't1', 'default', {'queued': 1})
    wait_gauges(port, 't2', 'default', {'queued': 0})
    p.cut()
    try:
        end = time.monotonic() + 25
        while time.monotonic() < end:
            g = gauges(port, 't1', 'default')
            check(g['queued'] == 1, 't1\'s gauges while t2\'s Redis is frozen: %s' % g)
            time.sleep(0.5)
        check(gauges(port, 't2', 'default')['queued'] is None, 'the frozen tenant\'s gauges still shown')
    finally:
        p.heal()
    stop(w)


def test_counts_a_tenant_wrote_do_not_overflow_the_partitions_sum(env):
    """The counts are the tenant's keys, which its ACL user may write: two
    partitions each saying 2^63-1 queued jobs summed to a negative gauge
    (a signed overflow, undefined in C; UBSan stops the worker). Held at
    the bound instead."""
    k = 2
    port = free_port()
    w = partitioned_worker(env, k, '--http', '127.0.0.1:%d' % port)
    wait_gauges(port, 'p', 'default', {'queued': 0})
    big = str(2 ** 63 - 1)
    for part in range(k):
        env.redis.call('HSET', ('lw:{p}:' if part == 0 else 'lw:{p#%d}:' % part) + 'stats',
                       'queued:default', big)
    g = wait_gauges(port, 'p', 'default', {'queued': float(2 ** 63 - 1)})
    check(w.running(), 'the worker died: %s' % w.log()[-2000:])
    del g
    stop(w)


def test_a_kind_the_tenant_wrote_cannot_break_the_page(env):
    """A job's kind is the tenant's to write (enqueue.lua takes any string,
    and its ACL user may HSET its records): one with a quote, a newline and
    bytes that are not UTF-8 is counted as kind="_other", and the page
    stays valid -- Prometheus drops a whole scrape for one bad label."""
    env.write_registry([env.tenant('t1')])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port)
    cli_ok(env, 'pause', '--tenant', 't1', '--queue', 'default')
    job = env.enqueue('t1', 'record', {}, attempts=1)
    env.redis.call('HSET', 'lw:{t1}:job:' + job, 'kind', b'evil\xff"} 1\n# TYPE x counter\nx{a="')
    cli_ok(env, 'resume', '--tenant', 't1', '--queue', 'default')
    env.wait_all('t1', [job], statuses=('failed',))
    body = wait_until(lambda: (lambda b: b if 'outcome="failed"' in b else None)(http_get(port, '/metrics')[1]),
                      timeout=10, what='the failed attempt counted')
    parse_exposition(body)
    promtool_check(body)
    check('lanework_jobs_total{tenant="t1",queue="default",kind="_other",outcome="failed"} 1' in body,
          'the attempt is not counted under _other:\n%s' % body[:3000])
    stop(w)


if __name__ == '__main__':
    lwtest.run([test_queue_gauges_count_queued_scheduled_active_and_paused,
                test_wait_histogram_counts_each_start_with_the_queue_label,
                test_partitioned_tenant_is_reported_once_summed, test_no_reads_while_nobody_scrapes,
                test_wait_after_a_hand_back_or_a_lost_lease_runs_from_the_requeue,
                test_oldest_of_a_delayed_job_counts_from_the_end_of_its_delay,
                test_a_frozen_tenant_redis_does_not_stale_the_other_tenants_gauges,
                test_counts_a_tenant_wrote_do_not_overflow_the_partitions_sum,
                test_a_kind_the_tenant_wrote_cannot_break_the_page])

"""`lanework dashboard` on a partitioned tenant whose partitions live on
several masters of a Redis Cluster, when one master is down (killed) or
frozen (SIGSTOP), and on a Redis Cluster URL tenant (DESIGN.md section 18,
"Partial pages"). Run as the other integration tests (LANEWORK_BIN=...
python3 test_dashboard_partitions.py [TEST]).

  master killed    every page of the tenant answers 200 with what the
                   reachable partitions hold and one banner naming each
                   unreadable partition (prefix, why); a job of a lost
                   partition is 502 naming it, one of a reachable one shows;
                   the pause button's flash names the partitions it could
                   not change; a retry there names its partition
  master frozen    the same pages answer within the dashboard's reply bound
                   (DASH_REPLY_MS, 3 s), not the CLI's 10 s, with the banner
  cluster URL      an unpartitioned tenant on a redis-cluster:// URL: every
                   page, a retry by POST with the page's CSRF token, and the
                   live stream delivering the retry's event
"""
import http.client
import re
import signal
import time
import urllib.parse

import lwtest
from lwtest import check, wait_until
from test_dashboard import Dashboard
from test_partitions import part_of, prefix

K = 6
REPLY_S = 3  # DASH_REPLY_MS


def lane_in(p, k, stem):
    return next(l for l in ('%s%d' % (stem, i) for i in range(2000)) if part_of(l, k) == p)


def partitioned(env):
    """A tenant "p" of K partitions on a 3-master cluster (no replicas, so
    no failover), one failed and one scheduled job per partition. Returns
    (cluster, the master of partitions to lose, lost, alive, failed ids by
    partition, scheduled lanes by partition)."""
    cs = env.own(lwtest.ClusterSet(env.dir, masters=3, replicas=0))
    for n in cs.nodes:
        n.call('CONFIG', 'SET', 'cluster-require-full-coverage', 'no')
    env.write_registry([env.tenant('p', partitions=K, redis=cs.url())])
    home = cs.node_for_key(prefix('p', 0) + 'x')
    node_of = {p: cs.node_for_key(prefix('p', p) + 'x') for p in range(K)}
    away = next((n for n in cs.nodes if n is not home and any(node_of[p] is n for p in range(K))), None)
    check(away is not None, 'the partitions of "p" all hash to the master of partition 0')
    lost = sorted(p for p in range(K) if node_of[p] is away)
    alive = sorted(p for p in range(K) if p not in lost)
    w = env.worker('--concurrency', '2', redis_url=cs.url())
    wait_until(lambda: home.call('HGET', 'lw:{p}:settings', 'partitions') == str(K), timeout=10,
               what='partition 0 to hold the count')
    bad = {p: env.enqueue('p', 'fail', {'error': 'boom <%d>' % p}, lane=lane_in(p, K, 'f'), attempts=1)
           for p in range(K)}
    sched = {p: lane_in(p, K, 's') for p in range(K)}
    for p in range(K):
        env.enqueue('p', 'noop', {}, lane=sched[p], delay=600)

    def ended():
        return all(node_of[p].call('HGET', prefix('p', p) + 'job:' + bad[p], 'status') == 'failed'
                   for p in range(K))
    wait_until(ended, timeout=30, interval=0.2, what='the failed jobs to end')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    return cs, away, lost, alive, bad, sched


def banner_of(body):
    m = re.search(r'<div class="partial"[^>]*>(.*?)</div>', body, re.S)
    return m.group(1) if m else None


def check_banner(path, body, lost):
    b = banner_of(body)
    check(b is not None, 'GET %s: no partial banner:\n%s' % (path, body[:3000]))
    check(body.count('class="partial"') == 1, 'GET %s: more than one banner' % path)
    for p in lost:
        check(('partition %d (lw:{p#%d}:) unreadable: ' % (p, p)) in b,
              'GET %s: the banner does not name partition %d: %r' % (path, p, b))
    named = sorted(int(x) for x in re.findall(r'partition (\d+) \(', b))
    check(named == lost, 'GET %s: the banner names %s, not %s' % (path, named, lost))


def timed_page(d, path, limit=None):
    t0 = time.monotonic()
    code, h, body = d.get(path, timeout=30)
    took = time.monotonic() - t0
    print('GET %s: %d in %.1f s' % (path, code, took), flush=True)
    if limit is not None:
        check(took < limit, 'GET %s took %.1f s (bound %.1f s)' % (path, took, limit))
    return code, h, body


def check_pages(d, lost, alive, bad, sched, limit=None):
    for path, want in [('/t/p', ['default', '%d partitions' % K]),
                       ('/t/p/q/default', [bad[p] for p in alive]),
                       ('/t/p/failed', [bad[p] for p in alive] + ['boom &lt;%d&gt;' % alive[-1]]),
                       ('/t/p/lanes', [sched[p] for p in alive]),
                       ('/t/p/events', [bad[p] for p in alive])]:
        code, h, body = timed_page(d, path, limit)
        check(code == 200, 'GET %s: %d %s' % (path, code, body[:1500]))
        check_banner(path, body, lost)
        for x in want:
            check(x in body, 'GET %s lacks %r:\n%s' % (path, x, body[:3000]))
        for p in lost:
            check(bad[p] not in body, 'GET %s shows job %s of lost partition %d' % (path, bad[p], p))
    # A job of a reachable partition shows; one of a lost one is 502 naming it.
    p = alive[-1]
    code, h, body = timed_page(d, '/t/p/job/' + bad[p], limit)
    check(code == 200 and 'boom &lt;%d&gt;' % p in body, 'job of partition %d: %d %s' % (p, code, body[:1500]))
    p = lost[0]
    code, h, body = timed_page(d, '/t/p/job/' + bad[p], limit)
    check(code == 502 and ('partition %d (lw:{p#%d}:)' % (p, p)) in body,
          'job of lost partition %d: %d %s' % (p, code, body[:1500]))
    # The live stream starts (the reachable partitions are polled).
    c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=30)
    try:
        t0 = time.monotonic()
        c.request('GET', '/t/p/events/stream')
        r = c.getresponse()
        check(r.status == 200 and r.getheader('Content-Type', '').startswith('text/event-stream'),
              'stream: %d %s' % (r.status, r.getheaders()))
        hello = b''.join(r.fp.readline() for _ in range(4))  # raw chunked: a size line first
        check(b'connected' in hello, 'stream: no hello: %r' % hello)
        if limit is not None:
            check(time.monotonic() - t0 < limit, 'the stream took %.1f s to start' % (time.monotonic() - t0))
    finally:
        c.close()


def check_pause(d, cs, lost, alive, limit=None):
    tok = d.csrf('/t/p')
    t0 = time.monotonic()
    code, h, _ = d.post('/t/p/q/default/pause', csrf=tok, back='/t/p')
    took = time.monotonic() - t0
    check(code == 303, 'pause: %d' % code)
    if limit is not None:
        check(took < limit, 'pause took %.1f s' % took)
    msg = urllib.parse.parse_qs(urllib.parse.urlsplit(h['Location']).query)['msg'][0]
    print('pause flash: %s' % msg, flush=True)
    check('not changed' in msg and 'paused in %d of %d partitions' % (len(alive), K) in msg,
          'the pause flash does not say it is partial: %r' % msg)
    for p in lost:
        check(('partition %d (lw:{p#%d}:)' % (p, p)) in msg, 'the flash does not name partition %d: %r' % (p, msg))
    for p in alive:
        check(cs.node_for_key(prefix('p', p) + 'x').call('SISMEMBER', prefix('p', p) + 'paused', 'default') == 1,
              'partition %d not paused' % p)
    code, _, body = d.get(h['Location'], timeout=30)
    check(code == 200 and 'not changed' in body, 'the page after pause: %d' % code)
    return tok


@lwtest.plain_only
def test_pages_with_a_master_killed(env):
    cs, away, lost, alive, bad, sched = partitioned(env)
    d = Dashboard(env)
    d.page('/t/p/failed', *[bad[p] for p in range(K)])
    away.kill9()
    cs.killed.add(away)
    check_pages(d, lost, alive, bad, sched)
    tok = check_pause(d, cs, lost, alive)
    # A retry of a job on a reachable partition works; on a lost one the
    # flash names the partition.
    p = alive[-1]
    code, h, _ = d.post('/t/p/job/%s/retry' % bad[p], csrf=tok, back='/t/p/failed')
    msg = urllib.parse.unquote(h.get('Location', ''))
    check(code == 303 and 'retried' in msg, 'retry in partition %d: %d %s' % (p, code, msg))
    p = lost[0]
    code, h, _ = d.post('/t/p/job/%s/retry' % bad[p], csrf=tok, back='/t/p/failed')
    msg = urllib.parse.parse_qs(urllib.parse.urlsplit(h.get('Location', '')).query).get('msg', [''])[0]
    check(code == 303 and 'failed' in msg and ('partition %d (lw:{p#%d}:)' % (p, p)) in msg,
          'retry in lost partition %d: %d %r' % (p, code, msg))
    d.stop()


@lwtest.plain_only
def test_pages_with_a_master_frozen_are_bounded(env):
    cs, away, lost, alive, bad, sched = partitioned(env)
    d = Dashboard(env)
    d.page('/t/p/failed', *[bad[p] for p in range(K)])
    away.proc.send_signal(signal.SIGSTOP)
    try:
        # Each page: at most one reply bound on the frozen master (then the
        # breaker answers for it at once), plus a margin for this machine.
        check_pages(d, lost, alive, bad, sched, limit=REPLY_S + 2)
        check_pause(d, cs, lost, alive, limit=REPLY_S + 2)
    finally:
        away.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: banner_of(d.get('/t/p', timeout=30)[2]) is None, timeout=20,
               what='the banner to go once the master answers again')
    d.stop()


@lwtest.plain_only
def test_a_cluster_url_tenant(env):
    cs = env.own(lwtest.ClusterSet(env.dir, masters=3, replicas=0))
    env.write_registry([env.tenant('c', redis=cs.url())])
    node = cs.node_for_key('lw:{c}:x')
    w = env.worker('--concurrency', '2', redis_url=cs.url())
    ok = env.enqueue('c', 'record', {'hello': 'world'})
    bad = env.enqueue('c', 'fail', {'error': 'cluster <boom>'}, attempts=1)
    wait_until(lambda: node.call('HGET', 'lw:{c}:job:' + bad, 'status') == 'failed' and
               node.call('HGET', 'lw:{c}:job:' + ok, 'status') == 'succeeded', timeout=30,
               interval=0.1, what='the jobs to end')
    d = Dashboard(env)
    d.page('/', 'c', '1 failed job(s) kept')
    d.page('/t/c', 'default')
    d.page('/t/c/q/default', ok, bad)
    d.page('/t/c/q/default?status=failed', bad)
    d.page('/t/c/failed', bad, 'cluster &lt;boom&gt;')
    d.page('/t/c/job/' + bad, 'cluster &lt;boom&gt;', 'job.failed')
    d.page('/t/c/job/' + ok, 'world')
    d.page('/t/c/lanes')
    d.page('/t/c/events', bad, ok)
    for path in ['/t/c', '/t/c/failed', '/t/c/events']:
        check(banner_of(d.page(path)) is None, 'GET %s: a partial banner on a healthy cluster' % path)
    c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=20)
    try:
        c.request('GET', '/t/c/events/stream')
        r = c.getresponse()
        check(r.status == 200, 'stream: %d' % r.status)
        r.fp.readline()
        tok = d.csrf('/t/c/failed')
        code, h, _ = d.post('/t/c/job/%s/retry' % bad, csrf=tok, back='/t/c/failed')
        msg = urllib.parse.unquote(h.get('Location', ''))
        check(code == 303 and 'retried' in msg, 'retry: %d %s' % (code, msg))
        got, deadline = b'', time.monotonic() + 15
        while time.monotonic() < deadline and not (b'"retry":true' in got and bad.encode() in got):
            line = r.fp.readline()
            if not line:
                break
            got += line
        check(b'"retry":true' in got and bad.encode() in got, 'the stream did not deliver the retry: %r' % got[-2000:])
    finally:
        c.close()
    wait_until(lambda: node.call('HGET', 'lw:{c}:job:' + bad, 'status') == 'failed' and
               node.call('HGET', 'lw:{c}:job:' + bad, 'attempt') in ('1', '2'), timeout=30,
               what='the retried job to run again')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')
    d.stop()


if __name__ == '__main__':
    lwtest.run([test_pages_with_a_master_killed,
                test_pages_with_a_master_frozen_are_bounded,
                test_a_cluster_url_tenant])

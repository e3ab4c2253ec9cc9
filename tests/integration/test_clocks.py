"""Chaos: workers whose wall clocks are wrong (issue 8, item 10).

Three workers whose clocks are off by +30 s, +25 h and -1 h (an LD_PRELOAD
shim, tests/modules/clockskew.c) serve delayed jobs, retries with backoff and
lanes together. Nothing may depend on worker clocks agreeing with Redis:
  * due jobs start when Redis says they are due (not early, not a poll late),
  * an idle worker claims at its poll rate, not in a tight loop (a worker
    30 s ahead took every delayed job for due and claimed 16,000 times a
    second),
  * the worker directory keeps every worker (one 25 h ahead dropped all its
    peers on each heartbeat, trimming "a day old" with its own clock).
"""
import datetime
import json
import signal
import time

import lwtest
from lwtest import check, free_port, http_get, wait_until

SKEWS = {'ahead30s': 30000, 'ahead25h': 25 * 3600 * 1000, 'behind1h': -3600 * 1000}


def ts(s):
    t = datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ')
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000


def claims(port):
    _code, body = http_get(port, '/metrics')
    for line in body.splitlines():
        if line.startswith('lanework_claims_total '):
            return int(line.split()[1])
    raise lwtest.TestFailure('no lanework_claims_total in /metrics')


def test_skewed_worker_clocks(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0.2})])
    ports = {name: free_port() for name in SKEWS}
    workers = {name: env.worker('--concurrency', '4', '--isolation', 'thread' if name == 'ahead25h' else 'fork',
                                '--http', '127.0.0.1:%d' % ports[name], name=name, skew_ms=skew)
               for name, skew in SKEWS.items()}
    time.sleep(1.0)
    t_idle = time.monotonic()
    idle_before = {n: claims(p) for n, p in ports.items()}
    lines = [{'kind': 'record', 'lane': 'L%d' % (i % 10), 'payload': {'ms': 50}} for i in range(30)]
    lines += [{'kind': 'noop', 'payload': {}, 'delay': 0.5 + 0.1 * i} for i in range(10)]
    lines += [{'kind': 'retry', 'payload': {'succeed_on': 2}} for _ in range(5)]
    ids = env.enqueue_batch(lines, tenant='t1')
    env.wait_all('t1', ids, timeout=30)
    delayed = ids[30:40]
    for i, jid in enumerate(delayed):
        s = env.status('t1', jid)
        lag = ts(s['started_at']) - ts(s['enqueued_at'])
        due = 500 + 100 * i
        check(due <= lag < due + 700, 'job due after %d ms started after %d ms (worker %s)' % (due, lag, s['worker']))
    evs = env.events('t1')
    for jid in ids[40:]:
        mine = [e for e in evs if e['job'] == jid]
        retrying = [ts(e['ts']) for e in mine if e['type'] == 'job.retrying']
        started = [ts(e['ts']) for e in mine if e['type'] == 'job.started']
        check(len(started) == 2 and len(retrying) == 1 and started[1] - retrying[0] < 900,
              'retry %s: %s' % (jid, [(e['type'], e['ts']) for e in mine]))
    # Idle again: a few seconds of polling only.
    time.sleep(3)
    elapsed = time.monotonic() - t_idle
    rates = {n: (claims(p) - idle_before[n]) / elapsed for n, p in ports.items()}
    _counts, _execs, dups = env.figures('skewed worker clocks (+30 s, +25 h, -1 h)', 't1', ids,
                                        ' claims/s %s' % {n: round(r, 1) for n, r in rates.items()})
    check(dups == 5, 'jobs ran more often than their retries explain: %d duplicates' % dups)
    for n, r in rates.items():
        check(r < 40, 'worker %s (clock %+d ms) claimed %.0f times a second' % (n, SKEWS[n], r))
    rc, out, err = env.cli('workers', '--json')
    check(rc == 0, 'workers: %d %s' % (rc, err))
    listed = {w['name']: w for w in json.loads(out)}
    for n in SKEWS:
        check(n in listed, 'worker %s is missing from the directory: %s' % (n, sorted(listed)))
        check(listed[n]['seen_ago_s'] < 5, 'worker %s looks stale: %s' % (n, listed[n]))
    for w in workers.values():
        w.signal(signal.SIGTERM)
    for w in workers.values():
        check(w.wait(30) == 0, 'worker %s exit' % w.name)


if __name__ == '__main__':
    lwtest.run([test_skewed_worker_clocks])

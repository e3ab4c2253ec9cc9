"""Review of `lanework dashboard` as a hostile tenant, an unlucky operator
and a chaos engineer: each test reproduces one finding (marked FINDING-n
above it); each failed on the dashboard of 287af38 and passes since its
fix. The helpers are test_dashboard's."""
import http.client
import json
import threading
import time

import lwtest
from lwtest import check
from test_dashboard import Dashboard, setup, token_file
from test_partitions import wait_done


def raw_get(d, path, headers=None, timeout=10):
    """GET path: (status, headers, body bytes)."""
    c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=timeout)
    try:
        c.request('GET', path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def redis_sent(env):
    info = env.redis.call('INFO', 'stats')
    return int(info.split('total_net_output_bytes:')[1].split()[0])


# FINDING-1 (HIGH, fixed): DNS rebinding. The Host header is never checked, so a
# page of evil.example whose name is made to resolve to 127.0.0.1 is served
# the dashboard as same-origin: it reads every page (payloads, results,
# errors of every tenant), takes the CSRF token from a form and POSTs any
# action. The default (127.0.0.1, no --token-file) is exactly the set-up
# this attacks. A fix answers 421 (or 403/400) to a Host that is not the
# address listened on (or a name the operator allows).
def test_a_request_for_another_host_is_refused(env):
    setup(env)
    d = Dashboard(env)
    evil = {'Host': 'evil.example:%d' % d.port}
    code, _, body = d.get('/t/t1', headers=evil)
    check(code in (400, 403, 421), 'GET with Host evil.example: %d (the page, %d bytes, was served)'
          % (code, len(body)))
    token = d.csrf()
    code, _, _ = d.request('POST', '/t/t1/q/default/pause', body={'csrf': token, 'back': '/t/t1'},
                           headers=evil)
    paused = env.redis.call('SISMEMBER', 'lw:{t1}:paused', 'default')
    check(code in (400, 403, 421) and not paused,
          'POST with Host evil.example: %d, queue paused: %s' % (code, paused))
    d.stop()


# FINDING-2 (MED, fixed): a forged flash. Any page shows ?msg= as the dashboard's
# own status line, so a link (in a chat, a ticket) can make the operator's
# dashboard say anything, e.g. "token expired: sign in again at ...". Escaped
# (no XSS), but it is the dashboard's voice. A fix carries the flash in a
# way a link cannot make (a MAC with the process's secret, or a cookie
# set by the action's redirect).
def test_a_link_cannot_put_words_in_the_flash(env):
    setup(env)
    d = Dashboard(env)
    forged = 'Your session expired. Sign in again at https://evil.example/login'
    code, _, body = d.get('/t/t1?msg=' + forged.replace(' ', '+'))
    check(code == 200, 'GET: %d' % code)
    check(forged not in body, 'a link put its own text in the flash: %r' % forged)
    d.stop()


# FINDING-3 (MED, fixed): one frozen Redis stalls the whole dashboard. Pages are
# rendered in the event loop from synchronous reads, so while one tenant's
# Redis does not answer (frozen, a partition: up to the 3 s reply bound
# per read, then again for the next page that tries it) nothing else is
# served: not another tenant's page, not even the stylesheet.
def test_a_frozen_redis_does_not_stall_other_pages(env):
    p = env.proxy()
    env.write_registry([env.tenant('t1'), env.tenant('t2', redis=p.url)])
    w = env.worker('--concurrency', '2')
    j1 = env.enqueue('t1', 'record', {})
    wait_done(env, 't1', [j1], 1)
    d = Dashboard(env)
    d.page('/t/t2')  # connected
    p.cut()
    stalled = {}

    def frozen_page():
        t0 = time.monotonic()
        stalled['code'] = d.get('/t/t2', timeout=30)[0]
        stalled['took'] = time.monotonic() - t0
    th = threading.Thread(target=frozen_page)
    th.start()
    time.sleep(0.3)  # its read is waiting on the frozen Redis
    worst = 0
    for path in ['/static/dash.css', '/t/t1', '/t/t1/job/' + j1]:
        t0 = time.monotonic()
        code = d.get(path, timeout=30)[0]
        took = time.monotonic() - t0
        worst = max(worst, took)
        check(code == 200, 'GET %s: %d' % (path, code))
    th.join()
    p.heal()
    print('  the frozen tenant\'s page: %s after %.2f s; the others: %.2f s at worst'
          % (stalled.get('code'), stalled.get('took', -1), worst))
    check(worst < 1.0, 'pages of a healthy tenant waited %.2f s behind a frozen Redis' % worst)
    w.signal(15)
    w.wait()
    d.stop()


# FINDING-4 (MED, fixed): a job's page reads an unbounded number of bytes. Its
# timeline scans the newest 2,000 events of the tenant, whatever their
# size: events carry handler data and errors of up to 64 KiB (or
# --max-payload), so a tenant whose jobs emit big events makes every job
# page read ~128 MB from Redis, synchronously, in the loop (with every
# other request waiting, FINDING-3). A fix bounds the scan in bytes too
# (or reads only the fields it filters on first).
def test_a_job_page_does_not_read_megabytes_of_other_jobs_events(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '1')
    job = env.enqueue('t1', 'record', {})
    wait_done(env, 't1', [job], 1)
    w.signal(15)
    w.wait()
    # 2,000 newer events of another job, 60 KB of data each (as a handler's
    # events or long errors make them).
    c = env.redis.client()
    try:
        big = json.dumps({'error': 'x' * 60000})
        for _ in range(20):
            c.pipeline([['XADD', 'lw:{t1}:events', '*', 'type', 'job.failed', 'job', 'other',
                         'data', big] for _ in range(100)])
    finally:
        c.close()
    d = Dashboard(env)
    before = redis_sent(env)
    t0 = time.monotonic()
    code, _, body = d.get('/t/t1/job/' + job, timeout=60)
    took = time.monotonic() - t0
    sent = redis_sent(env) - before
    print('  the job page: %d in %.2f s; Redis sent %.1f MB for it' % (code, took, sent / 1e6))
    check(code == 200, 'job page %d' % code)
    check(sent < 16e6, 'one job page made Redis send %.1f MB (%.2f s)' % (sent / 1e6, took))
    d.stop()


# FINDING-5 (LOW, fixed): event data cut inside a UTF-8 sequence. The event tables
# cut an event's data at byte 297 ("...") wherever that falls, so a
# multi-byte character is split and the page is not valid UTF-8 (its
# charset says it is). A fix cuts on a character boundary, as text_cut does.
def test_cut_event_data_stays_utf8(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '1')
    job = env.enqueue('t1', 'fail', {'error': '\u00e9' * 400}, attempts=1)
    wait_done(env, 't1', [job], 1)
    d = Dashboard(env)
    for path in ['/t/t1/events', '/t/t1/job/' + job]:
        code, _, body = raw_get(d, path)
        check(code == 200, '%s: %d' % (path, code))
        try:
            body.decode('utf-8')
        except UnicodeDecodeError as e:
            raise lwtest.TestFailure('%s is not valid UTF-8: %s, near %r' % (path, e, body[e.start - 20:e.start + 10]))
    w.signal(15)
    w.wait()
    d.stop()


# FINDING-6 (LOW, fixed): the token of --token-file can be guessed at full speed.
# POST /login needs no token (it is how one signs in) and answers every
# wrong guess at once, for ever: nothing slows a guesser down. A fix
# answers 429 (or waits) after a few wrong tokens in a row.
def test_token_guesses_are_slowed_down(env):
    setup(env)
    tf = token_file(env, 's3cret')
    d = Dashboard(env, '--token-file', tf)
    t0 = time.monotonic()
    codes = [d.post('/login', token='guess%d' % i)[0] for i in range(200)]
    took = time.monotonic() - t0
    print('  200 wrong tokens answered in %.2f s: %s' % (took, sorted(set(codes))))
    check(429 in codes or took > 10, '200 wrong tokens answered in %.2f s, each %s'
          % (took, sorted(set(codes))))
    d.stop()


# FINDING-7 (LOW, fixed): conflicting Content-Length headers are accepted (evhttp
# takes the first). Behind a reverse proxy that frames by the last one (a
# TLS front, as deployments put before a dashboard), the body is a second,
# smuggled request on the connection: here an action with its CSRF token
# that the proxy saw as a bodiless POST. RFC 9112 6.3: a message with
# differing Content-Length values is unrecoverable, answered 400.
def test_conflicting_content_lengths_are_refused(env):
    import socket
    setup(env)
    d = Dashboard(env)
    form = ('csrf=%s&back=/' % d.csrf()).encode()
    req = (b'POST /t/t1/q/default/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n'
           b'Content-Type: application/x-www-form-urlencoded\r\n'
           b'Content-Length: %d\r\nContent-Length: 0\r\n\r\n' % len(form)) + form
    s = socket.create_connection(('127.0.0.1', d.port), timeout=5)
    try:
        s.sendall(req)
        head = s.recv(4096).split(b'\r\n')[0]
    finally:
        s.close()
    paused = env.redis.call('SISMEMBER', 'lw:{t1}:paused', 'default')
    check(head.startswith(b'HTTP/1.1 400') and not paused,
          'two Content-Lengths (%d and 0): %r, queue paused: %s' % (len(form), head, paused))
    d.stop()


# FINDING-8 (MED, fixed): a queue page reads whole job records, payloads included,
# of every candidate it filters (cli_list_jobs: HGETALL of up to 20,000 per
# source, 500 pipelined at once), though a row shows no payload. Payloads
# are up to 1 MiB by default: a filter no job matches (?status=succeeded on
# a queue of waiting jobs) read every record -- here 200 of 256 KiB, 50 MB
# for one page; at the limits 20 GB, with 500 MB of replies held at once.
# A fix reads the fields a row shows (HMGET), or bounds the scan in bytes.
def test_a_queue_page_does_not_read_the_payloads_it_does_not_show(env):
    env.write_registry([env.tenant('t1')])
    rc, _, err = env.cli('pause', '--tenant', 't1', '--queue', 'default')
    check(rc == 0, 'pause: %s' % err)
    blob = 'p' * (256 * 1024)
    env.enqueue_batch([{'kind': 'record', 'payload': {'blob': blob}} for _ in range(200)], tenant='t1')
    d = Dashboard(env)
    before = redis_sent(env)
    t0 = time.monotonic()
    code, _, body = d.get('/t/t1/q/default?status=succeeded', timeout=60)
    took = time.monotonic() - t0
    sent = redis_sent(env) - before
    print('  the queue page: %d in %.2f s; Redis sent %.1f MB for it' % (code, took, sent / 1e6))
    check(code == 200, 'queue page %d' % code)
    check(sent < 5e6, 'one queue page (no job shown) made Redis send %.1f MB (%.2f s)'
          % (sent / 1e6, took))
    d.stop()


# FINDING-9 (MED, fixed): the workers page reads a directory any tenant can write,
# whole. lw:workers and lw:worker:* are written by every worker, so each
# tenant's ACL user may write them (deploy/redis-acl: %W~lw:workers
# %W~lw:worker:*); the page (cli_workers_json, as `lanework workers`) reads
# ZRANGE lw:workers 0 -1 and one HGETALL per member, all pipelined: a
# tenant that adds 200,000 members makes every load of /workers 200,000
# commands and their replies held at once (and fills the page with
# workers that do not exist). A fix bounds the read (live members only,
# ZRANGEBYSCORE from now with a LIMIT, and says how many more).
def test_the_workers_page_reads_a_bounded_directory(env):
    setup(env)
    c = env.redis.client()
    try:
        for b in range(20):
            c.pipeline([['ZADD', 'lw:workers', str(2 ** 50), 'fake-%d-%d' % (b, i)] for i in range(10000)])
    finally:
        c.close()
    d = Dashboard(env)
    before = env.redis.commandstats().get('hgetall', 0)
    t0 = time.monotonic()
    code, _, body = d.get('/workers', timeout=120)
    took = time.monotonic() - t0
    reads = env.redis.commandstats().get('hgetall', 0) - before
    print('  /workers: %d in %.2f s, %d HGETALL, %d bytes' % (code, took, reads, len(body)))
    check(code == 200, '/workers %d' % code)
    check(reads <= 1000, 'one load of /workers ran %d HGETALL (%.2f s, a %d-byte page)'
          % (reads, took, len(body)))
    check('200000 more entries' in body or '200001 more entries' in body, 'the page does not say what it left out')
    # The command reads the same bounded measure and says so on stderr.
    rc, out, err = env.cli('workers')
    check(rc == 0 and 'holds 2000' in err and len(out.splitlines()) <= 1001,
          'lanework workers: %d, %d lines, %r' % (rc, len(out.splitlines()), err[:300]))
    d.stop()


# FINDING-10 (MED, fixed): one tenant's keys take the overview down for every
# tenant. A tenant's ACL user may DEL and SET its own keys; a key of the
# wrong type (here its ready list made a string) makes `stats` of that
# tenant fail with WRONGTYPE, and the overview -- every tenant's stats --
# answers 502 as a whole: the operator sees no tenant at all. A fix shows
# the other tenants and names the one that could not be read (as `lanework
# stats` of several tenants does for a tenant whose Redis is down).
def test_one_tenants_bad_key_does_not_hide_the_others(env):
    env.write_registry([env.tenant('t1'), env.tenant('t2')])
    for t in ('t1', 't2'):
        env.enqueue(t, 'record', {}, delay=600)
    d = Dashboard(env)
    code, _, body = d.get('/')
    check(code == 200, 'overview before: %d' % code)
    env.redis.call('SET', 'lw:{t2}:ready:default', 'not a list')
    code, _, body = d.get('/')
    check(code == 200 and 'href="/t/t1"' in body,
          'overview with t2\'s ready list a string: %d, t1 shown: %s' % (code, 'href="/t/t1"' in body))
    d.stop()
    # `lanework stats` of both: t1's figures, t2 named on stderr, exit 3.
    rc, out, err = env.cli('stats', '--json')
    st = json.loads(out) if out.strip() else {}
    check(rc == 3 and 't1' in st.get('tenants', {}) and 'tenant "t2" partition 0' in err,
          'stats with t2 unreadable: %d %r %r' % (rc, out[:200], err[:300]))


if __name__ == '__main__':
    lwtest.run([test_a_request_for_another_host_is_refused, test_a_link_cannot_put_words_in_the_flash,
                test_a_frozen_redis_does_not_stall_other_pages,
                test_a_job_page_does_not_read_megabytes_of_other_jobs_events,
                test_cut_event_data_stays_utf8, test_token_guesses_are_slowed_down,
                test_conflicting_content_lengths_are_refused,
                test_a_queue_page_does_not_read_the_payloads_it_does_not_show,
                test_the_workers_page_reads_a_bounded_directory,
                test_one_tenants_bad_key_does_not_hide_the_others])

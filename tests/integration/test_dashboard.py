"""`lanework dashboard` (CONTRACT section 13): a real Redis, a real worker
and the real dashboard process on a free port. Every page answers with what
it should show; actions are POSTs that need the CSRF token and change Redis
as the commands do; --read-only renders no form and refuses every POST;
--token-file lets nothing through without the token; payloads and errors
holding markup are shown escaped; the event stream delivers a new event in
bounded time; bad flags exit 2."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse

import lwtest
from lwtest import check, free_port, wait_until
from test_partitions import part_of, partitioned_worker, wait_done, where

XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>']
QUEUES = {'default': {}, 'bulk': {}}


class Dashboard:
    """A `lanework dashboard` process on a free port of 127.0.0.1."""

    def __init__(self, env, *args, port=None):
        # A free port may be taken by a test beside this one before the
        # dashboard binds it: then another, unless the port was asked for.
        for attempt in range(1 if port else 3):
            self.port = port or free_port()
            argv = [lwtest.CLI, 'dashboard', '--http', '127.0.0.1:%d' % self.port,
                    '--redis', env.redis.url, '--registry', env.registry] + list(args)
            self.log = open(os.path.join(env.dir, 'dashboard-%d.log' % self.port), 'wb')
            self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, env=env.proc_env())
            line = self.p.stdout.readline().decode()
            if line.startswith('listening on http://127.0.0.1:%d' % self.port):
                break
            self.p.wait()
            if 'ddress already in use' not in self.stderr():
                break
        check(line.startswith('listening on http://127.0.0.1:%d' % self.port),
              'dashboard did not start: %r (%s)' % (line, self.stderr()))
        env.own(self)

    def stderr(self):
        self.log.flush()
        with open(self.log.name, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if body is not None:
                body = urllib.parse.urlencode(body)
                h['Content-Type'] = 'application/x-www-form-urlencoded'
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode('utf-8', 'replace')
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def page(self, path, *expect, **kw):
        code, h, body = self.get(path, **kw)
        check(code == 200, 'GET %s: %d %s' % (path, code, body[:300]))
        check(h.get('Content-Type', '').startswith('text/html'), 'GET %s: type %s' % (path, h))
        for e in expect:
            check(e in body, 'GET %s lacks %r:\n%s' % (path, e, body[:3000]))
        for x in XSS:
            check(x not in body, 'GET %s shows raw markup %r' % (path, x))
        return body

    def csrf(self, path='/t/t1'):
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', self.page(path))
        check(m, 'no CSRF field on %s' % path)
        return m.group(1)

    def post(self, path, **form):
        return self.request('POST', path, body=form)

    def close(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()
        self.log.close()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(10)
        check(rc == 0, 'dashboard exit %d: %s' % (rc, self.stderr()))


def token_file(env, token, mode=0o600):
    """A --token-file holding token (its first line), with that mode."""
    tf = os.path.join(env.dir, 'token')
    with open(tf, 'w') as f:
        f.write(token + '\n')
    os.chmod(tf, mode)
    return tf


def esc(s):
    return (s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace('"', '&quot;').replace("'", '&#39;'))


def xss_job(env, tenant='t1'):
    """A job whose payload and error hold markup; it fails at once."""
    return env.enqueue(tenant, 'fail', {'error': ' '.join(XSS), 'note': XSS[0], 'more': XSS[1]},
                       attempts=1)


def setup(env, **tenant):
    env.write_registry([env.tenant('t1', queues=QUEUES, **tenant)])
    w = env.worker('--concurrency', '2', '--queue', 'default', '--queue', 'bulk')
    ok = env.enqueue('t1', 'record', {'hello': 'world'})
    bad = xss_job(env)
    wait_done(env, 't1', [ok, bad], 1)
    return w, ok, bad


def test_every_page_shows_what_it_should(env):
    w, ok, bad = setup(env)
    d = Dashboard(env)
    d.page('/', 't1', 'default', 'bulk', 'failed job(s) kept', 'href="/t/t1"', 'Rate')
    more = [env.enqueue('t1', 'record', {}) for _ in range(4)]
    wait_done(env, 't1', more, 1)
    time.sleep(1.1)
    body = d.page('/')
    rates = re.findall(r'title="jobs finished per second since the previous load">([^<]*)<', body)
    check(any(r.endswith('/s') and float(r[:-2]) > 0 for r in rates), 'no rate after 4 jobs: %s' % rates)
    body = d.page('/t/t1', 'default', 'Pause', 'name="csrf"', 'href="/t/t1/q/default"')
    check(body.count('<form') >= 2, 'a pause button per queue')
    d.page('/t/t1/q/default', ok, bad, 'succeeded', 'failed', esc(XSS[0]))
    d.page('/t/t1/q/default?status=failed', bad)
    d.page('/t/t1/failed', bad, esc(XSS[0]), esc(XSS[1]), 'Retry', 'Delete', '1 failed job(s) kept')
    body = d.page('/t/t1/job/' + bad, bad, 'Payload', 'Error', 'job.failed', esc(XSS[1]),
                  'Retry', 'Delete', 'fail')
    check(esc(json.dumps(XSS[0])) in body, 'the payload is shown escaped')
    d.page('/t/t1/job/' + ok, ok, 'succeeded', '&quot;hello&quot;: &quot;world&quot;', 'job.succeeded')
    d.page('/workers', w.name, 'running', 't1')
    d.page('/t/t1/events', ok, bad, 'job.succeeded', 'job.failed', 'data-stream="/t/t1/events/stream?since=',
           '/static/live.js')
    # Lanes with work: a paused queue keeps its jobs waiting.
    env.cli('pause', '--tenant', 't1', '--queue', 'bulk')
    held = [env.enqueue('t1', 'record', {}, queue='bulk', lane='L7') for _ in range(3)]
    d.page('/t/t1/lanes', 'L7', 'bulk', held[0], '<td class="n">3</td>')
    body = d.page('/t/t1', 'paused', 'Resume')
    # Assets, and what is not there.
    code, h, css = d.get('/static/dash.css')
    check(code == 200 and h['Content-Type'].startswith('text/css') and 'body' in css, 'css')
    code, h, js = d.get('/static/live.js')
    check(code == 200 and 'EventSource' in js and 'textContent' in js, 'js')
    check("script-src 'self'" in h.get('Content-Security-Policy', ''), 'CSP: %s' % h)
    for path in ['/nope', '/t/nobody', '/t/t1/job/nosuchjob', '/t/t1/job/..', '/t/t1/q/a%00b',
                 '/t/' + urllib.parse.quote(XSS[0], safe='')]:
        code, _, body = d.get(path)
        check(code == 404, 'GET %s: %d' % (path, code))
        check(all(x not in body for x in XSS), 'GET %s echoes markup' % path)
    # The failed page is paginated: ?page= beyond the end is empty, not an error.
    d.page('/t/t1/failed?page=2', 'Page 2', '&larr; newer')
    for junk in ['-5', 'abc', '99999999999999999999999', '%00', '1e9']:
        d.page('/t/t1/failed?page=' + junk)
    d.stop()
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_actions_need_the_csrf_token_and_change_redis(env):
    w, ok, bad = setup(env)
    d = Dashboard(env)
    tok = d.csrf()
    key = 'lw:{t1}:job:' + bad
    # Refused: no token, a wrong one, an empty one. Nothing changes.
    for form in [{}, {'csrf': 'f' * 64}, {'csrf': ''}, {'csrf': tok[:-1]}]:
        for path in ['/t/t1/job/%s/retry' % bad, '/t/t1/job/%s/delete' % bad, '/t/t1/q/default/pause']:
            code, _, body = d.post(path, back='/t/t1', **form)
            check(code == 403, 'POST %s %s: %d' % (path, form, code))
    check(env.redis.call('HGET', key, 'status') == 'failed', 'a refused retry changed the job')
    check(env.redis.call('SMEMBERS', 'lw:{t1}:paused') == [], 'a refused pause paused')
    # Retry by POST: 303 back, the job runs again (and fails again).
    code, h, _ = d.post('/t/t1/job/%s/retry' % bad, csrf=tok, back='/t/t1/failed')
    check(code == 303 and h['Location'].startswith('/t/t1/failed?msg='), 'retry: %d %s' % (code, h))
    wait_until(lambda: env.redis.call('HGET', key, 'attempt') == '1' and
               env.redis.call('HGET', 'lw:{t1}:stats', 'retried_manual:default') == '1', timeout=10,
               what='the retried job')
    wait_done(env, 't1', [bad], 1)
    d.page(h['Location'], 'job %s retried' % bad)
    # An open redirect is not possible: back must be a path of ours.
    for back in ['https://evil.example/', '//evil.example/', '/\\evil.example']:
        code, h, _ = d.post('/t/t1/q/default/pause', csrf=tok, back=back)
        check(code == 303 and h['Location'].startswith('/?msg='), 'back=%s: %s' % (back, h))
    check(env.redis.call('SMEMBERS', 'lw:{t1}:paused') == ['default'], 'pause by POST')
    code, h, _ = d.post('/t/t1/q/default/resume', csrf=tok, back='/t/t1')
    check(code == 303 and env.redis.call('SMEMBERS', 'lw:{t1}:paused') == [], 'resume by POST')
    # Cancel a waiting job; delete a finished one.
    env.cli('pause', '--tenant', 't1', '--queue', 'bulk')
    waiting = env.enqueue('t1', 'record', {}, queue='bulk')
    code, h, _ = d.post('/t/t1/job/%s/cancel' % waiting, csrf=tok, back='/t/t1/job/' + waiting)
    check(code == 303 and env.redis.call('HGET', 'lw:{t1}:job:' + waiting, 'status') == 'cancelled',
          'cancel by POST: %d %s' % (code, h))
    code, h, _ = d.post('/t/t1/job/%s/delete' % ok, csrf=tok, back='/t/t1')
    check(code == 303 and env.redis.call('EXISTS', 'lw:{t1}:job:' + ok) == 0, 'delete by POST')
    # A refusal of the command is shown, not hidden.
    code, h, _ = d.post('/t/t1/job/%s/retry' % waiting, csrf=tok, back='/t/t1')
    code, h, _ = d.post('/t/t1/job/nosuch/delete', csrf=tok, back='/t/t1')
    check(code == 303 and 'failed' in urllib.parse.unquote(h['Location']), 'error flash: %s' % h)
    d.page(h['Location'], 'no such job nosuch')
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck after the actions: %s' % out[-500:])
    d.stop()
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_read_only_has_no_forms_and_refuses_every_post(env):
    w, ok, bad = setup(env)
    d = Dashboard(env, '--read-only')
    for path in ['/', '/t/t1', '/t/t1/q/default', '/t/t1/failed', '/t/t1/job/' + bad, '/t/t1/lanes',
                 '/workers', '/t/t1/events']:
        body = d.page(path, 'read-only')
        check('<form' not in body and 'csrf' not in body, '%s has a form' % path)
    for path in ['/t/t1/job/%s/retry' % bad, '/t/t1/job/%s/delete' % bad, '/t/t1/q/default/pause']:
        code, _, _ = d.post(path, csrf='0' * 64, back='/')
        check(code == 403, 'read-only POST %s: %d' % (path, code))
    check(env.redis.call('HGET', 'lw:{t1}:job:' + bad, 'status') == 'failed', 'read-only changed a job')
    check(env.redis.call('EXISTS', 'lw:{t1}:paused') == 0, 'read-only paused')
    d.stop()
    w.signal(signal.SIGTERM)
    w.wait()


def test_token_file(env):
    env.write_registry([env.tenant('t1', queues=QUEUES)])
    tf = token_file(env, 's3cret-token-0123456789', 0o644)
    rc, out, err = env.cli('dashboard', '--http', '127.0.0.1:%d' % free_port(), '--token-file', tf,
                           timeout=10)
    check(rc == 2 and 'others' in err and len(err.strip().splitlines()) == 1, 'world-readable: %d %r' % (rc, err))
    empty = os.path.join(env.dir, 'empty')
    open(empty, 'w').close()
    os.chmod(empty, 0o600)
    rc, out, err = env.cli('dashboard', '--token-file', empty, timeout=10)
    check(rc == 2 and 'empty' in err, 'empty token file: %d %r' % (rc, err))
    rc, out, err = env.cli('dashboard', '--token-file', tf + '.missing', timeout=10)
    check(rc == 2 and 'No such file' in err, 'missing token file: %d %r' % (rc, err))
    os.chmod(tf, 0o600)
    d = Dashboard(env, '--token-file', tf)
    for path in ['/', '/t/t1', '/workers', '/t/t1/events/stream']:
        for h in [{}, {'Authorization': 'Bearer wrong'}, {'Authorization': 'Bearer '},
                  {'Authorization': 'Bearer s3cret-token-012345678'},
                  {'Cookie': 'lw_session=' + '0' * 64}]:
            code, _, body = d.get(path, headers=h)
            # Past 8 wrong tokens in 10 s every token is refused a while
            # (429: guessing is slowed down), the right one too.
            wrong = 'Bearer' in h.get('Authorization', '')
            check((code == 401 and 'Sign in' in body or wrong and code == 429) and 's3cret' not in body,
                  'GET %s %s: %d' % (path, h, code))
    check(d.get('/', headers={'Authorization': 'Bearer s3cret-token-0123456789'})[0] == 429,
          'the right token after 12 wrong ones in a row')
    code, _, _ = d.post('/t/t1/q/default/pause', csrf='x', back='/')
    check(code == 401 and env.redis.call('EXISTS', 'lw:{t1}:paused') == 0, 'POST without the token: %d' % code)
    d.stop()
    d = Dashboard(env, '--token-file', tf)
    good = {'Authorization': 'Bearer s3cret-token-0123456789'}
    d.page('/', 't1', headers=good)
    # The login form: a wrong token is refused, the right one sets the cookie.
    code, h, _ = d.post('/login', token='nope')
    check(code == 401 and 'Set-Cookie' not in h, 'wrong login: %d' % code)
    code, h, _ = d.post('/login', token='s3cret-token-0123456789')
    check(code == 303 and 'HttpOnly' in h.get('Set-Cookie', '') and 'SameSite=Strict' in h['Set-Cookie'],
          'login: %d %s' % (code, h))
    cookie = h['Set-Cookie'].split(';')[0]
    d.page('/t/t1', 'Pause', headers={'Cookie': 'other=1; ' + cookie})
    # The stylesheet needs no token (the login page uses it).
    check(d.get('/static/dash.css')[0] == 200, 'css behind the token')
    d.stop()


def test_live_events_arrive_by_sse(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker()
    d = Dashboard(env)
    c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=10)
    c.request('GET', '/t/t1/events/stream')
    r = c.getresponse()
    check(r.status == 200 and r.getheader('Content-Type').startswith('text/event-stream'),
          'stream: %d %s' % (r.status, r.getheaders()))
    jid = env.enqueue('t1', 'record', {'x': XSS[0]})
    t0 = time.monotonic()
    seen = []
    sock = r.fp
    while time.monotonic() - t0 < 5 and not any(jid in s and 'job.succeeded' in s for s in seen):
        line = sock.readline().decode()
        if line.startswith('data: '):
            seen.append(line)
    took = time.monotonic() - t0
    check(any(jid in s and 'job.succeeded' in s for s in seen), 'no event for %s in 5 s: %s' % (jid, seen))
    ev = json.loads([s for s in seen if jid in s][0][6:])
    check(ev['job'] == jid and ev['id'], 'event: %s' % ev)
    print('  an event reached the stream %.2f s after the enqueue' % took)
    c.close()
    # Resume from an id: only what came after it.
    last = json.loads(seen[-1][6:])['id']
    j2 = env.enqueue('t1', 'record', {})
    wait_done(env, 't1', [j2], 1)
    c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=10)
    c.request('GET', '/t/t1/events/stream', headers={'Last-Event-ID': last})
    r = c.getresponse()
    got = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5 and not any(j2 in s and 'job.succeeded' in s for s in got):
        line = r.fp.readline().decode()
        if line.startswith('data: '):
            got.append(line)
    check(got and all(jid not in s for s in got) and any(j2 in s for s in got), 'resume: %s' % got)
    c.close()
    # A stream outlives evhttp's per-read timeout (10 s): its client sends
    # nothing after the request.
    c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=30)
    c.request('GET', '/t/t1/events/stream')
    r = c.getresponse()
    time.sleep(11)
    j3 = env.enqueue('t1', 'record', {})
    t0 = time.monotonic()
    line = ''
    while time.monotonic() - t0 < 5 and j3 not in line:
        line = r.fp.readline().decode()
        check(line != '', 'the idle stream was closed')
    check(j3 in line, 'no event on the stream after 11 s idle')
    c.close()
    # At most 16 streams; a closed one frees its place.
    conns = []
    for i in range(16):
        c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=10)
        c.request('GET', '/t/t1/events/stream')
        check(c.getresponse().status == 200, 'stream %d' % i)
        conns.append(c)
    code, _, _ = d.get('/t/t1/events/stream')
    check(code == 503, 'a 17th stream: %d' % code)
    # The dashboard still answers pages while streams are open.
    d.page('/t/t1/events', jid)
    for c in conns:
        c.close()
    env.enqueue('t1', 'record', {})  # the next write finds them gone, if the close did not
    wait_until(lambda: stream_ok(d), timeout=10, what='a stream place freed')
    d.stop()
    w.signal(signal.SIGTERM)
    w.wait()


def stream_ok(d):
    c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=5)
    try:
        c.request('GET', '/t/t1/events/stream')
        return c.getresponse().status == 200
    finally:
        c.close()


def test_partitioned_tenant(env):
    k = 3
    w = partitioned_worker(env, k, '--concurrency', '2')
    lanes = {}
    for i in range(40):
        lanes.setdefault(part_of('L%d' % i, k), 'L%d' % i)
        if len(lanes) == k:
            break
    bad = {p: env.enqueue('p', 'fail', {'error': 'boom %d' % p}, lane=l, attempts=1) for p, l in lanes.items()}
    ok = env.enqueue('p', 'record', {}, lane=lanes[2])
    wait_done(env, 'p', list(bad.values()) + [ok], k)
    check(where(env, 'p', bad[2], k) == [2], 'the job is in partition 2')
    d = Dashboard(env)
    d.page('/', 'p', '3 failed job(s) kept')
    d.page('/t/p', '3 partitions')
    d.page('/t/p/failed', *[bad[p] for p in range(k)], 'boom 2')
    d.page('/t/p/job/' + bad[2], 'boom 2', 'job.failed')
    d.page('/t/p/events', bad[2], ok)
    tok = d.csrf('/t/p')
    code, h, _ = d.post('/t/p/q/default/pause', csrf=tok, back='/t/p')
    check(code == 303, 'pause: %d' % code)
    pre = ['lw:{p}:' if p == 0 else 'lw:{p#%d}:' % p for p in range(k)]
    check(all(env.redis.call('SISMEMBER', x + 'paused', 'default') == 1 for x in pre),
          'paused in every partition')
    code, h, _ = d.post('/t/p/job/%s/retry' % bad[2], csrf=tok, back='/t/p/failed')
    check(code == 303 and 'retried' in urllib.parse.unquote(h['Location']), 'retry in partition 2: %s' % h)
    check(env.redis.call('HGET', 'lw:{p#2}:job:' + bad[2], 'status') == 'queued', 'retried job queued')
    d.page('/t/p/lanes', lanes[2], bad[2])
    code, h, _ = d.post('/t/p/q/default/resume', csrf=tok, back='/t/p')
    wait_done(env, 'p', [bad[2]], k)
    d.stop()
    w.signal(signal.SIGTERM)
    w.wait()


def test_a_frozen_redis_holds_only_its_pages(env):
    """A tenant whose Redis is frozen (SIGSTOP: the kernel still accepts
    connections, nothing answers) holds only the pages that read it, for
    the reply bound: another tenant's pages, the stylesheet and the live
    event page answer while one of its pages is waiting. Then the breaker:
    a later page of it answers at once (502, "not tried again"), not after
    a timeout of its own; and once Redis answers again, so does the page."""
    import threading
    other = lwtest.Redis(env.dir, name='redis-frozen')
    env.write_registry([env.tenant('t1'), env.tenant('t2', redis=other.url)])
    try:
        d = Dashboard(env)
        d.page('/t/t2', 'Queue')
        d.page('/t/t1', 'Queue')
        other.proc.send_signal(signal.SIGSTOP)
        slow = {}
        th = threading.Thread(target=lambda: slow.update(r=d.get('/t/t2', timeout=30)))
        th.start()
        time.sleep(0.3)
        check(th.is_alive(), 'the frozen tenant answered at once: %r' % slow)
        d.page('/t/t1', 'Queue')
        d.page('/t/t1/events', 'Live events')
        check(d.get('/static/dash.css')[0] == 200, 'the stylesheet')
        check(th.is_alive(), 'the other pages waited for the frozen Redis')
        th.join(30)
        code, _, body = slow['r']
        check(code == 502 and 'timed out' in body, 'the frozen page: %d %s' % (code, body[:300]))
        t0 = time.monotonic()
        code, _, body = d.get('/t/t2/failed')
        check(code == 502 and 'not tried again' in body,
              'the breaker: %d %s' % (code, body[:300]))
        check(time.monotonic() - t0 < 1.5, 'the held page took %.1f s' % (time.monotonic() - t0))
        other.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: d.get('/t/t2')[0] == 200, timeout=15, what='the page back after SIGCONT')
        # SIGTERM while a page and a live stream's poll wait on the frozen
        # Redis: the dashboard waits for them (the reply bound), exits 0.
        streams = []

        def stream_open():  # once every thread's hold has ended (5 s)
            c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=30)
            c.request('GET', '/t/t2/events/stream')
            streams.append(c)
            return c.getresponse().status == 200
        wait_until(stream_open, timeout=15, what='the stream of t2')
        other.proc.send_signal(signal.SIGSTOP)
        th = threading.Thread(target=lambda: slow.update(r=d.get('/t/t2/lanes', timeout=30)))
        th.start()
        time.sleep(0.6)
        t0 = time.monotonic()
        d.stop()
        check(time.monotonic() - t0 < 8, 'the stop took %.1f s' % (time.monotonic() - t0))
        th.join(30)
        for c in streams:
            c.close()
    finally:
        other.proc.send_signal(signal.SIGCONT)
        other.stop()


def test_closed_connections_leave_the_cap(env):
    """The cap of 64 connections with a deadline ends the oldest for a
    newcomer: a connection evhttp closed must leave it at once, or 64 short
    requests end a live keep-alive connection (a browser's) that came
    before them."""
    env.write_registry([env.tenant('t1')])
    d = Dashboard(env)
    keep = http.client.HTTPConnection('127.0.0.1', d.port, timeout=10)
    try:
        keep.request('GET', '/t/t1')
        r = keep.getresponse()
        check(r.status == 200, 'first request: %d' % r.status)
        r.read()
        for _ in range(80):
            check(d.get('/static/dash.css')[0] == 200, 'a short request')
        keep.request('GET', '/t/t1')
        r = keep.getresponse()
        check(r.status == 200, 'the kept connection: %d' % r.status)
        r.read()
    finally:
        keep.close()
    d.stop()


def test_bad_flags_and_limits(env):
    env.write_registry([env.tenant('t1')])
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    for args, what in [(['--http', 'nonsense'], 'HOST:PORT'), (['--http', '127.0.0.1:99999'], 'HOST:PORT'),
                       (['--http', '127.0.0.1:%d' % busy.getsockname()[1]], 'cannot listen'),
                       (['--http', '192.0.2.1:7117'], 'cannot listen'),
                       (['--bogus'], 'unknown'), (['--read-only=1'], ''), (['extra'], 'unexpected')]:
        rc, out, err = env.cli('dashboard', *args, timeout=10)
        check(rc == 2 and what in err and len(err.strip().splitlines()) == 1,
              'dashboard %s: %d %r' % (args, rc, err))
    busy.close()
    rc, out, err = env.cli('dashboard', '--help')
    check(rc == 0 and '--token-file' in out and '--read-only' in out, 'help: %r' % out)
    # Oversized heads and bodies are refused; the server lives on.
    d = Dashboard(env)
    code, _, _ = d.get('/', headers={'X-Big': 'a' * 40000})
    check(code in (400, 413, 431), 'huge head: %d' % code)
    code, _, _ = d.request('POST', '/t/t1/q/default/pause', body={'csrf': 'x' * 40000, 'back': '/'})
    check(code in (400, 413), 'huge body: %d' % code)
    # A client that never finishes its request does not keep a slot for ever,
    # and many of them do not lock others out.
    idle = []
    for _ in range(80):
        s = socket.create_connection(('127.0.0.1', d.port))
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')
        idle.append(s)
    d.page('/', 't1')
    for s in idle:
        s.close()
    d.stop()


@lwtest.plain_only  # 30 s of waiting for the deadline: the same C code serves every test
def test_a_dribbling_client_is_cut_off(env):
    """evhttp's timeout is per read: a client sending a byte a second keeps
    it from firing. The dashboard's own deadline (30 s from accept) ends the
    connection all the same, and pages go on meanwhile."""
    env.write_registry([env.tenant('t1')])
    d = Dashboard(env)
    s = socket.create_connection(('127.0.0.1', d.port))
    s.settimeout(1)
    t0 = time.monotonic()
    closed = None
    head = b'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'a' * 200
    i = 0
    while time.monotonic() - t0 < 45:
        try:
            s.sendall(head[i:i + 1] if i < len(head) else b'a')
            i += 1
            if s.recv(1) == b'':
                closed = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed = time.monotonic() - t0
            break
        if i % 10 == 0:
            d.page('/', 't1')
    s.close()
    check(closed is not None and 25 <= closed <= 40, 'the dribbling client was cut off after %s s' % closed)
    print('  a dribbling client was cut off after %.1f s' % closed)
    d.page('/', 't1')
    d.stop()


if __name__ == '__main__':
    lwtest.run([test_every_page_shows_what_it_should,
                test_actions_need_the_csrf_token_and_change_redis,
                test_read_only_has_no_forms_and_refuses_every_post,
                test_token_file,
                test_live_events_arrive_by_sse,
                test_a_frozen_redis_holds_only_its_pages,
                test_closed_connections_leave_the_cap,
                test_partitioned_tenant,
                test_bad_flags_and_limits,
                test_a_dribbling_client_is_cut_off])

"""`lanework dashboard` under hostile clients (the page threads, the
loop's hand-off): many clients at once mixing pages, POSTs, HEADs, live
streams opened and dropped, connections reset (SO_LINGER 0) while their
job runs, pipelined requests on one connection; the dashboard must keep
answering and exit 0 on SIGTERM (run it with the TSan/ASan binaries)."""
import http.client
import random
import socket
import struct
import threading
import time

import lwtest
from lwtest import check, wait_until
from test_dashboard import Dashboard


def raw(port, data, reset=False, wait=0.0, read=True):
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    try:
        s.sendall(data)
        if wait:
            time.sleep(wait)
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            return b''
        out = b''
        if read:
            try:
                while True:
                    k = s.recv(65536)
                    if not k:
                        break
                    out += k
            except socket.timeout:
                pass
        return out
    finally:
        s.close()


def req(path, method='GET', extra=''):
    return ('%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n' % (method, path, extra)).encode()


def test_hostile_clients_mixed(env):
    env.write_registry([env.tenant('t1', queues={'default': {}}), env.tenant('t2')])
    d = Dashboard(env)
    csrf = d.csrf()
    paths = ['/', '/t/t1', '/t/t2/lanes', '/t/t1/failed', '/t/t2/events', '/workers',
             '/t/t1/q/default', '/t/t1/job/nope', '/static/dash.css', '/nope']
    errors = []
    stop = time.monotonic() + 8  # the mix finds its faults in seconds (TSan, ASan: 20 s runs found none more)

    def client(seed):
        r = random.Random(seed)
        while time.monotonic() < stop:
            k = r.randrange(7)
            try:
                if k == 0:
                    code = d.get(r.choice(paths))[0]
                    if code not in (200, 404, 503):
                        errors.append('GET %d' % code)
                elif k == 1:
                    raw(d.port, req(r.choice(paths)), reset=True, wait=r.random() * 0.05)
                elif k == 2:
                    body = 'csrf=%s' % csrf
                    raw(d.port, req('/t/t1/q/default/pause', 'POST',
                                    'Content-Type: application/x-www-form-urlencoded\r\n'
                                    'Content-Length: %d\r\n' % len(body)) + body.encode(),
                        reset=r.random() < 0.5, wait=r.random() * 0.02)
                elif k == 3:
                    raw(d.port, b''.join(req(r.choice(paths), r.choice(['GET', 'HEAD']))
                                         for _ in range(4)), reset=r.random() < 0.5,
                        wait=r.random() * 0.05)
                elif k == 4:
                    raw(d.port, req('/t/t%d/events/stream' % r.randint(1, 2)), reset=True,
                        wait=r.random() * 1.2)
                elif k == 5:
                    raw(d.port, req('/t/t1/events/stream', 'HEAD'), reset=True,
                        wait=r.random() * 0.6)
                else:
                    code = d.request('HEAD', r.choice(paths))[0]
                    if code not in (200, 404, 503):
                        errors.append('HEAD %d' % code)
            except (OSError, http.client.HTTPException) as e:
                errors.append(repr(e))
    ths = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    check(d.p.poll() is None, 'the dashboard died: %s' % d.stderr()[-3000:])
    d.page('/t/t1', 'Queue')
    check(len(errors) < 5, 'errors: %r' % errors[:20])
    d.stop()


def test_sigterm_with_queued_jobs_and_a_frozen_redis(env):
    """SIGTERM while the job queue is full of pages of a frozen Redis and
    live streams are open: exit 0 in bounded time."""
    other = lwtest.Redis(env.dir, name='redis-frozen')
    env.write_registry([env.tenant('t1'), env.tenant('t2', redis=other.url)])
    socks = []
    try:
        d = Dashboard(env)
        d.page('/t/t2', 'Queue')
        for _ in range(3):
            s = socket.create_connection(('127.0.0.1', d.port), timeout=10)
            s.sendall(req('/t/t2/events/stream'))
            socks.append(s)
        time.sleep(1)
        other.proc.send_signal(signal.SIGSTOP)
        for i in range(90):
            s = socket.create_connection(('127.0.0.1', d.port), timeout=10)
            s.sendall(req('/t/t2/lanes?x=%d' % i))
            socks.append(s)
        time.sleep(0.5)
        t0 = time.monotonic()
        d.p.send_signal(signal.SIGTERM)
        rc = d.p.wait(20)
        check(rc == 0, 'exit %d: %s' % (rc, d.stderr()[-2000:]))
        check(time.monotonic() - t0 < 8, 'the stop took %.1f s' % (time.monotonic() - t0))
    finally:
        for s in socks:
            s.close()
        other.proc.send_signal(signal.SIGCONT)
        other.stop()


def test_head_of_the_stream_takes_no_stream(env):
    """HEAD of the live stream's URL is answered (headers, no stream): it
    must not start a stream that sends nothing for 10 minutes and takes one
    of the 16 stream slots: 16 HEADs would leave no live view to anyone."""
    env.write_registry([env.tenant('t1')])
    d = Dashboard(env)
    heads = []
    try:
        for _ in range(16):
            c = http.client.HTTPConnection('127.0.0.1', d.port, timeout=10)
            c.request('HEAD', '/t/t1/events/stream')
            r = c.getresponse()
            r.read()
            heads.append(c)
        # the same connection answers a next request (no stream holds it)
        c = heads[0]
        c.request('GET', '/static/dash.css')
        r = c.getresponse()
        check(r.status == 200, 'after HEAD: %d' % r.status)
        r.read()
        s = socket.create_connection(('127.0.0.1', d.port), timeout=5)
        s.sendall(req('/t/t1/events/stream'))
        head = s.recv(4096)
        s.close()
        check(head.startswith(b'HTTP/1.1 200'), 'a stream after 16 HEADs: %r' % head[:200])
    except (socket.timeout, http.client.HTTPException) as e:
        check(False, 'a connection that sent HEAD of the stream is held (%r)' % e)
    finally:
        for c in heads:
            c.close()
    d.stop()


def test_a_burst_at_a_frozen_tenant_leaves_room_for_the_others(env):
    """100 pages of a tenant whose Redis is frozen arrive at once: they may
    fill the page threads and their share of the job queue (503 past it),
    not the whole queue -- another tenant's page still answers 200."""
    other = lwtest.Redis(env.dir, name='redis-frozen')
    env.write_registry([env.tenant('t1'), env.tenant('t2', redis=other.url)])
    try:
        d = Dashboard(env)
        d.page('/t/t2', 'Queue')
        other.proc.send_signal(signal.SIGSTOP)
        res = []

        def one(i):
            try:
                res.append(d.get('/t/t2/lanes?i=%d' % i, timeout=40)[0])
            except (OSError, http.client.HTTPException) as e:
                res.append(repr(e))
        ths = [threading.Thread(target=one, args=(i,)) for i in range(100)]
        for t in ths:
            t.start()
        time.sleep(0.5)
        code = d.get('/t/t1', timeout=20)[0]
        check(code == 200, "another tenant's page while the burst waits: %d" % code)
        for t in ths:
            t.join(60)
        other.proc.send_signal(signal.SIGCONT)
        d.stop()
    finally:
        other.proc.send_signal(signal.SIGCONT)
        other.stop()


import signal  # noqa: E402

if __name__ == '__main__':
    lwtest.run([test_hostile_clients_mixed,
                test_sigterm_with_queued_jobs_and_a_frozen_redis,
                test_head_of_the_stream_takes_no_stream,
                test_a_burst_at_a_frozen_tenant_leaves_room_for_the_others])

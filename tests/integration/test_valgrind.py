"""valgrind: no leak and no memory error in the CLI (every command, error
paths included) and in a worker that ran 1,000 jobs and shut down cleanly.

Skipped (exit 77, meson's "skip") when valgrind is not installed; CI
installs it (scripts/install-deps.sh --dev)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import lwtest
from lwtest import check

VALGRIND = ['valgrind', '--quiet', '--leak-check=full', '--show-leak-kinds=definite,indirect',
            '--errors-for-leak-kinds=definite,indirect', '--error-exitcode=99',
            '--child-silent-after-fork=yes', '--track-fds=no']


def vg_cli(env, *args, input=None):
    argv = VALGRIND + ['--log-file=' + os.path.join(env.dir, 'vg-cli.%p.log'), lwtest.CLI] + list(args)
    if '--redis' not in args:
        argv += ['--redis', env.redis.url]
    argv += ['--registry', env.registry]
    p = subprocess.run(argv, input=input.encode() if input else None, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env.proc_env(), timeout=120)
    check(p.returncode != 99, 'valgrind found errors in `lanework %s`:\n%s' % (' '.join(args), vg_logs(env)))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def vg_logs(env):
    out = []
    for n in sorted(os.listdir(env.dir)):
        if n.startswith('vg-'):
            with open(os.path.join(env.dir, n)) as f:
                text = f.read()
            if text.strip():
                out.append('== %s\n%s' % (n, text[-4000:]))
    return '\n'.join(out)


# A forked attempt's child exits without freeing its copy of the worker's
# heap: leak reports of children are noise, but memory errors in them are
# not. So the worker runs without --error-exitcode and every process's log
# is read: the worker's own must be clean, children's free of errors.
MEMORY_ERRORS = re.compile(r'Invalid (read|write|free)|uninitialised|Syscall param|Mismatched free|overlap|'
                           r'Jump to the invalid')


def vg_worker(env, name, *args):
    log = open(os.path.join(env.dir, name + '.log'), 'wb')
    argv = [a for a in VALGRIND if not a.startswith(('--error-exitcode', '--child-silent'))] + [
        '--log-file=' + os.path.join(env.dir, 'vg-%s.%%p.log' % name), lwtest.WORKER,
                       '--registry', env.registry, '--redis', env.redis.url, '--name', name] + list(args)
    return subprocess.Popen(argv, stdout=log, stderr=log, env=env.proc_env()), log


def scrape_metrics(port, stop, got):
    """GET /metrics every 0.3 s until stop is set (the queue gauges' reads
    run while someone scrapes); got: the bodies that came."""
    while not stop.wait(0.3):
        try:
            got.append(lwtest.http_get(port, '/metrics')[1])
        except OSError:
            pass


def run_worker(env, name, njobs, *args, http_port=None):
    ids = env.enqueue_batch([{'kind': k, 'payload': {}, 'lane': 'l%d' % (i % 10)}
                             for i, k in enumerate(['noop', 'echo', 'events', 'retry'] * (njobs // 4))],
                            tenant='t1')
    if http_port:
        args = args + ('--http', '127.0.0.1:%d' % http_port)
    p, log = vg_worker(env, name, *args)
    stop, pages = threading.Event(), []
    scraper = threading.Thread(target=scrape_metrics, args=(http_port, stop, pages), daemon=True)
    if http_port:
        scraper.start()
    try:
        env.wait_all('t1', ids, timeout=300)
        if http_port:  # a round of reads finished: the gauges are on the page
            lwtest.wait_until(lambda: pages and 'lanework_queue_jobs{tenant="t1"' in pages[-1], timeout=30,
                              what='the queue gauges on /metrics')
    finally:
        stop.set()
        if http_port:
            scraper.join()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)
        log.close()
    check(rc == 0, 'worker %s under valgrind exited %d:\n%s' % (name, rc, vg_logs(env)))
    for n in os.listdir(env.dir):
        if not n.startswith('vg-%s.' % name):
            continue
        with open(os.path.join(env.dir, n)) as f:
            text = f.read()
        if n == 'vg-%s.%d.log' % (name, p.pid):
            check(not text.strip(), 'valgrind found leaks or errors in worker %s:\n%s' % (name, text[-6000:]))
        else:
            check(not MEMORY_ERRORS.search(text), 'memory error in a forked child:\n%s' % text[-6000:])


def test_worker_thread_1000_jobs(env):
    # With /metrics scraped throughout: the queue gauges' reads (queue_stats.c)
    # of a plain and of a partitioned tenant, some in flight at exit.
    env.write_registry([env.tenant('t1', defaults={'attempts': 3, 'timeout': 60, 'backoff': 0.01}),
                        env.tenant('p2', partitions=2)])
    run_worker(env, 'vthread', 1000, '--isolation', 'thread', '--concurrency', '4', http_port=lwtest.free_port())


def test_worker_fork_jobs(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 3, 'timeout': 60, 'backoff': 0.01},
                                   exec={'sh': ['sh', '-c', 'cat']})])
    env.enqueue('t1', 'sh', {'x': 1})
    run_worker(env, 'vfork', 100, '--isolation', 'fork', '--concurrency', '4')


def test_cli_commands(env):
    spool = os.path.join(env.dir, 'spool')
    os.makedirs(spool)
    env.write_registry([env.tenant('t1', spools={'noop': spool})])
    rc, out, _ = vg_cli(env, 'enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{"a":[1,2]}',
                        '--lane', 'L', '--unique', 'u', '--delay', '0')
    check(rc == 0, 'enqueue')
    jid = out.strip()
    batch = ''.join(json.dumps({'kind': 'noop', 'payload': {'i': i}}) + '\n' for i in range(300))
    rc, out, _ = vg_cli(env, 'enqueue', '--tenant', 't1', '--batch', '-', input=batch)
    check(rc == 0 and len(out.split()) == 300, 'batch')
    w = env.worker('--concurrency', '4')
    env.wait_all('t1', [jid] + out.split())
    failed = env.enqueue('t1', 'fail', {}, attempts=1)
    env.wait_all('t1', [failed], statuses=('failed',))
    for args in (['status', '--tenant', 't1', jid],
                 ['wait', '--tenant', 't1', jid, '--timeout', '5'],
                 ['events', '--tenant', 't1'],
                 ['stats'], ['stats', '--json'], ['workers'], ['workers', '--json'],
                 ['retry', '--tenant', 't1', failed],
                 ['cancel', '--tenant', 't1', jid],
                 ['fsck', '--tenant', 't1'],
                 ['enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}', '--wait'],
                 ['enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}', '--spool', spool],
                 # error paths
                 ['enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{bad'],
                 ['enqueue', '--tenant', 'nosuch', '--kind', 'noop'],
                 ['enqueue', '--tenant', 't1', '--kind', 'noop', '--id', '../x', '--payload', '{}'],
                 ['status', '--tenant', 't1', 'missing'],
                 ['wait', '--tenant', 't1', failed, '--timeout', '0.2'],
                 ['enqueue', '--tenant', 't1', '--batch', '-'],
                 ['bogus'], ['--help'], ['enqueue', '--help']):
        vg_cli(env, *args, input='{"kind":"noop"}\nnot json\n' if args[-1] == '-' else None)
    rc, _o, _e = vg_cli(env, 'status', '--tenant', 't1', jid, '--redis', 'unix:///nonexistent.sock')
    check(rc == 3, 'unreachable Redis exits 3')
    w.signal(signal.SIGTERM)
    w.wait()


def test_dashboard_session(env):
    """A dashboard under valgrind serves every page, the actions, a refused
    POST, an event stream (closed by the client) and a slow client, and
    exits clean on SIGTERM."""
    import http.client
    import time
    import urllib.parse
    from lwtest import free_port
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '2')
    ok = env.enqueue('t1', 'record', {'a': '<b>'})
    bad = env.enqueue('t1', 'fail', {'error': '<script>'}, attempts=1)
    lwtest.wait_until(lambda: [env.status('t1', j)['status'] for j in (ok, bad)] == ['succeeded', 'failed'],
                      timeout=20, what='the two jobs')
    port = free_port()
    argv = VALGRIND + ['--log-file=' + os.path.join(env.dir, 'vg-dash.%p.log'), lwtest.CLI, 'dashboard', '--http',
                       '127.0.0.1:%d' % port, '--redis', env.redis.url, '--registry', env.registry]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env.proc_env())
    try:
        check(p.stdout.readline().startswith(b'listening on'), 'dashboard did not start')

        def req(method, path, body=None, read=True):
            c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
            h = {'Content-Type': 'application/x-www-form-urlencoded'} if body is not None else {}
            c.request(method, path, body=urllib.parse.urlencode(body) if body is not None else None, headers=h)
            r = c.getresponse()
            data = r.read() if read else b''
            if read:
                c.close()
            return r.status, data.decode('utf-8', 'replace'), c
        for path in ['/', '/t/t1', '/t/t1/q/default', '/t/t1/q/default?status=failed', '/t/t1/lanes',
                     '/t/t1/failed', '/t/t1/failed?page=3', '/t/t1/job/' + bad, '/t/t1/job/' + ok, '/workers',
                     '/t/t1/events', '/static/dash.css', '/nope', '/t/nobody', '/t/t1/job/nosuch']:
            code, _, _ = req('GET', path)
            check(code in (200, 404), 'GET %s: %d' % (path, code))
        code, body, _ = req('GET', '/t/t1')
        tok = re.search(r'name="csrf" value="([0-9a-f]+)"', body).group(1)
        check(req('POST', '/t/t1/q/default/pause', {'back': '/'})[0] == 403, 'tokenless POST')
        for path in ['/t/t1/q/default/pause', '/t/t1/q/default/resume', '/t/t1/job/%s/retry' % bad,
                     '/t/t1/job/%s/cancel' % bad, '/t/t1/job/%s/delete' % ok, '/t/t1/job/nosuch/delete']:
            check(req('POST', path, {'csrf': tok, 'back': '/t/t1'})[0] == 303, 'POST %s' % path)
        code, _, c = req('GET', '/t/t1/events/stream', read=False)
        check(code == 200, 'stream')
        env.enqueue('t1', 'record', {})
        time.sleep(1.5)
        c.close()
        time.sleep(1.0)
        code, _, c2 = req('GET', '/t/t1/events/stream', read=False)  # open at SIGTERM
        check(req('GET', '/')[0] == 200, 'a page after the streams')
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        p.stdout.close()
    check(rc == 0, 'dashboard under valgrind exited %d:\n%s' % (rc, vg_logs(env)))
    w.signal(signal.SIGTERM)
    w.wait()


if __name__ == '__main__':
    if not shutil.which('valgrind'):
        print('valgrind is not installed: skipped')
        sys.exit(77)
    lwtest.run([test_cli_commands, test_worker_thread_1000_jobs, test_worker_fork_jobs, test_dashboard_session])

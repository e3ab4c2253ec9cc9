"""Tenant isolation with Redis ACLs (deploy/redis-acl/users.acl).

Each test runs a redis-server loaded with the shipped ACL file itself: only
its password placeholders are filled in (random passwords, stored hashed as
the README tells operators to). The test's own admin connection uses the
file's `admin` user. What is shown:
  - acme's user is enough for everything a tenant does: a worker and every
    tenant command of the CLI (the file's command list is complete);
  - acme's user is refused anything of globex: the CLI says so in one line
    and exits 3; a worker given acme's credentials for globex logs the
    refusal naming the tenant, does not crash, does not flood its log, and
    keeps serving acme;
  - a refused CONFIG GET (the policy check) or worker directory is tolerated;
  - no password ever appears in a log line or a CLI message.
"""
import hashlib
import os
import re
import secrets
import signal
import time

from lwtest import Client, Redis, RespError, check, run, wait_until

ACL_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'deploy', 'redis-acl',
                        'users.acl')
USERS = ('admin', 'acme', 'globex')
MSG = re.compile(r'^lanework: [^:\n]+: .+\n$')


class AclRedis(Redis):
    """A redis-server loaded with the shipped users.acl; the test talks to it
    as the file's `admin` user (the `default` user is off)."""

    def __init__(self, dir, passwords):
        self.passwords = passwords
        acl = os.path.join(dir, 'users.acl')
        with open(ACL_FILE) as f:
            text = f.read()
        for user in USERS:
            digest = hashlib.sha256(passwords[user].encode()).hexdigest()
            placeholder = '#%s_PASSWORD_SHA256' % user.upper()
            check(placeholder in text, 'users.acl lacks the placeholder %s' % placeholder)
            text = text.replace(placeholder, '#' + digest)
        with open(acl, 'w') as f:
            f.write(text)
        super().__init__(dir, name='redis-acl', extra=['--aclfile', acl])

    def client(self):
        c = Client(self.sock)
        c.call('AUTH', 'admin', self.passwords['admin'])
        return c

    def _up(self):
        try:
            c = self.client()
        except (OSError, RespError):
            return False
        try:
            return c.call('PING') == 'PONG'
        except RespError:
            return False
        finally:
            c.close()

    def url_for(self, user, password=None):
        return 'unix://%s:%s@%s' % (user, password or self.passwords[user], self.sock)


def use_acl_redis(env):
    """Replaces the test's Redis with the ACL one. env.redis.url becomes
    acme's URL: env.cli and env.worker then act as acme by default."""
    env.redis.stop()
    env.passwords = {u: secrets.token_hex(16) for u in USERS}
    env.redis = AclRedis(env.dir, env.passwords)
    env.plain_url = env.redis.url
    env.redis.url = env.redis.url_for('acme')
    env.outputs = []  # every CLI stdout and stderr, for the password check


def cli(env, *args, url=None, **kw):
    argv = list(args)
    if url:
        argv += ['--redis', url]
    rc, out, err = env.cli(*argv, redis=url is None, **kw)
    env.outputs += [out, err]
    return rc, out, err


def check_no_password(env):
    texts = list(env.outputs) + [w.log() for w in env.workers]
    for user, pw in env.passwords.items():
        for t in texts:
            check(pw not in t, 'the password of %s appears in output: %r' % (user, t[:2000]))
    for t in texts:
        check('wrongpw-' not in t, 'a (wrong) password appears in output: %r' % t[:2000])


def refused(rc, err, what):
    check(rc == 3, '%s: exit %d, want 3 (Redis refused the command); stderr %r' % (what, rc, err))
    check(MSG.match(err) is not None, '%s: stderr is not one "lanework: WHAT: WHY" line: %r' % (what, err))
    check('NOPERM' in err, '%s: the message does not say NOPERM: %r' % (what, err))


def admin_keys(env, pattern):
    return env.redis.call('KEYS', pattern)


def test_acme_user_runs_acme(env):
    use_acl_redis(env)
    env.write_registry([env.tenant('acme', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    w = env.worker('--tenant', 'acme', '--concurrency', '4', '--lease', '3', '--shutdown-timeout', '0.5')
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'echo', '--payload', '{"x":1}', '--wait',
                       '--wait-timeout', '30')
    check(rc == 0 and out.splitlines()[1:] == ['{"x":1}'], 'enqueue --wait as acme: %d %r %r' % (rc, out, err))
    ids = [out.split()[0]]
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--batch', '-',
                       input='{"kind":"events","payload":{}}\n{"kind":"noop"}\n')
    check(rc == 0 and len(out.split()) == 2, 'enqueue --batch as acme: %d %r %r' % (rc, out, err))
    ids += out.split()
    rc, out, err = cli(env, 'wait', '--tenant', 'acme', *ids, '--timeout', '30')
    check(rc == 0, 'wait as acme: %d %r' % (rc, err))
    rc, out, err = cli(env, 'status', '--tenant', 'acme', ids[0])
    check(rc == 0 and '"succeeded"' in out and '"worker":"w1"' in out.replace(' ', ''),
          'status as acme: %d %r %r' % (rc, out, err))
    rc, out, err = cli(env, 'events', '--tenant', 'acme')
    types = [l for l in out.splitlines() if '"step.created"' in l]
    check(rc == 0 and len(types) == 1, 'events as acme: %d %r' % (rc, err))
    # cancel a delayed job; retry a failed one (it runs, and fails, again)
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'noop', '--delay', '600')
    delayed = out.strip()
    check(rc == 0 and delayed, 'delayed enqueue as acme: %d %r' % (rc, err))
    rc, out, err = cli(env, 'cancel', '--tenant', 'acme', delayed)
    check(rc == 0, 'cancel as acme: %d %r' % (rc, err))
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'fail', '--payload', '{}', '--wait')
    check(rc == 1, 'a failing job: %d %r' % (rc, err))
    failed = out.split()[0]
    rc, out, err = cli(env, 'retry', '--tenant', 'acme', failed)
    check(rc == 0, 'retry as acme: %d %r' % (rc, err))
    wait_until(lambda: env.status('acme', failed)['status'] == 'failed' and
               sum(e['type'] == 'job.started' and e['job'] == failed for e in env.events('acme')) == 2,
               timeout=30, what='the retried job to run again')
    rc, out, err = cli(env, 'retry', '--tenant', 'acme', '--all-failed')
    check(rc == 0, 'retry --all-failed as acme: %d %r' % (rc, err))
    # (delayed: a unique key is held while its job waits, freed when it ends)
    u = [cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'noop', '--unique', 'u1', '--delay', '600')[1]
         for _ in range(2)]
    check(u[0] == u[1] and u[0].strip(), '--unique as acme: %r' % u)
    rc, out, err = cli(env, 'stats', '--tenant', 'acme', '--json')
    check(rc == 0 and 'acme' in out, 'stats as acme: %d %r' % (rc, err))
    check(env.status('acme', delayed)['status'] == 'cancelled', 'the delayed job was not cancelled')
    # The worker checked the policy it could (CONFIG is denied) and said so.
    log = w.log()
    check('could not check maxmemory-policy' in log and 'NOPERM' in log,
          'the worker did not say it could not check maxmemory-policy:\n' + log)
    # Presence went through the write-only grants; reading the directory is
    # the admin's (lanework workers as acme is refused, as documented).
    check(env.redis.call('ZSCORE', env.ns + ':workers', 'w1') is not None, 'worker missing from NS:workers')
    check(env.redis.call('HGET', env.ns + ':worker:w1', 'state') == 'running', 'worker missing from NS:worker:w1')
    rc, out, err = cli(env, 'workers', registry=False)
    refused(rc, err, 'workers as acme')
    rc, out, err = cli(env, 'workers', '--json', url=env.redis.url_for('admin'), registry=False)
    check(rc == 0 and 'w1' in out, 'workers as admin: %d %r %r' % (rc, out, err))
    check(not admin_keys(env, env.ns + ':{globex}:*'), 'globex keys exist')
    # A hand-back (puts the job back at the front of its queue).
    long = env.enqueue('acme', 'sleep', {'ms': 20000})
    wait_until(lambda: env.statuses('acme', [long]) == ['active'], timeout=10, what='the long job to start')
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit status')
    check(env.statuses('acme', [long]) == ['queued'], 'the long job was not handed back')
    check('error' not in [l.split()[1] for l in w.log().splitlines() if len(l.split()) > 1],
          'the acme worker logged an error:\n' + w.log())
    check('presence.error' not in w.log(), 'the directory grants did not suffice:\n' + w.log())
    # Leaving the directory on exit (DEL, ZREM) is allowed too.
    check(env.redis.call('EXISTS', env.ns + ':worker:w1') == 0 and
          env.redis.call('ZSCORE', env.ns + ':workers', 'w1') is None, 'the worker did not leave the directory')
    check_no_password(env)


def test_tenants_fcall_the_library_only_an_operator_loads(env):
    # A function library is code every tenant's calls would run: a tenant
    # may call it, never load, replace or delete it.
    use_acl_redis(env)
    env.write_registry([env.tenant('acme', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0})])
    c = Client(env.redis.sock)
    try:
        c.call('AUTH', 'acme', env.passwords['acme'])
        for cmd in (['FUNCTION', 'LOAD', "#!lua name=mine\nredis.register_function('lw_mine', function() return 1 end)"],
                    ['FUNCTION', 'FLUSH'], ['FUNCTION', 'DELETE', 'mine'], ['FUNCTION', 'RESTORE', 'x']):
            try:
                c.call(*cmd)
                check(False, 'acme ran %s' % ' '.join(cmd[:2]))
            except RespError as e:
                check('NOPERM' in str(e), '%s as acme: %s' % (' '.join(cmd[:2]), e))
    finally:
        c.close()
    # Not loaded yet: acme's worker says so once and runs EVALSHA.
    w = env.worker('--tenant', 'acme', '--concurrency', '2', '--shutdown-timeout', '0.5', name='before')
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'echo', '--payload', '{"n":1}', '--wait',
                       '--wait-timeout', '30')
    check(rc == 0, 'enqueue --wait as acme, no library: %d %r' % (rc, err))
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')
    check('no lanework function library' in w.log(), 'the worker did not say it runs EVALSHA:\n' + w.log())
    check(not [l for l in env.redis.libraries() if l.startswith('lanework_')], 'acme loaded the library')
    # The operator loads it: any lanework command as admin that runs a script.
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'noop', url=env.redis.url_for('admin'))
    check(rc == 0, 'enqueue as admin: %d %r' % (rc, err))
    check(len([l for l in env.redis.libraries() if l.startswith('lanework_')]) == 1, 'admin did not load it')
    # From then on acme's worker and CLI FCALL it.
    env.redis.call('CONFIG', 'RESETSTAT')
    w = env.worker('--tenant', 'acme', '--concurrency', '2', '--shutdown-timeout', '0.5', name='after')
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'echo', '--payload', '{"n":2}', '--wait',
                       '--wait-timeout', '30')
    check(rc == 0 and out.splitlines()[1:] == ['{"n":2}'], 'enqueue --wait as acme: %d %r %r' % (rc, out, err))
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--batch', '-', input='{"kind":"noop"}\n' * 300)
    check(rc == 0 and len(out.split()) == 300, 'enqueue --batch as acme: %d %r' % (rc, err))
    rc, _, err = cli(env, 'wait', '--tenant', 'acme', *out.split(), '--timeout', '30')
    check(rc == 0, 'wait: %d %r' % (rc, err))
    stats = env.redis.commandstats()
    check(stats.get('fcall', 0) > 0 and stats.get('evalsha', 0) == 0,
          'acme should FCALL the library the operator loaded: %r' % stats)
    w.signal(signal.SIGTERM)
    check(w.wait(30) == 0, 'worker exit')
    check('no lanework function library' not in w.log(), 'the worker runs EVALSHA:\n' + w.log())
    check_no_password(env)


def test_acme_user_refused_for_globex(env):
    use_acl_redis(env)
    env.write_registry([env.tenant('acme'), env.tenant('globex')])
    jid = cli(env, 'enqueue', '--tenant', 'globex', '--kind', 'noop', url=env.redis.url_for('globex'))[1].strip()
    check(jid, 'globex could not enqueue with its own user')
    rc, out, err = cli(env, 'enqueue', '--tenant', 'globex', '--kind', 'noop', '--payload', '{}')
    refused(rc, err, 'enqueue for globex as acme')
    check(out == '', 'a refused enqueue printed an id: %r' % out)
    rc, out, err = cli(env, 'enqueue', '--tenant', 'globex', '--batch', '-', input='{"kind":"noop"}\n')
    check(rc == 3 and 'NOPERM' in err and out == '', 'batch for globex as acme: %d %r %r' % (rc, out, err))
    for args in (['status', '--tenant', 'globex', jid], ['wait', '--tenant', 'globex', jid, '--timeout', '1'],
                 ['cancel', '--tenant', 'globex', jid], ['retry', '--tenant', 'globex', jid],
                 ['events', '--tenant', 'globex'], ['stats', '--tenant', 'globex']):
        rc, out, err = cli(env, *args)
        refused(rc, err, ' '.join(args[:1]) + ' for globex as acme')
    # Nothing of globex changed, nothing was written outside acme's prefix.
    check(env.redis.call('HGET', '%s:{globex}:job:%s' % (env.ns, jid), 'status') == 'queued',
          'the globex job changed')
    stray = [k for k in admin_keys(env, '*') if not k.startswith(env.ns + ':{globex}:')]
    check(not stray, 'keys written outside globex: %s' % stray)
    # A wrong password: exit 3 and the message, without the password.
    rc, out, err = cli(env, 'status', '--tenant', 'acme', jid, url=env.redis.url_for('acme', 'wrongpw-1'))
    check(rc == 3 and MSG.match(err) and 'WRONGPASS' in err, 'wrong password: %d %r' % (rc, err))
    check_no_password(env)


def test_worker_with_acme_credentials_for_globex(env):
    use_acl_redis(env)
    acme_url = env.redis.url
    spool = os.path.join(env.dir, 'globex-spool')
    os.makedirs(os.path.join(spool, 'g1'))
    with open(os.path.join(spool, 'g1', 'job.json'), 'w') as f:
        f.write('{"job_id": "g1", "status": "queued"}')
    # globex's registry entry points at Redis with acme's credentials: the
    # same URL text as the worker's --redis, so both tenants share one link.
    env.write_registry([env.tenant('acme'), env.tenant('globex', redis=acme_url, spools={'noop': spool})])
    gid = cli(env, 'enqueue', '--tenant', 'globex', '--kind', 'noop', url=env.redis.url_for('globex'),
              registry=False)[1].strip()
    before = [env.enqueue('acme', 'echo', {'i': i}) for i in range(3)]
    w = env.worker('--concurrency', '2', '--lease', '3')
    env.wait_all('acme', before, timeout=30)
    time.sleep(6)  # claims, reaps, spool rescans and subscriptions all meet the refusal meanwhile
    check(w.running(), 'the worker died:\n' + w.log())
    after = [env.enqueue('acme', 'echo', {'i': i}) for i in range(3)]
    env.wait_all('acme', after, timeout=30)
    check(env.statuses('globex', [gid]) == ['queued'], 'the globex job moved')
    check(not admin_keys(env, env.ns + ':{globex}:job:g1'), 'the globex spool job was enqueued')
    log = w.log()
    lines = log.splitlines()
    named = [l for l in lines if ' error ' in l and 'tenant globex' in l and 'NOPERM' in l]
    check(named, 'no error line names tenant globex and NOPERM:\n' + log)
    check(len([l for l in lines if ' error ' in l]) <= 4, 'too many error lines:\n' + log)
    check(len(lines) <= 30, 'the worker floods its log (%d lines in ~10 s):\n%s' % (len(lines), log))
    check(sum('redis.down' in l for l in lines) <= 2, 'the worker reconnects in a loop:\n' + log)
    check(all('lw:{globex}' in l for l in lines if 'redis.subscribe' in l),
          'a subscription other than globex\'s was refused:\n' + log)
    # Wake-ups of acme still work: a job enqueued on an idle worker starts
    # without waiting for a poll is not asserted (timing); its success is.
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit status')
    check_no_password(env)


def test_wrong_password_and_no_directory_grant(env):
    use_acl_redis(env)
    env.write_registry([env.tenant('acme')])
    # A wrong password: the link never comes up; one error line, no loop.
    bad = env.redis.url_for('acme', 'wrongpw-2')
    w = env.worker('--redis', bad, name='wbad')
    time.sleep(4)
    check(w.running(), 'the worker died:\n' + w.log())
    log = w.log()
    errors = [l for l in log.splitlines() if ' error ' in l]
    check(len(errors) == 1 and 'WRONGPASS' in errors[0], 'want one WRONGPASS error line:\n' + log)
    check(len(log.splitlines()) <= 8, 'the worker floods its log:\n' + log)
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit status')
    # An operator who prefers no directory grant: acme's rules without the
    # NS:worker* patterns. The worker warns once and runs jobs.
    with open(ACL_FILE) as f:
        acme_line = [l for l in f.read().splitlines() if l.startswith('user acme ')][0]
    rules = [r for r in acme_line.split()[2:] if not r.startswith('%W~')]
    rules = [r for r in rules if not r.startswith('#')] + ['>' + env.passwords['acme']]
    check(len(rules) > 10, 'could not read the acme rules: %r' % acme_line)
    env.redis.call('ACL', 'SETUSER', 'acme-nodir', *rules)
    env.passwords['acme-nodir'] = env.passwords['acme']
    url = env.redis.url_for('acme-nodir', env.passwords['acme'])
    w2 = env.worker('--redis', url, '--lease', '1.5', name='wnodir')
    jid = env.enqueue('acme', 'echo', {'ok': True})
    env.wait_all('acme', [jid], timeout=30)
    time.sleep(1.5)  # a few directory updates
    log = w2.log()
    warns = [l for l in log.splitlines() if 'presence.error' in l]
    check(len(warns) == 1 and ' warn ' in warns[0] and 'NOPERM' in warns[0],
          'want one presence warning:\n' + log)
    w2.signal(signal.SIGTERM)
    check(w2.wait() == 0, 'worker exit status')
    check_no_password(env)


def test_reaper_without_pttl_falls_back_to_the_script(env):
    # users.acl before the reaper's PTTL: a worker told another reaped asks
    # reap.lua instead, and a dead worker's job is still taken back in time.
    use_acl_redis(env)
    a = env.redis.client()
    try:
        a.call('ACL', 'SETUSER', 'acme', '-pttl')
    finally:
        a.close()
    env.write_registry([env.tenant('acme')])
    ws = [env.worker('--tenant', 'acme', '--concurrency', '2', '--lease', '3', '--isolation', 'fork', name=n)
          for n in ('a', 'b')]
    rc, out, err = cli(env, 'enqueue', '--tenant', 'acme', '--kind', 'sleep', '--payload', '{"ms":60000}')
    check(rc == 0, 'enqueue as acme: %d %r' % (rc, err))
    jid = out.strip()
    k = 'lw:{acme}:job:' + jid
    wait_until(lambda: env.redis.call('HGET', k, 'worker') in ('a', 'b'), what='the job to start')
    time.sleep(3)  # six periods: the other worker was told to wait, and asked again
    first = env.redis.call('HGET', k, 'worker')
    dead = ws[0] if first == 'a' else ws[1]
    other = ws[1] if dead is ws[0] else ws[0]
    dead.kill9()
    t_kill = time.monotonic()
    wait_until(lambda: env.redis.call('HMGET', k, 'worker', 'attempt') == [other.name, '2'], timeout=15,
               what='the dead worker\'s job to run again')
    took = time.monotonic() - t_kill
    check(took < 4.5, 'without PTTL, the job of a killed worker (--lease 3) ran again %.1f s after the kill' % took)
    check("'pttl'" not in other.log(), 'the refused PTTL was logged: %s' % other.log()[-2000:])
    # The fallback was taken: Redis refused the worker's PTTL at least once.
    a = env.redis.client()
    try:
        log = a.call('ACL', 'LOG')
    finally:
        a.close()
    check(any('pttl' in e for e in log), 'no PTTL was refused (ACL LOG %r): the fallback was not exercised' % log)


if __name__ == '__main__':
    run([test_acme_user_runs_acme, test_tenants_fcall_the_library_only_an_operator_loads,
         test_acme_user_refused_for_globex,
         test_worker_with_acme_credentials_for_globex, test_wrong_password_and_no_directory_grant,
         test_reaper_without_pttl_falls_back_to_the_script])

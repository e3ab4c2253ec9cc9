"""The example Python application (examples/python-app): its job code as
one persistent Python handler (lanework.handler), its enqueueing side on
lanework.Client, against a real worker and Redis. Checks each kind's
outcome and that the chat session's and the runs' events come in the
order the seed's run worker defined (run.started -> step.created ->
tool.invoked -> tool.succeeded -> run.completed / run.failed)."""
import json
import os
import subprocess
import sys

import lwtest
from lwtest import check

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
APP = os.path.join(ROOT, 'examples', 'python-app')
PYPATH = os.path.join(ROOT, 'clients', 'python') + os.pathsep + APP


def python_with_redis():
    """An interpreter that has redis-py: this one, else Debian's (a venv or
    pyenv python first on PATH may lack it). Exit 77 (skip) when neither
    has it, which install-deps.sh prevents."""
    for py in (sys.executable, '/usr/bin/python3'):
        if subprocess.run([py, '-c', 'import redis'], capture_output=True).returncode == 0:
            return py
    print('SKIP: the school app needs redis-py (Debian: python3-redis)')
    sys.exit(77)


def school_registry(env, spool):
    with open(os.path.join(APP, 'registry.json.in')) as f:
        text = f.read()
    handler = json.dumps(['env', 'PYTHONPATH=' + PYPATH, PYTHON, '-m', 'school.jobs'])
    text = text.replace('@HANDLER@', handler).replace('@SPOOL@', spool)
    env.write_registry([json.loads(text)])


def test_school_app_end_to_end(env):
    spool = os.path.join(env.dir, 'uploads')
    os.mkdir(spool)
    school_registry(env, spool)
    w = env.worker('--queue', 'default', '--queue', 'chat', '--concurrency', '4')
    penv = env.proc_env()
    penv.update({'PYTHONPATH': PYPATH, 'LANEWORK_REDIS_URL': env.redis.url})
    p = subprocess.run([PYTHON, '-m', 'school.app', spool], env=penv, capture_output=True,
                       text=True, timeout=90)
    out = p.stdout
    check(p.returncode == 0, 'school.app exit %d:\n%s\n%s\n%s' % (p.returncode, out, p.stderr, w.log()[-3000:]))
    rows = [l.split() for l in out.splitlines() if l.startswith('  ') and not l.startswith('    ')][:-1]
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r[1], []).append(r[2])
    check(by_kind.get('upload') == ['succeeded'], 'upload: %s\n%s' % (by_kind, out))
    check(by_kind.get('exam') == ['succeeded'], 'exam: %s' % out)
    check(by_kind.get('profile_update') == ['succeeded', 'failed'], 'profile_update: %s' % out)
    check(by_kind.get('chat') == ['succeeded', 'succeeded'], 'chat: %s' % out)
    check(by_kind.get('run') == ['succeeded', 'failed'], 'run: %s' % out)
    check('"sha256"' in out and '"score": 67' in out and 'you said: senal' in out, 'results: %s' % out)
    check('email \'no-domain\' has no domain' in out, 'the bad profile error: %s' % out)
    # The events, per job, in the seed's order.
    evs = [json.loads(l) for l in env.cli('events', '--tenant', 'school')[1].splitlines()]
    per_job = {}
    for e in evs:
        per_job.setdefault(e['job'], []).append(e['type'])
    chains = [[t for t in per_job[j] if not t.startswith('job.')] for j in per_job]
    ok_run = ['run.started'] + ['step.created', 'tool.invoked', 'tool.succeeded'] * 2 + ['run.completed']
    bad_run = ['run.started', 'step.created', 'tool.invoked', 'tool.succeeded', 'step.created', 'tool.invoked',
               'run.failed']
    check(ok_run in chains and bad_run in chains, 'run chains: %s' % chains)
    check(chains.count(['step.created', 'tool.invoked', 'tool.succeeded']) == 2, 'chat chains: %s' % chains)
    # One handler process served them (persistent), not one per attempt.
    w.signal(15)
    check(w.wait() == 0, 'worker exit')


if __name__ == '__main__':
    PYTHON = python_with_redis()
    lwtest.run([test_school_app_end_to_end])

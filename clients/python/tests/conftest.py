"""Fixtures: a private redis-server per test (tests/integration/lwtest.py's
Env: a unix socket in a temp dir, a registry, the real worker and CLI), and
clients on it. Run from the repository (meson test, or run.py)."""
import asyncio
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'clients', 'python'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
for var, rel in (('LANEWORK_BIN', 'build/enqueue-cli/lanework'),
                 ('LANEWORK_WORKER_BIN', 'build/worker/lanework-worker'),
                 ('LANEWORK_TESTMOD', 'build/tests/modules/testmod.so')):
    os.environ.setdefault(var, os.path.join(REPO, rel))

import lwtest  # noqa: E402
import lanework  # noqa: E402


@pytest.fixture
def env(request):
    e = lwtest.Env(request.node.name.replace('test_', '')[:20])
    e.write_registry([e.tenant('t1')])
    yield e
    failed = getattr(request.node, 'rep_call', None) is not None and request.node.rep_call.failed
    if failed:
        e.dump_logs()
    e.close(not failed)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, 'rep_' + rep.when, rep)


@pytest.fixture
def client(env):
    c = lanework.Client(env.redis.url, namespace=env.ns)
    yield c
    c.close()


@pytest.fixture
def run():
    """Runs a coroutine to its end (one event loop per call)."""
    return asyncio.run

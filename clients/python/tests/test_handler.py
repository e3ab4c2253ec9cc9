"""lanework.handler alone, without a worker: the protocol as a process sees
it (python3 -m unittest discover -s clients/python/tests)."""
import json
import os
import subprocess
import sys
import textwrap
import unittest

PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent('''
    import sys, lanework

    @lanework.handler.kind("ok")
    def ok(job):
        print("noise on stdout")
        job.event("step.created", {"n": job.payload["n"]})
        return {"id": job.id, "n": job.payload["n"], "attempt": job.attempt, "lane": job.lane,
                "tenant": job.tenant, "spool_dir": job.spool_dir}

    @lanework.handler.kind("boom")
    def boom(job):
        raise KeyError("missing")

    @lanework.handler.kind("fail")
    def fail(job):
        raise lanework.Fail("no way")

    @lanework.handler.kind("wait")
    def wait(job):
        return {"cancelled": job.wait_cancelled(10)}

    @lanework.handler.kind("late")
    def late(job):
        import time
        time.sleep(0.3)          # the cancel arrives before anyone asks
        return {"cancelled": job.cancelled}

    @lanework.handler.kind("fds")
    def fds(job):
        import subprocess
        subprocess.run(["echo", "child output"])   # fd 1 is stderr: not the protocol
        try:
            input()
            return "read the protocol"
        except EOFError:
            return "stdin is /dev/null"

    @lanework.handler.kind("notjson")
    def notjson(job):
        return object()

    @lanework.handler.kind("nan")
    def nan(job):
        return float("nan")

    lanework.handler.run()
''')


def job(kind, id='j1', **payload):
    return json.dumps({'type': 'job', 'id': id, 'tenant': 't', 'kind': kind, 'queue': 'default', 'lane': 'L',
                       'attempt': 1, 'attempts': 3, 'timeout': 5, 'payload': payload, 'spool_dir': None}) + '\n'


class HandlerTest(unittest.TestCase):
    def start(self, protocol='1'):
        env = dict(os.environ, PYTHONPATH=PKG, LANEWORK_PROTOCOL=protocol)
        return subprocess.Popen([sys.executable, '-c', SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, text=True, bufsize=1)

    def answers(self, p, n):
        return [json.loads(p.stdout.readline()) for _ in range(n)]

    def test_protocol(self):
        p = self.start()
        p.stdin.write(job('ok', n=7))
        ev, res = self.answers(p, 2)
        self.assertEqual(ev, {'type': 'event', 'event': 'step.created', 'data': {'n': 7}})
        self.assertEqual(res, {'type': 'result', 'result': {'id': 'j1', 'n': 7, 'attempt': 1, 'lane': 'L',
                                                            'tenant': 't', 'spool_dir': None}})
        p.stdin.write(job('boom') + job('fail') + job('nope') + job('notjson') + job('nan'))
        boom, fail, nope, notjson, nan = self.answers(p, 5)
        self.assertFalse(nan['retry'])  # NaN is not JSON: never written as a result
        self.assertEqual(boom, {'type': 'error', 'error': "KeyError: 'missing'", 'retry': True})
        self.assertEqual(fail, {'type': 'error', 'error': 'no way', 'retry': False})
        self.assertFalse(nope['retry'])
        self.assertIn("no function for kind 'nope'", nope['error'])
        self.assertFalse(notjson['retry'])
        self.assertIn('not JSON', notjson['error'])
        p.stdin.close()
        self.assertEqual(p.wait(5), 0)
        err = p.stderr.read()
        self.assertIn('noise on stdout', err)
        self.assertIn('Traceback', err)

    def test_cancel(self):
        p = self.start()
        p.stdin.write(job('wait', id='w1'))
        p.stdin.write(json.dumps({'type': 'cancel', 'id': 'other'}) + '\n')
        p.stdin.write(json.dumps({'type': 'cancel', 'id': 'w1'}) + '\n')
        self.assertEqual(self.answers(p, 1), [{'type': 'result', 'result': {'cancelled': True}}])
        p.stdin.close()
        p.wait(5)

    def test_cancel_before_asked_and_private_fds(self):
        p = self.start()
        p.stdin.write(job('late', id='l1') + json.dumps({'type': 'cancel', 'id': 'l1'}) + '\n')
        self.assertEqual(self.answers(p, 1), [{'type': 'result', 'result': {'cancelled': True}}])
        # a stale cancel between jobs is dropped; the next job runs as usual
        p.stdin.write(json.dumps({'type': 'cancel', 'id': 'l1'}) + '\n' + job('late', id='l2'))
        self.assertEqual(self.answers(p, 1), [{'type': 'result', 'result': {'cancelled': False}}])
        p.stdin.write(job('fds', id='f1'))
        self.assertEqual(self.answers(p, 1), [{'type': 'result', 'result': 'stdin is /dev/null'}])
        p.stdin.close()
        self.assertEqual(p.wait(5), 0)
        self.assertIn('child output', p.stderr.read())

    def test_protocol_refused(self):
        p = self.start(protocol='2')
        out, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 78)
        self.assertEqual(out, '')
        self.assertIn('LANEWORK_PROTOCOL=2', err)


if __name__ == '__main__':
    unittest.main()

"""The PromQL of deploy/k8s/autoscaling evaluated by promtool (`promtool test
rules`) on made-up series of two workers: the backlog counts each queue once
(max by across workers), leaves a paused queue's queued jobs out, and is
empty -- not 0 -- once no worker reports any queue gauge (Redis down: a
worker drops gauges older than 15 s), so that KEDA holds its fallback and
the HPA its replicas instead of scaling the fleet down during an outage.
The query of the KEDA ScaledObject and the adapter rule in hpa.yaml's
comment are both read from the files. Skipped (77) without promtool
(Debian: prometheus)."""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
AUTO = os.path.join(ROOT, 'deploy', 'k8s', 'autoscaling')


def block_after(lines, marker, strip_comment=False):
    """The indented block of a YAML `key: |` line containing marker."""
    for i, line in enumerate(lines):
        text = line[1:] if strip_comment and line.startswith('#') else line
        if marker in text:
            indent = len(text) - len(text.lstrip())
            out = []
            for more in lines[i + 1:]:
                t = more[1:] if strip_comment and more.startswith('#') else more
                if not t.strip() or len(t) - len(t.lstrip()) <= indent:
                    break
                out.append(t.strip())
            return '\n'.join(out)
    raise SystemExit('no %r in the manifest' % marker)


def read(name):
    with open(os.path.join(AUTO, name)) as f:
        return f.read().split('\n')


SERIES = [
    # two workers report tenant a's default queue; w2 read a moment later
    ('lanework_queue_jobs{tenant="a",queue="default",state="queued",instance="w1"}', '10 10 0 _ _'),
    ('lanework_queue_jobs{tenant="a",queue="default",state="queued",instance="w2"}', '12 12 0 _ _'),
    ('lanework_queue_jobs{tenant="a",queue="default",state="active",instance="w1"}', '3 3 0 _ _'),
    ('lanework_queue_jobs{tenant="a",queue="default",state="active",instance="w2"}', '3 3 0 _ _'),
    ('lanework_queue_jobs{tenant="a",queue="default",state="paused",instance="w1"}', '0 1 0 _ _'),
    ('lanework_queue_jobs{tenant="a",queue="default",state="paused",instance="w2"}', '0 1 0 _ _'),
]
# minute -> the backlog, or None: no value at all
WANT = {0: 15, 1: 3, 2: 0, 10: None}


def case(expr):
    body = ''
    for minute, value in sorted(WANT.items()):
        body += '      - expr: |\n'
        body += ''.join('          %s\n' % l for l in expr.split('\n'))
        body += '        eval_time: %dm\n' % minute
        if value is None:
            body += '        exp_samples: []\n'
        else:
            body += "        exp_samples:\n          - labels: '{}'\n            value: %d\n" % value
    return body


def main():
    promtool = shutil.which('promtool')
    if not promtool:
        print('SKIP: needs promtool (Debian: prometheus)')
        return 77
    keda = block_after(read('keda/scaledobject.yaml'), 'query: |')
    hpa = block_after(read('hpa/hpa.yaml'), 'metricsQuery: |', strip_comment=True)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, 'none.yml'), 'w') as f:
            f.write('groups: []\n')
        text = 'rule_files: [none.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n'
        text += '    input_series:\n'
        for s, v in SERIES:
            text += "      - series: '%s'\n        values: '%s'\n" % (s, v)
        text += '    promql_expr_test:\n' + case(keda) + case(hpa)
        path = os.path.join(d, 'test.yml')
        with open(path, 'w') as f:
            f.write(text)
        p = subprocess.run([promtool, 'test', 'rules', path], cwd=d, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        print(p.stdout.decode('utf-8', 'replace'))
        return 0 if p.returncode == 0 else 1


if __name__ == '__main__':
    sys.exit(main())

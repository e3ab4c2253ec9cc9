"""The deploy/ files, read as an operator's tools would: what `kubectl apply
-k` applies, the PodDisruptionBudget's eviction policy, what the Dockerfile
pulls and installs, the systemd unit's JIT warning, and the probes the
Deployment uses -- asked of a real worker, quiet (SIGTSTP) included.

No container runtime or Kubernetes here: the YAML is read line by line (stdlib
only), which is enough for the flat manifests in deploy/k8s."""
import os
import re
import signal
import subprocess

from lwtest import check, free_port, http_get, run, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, 'deploy')


def read(*parts):
    with open(os.path.join(DEPLOY, *parts)) as f:
        return f.read()


def yaml_lines(text):
    """(indent, content) of each line that is not blank or a comment."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith('#'):
            out.append((len(line) - len(line.lstrip(' ')), stripped))
    return out


def block(lines, key):
    """The lines nested under the first `key:` line (deeper indent)."""
    for i, (indent, content) in enumerate(lines):
        if content == key + ':':
            body = []
            for ind, c in lines[i + 1:]:
                if ind <= indent and not (ind == indent and c.startswith('- ')):
                    break
                body.append((ind, c))
            return body
    return None


def probe_path(deployment, probe):
    body = block(yaml_lines(deployment), probe)
    check(body is not None, 'deployment.yaml has no %s' % probe)
    http = block(body, 'httpGet')
    check(http, '%s is not an httpGet probe' % probe)
    for _, c in http:
        if c.startswith('path:'):
            return c.split(':', 1)[1].strip()
    raise AssertionError('%s has no path' % probe)


def test_secret_is_not_applied(env):
    lines = yaml_lines(read('k8s', 'kustomization.yaml'))
    resources = [c[2:].strip() for _, c in block(lines, 'resources') or [] if c.startswith('- ')]
    check('deployment.yaml' in resources, 'kustomization resources not parsed: %s' % resources)
    check('secret.yaml' not in resources,
          'kubectl apply -k would overwrite the real Secret with secret.yaml: %s' % resources)
    for _, c in lines:
        check('secret' not in c.lower(), 'kustomization.yaml still makes a Secret: %r' % c)
    readme = read('README.md')
    check('kubectl -n lanework create secret generic lanework-redis' in readme,
          'deploy/README.md does not say how to create the Secret')


def test_pdb_allows_evicting_unready_pods(env):
    lines = yaml_lines(read('k8s', 'pdb.yaml'))
    spec = block(lines, 'spec')
    check(spec and (2, 'unhealthyPodEvictionPolicy: AlwaysAllow') in spec,
          'the PDB blocks node drains while Redis is down (no unhealthyPodEvictionPolicy: AlwaysAllow)')


def build_stage(dockerfile):
    """The Dockerfile's build stage: its lines from `FROM ... AS build` to the
    next FROM, continuation lines joined."""
    joined = dockerfile.replace('\\\n', ' ')
    stage, inside = [], False
    for line in joined.splitlines():
        if re.match(r'(?i)\s*FROM\s', line):
            inside = bool(re.search(r'(?i)\sAS\s+build\s*$', line))
            continue
        if inside and line.strip() and not line.lstrip().startswith('#'):
            stage.append(line.strip())
    return stage


def test_dockerfile_builds_offline_and_lean(env):
    dockerfile = read('Dockerfile')
    for line in dockerfile.splitlines():
        check(not re.match(r'\s*#\s*syntax\s*=', line),
              'the Dockerfile pulls a frontend image (air-gapped builds fail): %r' % line)
    stage = build_stage(dockerfile)
    check(any(l.startswith('RUN') for l in stage), 'no build stage found: %s' % stage)
    installed = []
    for line in stage:
        if not line.startswith('RUN'):
            continue
        for m in re.finditer(r'(\S*install-deps\.sh)([^&;|]*)', line):
            args = m.group(2).split()
            out = subprocess.run(['sh', os.path.join(ROOT, 'scripts', 'install-deps.sh')] + args + ['--list'],
                                 capture_output=True, text=True, timeout=30)
            check(out.returncode == 0, 'install-deps.sh %s --list: %s' % (' '.join(args), out.stderr))
            installed += out.stdout.split()
        m = re.search(r'apt-get\s+install\s+(.*)', line)
        if m:
            installed += m.group(1).split()
    check('gcc' in installed and 'meson' in installed, 'build stage packages not found: %s' % installed)
    for pkg in ('redis-server', 'check', 'redis-tools', 'python3'):
        check(pkg not in installed, 'the build stage installs %s, which only the tests need' % pkg)


def test_systemd_unit_warns_about_jit(env):
    unit = read('systemd', 'lanework-worker@.service').splitlines()
    at = [i for i, l in enumerate(unit) if l.startswith('MemoryDenyWriteExecute=')]
    check(at, 'no MemoryDenyWriteExecute= line (test out of date?)')
    comment = ' '.join(l for l in unit[max(0, at[0] - 6):at[0]] if l.startswith('#'))
    check('JIT' in comment and 'exec handler' in comment,
          'MemoryDenyWriteExecute=yes without saying it breaks exec handlers that JIT: %r' % comment)
    check('MemoryDenyWriteExecute' in read('README.md'), 'deploy/README.md does not mention MemoryDenyWriteExecute')


def test_quiet_worker_passes_the_liveness_probe(env):
    deployment = read('k8s', 'deployment.yaml')
    live, ready = probe_path(deployment, 'livenessProbe'), probe_path(deployment, 'readinessProbe')
    env.write_registry([env.tenant('t1')])
    port = free_port()
    w = env.worker('--http', '127.0.0.1:%d' % port)

    def status(path):
        try:
            return http_get(port, path, timeout=2)
        except OSError:
            return None, ''

    wait_until(lambda: status(ready)[0] == 200, timeout=10, what='readiness probe %s 200' % ready)
    check(status(live)[0] == 200, 'liveness probe %s of a running worker: %s' % (live, status(live)))
    w.signal(signal.SIGTSTP)
    wait_until(lambda: 'quiet' in status('/healthz')[1], timeout=10, what='/healthz to say quiet')
    # Quiet is an operator's choice, not a fault (CONTRACT section 13).
    check(status(ready)[0] == 200, 'readiness probe %s of a quiet worker: %s' % (ready, status(ready)))
    got = status(live)
    check(got[0] == 200, 'liveness probe %s fails for a quiet (SIGTSTP) worker, which would be restarted: %s'
          % (live, got))
    # Redis down is not cured by a restart either.
    env.redis.stop()
    wait_until(lambda: 'not ready' in status('/healthz')[1], timeout=20, what='/healthz to say Redis is not ready')
    got = status(live)
    check(got[0] == 200, 'liveness probe %s fails while Redis is down: %s' % (live, got))
    check(w.running(), 'worker died')


if __name__ == '__main__':
    run([test_secret_is_not_applied, test_pdb_allows_evicting_unready_pods, test_dockerfile_builds_offline_and_lean,
         test_systemd_unit_warns_about_jit, test_quiet_worker_passes_the_liveness_probe])

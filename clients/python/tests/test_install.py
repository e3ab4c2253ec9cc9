"""The built package carries the scripts: it works outside the repository,
with the very bodies (same SHA1) the C build embeds."""
import json
import os
import subprocess
import sys

import lanework
from lanework import interface

PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')

SNIPPET = '''
import json, os, sys
import lanework
from lanework import _bundle, interface
assert os.path.exists(_bundle._SHIPPED) and not os.path.exists(_bundle._REPO_BUILDER), _bundle.__file__
c = lanework.Client(sys.argv[1])
jid = c.enqueue("t1", "noop", {"from": "installed"})
print(json.dumps({"file": lanework.__file__, "sha1": interface.script("enqueue").sha1, "id": jid}))
'''


def test_built_package_works_outside_the_repo(env, tmp_path):
    build = tmp_path / 'build'
    subprocess.run([sys.executable, 'setup.py', '-q', 'build', '--build-base', str(build)], cwd=PKG, check=True,
                   stdout=subprocess.DEVNULL)
    lib = build / 'lib'
    assert (lib / 'lanework' / 'scripts.json').exists() and (lib / 'lanework' / 'py.typed').exists()
    p = subprocess.run([sys.executable, '-c', SNIPPET, env.redis.url], cwd=str(tmp_path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(lib)), timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    assert out['file'].startswith(str(lib)) and out['sha1'] == interface.script('enqueue').sha1
    assert lanework.Client(env.redis.url).status('t1', out['id'])['payload'] == {'from': 'installed'}


def test_same_sha1_as_the_c_build():
    """Every script's SHA1 is the one the C binaries EVALSHA, and its
    function name the one they FCALL (the bodies and the library are built
    by the same embed.py)."""
    build = os.path.dirname(os.path.dirname(os.environ['LANEWORK_BIN']))
    with open(os.path.join(build, 'common', 'scripts_data.c'), encoding='utf-8') as f:
        c_text = f.read()
    for name in ('enqueue', 'cancel', 'retry', 'claim', 'finish'):
        assert '"%s",' % interface.script(name).sha1 in c_text, name
        assert '"%s",' % interface.script(name).function in c_text, name

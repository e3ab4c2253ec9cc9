"""Build step of the lanework package: ships the scripts.

The package must run the Lua scripts of common/scripts/ -- the one
definition of every job state change -- also when installed far from the
repository. So building it (pip install ./clients/python, python -m build)
writes lanework/scripts.json into the build from ../scripts_bundle.py,
which reads common/scripts/ with the C build's own iface.py and embed.py.
A source tree without the repository around it (an sdist) must carry
lanework/scripts.json already; the sdist step writes it there.
Everything else is in pyproject.toml."""
import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDER = os.path.join(HERE, '..', 'scripts_bundle.py')


def write_bundle(path):
    if not os.path.exists(BUILDER):
        if os.path.exists(os.path.join(HERE, 'lanework', 'scripts.json')):
            return False  # an sdist: it carries the bundle
        sys.exit('lanework: %s not found: build the package from the lanework repository' % BUILDER)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = subprocess.run([sys.executable, BUILDER], check=True, stdout=subprocess.PIPE).stdout
    with open(path, 'wb') as f:
        f.write(out)
    return True


class BuildPy(build_py):
    def run(self):
        super().run()
        write_bundle(os.path.join(self.build_lib, 'lanework', 'scripts.json'))


class Sdist(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        write_bundle(os.path.join(base_dir, 'lanework', 'scripts.json'))


setup(cmdclass={'build_py': BuildPy, 'sdist': Sdist})

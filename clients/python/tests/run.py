#!/usr/bin/env python3
"""Runs the Python client's tests (meson test client_python).

Needs redis-py and pytest: Debian's python3-redis and python3-pytest
(scripts/install-deps.sh installs them). Those live in the system Python's
dist-packages, so when the interpreter meson found lacks them (a pyenv or
venv python first on PATH) /usr/bin/python3 is tried. Neither having them:
exit 77 (meson's "skipped") with a line saying what is missing."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = 'import redis, pytest'


def has_deps(python):
    try:
        return subprocess.run([python, '-c', PROBE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def main():
    python = next((p for p in (sys.executable, '/usr/bin/python3') if has_deps(p)), None)
    if python is None:
        print('SKIP: the Python client tests need redis-py and pytest (Debian: python3-redis python3-pytest; '
              'scripts/install-deps.sh installs them)')
        sys.exit(77)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    rc = subprocess.run([python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', HERE] + sys.argv[1:],
                        env=env).returncode
    sys.exit(1 if rc == 5 else rc)  # 5: no test ran, which is a failure here


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Runs the Node client's tests (meson test client_node): node --test on
clients/node/test/*.test.js. Needs node and clients/node/node_modules
(`npm ci` in clients/node; scripts/install-deps.sh does it); without them:
exit 77 (meson's "skipped") with a line saying what is missing."""
import glob
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)


def main():
    node = shutil.which('node')
    if not node:
        print('SKIP: the Node client tests need node (Debian: nodejs; scripts/install-deps.sh installs it)')
        sys.exit(77)
    if not os.path.isdir(os.path.join(PKG, 'node_modules', 'ioredis')):
        print('SKIP: clients/node/node_modules is missing: run `npm ci` in clients/node (scripts/install-deps.sh does)')
        sys.exit(77)
    tests = sorted(glob.glob(os.path.join(HERE, '*.test.js')))
    sys.exit(subprocess.run([node, '--test'] + tests, cwd=PKG).returncode)


if __name__ == '__main__':
    main()

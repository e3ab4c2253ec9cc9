#!/usr/bin/env python3
"""Checks that every function prototype in the project's headers has a
contract comment right above it (or at the end of its line): what it
promises, who owns what, how it fails. One comment may speak for a run of
prototypes that follow it with no blank line between them (a family: "Each
runs one command..."); a blank line ends what it covers.

Usage: check_contracts.py HEADER_DIR...   (exit 1 listing each bare one)
       check_contracts.py --self-test"""
import os
import re
import sys
import tempfile

PROTO = re.compile(r'^(?!typedef|#|extern\s+const|static)[A-Za-z_][\w \*]*?\b(\w+)\s*\([^;{]*$|'
                   r'^(?!typedef|#|static)[A-Za-z_][\w \*]*?\b(\w+)\s*\([^{]*\)\s*;')


def bare_prototypes(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    bad = []
    depth = 0          # inside a struct/enum body
    in_comment = False
    covered = False    # the lines since the last comment belong to it
    for i, line in enumerate(lines):
        stripped = line.strip()
        if in_comment:
            if '*/' in line:
                in_comment = False
                covered = True
            continue
        if stripped.startswith('/*'):
            if '*/' not in stripped:
                in_comment = True
            else:
                covered = True
            continue
        if not stripped:
            covered = False
            continue
        depth += line.count('{') - line.count('}')
        if depth > 0 or line.startswith((' ', '\t', '}')):
            continue
        m = PROTO.match(line)
        if m and '(' in line and not stripped.startswith('#'):
            name = m.group(1) or m.group(2)
            if not covered and '/*' not in line:
                bad.append('%s:%d: %s() has no contract comment' % (path, i + 1, name))
    return bad


def main(dirs):
    bad = []
    for d in dirs:
        for f in sorted(os.listdir(d)):
            if f.endswith('.h'):
                bad += bare_prototypes(os.path.join(d, f))
    for b in bad:
        print(b)
    if not bad:
        print('every prototype has its contract comment')
    return 1 if bad else 0


def self_test():
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, 'good.h'), 'w') as f:
            f.write('/* Does x. */\nint x(void);\n/* y. */\nint y(int a,\n      int b);\n/* z. */\nint z(void);\n'
                    'struct s {\n    int (*fn)(void);\n};\nint w(void); /* at the end */\n')
        with open(os.path.join(d, 'bad.h'), 'w') as f:
            f.write('/* Does x. */\nint x(void);\nint family(void);\n\nchar *bare(const char *s);\n')
        good = bare_prototypes(os.path.join(d, 'good.h'))
        bad = bare_prototypes(os.path.join(d, 'bad.h'))
    ok = not good and len(bad) == 1 and 'bare()' in bad[0]
    if not ok:
        print('self-test failed: good=%r bad=%r' % (good, bad))
    return 0 if ok else 1


if __name__ == '__main__':
    if sys.argv[1:] == ['--self-test']:
        sys.exit(self_test())
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))

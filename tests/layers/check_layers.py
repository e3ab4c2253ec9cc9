#!/usr/bin/env python3
"""Checks that worker/ is layered as docs/DESIGN.md says ("Layers of
worker/"): every file includes only headers of its own or a lower layer,
and calls (by its object file's undefined symbols) only functions defined
in a strictly lower layer. The table in DESIGN.md is the one source: a
file missing from it fails the check too.

Usage: check_layers.py DESIGN.md WORKER_SRC_DIR OBJECT_DIR
       check_layers.py --table DESIGN.md WORKER_SRC_DIR OBJECT_DIR
                       (prints the table with its last column as the
                       objects have it, to paste after a change)
       check_layers.py --self-test   (shows that each rule can fail)

Exit 0 when layered, 1 listing each violation, 2 on bad usage."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROW = re.compile(r'^\|\s*(\d+)\s*\|([^|]*)\|[^|]*\|([^|]*)\|')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_layers(design):
    """({module: layer}, {module: set of callees it claims}) from the table
    under the "Layers of worker/" heading: | layer | `file` | holds | calls |."""
    with open(design, encoding='utf-8') as f:
        text = f.read()
    m = re.search(r'^#+ .*Layers of worker/.*$', text, re.M)
    if not m:
        raise SystemExit('%s: no "Layers of worker/" section' % design)
    layers, claims = {}, {}
    for line in text[m.end():].splitlines():
        if line.startswith('#'):
            break
        r = ROW.match(line)
        if not r:
            continue
        names = re.findall(r'`([a-z_]+)(?:\.[ch])?`', r.group(2))
        for name in names:
            if name in layers:
                raise SystemExit('%s: %s is listed twice' % (design, name))
            layers[name] = int(r.group(1))
            claims[name] = set(re.findall(r'`([a-z_]+)`', r.group(3)))
    if not layers:
        raise SystemExit('%s: the "Layers of worker/" table is empty' % design)
    return layers, claims


def module_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def check_includes(layers, src):
    bad = []
    local = {f for f in os.listdir(src) if f.endswith('.h')}
    for f in sorted(os.listdir(src)):
        if not f.endswith(('.c', '.h')):
            continue
        mod = module_of(f)
        if mod not in layers:
            bad.append('%s: not in the layer table of DESIGN.md' % f)
            continue
        with open(os.path.join(src, f), encoding='utf-8') as fh:
            for inc in INCLUDE.findall(fh.read()):
                if inc not in local:
                    continue  # common/ or system: below every worker file
                imod = module_of(inc)
                if imod not in layers:
                    bad.append('%s includes %s, which is not in the layer table' % (f, inc))
                elif layers[imod] > layers[mod]:
                    bad.append('%s (layer %d) includes %s of the higher layer %d' % (f, layers[mod], inc, layers[imod]))
    return bad


def symbols(obj):
    out = subprocess.run(['nm', obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in 'TDBRC':
            defined.add(p[2])
        elif len(p) == 2 and p[0] == 'U':
            undefined.add(p[1])
    return defined, undefined


def check_calls(layers, claims, objdir):
    objs = {}
    for f in sorted(os.listdir(objdir)):
        if f.endswith('.o'):
            objs[module_of(module_of(f))] = symbols(os.path.join(objdir, f))  # x.c.o -> x
    if not objs:
        raise SystemExit('%s: no object files (build the worker first)' % objdir)
    owner = {s: m for m, (d, _) in objs.items() for s in d}
    bad = []
    for mod in sorted(set(claims) - set(objs)):
        if claims[mod]:
            bad.append('DESIGN.md says %s calls into %s, but it has no object file' % (mod, ', '.join(sorted(claims[mod]))))
    for mod, (_, und) in sorted(objs.items()):
        if mod not in layers:
            bad.append('%s.o: not in the layer table of DESIGN.md' % mod)
            continue
        callees = {owner[s] for s in und if s in owner and owner[s] != mod}
        if callees != claims.get(mod, set()):
            bad.append('DESIGN.md says %s calls into {%s}; its object calls into {%s}'
                       % (mod, ', '.join(sorted(claims.get(mod, ()))), ', '.join(sorted(callees))))
        for s in sorted(und):
            callee = owner.get(s)
            if callee is None or callee == mod:
                continue
            if callee not in layers:
                continue  # reported above
            if layers[callee] >= layers[mod]:
                bad.append('%s (layer %d) calls %s() of %s (layer %d): calls go down only'
                           % (mod, layers[mod], s, callee, layers[callee]))
    return bad


def run(design, src, objdir):
    layers, claims = read_layers(design)
    return check_includes(layers, src) + check_calls(layers, claims, objdir)


def self_test():
    """Builds a tiny two-file tree and breaks it each way the check must see."""
    cc = shutil.which('cc')
    if not cc:
        print('self-test: no C compiler')
        return 77
    failures = []
    with tempfile.TemporaryDirectory() as d:
        src, obj = os.path.join(d, 'src'), os.path.join(d, 'obj')
        os.mkdir(src), os.mkdir(obj)

        def tree(table, low_c, high_c):
            with open(os.path.join(d, 'DESIGN.md'), 'w') as f:
                f.write('# x\n## Layers of worker/\n| layer | file | holds | calls |\n|---|---|---|---|\n' + table + '\n## next\n')
            files = {'low.h': 'int low(void);\n', 'high.h': 'int high(void);\n', 'low.c': low_c, 'high.c': high_c}
            for name, text in files.items():
                with open(os.path.join(src, name), 'w') as f:
                    f.write(text)
            for name in ('low', 'high'):
                subprocess.run([cc, '-c', os.path.join(src, name + '.c'), '-o', os.path.join(obj, name + '.c.o')],
                               check=True)
            return run(os.path.join(d, 'DESIGN.md'), src, obj)

        good_low = '#include "low.h"\nint low(void) { return 1; }\n'
        good_high = '#include "high.h"\n#include "low.h"\nint high(void) { return low(); }\n'
        table = '| 0 | `low` | x | — |\n| 1 | `high` | x | `low` |'
        if tree(table, good_low, good_high):
            failures.append('a layered tree was refused')
        up_include = '#include "low.h"\n#include "high.h"\nint low(void) { return 1; }\n'
        if not any('includes high.h' in b for b in tree(table, up_include, good_high)):
            failures.append('an upward include passed')
        up_call = '#include "low.h"\nint high(void);\nint low(void) { return high(); }\n'
        if not any('calls high()' in b for b in tree(table, up_call, good_high)):
            failures.append('an upward call passed')
        if not any('calls low()' in b for b in tree('| 0 | `low` | x | — |\n| 0 | `high` | x | `low` |', good_low, good_high)):
            failures.append('a call within one layer passed')
        if not any('not in the layer table' in b for b in tree('| 0 | `low` | x | — |', good_low, good_high)):
            failures.append('a file missing from the table passed')
        if not any('DESIGN.md says high' in b for b in tree('| 0 | `low` | x | — |\n| 1 | `high` | x | — |', good_low, good_high)):
            failures.append('a table that does not list a call passed')
    for f in failures:
        print('self-test: ' + f)
    return 1 if failures else 0


def print_table(design, objdir):
    """The DESIGN.md table again, each row's last column recomputed."""
    with open(design, encoding='utf-8') as f:
        text = f.read()
    m = re.search(r'^#+ .*Layers of worker/.*$', text, re.M)
    objs = {}
    for f in sorted(os.listdir(objdir)):
        if f.endswith('.o'):
            objs[module_of(module_of(f))] = symbols(os.path.join(objdir, f))
    owner = {s: mod for mod, (d, _) in objs.items() for s in d}
    layers, _ = read_layers(design)
    for line in text[m.end():].splitlines():
        if line.startswith('#'):
            break
        r = ROW.match(line)
        if not r:
            if line.startswith('|'):
                print(line)
            continue
        cells = line.split('|')
        mod = re.findall(r'`([a-z_]+)`', r.group(2))[0]
        und = objs.get(mod, (set(), set()))[1]
        callees = sorted({owner[s] for s in und if s in owner and owner[s] != mod},
                         key=lambda c: (layers.get(c, 99), c))
        cells[4] = ' ' + (', '.join('`%s`' % c for c in callees) or '—') + ' '
        print('|'.join(cells))
    return 0


def main():
    if sys.argv[1:] == ['--self-test']:
        return self_test()
    if len(sys.argv) == 5 and sys.argv[1] == '--table':
        return print_table(sys.argv[2], sys.argv[4])
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    bad = run(*sys.argv[1:])
    for b in bad:
        print(b)
    if not bad:
        print('worker/ is layered as DESIGN.md says')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

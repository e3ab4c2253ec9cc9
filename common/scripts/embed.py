#!/usr/bin/env python3
"""Embeds the Lua scripts into C: each script gets lib.lua in front of it and
its SHA1 computed here, so the binaries can EVALSHA without hashing at run
time. Usage: embed.py OUT.c LIB.lua SCRIPT.lua...

Each script declares its Redis 7 script flags in a header line
`-- script-flags: FLAG,...` (or nothing after the colon). The body starts
with the shebang `#!lua flags=...` built from it: a script without
`allow-oom` is refused as a whole, before it runs, when Redis is at
maxmemory (claims and enqueues stop), while one with it (outcomes, lease
renewals, the reaper) still runs, so attempts that ran are recorded.

A script may also hold one block between the lines `-- {{ before lib.lua`
and `-- }} before lib.lua`: that block goes in front of lib.lua instead
(an idle fast path that answers before lib.lua's ~100 functions are built,
which is most of the cost of a call that finds nothing to do). It sees none
of lib.lua's names; `'@PROTOCOL@'` in it becomes lib.lua's protocol text.

The same scripts also make one Redis 7 function library (library()): lib.lua
once, then each script as a function `lw_HASH_NAME(KEYS, ARGV)` registered
with the flags of its header. Callers FUNCTION LOAD it once per server and
FCALL, so lib.lua's ~35 closures are built once per load instead of once per
call; where FUNCTION LOAD is refused (an ACL user, an older Redis) they run
the EVAL bodies. HASH is the start of the SHA1 of the library's text, in the
library's name and in every function's (function names are global to the
server), so versions of lanework loaded side by side during an upgrade
never replace each other's code.

Tests and benchmarks that send the scripts themselves import body() from
here, so a body is built in one place only."""
import hashlib
import os
import re
import sys

FLAGS_RE = re.compile(r'^-- script-flags:[ \t]*([a-z,-]*)[ \t]*$', re.M)
BEFORE_LIB_RE = re.compile(r'^-- \{\{ before lib\.lua[^\n]*\n(.*?)^-- \}\} before lib\.lua[^\n]*\n',
                           re.M | re.S)
PROTOCOL_RE = re.compile(r"^local PROTOCOL = '([^']*)'", re.M)
KNOWN_FLAGS = {'allow-oom', 'no-writes', 'allow-stale', 'no-cluster', 'allow-cross-slot-keys'}


# What every call runs first (lib.lua's begin()): EVAL bodies after lib.lua,
# functions as their first statement after the before-lib block.
BEGIN = 'do local lw_err = begin(ARGV) if lw_err then return lw_err end end\n'
HASH_MARK = '@LIBHASH@'


def _parts(lib, script, name):
    """(flags, before-lib block, script without it) of `script`."""
    m = FLAGS_RE.search(script)
    if not m:
        raise SystemExit('%s: no "-- script-flags:" header line' % name)
    flags = [f for f in m.group(1).split(',') if f]
    bad = [f for f in flags if f not in KNOWN_FLAGS]
    if bad:
        raise SystemExit('%s: unknown script flag(s) %s' % (name, ','.join(bad)))
    before = ''
    b = BEFORE_LIB_RE.search(script)
    if b:
        proto = PROTOCOL_RE.search(lib)
        if not proto:
            raise SystemExit("%s: lib.lua has no \"local PROTOCOL = 'N'\" line" % name)
        before = b.group(1).replace("'@PROTOCOL@'", "'%s'" % proto.group(1))
        script = script[:b.start()] + script[b.end():]
    return flags, before, script


def body(lib, script, name='script'):
    """The EVAL body of `script` (its text) with `lib` (lib.lua's text)."""
    flags, before, script = _parts(lib, script, name)
    shebang = '#!lua' + (' flags=' + ','.join(flags) if flags else '')
    return shebang + '\n' + before + lib + '\n' + BEGIN + script


def library(lib, scripts):
    """(text, hash) of the function library of `scripts`, a list of (name,
    text): FUNCTION LOAD text, then FCALL function_name(hash, name)."""
    out = ['#!lua name=lanework_' + HASH_MARK, lib]
    # Sorted: every builder (the C build, the clients' bundle) lists the
    # scripts in its own order, and must make the same text, hence names.
    for name, text in sorted(scripts):
        flags, before, script = _parts(lib, text, name)
        out.append('local function script_%s(KEYS, ARGV)\n%s%s%s\nend' % (name, before, BEGIN, script))
        out.append("redis.register_function{function_name = 'lw_%s_%s', callback = script_%s, flags = {%s}}"
                   % (HASH_MARK, name, name, ', '.join("'%s'" % f for f in flags)))
    # The probe: FCALL lw_HASH_loaded 0 answers the library's name where it
    # is loaded. A caller whose own FUNCTION LOAD is refused (a tenant's ACL
    # user) learns so whether an operator loaded it; it reads no key. The
    # name, not just "yes": a function of that name in another library
    # (it would make our load fail) does not pass for ours.
    out.append("redis.register_function{function_name = 'lw_%s_loaded', "
               "callback = function() return 'lanework_%s' end, flags = {'no-writes'}}" % (HASH_MARK, HASH_MARK))
    text = '\n'.join(out) + '\n'
    h = hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]
    return text.replace(HASH_MARK, h), h


def function_name(h, name):
    """The FCALL name of script `name` in the library of hash h."""
    return 'lw_%s_%s' % (h, name)


def load(name, scripts_dir=os.path.dirname(os.path.abspath(__file__))):
    """body() of common/scripts/NAME.lua, read from disk."""
    with open(os.path.join(scripts_dir, 'lib.lua'), encoding='utf-8') as f:
        lib = f.read()
    with open(os.path.join(scripts_dir, name + '.lua'), encoding='utf-8') as f:
        return body(lib, f.read(), name)


def c_bytes(data):
    # A byte array, not a string literal: -Wpedantic limits literals to 4095.
    rows = []
    for i in range(0, len(data), 16):
        rows.append('    ' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',')
    rows.append('    0x00,')
    return '\n'.join(rows)


def main():
    out_path, lib_path, scripts = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(lib_path, encoding='utf-8') as f:
        lib = f.read()
    texts = []
    for path in scripts:
        with open(path, encoding='utf-8') as f:
            texts.append((os.path.splitext(os.path.basename(path))[0], f.read(), path))
    lib_text, h = library(lib, [(name, text) for name, text, _ in texts])
    parts = ['/* Generated by common/scripts/embed.py; do not edit. */',
             '#include "scripts.h"', '']
    for name, text, path in texts:
        data = body(lib, text, path).encode('utf-8')
        sha = hashlib.sha1(data).hexdigest()
        parts.append('static const char body_%s[] = {' % name)
        parts.append(c_bytes(data))
        parts.append('};')
        parts.append('const lw_script lw_script_%s = {' % name)
        parts.append('    "%s",' % name)
        parts.append('    body_%s,' % name)
        parts.append('    %d,' % len(data))
        parts.append('    "%s",' % sha)
        parts.append('    "%s",' % function_name(h, name))
        parts.append('};')
        parts.append('')
    data = lib_text.encode('utf-8')
    parts.append('static const char library_text[] = {')
    parts.append(c_bytes(data))
    parts.append('};')
    parts.append('const lw_function_library lw_library = {"lanework_%s", library_text, %d, "%s"};'
                 % (h, len(data), function_name(h, 'loaded')))
    parts.append('')
    parts.append('const lw_script *const lw_scripts_all[] = {')
    for name, _, _ in texts:
        parts.append('    &lw_script_%s,' % name)
    parts.append('    0,')
    parts.append('};')
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(parts) + '\n')


if __name__ == '__main__':
    main()

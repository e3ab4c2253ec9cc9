#!/usr/bin/env python3
"""iface.py refuses what would let a script and its C callers disagree: a
malformed interface block, and a body that reads an ARGV/KEYS position the
block does not declare (or no longer reads the last one it declares).
Usage: test_iface_gen.py IFACE.py LIB.lua"""
import os
import subprocess
import sys
import tempfile
import unittest

IFACE, LIB = sys.argv[1], sys.argv[2]
sys.argv[1:] = []
sys.path.insert(0, os.path.dirname(os.path.abspath(IFACE)))
import iface  # noqa: E402

GOOD = """-- good.lua
--@ keys: events stats
--@ argv: prefix:str events_cap:int mode:str n:int
--@ argv item*n: id:str delay_ms:ms
--@ reply: items:list gap:int
--@ reply.items entry*: id:str status:str
local mode, n = ARGV[3], tonumber(ARGV[4])
for i = 0, n - 1 do local id = ARGV[5 + i * 2] end
return { {}, 0 }
"""


def check(text):
    f = iface.parse('good', text)
    iface.check_body(f, text, 'local P = ARGV[1]\n')
    return f


def generate(text):
    """Runs iface.py as the build does on one script; (exit status, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'good.lua')
        with open(path, 'w') as fh:
            fh.write(text)
        outs = [os.path.join(d, n) for n in ('a.h', 'a.c', 'r.h', 'r.c')]
        p = subprocess.run([sys.executable, IFACE] + outs + [LIB, path], capture_output=True, text=True)
        return p.returncode, p.stderr


class Generator(unittest.TestCase):
    def test_good_block_parses_and_generates(self):
        f = check(GOOD)
        self.assertEqual([n for n, _ in f.sections['argv'].fixed], ['prefix', 'events_cap', 'mode', 'n'])
        self.assertEqual(f.sections['argv'].groups[0].count, 'n')
        rc, err = generate(GOOD)
        self.assertEqual(rc, 0, err)

    def test_malformed_lines_refused(self):
        bad = {
            'unknown type': GOOD.replace('delay_ms:ms', 'delay_ms:float'),
            'no type': GOOD.replace('mode:str', 'mode'),
            'bad section': GOOD.replace('--@ keys:', '--@ kays:'),
            'no space': GOOD.replace('--@ keys:', '--@keys:'),
            'count not an int': GOOD.replace('item*n:', 'item*mode:'),
            'list undeclared': GOOD.replace('--@ reply.items entry*: id:str status:str\n', ''),
            'lib args missing': GOOD.replace('events_cap:int ', ''),
            'two fixed lines': GOOD.replace('--@ argv item*n', '--@ argv'),
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(iface.Malformed):
                    check(text)
                rc, err = generate(text)
                self.assertNotEqual(rc, 0)
                self.assertIn('interface block: good.lua', err)

    def test_undeclared_argv_index_refused(self):
        text = GOOD.replace('local mode, n = ARGV[3], tonumber(ARGV[4])',
                            'local mode, n, x = ARGV[3], tonumber(ARGV[4]), ARGV[5]')
        with self.assertRaisesRegex(iface.Malformed, r'ARGV\[5\] is used'):
            check(text)
        rc, err = generate(text)
        self.assertNotEqual(rc, 0)
        self.assertIn('ARGV[5]', err)

    def test_undeclared_key_index_refused(self):
        with self.assertRaisesRegex(iface.Malformed, r'KEYS\[3\]'):
            check(GOOD.replace('return {', "redis.call('GET', KEYS[3])\nreturn {"))

    def test_declared_field_the_body_never_reads_refused(self):
        text = GOOD.replace('n:int', 'n:int extra:str')
        with self.assertRaisesRegex(iface.Malformed, 'never read'):
            check(text)

    def test_group_size_must_match_the_stride(self):
        with self.assertRaisesRegex(iface.Malformed, 'steps by 3'):
            check(GOOD.replace('delay_ms:ms', 'delay_ms:ms text:str'))

    def test_reply_group_size_must_match_the_body(self):
        text = GOOD.replace('return { {}, 0 }', 'local items, k = {}, 0\nitems[k + 1] = 1\nitems[k + 3] = 2\nreturn { items, 0 }')
        with self.assertRaisesRegex(iface.Malformed, 'groups of 3'):
            check(text)


if __name__ == '__main__':
    unittest.main(verbosity=2)

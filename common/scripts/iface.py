#!/usr/bin/env python3
"""The interface blocks of the Lua scripts: parsed, checked against the
script bodies, and turned into C argument builders and reply readers.

Usage: iface.py ARGS.h ARGS.c REPLIES.h REPLIES.c LIB.lua SCRIPT.lua...
(common/meson.build runs it; the build fails with a message naming the
script and line when a block is malformed or disagrees with its body).

Interface block syntax
----------------------
Lines of a script's header that start with "--@ " (the prose around them
stays for people). Each line is

    --@ SECTION [GROUP*[COUNT]]: ITEM ITEM ...

SECTION is one of
    keys          the KEYS, in order
    argv          the ARGV, in order
    reply         the reply is an array: these elements, in order
    reply.NAME    the list element NAME of `reply` is made of groups
    result        the reply is one value (not an array): one ITEM

Without GROUP the items are the fixed part, which comes first (at most one
fixed line per section). With GROUP*COUNT the items are one group that
repeats COUNT times, COUNT being the name of an integer ARGV item of the
fixed part; GROUP* (no COUNT) repeats up to the end of the vector or list.
Groups follow the fixed part in the order of their lines; a count-less
group, if any, is the last.

ITEMs of keys are key names under the tenant prefix ("events" is
P.."events"); inside a group a name ending in "<name>" takes the group's
name argument there ("ready:<name>" is P.."ready:"..Q).
ITEMs elsewhere are NAME:TYPE, TYPE one of
    str   a string                 json  a string holding JSON
    int   an integer (argv: decimal; reply: a Redis integer)
    ms    an integer, milliseconds  s    an integer, seconds
    num   reply only: a count in a string, read as its leading digits
          (a value copied from a job record, which may have been tampered with)
    list  reply only: a nested array, described by its reply.NAME line
NAMEs are lower-case C identifiers; they become struct fields.

Build-time checks tying the body to the block
---------------------------------------------
* the first two ARGV are prefix:str and events_cap:int (lib.lua reads them);
* every ARGV[n] / KEYS[n] with a literal n in the script (or lib.lua) lies
  in the fixed part, or in a count-less tail group; and the largest literal
  ARGV index the script uses is the fixed part's last item (a field added
  to or removed from the fixed part without the body following fails);
* a group of k > 1 ARGV items is only declared when the body steps through
  the vector by k ("i * k" or "k * i");
* a reply list NAME whose groups the body fills as NAME[k + m] has m up to
  exactly the group size.

Example (claim.lua):
    --@ keys: events schedule stats expiring fence
    --@ keys queue*nq: ready:<name> active:<name>
    --@ argv: prefix:str events_cap:int worker:str lease_ms:ms want:int keep_failed_s:s nq:int
    --@ argv queue*nq: name:str max_active:int
    --@ reply: jobs:list bad:list due_in:int more:int gap:int
    --@ reply.jobs job*: id:str token:str ... spool:str
    --@ reply.bad corrupt*: id:str reason:str
"""
import os
import re
import sys

LINE_RE = re.compile(r'^--@ (.*)$', re.M)
HEAD_RE = re.compile(r'^(keys|argv|reply|result|reply\.[a-z_][a-z0-9_]*)'
                     r'(?:[ \t]+([a-z_][a-z0-9_]*)\*([a-z_][a-z0-9_]*)?)?[ \t]*:(.*)$')
NAME_RE = re.compile(r'^[a-z_][a-z0-9_]*$')
KEY_RE = re.compile(r'^[a-z_][a-z0-9_:]*(<name>)?$')
ARGV_TYPES = {'str', 'json', 'int', 'ms', 's'}
REPLY_TYPES = {'str', 'json', 'int', 'num', 'list'}
INT_TYPES = {'int', 'ms', 's'}


class Malformed(Exception):
    pass


class Group:
    def __init__(self, name, count, items, line):
        self.name, self.count, self.items, self.line = name, count, items, line


class Section:
    def __init__(self):
        self.fixed = None  # list of items, or None when no fixed line
        self.groups = []   # Group, in order

    def fixed_items(self):
        return self.fixed or []


class Iface:
    def __init__(self, name):
        self.name = name
        self.sections = {}  # 'keys', 'argv', 'reply', 'result', 'reply.NAME'

    def sec(self, key):
        return self.sections.get(key) or Section()


def fail(where, msg):
    raise Malformed('%s: %s' % (where, msg))


def parse_item(where, sec, text):
    if sec == 'keys':
        if not KEY_RE.match(text):
            fail(where, 'bad key name %r (want e.g. events or ready:<name>)' % text)
        return (text, 'key')
    if ':' not in text:
        fail(where, 'item %r is not NAME:TYPE' % text)
    name, typ = text.split(':', 1)
    if not NAME_RE.match(name):
        fail(where, 'bad item name %r' % name)
    types = ARGV_TYPES if sec == 'argv' else REPLY_TYPES
    if typ not in types:
        fail(where, 'item %s: unknown type %r for %s (one of %s)' % (name, typ, sec, ' '.join(sorted(types))))
    return (name, typ)


def parse(name, text):
    """The Iface of script `name` from its text; raises Malformed."""
    f = Iface(name)
    lines = text.split('\n')
    for no, line in enumerate(lines, 1):
        if not line.startswith('--@'):
            continue
        where = '%s.lua:%d' % (name, no)
        if not line.startswith('--@ '):
            fail(where, 'an interface line starts with "--@ " (a space after @)')
        m = HEAD_RE.match(line[4:])
        if not m:
            fail(where, 'not "SECTION [GROUP*[COUNT]]: ITEM...": %r' % line)
        sec, gname, count, rest = m.group(1), m.group(2), m.group(3), m.group(4).split()
        if not rest:
            fail(where, 'no items')
        items = [parse_item(where, 'keys' if sec == 'keys' else 'argv' if sec == 'argv' else 'reply', t)
                 for t in rest]
        if len({i[0] for i in items}) != len(items):
            fail(where, 'an item name repeats')
        s = f.sections.setdefault(sec, Section())
        if sec == 'result' and (gname or len(items) != 1 or items[0][1] == 'list'):
            fail(where, 'result is one non-list item')
        if sec != 'keys' and any(t == 'list' for _, t in items) and (gname or sec != 'reply'):
            fail(where, 'list items only in the fixed part of reply')
        if gname is None:
            if s.fixed is not None:
                fail(where, 'a second fixed line for %s' % sec)
            if s.groups:
                fail(where, 'the fixed line of %s comes before its groups' % sec)
            if sec.startswith('reply.'):
                fail(where, '%s describes groups: write "%s GROUP*:"' % (sec, sec))
            s.fixed = items
        else:
            if any(g.count is None for g in s.groups):
                fail(where, 'a group after the count-less group of %s' % sec)
            if sec.startswith('reply') and count:
                fail(where, 'reply groups have no COUNT (they last to the end of their list)')
            if any(g.name == gname for k, sl in f.sections.items() for g in sl.groups
                   if sl is not s and k.startswith('reply')) and sec.startswith('reply'):
                fail(where, 'group name %s used twice' % gname)
            if any(g.name == gname for g in s.groups):
                fail(where, 'group name %s used twice in %s' % (gname, sec))
            if sec == 'keys' and not any(k.endswith('<name>') for k, _ in items):
                fail(where, 'a key group names its keys with <name>')
            s.groups.append(Group(gname, count, items, where))
        if sec == 'keys' and gname is None and any(k.endswith('<name>') for k, _ in items):
            fail(where, '<name> only inside a key group')
    check_structure(f)
    return f


def check_structure(f):
    where = f.name + '.lua'
    argv = f.sections.get('argv')
    if not argv or not f.sections.get('keys'):
        fail(where, 'no "--@ keys:" / "--@ argv:" interface lines')
    fixed = argv.fixed_items()
    if fixed[:2] != [('prefix', 'str'), ('events_cap', 'int')]:
        fail(where, 'ARGV must start with prefix:str events_cap:int (lib.lua reads ARGV[1], ARGV[2])')
    ints = {n for n, t in fixed if t in INT_TYPES}
    for sec in ('keys', 'argv'):
        for g in f.sec(sec).groups:
            if g.count is not None and g.count not in ints:
                fail(g.line, 'COUNT %s is not an integer item of the fixed ARGV' % g.count)
    kg = [g.name for g in f.sec('keys').groups]
    ag = [g.name for g in argv.groups]
    if any(n not in ag for n in kg):
        fail(where, 'a key group needs an ARGV group of the same name (its <name>)')
    if ('reply' in f.sections) == ('result' in f.sections):
        fail(where, 'exactly one of "--@ reply" or "--@ result" lines')
    reply = f.sections.get('reply')
    if reply:
        lists = [n for n, t in reply.fixed_items() if t == 'list']
        for n in lists:
            if 'reply.' + n not in f.sections:
                fail(where, 'reply list %s has no "--@ reply.%s GROUP*:" line' % (n, n))
        for key in f.sections:
            if key.startswith('reply.') and key[6:] not in lists:
                fail(where, '%s: no list item %s in the reply' % (key, key[6:]))
            if key.startswith('reply.') and len(f.sections[key].groups) != 1:
                fail(where, '%s: exactly one group' % key)
        if reply.fixed is not None and reply.groups:
            fail(where, 'reply has either fixed elements or groups, not both')
        if len(reply.groups) > 1:
            fail(where, 'reply has at most one group')


LIT_RE = {k: re.compile(r'\b%s\[(\d+)\]' % k) for k in ('ARGV', 'KEYS')}


def strip_comments(text):
    return '\n'.join(re.sub(r'--.*$', '', line) for line in text.split('\n'))


def check_body(f, body, lib):
    """Ties the script body to its block (see the module doc)."""
    where = f.name + '.lua'
    code, libcode = strip_comments(body), strip_comments(lib)
    argv, keys = f.sections['argv'], f.sections['keys']
    nfixed = {'ARGV': len(argv.fixed_items()), 'KEYS': len(keys.fixed_items())}
    tail = {'ARGV': any(g.count is None for g in argv.groups),
            'KEYS': any(g.count is None for g in keys.groups)}
    for k in ('ARGV', 'KEYS'):
        for src, what in ((code, where), (libcode, 'lib.lua')):
            for m in LIT_RE[k].finditer(src):
                n = int(m.group(1))
                if n < 1 or (n > nfixed[k] and not tail[k]):
                    fail(what, '%s[%d] is used but %s declares %d fixed %s (and no open-ended group)'
                         % (k, n, where, nfixed[k], k))
    used = [int(m.group(1)) for m in LIT_RE['ARGV'].finditer(code)]
    in_fixed = [n for n in used if n <= nfixed['ARGV']]
    if max(in_fixed or [0]) != nfixed['ARGV']:
        fail(where, 'the last fixed ARGV item (%d, %s) is never read as ARGV[%d]: block and body disagree'
             % (nfixed['ARGV'], argv.fixed_items()[-1][0], nfixed['ARGV']))
    for g in argv.groups:
        k = len(g.items)
        if k > 1 and not re.search(r'(\b%d\s*\*\s*[A-Za-z_])|([A-Za-z_][A-Za-z0-9_]*\s*\*\s*%d\b)' % (k, k), code):
            fail(g.line, 'group %s has %d items but the body never steps by %d ("i * %d")' % (g.name, k, k, k))
    reply = f.sections.get('reply')
    for n, t in (reply.fixed_items() if reply else []):
        if t != 'list':
            continue
        k = len(f.sections['reply.' + n].groups[0].items)
        ms = [int(x) for x in re.findall(r'\b%s\[\s*[A-Za-z_][A-Za-z0-9_]*\s*\+\s*(\d+)\s*\]' % n, code)]
        if ms and max(ms) != k:
            fail(where, 'reply list %s: the body fills groups of %d (%s[k + %d]) but the block declares %d'
                 % (n, max(ms), n, max(ms), k))


def load_all(lib_path, paths):
    with open(lib_path, encoding='utf-8') as fh:
        lib = fh.read()
    out = []
    for p in paths:
        name = os.path.splitext(os.path.basename(p))[0]
        with open(p, encoding='utf-8') as fh:
            text = fh.read()
        f = parse(name, text)
        check_body(f, text, lib)
        out.append(f)
    return out


# ---- C generation ----------------------------------------------------------

def up(s):
    return s.upper()


def c_arg_type(t):
    return 'int64_t' if t in INT_TYPES else 'const char *'


def c_reply_type(t):
    return 'int64_t' if t in ('int', 'num') else 'lw_rstr'


def key_parts(k):
    return (k[:-len('<name>')], True) if k.endswith('<name>') else (k, False)


def gen_args(ifaces):
    h = ['/* Generated by common/scripts/iface.py from the "--@" interface blocks of',
         ' * common/scripts/NAME.lua; do not edit. Sizes of the reply groups are here too',
         ' * (LW_<SCRIPT>_<GROUP>_FIELDS), for code that does not link hiredis.',
         ' * One builder per part of each script\'s',
         ' * KEYS/ARGV, appending it to a lw_argv in the declared order: callers never',
         ' * write an argument position. Every builder only appends (an allocation',
         ' * failure marks the vector oom, see argv.h); nothing here allocates for',
         ' * the caller. */',
         '#ifndef LW_SCRIPT_ARGS_H', '#define LW_SCRIPT_ARGS_H', '',
         '#include <stddef.h>', '#include <stdint.h>', '', '#include "argv.h"', '']
    c = ['/* Generated by common/scripts/iface.py; do not edit. */',
         '#include "script_args.h"', '']
    for f in ifaces:
        P = 'lw_' + f.name
        U = up(P)
        keys, argv = f.sections['keys'], f.sections['argv']
        h.append('/* ---- %s.lua ---- */' % f.name)
        enum = ['%s_NKEYS = %d' % (U, len(keys.fixed_items())),
                '%s_NARGV = %d' % (U, len(argv.fixed_items()))]
        for i, (n, _) in enumerate(argv.fixed_items()):
            enum.append('%s_ARGV_%s = %d' % (U, up(n), i))
        for g in keys.groups:
            enum.append('%s_%s_NKEYS = %d' % (U, up(g.name), len(g.items)))
        for g in argv.groups:
            enum.append('%s_%s_NARGV = %d' % (U, up(g.name), len(g.items)))
        for _, g in reply_lists(f):
            enum.append('%s_%s_FIELDS = %d' % (U, up(g.name), len(g.items)))
        h.append('enum {')
        h += ['    %s,' % e for e in enum]
        h.append('};')
        # fixed keys
        h.append('/* Appends the fixed KEYS (%s) of tenant prefix `prefix`. */'
                 % ' '.join(k for k, _ in keys.fixed_items()))
        h.append('void %s_keys(lw_argv *a, const char *prefix);' % P)
        c.append('void %s_keys(lw_argv *a, const char *prefix)' % P)
        c.append('{')
        for k, _ in keys.fixed_items():
            c.append('    lw_argv_addkey(a, prefix, "%s", NULL);' % k)
        c.append('}')
        c.append('')
        for g in keys.groups:
            fn = '%s_%s_keys' % (P, g.name)
            h.append('/* Appends the KEYS of one %s group (%s) for `name`. */' % (g.name, ' '.join(k for k, _ in g.items)))
            h.append('void %s(lw_argv *a, const char *prefix, const char *name);' % fn)
            c.append('void %s(lw_argv *a, const char *prefix, const char *name)' % fn)
            c.append('{')
            for k, _ in g.items:
                sfx, named = key_parts(k)
                c.append('    lw_argv_addkey(a, prefix, "%s", %s);' % (sfx, 'name' if named else 'NULL'))
            c.append('}')
            c.append('')
        if keys.groups:
            terms = ' + '.join('%s_%s_NKEYS * n_%s' % (U, up(g.name), g.name) for g in keys.groups)
            params = ', '.join('size_t n_%s' % g.name for g in keys.groups)
            h.append('/* The number of KEYS for that many groups (EVALSHA\'s numkeys). */')
            h.append('static inline int %s_nkeys(%s)' % (P, params))
            h.append('{')
            h.append('    return (int)(%s_NKEYS + %s);' % (U, terms))
            h.append('}')
        # argv structs
        for label, items, tname, fn, what in (
                [('fixed', argv.fixed_items(), '%s_argv' % P, '%s_argv_add' % P, 'the fixed ARGV')] +
                [(g.name, g.items, '%s_%s_argv' % (P, g.name), '%s_%s_argv_add' % (P, g.name),
                  'one %s group of ARGV (repeated %s)' % (g.name, g.count or 'to the end'))
                 for g in argv.groups]):
            h.append('typedef struct %s {' % tname)
            for n, t in items:
                h.append('    %s%s%s; /* %s */' % (c_arg_type(t), ' ' if t in INT_TYPES else '', n, t))
            h.append('} %s;' % tname)
            h.append('/* Appends %s in the declared order (NULL strings as ""). */' % what)
            h.append('void %s(lw_argv *a, const %s *v);' % (fn, tname))
            c.append('void %s(lw_argv *a, const %s *v)' % (fn, tname))
            c.append('{')
            for n, t in items:
                c.append('    lw_argv_add%s(a, v->%s);' % ('i' if t in INT_TYPES else 's', n))
            c.append('}')
            c.append('')
        if not keys.groups:
            for n, t in argv.fixed_items():
                if t in INT_TYPES and any(g.count == n for g in argv.groups):
                    fn = '%s_argv_set_%s' % (P, n)
                    h.append('/* Rewrites the count %s of a vector started with %s_keys +'
                             ' %s_argv_add, once its groups are appended. */' % (n, P, P))
                    h.append('void %s(lw_argv *a, int64_t %s);' % (fn, n))
                    c.append('void %s(lw_argv *a, int64_t %s)' % (fn, n))
                    c.append('{')
                    c.append('    lw_argv_seti(a, %s_NKEYS + %s_ARGV_%s, %s);' % (U, U, up(n), n))
                    c.append('}')
                    c.append('')
            for g in argv.groups:
                if g.count is None:
                    continue
                fn = '%s_%s_count' % (P, g.name)
                h.append('/* The number of %s groups in a vector holding only the fixed part and'
                         ' those groups. */' % g.name)
                h.append('size_t %s(const lw_argv *a);' % fn)
                head = '%s_NKEYS + %s_NARGV' % (U, U)
                c.append('size_t %s(const lw_argv *a)' % fn)
                c.append('{')
                c.append('    return a->n >= %s ? (a->n - (%s)) / %s_%s_NARGV : 0;' % (head, head, U, up(g.name)))
                c.append('}')
                c.append('')
        h.append('')
    h.append('#endif')
    return '\n'.join(h) + '\n', '\n'.join(c)


def reply_lists(f):
    """(struct member base name, group, where) for each group list of the reply."""
    out = []
    reply = f.sections.get('reply')
    if not reply:
        return out
    for g in reply.groups:
        out.append((None, g))
    for n, t in reply.fixed_items():
        if t == 'list':
            out.append((n, f.sections['reply.' + n].groups[0]))
    return out


def gen_replies(ifaces):
    h = ['/* Generated by common/scripts/iface.py from the "--@" interface blocks of',
         ' * common/scripts/NAME.lua; do not edit. Per script: a reader that checks a',
         ' * whole reply against the declared shape (element count, group size, every',
         ' * element\'s type) and, for group lists, a getter of group i by field name.',
         ' * Everything read is borrowed from the redisReply: valid while it lives. */',
         '#ifndef LW_SCRIPT_REPLIES_H', '#define LW_SCRIPT_REPLIES_H', '',
         '#include <hiredis/hiredis.h>', '#include <stddef.h>', '#include <stdint.h>', '',
         '#include "script_args.h" /* the group sizes, LW_<SCRIPT>_<GROUP>_FIELDS */', '',
         '/* A string of a reply (borrowed; NUL-terminated by hiredis). */',
         'typedef struct lw_rstr {', '    const char *s;', '    size_t len;', '} lw_rstr;', '']
    c = ['/* Generated by common/scripts/iface.py; do not edit. */',
         '#include "script_replies.h"', '', '#include <stdio.h>', '#include <string.h>', '',
         'static int bad(char *err, size_t errlen, const char *script, const char *what, size_t i,',
         '               const char *why)',
         '{',
         '    if (err && errlen)',
         '        snprintf(err, errlen, "%s.lua reply: %s (element %zu): %s", script, what, i, why);',
         '    return -1;',
         '}',
         '',
         'static int is_str(const redisReply *e)',
         '{',
         '    return e && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS);',
         '}',
         '',
         '/* A count in a string, read as its leading decimal digits (0 when none, at',
         ' * most 18 read): a claim reply carries them from the job record as stored,',
         ' * and one tampered record must not make the whole reply unreadable. */',
         'static int64_t num_of(const redisReply *e)',
         '{',
         '    int64_t v = 0;',
         '    for (size_t i = 0; i < e->len && i < 18 && e->str[i] >= \'0\' && e->str[i] <= \'9\'; i++)',
         '        v = v * 10 + (e->str[i] - \'0\');',
         '    return v;',
         '}',
         '',
         '/* 1 when e has the declared type; "list" elements are checked by their caller. */',
         'static int has_type(const redisReply *e, char t)',
         '{',
         '    switch (t) {',
         '    case \'s\': return is_str(e);',
         '    case \'i\': return e && e->type == REDIS_REPLY_INTEGER;',
         '    case \'n\': return is_str(e);',
         '    default: return e && e->type == REDIS_REPLY_ARRAY;',
         '    }',
         '}',
         '',
         '/* Checks that list is an array of groups of strlen(types) elements typed',
         ' * as `types` says (s str, i int, n num). */',
         'static int check_groups(const redisReply *list, const char *types, const char *script,',
         '                        const char *what, char *err, size_t errlen)',
         '{',
         '    size_t k = strlen(types);',
         '    if (!list || list->type != REDIS_REPLY_ARRAY)',
         '        return bad(err, errlen, script, what, 0, "not an array");',
         '    if (list->elements % k)',
         '        return bad(err, errlen, script, what, list->elements, "not a whole number of groups");',
         '    for (size_t i = 0; i < list->elements; i++)',
         '        if (!has_type(list->element[i], types[i % k]))',
         '            return bad(err, errlen, script, what, i, "element of the wrong type");',
         '    return 0;',
         '}',
         '']
    code = {'str': 's', 'json': 's', 'int': 'i', 'num': 'n', 'list': 'l'}

    def read_expr(t, e):
        if t in ('str', 'json'):
            return '(lw_rstr){%s->str, %s->len}' % (e, e)
        if t == 'int':
            return '%s->integer' % e
        return 'num_of(%s)' % e

    for f in ifaces:
        P = 'lw_' + f.name
        U = up(P)
        h.append('/* ---- %s.lua ---- */' % f.name)
        lists = reply_lists(f)
        for base, g in lists:
            tname = '%s_%s' % (P, g.name)
            h.append('typedef struct %s {' % tname)
            for n, t in g.items:
                h.append('    %s %s; /* %s */' % (c_reply_type(t), n, t))
            h.append('} %s;' % tname)
        rname = '%s_reply' % P
        h.append('typedef struct %s {' % rname)
        reply = f.sections.get('reply')
        if reply and reply.groups:
            g = reply.groups[0]
            h.append('    const redisReply *%s_list; /* the whole reply */' % g.name)
            h.append('    size_t n_%s; /* groups in it */' % g.name)
        elif reply:
            for n, t in reply.fixed_items():
                if t == 'list':
                    g = f.sections['reply.' + n].groups[0]
                    h.append('    const redisReply *%s_list; /* %s */' % (g.name, n))
                    h.append('    size_t n_%s; /* groups in %s */' % (g.name, n))
                else:
                    h.append('    %s %s; /* %s */' % (c_reply_type(t), n, t))
        else:
            n, t = f.sections['result'].fixed[0]
            h.append('    %s %s; /* %s */' % (c_reply_type(t), n, t))
        h.append('} %s;' % rname)
        h.append('/* Checks reply r of %s.lua against its interface and reads it into *out.' % f.name)
        h.append(' * Returns 0, or -1 with why in err (an error reply, a wrong element count,')
        h.append(' * group size or type): *out is then unusable. */')
        h.append('int %s_read(const redisReply *r, %s *out, char *err, size_t errlen);' % (rname, rname))
        c.append('int %s_read(const redisReply *r, %s *out, char *err, size_t errlen)' % (rname, rname))
        c.append('{')
        c.append('    memset(out, 0, sizeof *out);')
        c.append('    if (r && r->type == REDIS_REPLY_ERROR)')
        c.append('        return bad(err, errlen, "%s", "reply", 0, r->str);' % f.name)
        if reply and reply.groups:
            g = reply.groups[0]
            types = ''.join(code[t] for _, t in g.items)
            c.append('    if (check_groups(r, "%s", "%s", "%s", err, errlen))' % (types, f.name, g.name))
            c.append('        return -1;')
            c.append('    out->%s_list = r;' % g.name)
            c.append('    out->n_%s = r->elements / %d;' % (g.name, len(g.items)))
        elif reply:
            items = reply.fixed_items()
            c.append('    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != %d)' % len(items))
            c.append('        return bad(err, errlen, "%s", "reply", r ? r->elements : 0, "not an array of %d");'
                     % (f.name, len(items)))
            for i, (n, t) in enumerate(items):
                e = 'r->element[%d]' % i
                if t == 'list':
                    g = f.sections['reply.' + n].groups[0]
                    types = ''.join(code[tt] for _, tt in g.items)
                    c.append('    if (check_groups(%s, "%s", "%s", "%s", err, errlen))' % (e, types, f.name, n))
                    c.append('        return -1;')
                    c.append('    out->%s_list = %s;' % (g.name, e))
                    c.append('    out->n_%s = %s->elements / %d;' % (g.name, e, len(g.items)))
                else:
                    c.append('    if (!has_type(%s, \'%s\'))' % (e, code[t]))
                    c.append('        return bad(err, errlen, "%s", "%s", %d, "wrong type");' % (f.name, n, i))
                    c.append('    out->%s = %s;' % (n, read_expr(t, e)))
        else:
            n, t = f.sections['result'].fixed[0]
            c.append('    if (!has_type(r, \'%s\'))' % code[t])
            c.append('        return bad(err, errlen, "%s", "%s", 0, "wrong type");' % (f.name, n))
            c.append('    out->%s = %s;' % (n, read_expr(t, 'r')))
        c.append('    return 0;')
        c.append('}')
        c.append('')
        for base, g in lists:
            tname = '%s_%s' % (P, g.name)
            fn = '%s_at' % tname
            h.append('/* Group i (< n_%s) of a reply read by %s_read. */' % (g.name, rname))
            h.append('void %s(const %s *r, size_t i, %s *out);' % (fn, rname, tname))
            c.append('void %s(const %s *r, size_t i, %s *out)' % (fn, rname, tname))
            c.append('{')
            c.append('    redisReply *const *e = r->%s_list->element + i * %d;' % (g.name, len(g.items)))
            for k, (n, t) in enumerate(g.items):
                c.append('    out->%s = %s;' % (n, read_expr(t, 'e[%d]' % k)))
            c.append('}')
            c.append('')
        h.append('')
    h.append('#endif')
    return '\n'.join(h) + '\n', '\n'.join(c)


def main():
    if len(sys.argv) < 7:
        raise SystemExit('usage: iface.py ARGS.h ARGS.c REPLIES.h REPLIES.c LIB.lua SCRIPT.lua...')
    out = sys.argv[1:5]
    try:
        ifaces = load_all(sys.argv[5], sys.argv[6:])
    except Malformed as e:
        raise SystemExit('interface block: %s' % e)
    ah, ac = gen_args(ifaces)
    rh, rc = gen_replies(ifaces)
    for path, text in zip(out, (ah, ac, rh, rc)):
        with open(path, 'w', encoding='utf-8') as fh:
            fh.write(text)


if __name__ == '__main__':
    main()

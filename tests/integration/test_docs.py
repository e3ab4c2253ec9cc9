"""The man pages and the bash completion say what the binaries do.

What the binaries' --help texts name is the truth: every command of
`lanework --help`, every flag of each `lanework COMMAND --help` and of
`lanework-worker --help`, the values of a flag that takes one of a few
words (`--isolation fork|thread|pool`), the environment variables, the
worker's signals, HTTP endpoints and exit statuses, and the CLI's exit
status table (enqueue-cli/main.c) must be in docs/man/*.1 (as meson built
them, version included) and be completed by docs/completion/lanework.bash,
driven in a real `bash` (COMP_WORDS/COMP_CWORD set, the function that
`complete -p` names called, COMPREPLY read). A flag the pages or the
completion name that no --help knows is drift too. The pages must render
without a groff warning, and `meson install --destdir` must put the pages
in share/man/man1 and the completion in share/bash-completion/completions.

No Redis is asked (the Env's private one is left alone).
"""
import os
import re
import shutil
import signal
import subprocess
import sys

import lwtest
from lwtest import CLI, WORKER, check

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get('LANEWORK_SOURCE_ROOT') or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get('LANEWORK_BUILD_ROOT', '')
COMPLETION = os.path.join(SRC, 'docs', 'completion', 'lanework.bash')
FLAG = re.compile(r'(?<![\w-])(--[a-z][a-z0-9-]*)')
WORKER_EXTRA = {'--help', '-h', '--version'}


# ------------------------------------------------------------ --help texts --

def help_of(binary, *args):
    p = subprocess.run([binary] + list(args) + ['--help'], capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, '%s %s --help: exit %d %r' % (binary, ' '.join(args), p.returncode, p.stderr))
    return p.stdout


def version_of(binary):
    p = subprocess.run([binary, '--version'], capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, '%s --version: exit %d' % (binary, p.returncode))
    return p.stdout.split()[-1]


def split_shared(text):
    """(the command's own part, the shared options' part) of a --help."""
    m = re.search(r'^Shared (options|settings)\b.*$', text, re.M)
    check(m, 'no "Shared options" heading in:\n%s' % text[:300])
    return text[:m.start()], text[m.end():]


def defined_flags(text):
    """The flags a --help part defines: those of its usage lines (the first
    paragraph) and of the lines that start, indented, with a flag."""
    usage = text.split('\n\n', 1)[0]
    lines = [l for l in text.splitlines() if re.match(r'^\s{2,}--', l)]
    return set(FLAG.findall(usage)) | {f for l in lines for f in FLAG.findall(l)}


def cli_commands():
    text = help_of(CLI)
    block = text.split('Commands:\n', 1)[1].split('\n\n', 1)[0]
    names = []
    for line in block.splitlines():
        m = re.match(r'^  ([a-z]+)\s', line)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    check(len(names) >= 10, 'lanework --help lists only %s: this test reads it wrong' % names)
    return names


def cli_flags():
    """{command: (own flags, shared flags)}, from `lanework COMMAND --help`."""
    out = {}
    for cmd in cli_commands():
        own, shared = split_shared(help_of(CLI, cmd))
        shared_flags = defined_flags(shared)
        out[cmd] = (defined_flags(own) - shared_flags, shared_flags)
        check(out[cmd][0] or cmd == 'workers', 'lanework %s --help: no flags found' % cmd)
    return out


def exit_table(text):
    """{code: text} of the "Exit status:" table of `lanework --help`."""
    block = text.split('Exit status:\n', 1)[1].split('\n\n', 1)[0]
    rows, code = {}, None
    for line in block.splitlines():
        m = re.match(r'^  (\d+)\s+(.*)$', line)
        if m:
            code = int(m.group(1))
            rows[code] = m.group(2)
        else:
            rows[code] += ' ' + line.strip()
    return {k: ' '.join(v.split()) for k, v in rows.items()}


def enumerations(text):
    """{flag: [words]} for "--flag a|b|c" in a usage (lowercase words only:
    "FILE|-" is a placeholder, not a list)."""
    usage = text.split('\n\n', 1)[0]
    return {m.group(1): m.group(2).split('|')
            for m in re.finditer(r'(--[a-z][a-z-]*) ([a-z]+(?:\|[a-z]+)+)(?![\w|])', usage)}


# -------------------------------------------------------------- man pages --

def man_page(name):
    path = os.path.join(BUILD, 'docs', name)
    check(BUILD and os.path.exists(path), 'no built man page %s (LANEWORK_BUILD_ROOT=%r)' % (path, BUILD))
    with open(path) as f:
        return f.read()


def man_plain(roff):
    """The roff source without comments, escapes and fonts: what a reader
    sees, word for word (macro names stay at line starts)."""
    lines = [l for l in roff.splitlines() if not l.startswith('.\\"')]
    s = '\n'.join(lines)
    s = re.sub(r'\\f(\[[^]]*\]|\(..|.)', '', s)
    s = s.replace('\\-', '-').replace('\\&', '').replace('\\~', ' ').replace('\\ ', ' ').replace('\\e', '\\')
    s = s.replace('\\(lq', '"').replace('\\(rq', '"').replace('\\(aq', "'").replace('\\c', '')
    return s


def sections(plain, macro='.SH'):
    """{name: text} of the .SH (or .SS) sections of a page."""
    out, name, buf = {}, None, []
    for line in plain.splitlines():
        if line.startswith(macro + ' '):
            if name is not None:
                out[name] = '\n'.join(buf)
            name, buf = line[len(macro) + 1:].strip().strip('"'), []
        elif name is not None:
            buf.append(line)
    if name is not None:
        out[name] = '\n'.join(buf)
    return out


def has_flag(text, flag):
    return re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(flag), text) is not None


def missing_flags(text, flags):
    return sorted(f for f in flags if not has_flag(text, f))


def known_flags():
    """Every flag any --help of either binary mentions, prose included."""
    texts = [help_of(CLI), help_of(WORKER)] + [help_of(CLI, c) for c in cli_commands()]
    return {f for t in texts for f in FLAG.findall(t)} | {'-h'}


def check_version(plain, binary):
    th = [l for l in plain.splitlines() if l.startswith('.TH ')]
    want = version_of(binary)
    check(th and ('lanework %s' % want) in th[0], 'the page says %r, %s --version says %s' % (th, binary, want))


def test_cli_page_names_every_command_and_flag(env):
    plain = man_plain(man_page('lanework.1'))
    sh = sections(plain)
    for name in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'OPTIONS', 'EXIT STATUS', 'ENVIRONMENT',
                 'FILES', 'EXAMPLES', 'SEE ALSO'):
        check(name in sh, 'lanework.1 has no %s section (it has %s)' % (name, list(sh)))
    commands = cli_commands()
    ss = sections(sh['COMMANDS'], '.SS')
    check(sorted(ss) == sorted(commands), 'lanework.1 COMMANDS has %s; lanework --help lists %s'
          % (sorted(ss), sorted(commands)))
    flags = cli_flags()
    for cmd, (own, shared) in flags.items():
        gone = missing_flags(ss[cmd], own)
        check(not gone, 'lanework.1: section %s lacks %s of `lanework %s --help`' % (cmd, gone, cmd))
        gone = missing_flags(sh['OPTIONS'], shared)
        check(not gone, 'lanework.1: OPTIONS lacks the shared %s' % gone)
    top = help_of(CLI)
    opts = top.split('Options:\n', 1)[1]
    gone = missing_flags(sh['OPTIONS'], set(FLAG.findall(opts)) | {'-h'})
    check(not gone, 'lanework.1: OPTIONS lacks %s of `lanework --help`' % gone)
    for var in sorted(set(re.findall(r'LANEWORK_[A-Z_]+', opts))):
        check(var in sh['ENVIRONMENT'], 'lanework.1: ENVIRONMENT lacks %s' % var)
    unknown = sorted(set(FLAG.findall(plain)) - known_flags())
    check(not unknown, 'lanework.1 names flags no --help knows: %s' % unknown)
    check_version(plain, CLI)


def test_cli_page_has_the_exit_status_table(env):
    want = exit_table(help_of(CLI))
    check(set(want) >= {0, 1, 2, 3, 4, 124}, 'the exit table read from --help: %s' % want)
    text = sections(man_plain(man_page('lanework.1')))['EXIT STATUS']
    got, code = {}, None
    for line in text.splitlines():
        if line.startswith('.TP') or line.startswith('.PP'):
            code = None if line.startswith('.PP') else code
            continue
        m = re.match(r'^\.B (\d+)$', line)
        if m:
            code = int(m.group(1))
            got[code] = ''
        elif code is not None:
            got[code] += ' ' + line
    got = {k: ' '.join(v.split()) for k, v in got.items()}
    check(sorted(got) == sorted(want), 'lanework.1 EXIT STATUS has codes %s, lanework --help %s'
          % (sorted(got), sorted(want)))
    for k in sorted(want):
        check(got[k] == want[k], 'lanework.1 EXIT STATUS %d says %r, lanework --help %r' % (k, got[k], want[k]))


def test_worker_page_names_every_flag_signal_and_endpoint(env):
    plain = man_plain(man_page('lanework-worker.1'))
    sh = sections(plain)
    for name in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'SIGNALS', 'HTTP ENDPOINTS', 'EXIT STATUS',
                 'ENVIRONMENT', 'FILES', 'EXAMPLES', 'SEE ALSO'):
        check(name in sh, 'lanework-worker.1 has no %s section (it has %s)' % (name, list(sh)))
    text = help_of(WORKER)
    own, shared = split_shared(text)
    own_flags = defined_flags(own) | {'-h', '--help', '--version'}
    gone = missing_flags(sh['OPTIONS'], own_flags | defined_flags(shared))
    check(not gone, 'lanework-worker.1: OPTIONS lacks %s of `lanework-worker --help`' % gone)
    gone = missing_flags(sh['SYNOPSIS'], defined_flags(own.split('\n\n', 1)[0]))
    check(not gone, 'lanework-worker.1: SYNOPSIS lacks %s of the usage' % gone)
    syn = ' '.join(sh['SYNOPSIS'].split())
    for flag, words in sorted(enumerations(text).items()):
        check('%s %s' % (flag, '|'.join(words)) in syn,
              'lanework-worker.1: SYNOPSIS lacks "%s %s"' % (flag, '|'.join(words)))
        for w in words:
            check(re.search(r'%s\s+%s\b' % (re.escape(flag), w), sh['OPTIONS']) or
                  re.search(r'%s\s[^\n]*\b%s\b' % (re.escape(flag), w), sh['OPTIONS']),
                  'lanework-worker.1: OPTIONS does not describe %s %s' % (flag, w))
    for var in sorted(set(re.findall(r'LANEWORK_[A-Z_]+', shared))):
        check(var in sh['ENVIRONMENT'], 'lanework-worker.1: ENVIRONMENT lacks %s' % var)
    # Signals: every one --help names, and SIGCONT (what it does not do).
    para = text.split('Signals:', 1)[1].split('\nExit status', 1)[0]
    sigs = {'SIG' + w for w in re.findall(r'\b([A-Z]{2,6})\b', para) if 'SIG' + w in signal.Signals.__members__}
    check(sigs >= {'SIGTERM', 'SIGINT', 'SIGTSTP', 'SIGHUP'}, 'signals read from --help: %s' % sorted(sigs))
    tags = ' '.join(l for l in sh['SIGNALS'].splitlines() if l.startswith('.B'))
    for s in sorted(sigs | {'SIGCONT'}):
        check(re.search(r'\b%s\b' % s, tags), 'lanework-worker.1: SIGNALS has no entry for %s' % s)
    # HTTP endpoints.
    http = [l for l in own.splitlines() if l.strip().startswith('--http')]
    paths = set(re.findall(r'(/[a-z]+)', ' '.join(http)))
    check(len(paths) >= 3, 'endpoints read from --help: %s' % paths)
    tags = [l.split(None, 1)[1] for l in sh['HTTP ENDPOINTS'].splitlines() if l.startswith('.B ')]
    for p in sorted(paths):
        check(p in tags, 'lanework-worker.1: HTTP ENDPOINTS has no entry for %s (has %s)' % (p, tags))
    # Exit statuses: the codes of "Exit status: 0 normal, 2 configuration error."
    line = re.search(r'^Exit status: (.*)$', text, re.M).group(1)
    want = sorted(int(c) for c in re.findall(r'\b(\d+) [a-z]', line))
    got = sorted(int(c) for c in re.findall(r'^\.B (\d+)$', sh['EXIT STATUS'], re.M))
    check(want and got == want, 'lanework-worker.1 EXIT STATUS has %s, --help says %r' % (got, line))
    unknown = sorted(set(FLAG.findall(plain)) - known_flags())
    check(not unknown, 'lanework-worker.1 names flags no --help knows: %s' % unknown)
    check_version(plain, WORKER)


def test_man_pages_render_without_warnings(env):
    groff = shutil.which('groff')
    if not groff:
        print('skip: groff is not installed (Debian groff-base: scripts/install-deps.sh installs it)', flush=True)
        sys.exit(77)
    for name in ('lanework.1', 'lanework-worker.1'):
        path = os.path.join(BUILD, 'docs', name)
        man_page(name)
        p = subprocess.run([groff, '-man', '-Tutf8', '-ww', '-z', path], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, LC_ALL='C.UTF-8'))
        check(p.returncode == 0 and not p.stderr.strip(),
              'groff -man -ww %s: exit %d\n%s' % (name, p.returncode, p.stderr))
        # And what a reader gets has text in each section.
        p = subprocess.run([groff, '-man', '-Tutf8', '-ww', '-P-cbou', path], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, LC_ALL='C.UTF-8'))
        check('SYNOPSIS' in p.stdout and 'EXIT STATUS' in p.stdout, '%s renders as %r' % (name, p.stdout[:300]))


# -------------------------------------------------------------- completion --

COMPLETE = r'''
src=$1; shift
source "$src" || exit 3
spec=$(complete -p -- "$1") || exit 4
fn=${spec#*-F }; fn=${fn%% *}
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9; COMP_KEY=9
"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(env, words, registry=None, src=COMPLETION):
    """What the completion offers for `words` (the last one is being
    completed), as a set."""
    penv = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': env.dir, 'LC_ALL': 'C.UTF-8'}
    if registry is not None:
        penv['LANEWORK_REGISTRY'] = registry
    p = subprocess.run(['bash', '--norc', '--noprofile', '-c', COMPLETE, 'bash', src] + list(words),
                       capture_output=True, text=True, timeout=20, env=penv, cwd=env.dir)
    check(p.returncode == 0 and not p.stderr, 'completing %r: exit %d %r' % (words, p.returncode, p.stderr))
    return {w for w in p.stdout.split('\n') if w}


def test_completion_offers_every_command_and_flag(env):
    commands = cli_commands()
    got = complete(env, ['lanework', ''])
    check(got == set(commands), 'lanework <TAB> offers %s; --help lists %s' % (sorted(got), sorted(commands)))
    check(complete(env, ['lanework', 'pa']) == {'pause'}, 'lanework pa<TAB>')
    top = help_of(CLI)
    top_flags = set(FLAG.findall(top.split('Options:\n', 1)[1]))
    got = complete(env, ['lanework', '--'])
    check(got == top_flags, 'lanework --<TAB> offers %s; `lanework --help` Options: %s'
          % (sorted(got), sorted(top_flags)))
    for cmd, (own, shared) in cli_flags().items():
        want = own | shared
        for before in ([], ['--redis', 'unix:///x.sock'], ['--redis=unix:///x.sock'],
                       ['--namespace', '=', 'ns'], ['--events-max', '10']):
            got = complete(env, ['lanework'] + before + [cmd, '--'])
            check(got >= want, 'lanework %s --<TAB> lacks %s' % (' '.join(before + [cmd]), sorted(want - got)))
            check(got <= want | {'--help', '-h'}, 'lanework %s --<TAB> offers %s, which --help does not name'
                  % (cmd, sorted(got - want)))
        # After a flag that takes a value: no flags are offered for it.
        flag = sorted(own - {'--wait', '--all-failed', '--json', '--follow', '--repair', '--tenant',
                             '--payload-file', '--batch', '--spool'})[:1]
        if flag:
            got = complete(env, ['lanework', cmd, flag[0], ''])
            check(not got, 'lanework %s %s <TAB> offers %s' % (cmd, flag[0], sorted(got)))


def test_completion_offers_every_worker_flag_and_value(env):
    text = help_of(WORKER)
    own, shared = split_shared(text)
    want = defined_flags(own) | defined_flags(shared)
    got = complete(env, ['lanework-worker', '--'])
    check(got >= want, 'lanework-worker --<TAB> lacks %s' % sorted(want - got))
    check(got <= want | WORKER_EXTRA, 'lanework-worker --<TAB> offers %s, which --help does not name'
          % sorted(got - want))
    enums = enumerations(text)
    check(set(enums) >= {'--isolation', '--log-format', '--log-level'}, 'read from --help: %s' % enums)
    for flag, words in sorted(enums.items()):
        for form, pre in (([flag, ''], ''), ([flag, '=', ''], ''), ([flag + '='], flag + '=')):
            got = complete(env, ['lanework-worker', '--burst'] + form)
            check(got == {pre + w for w in words}, 'lanework-worker %s<TAB> offers %s; --help says %s'
                  % (' '.join(form), sorted(got), words))
    check(complete(env, ['lanework-worker', '--log-level', 'w']) == {'warn'}, '--log-level w<TAB>')


def test_completion_offers_tenants_of_the_registry(env):
    import json
    reg = os.path.join(env.dir, 'reg.json')
    pwned = os.path.join(env.dir, 'pwned')
    with open(reg, 'w') as f:
        json.dump([{'tenant': 'acme', 'exec': {'k': ['true']}},
                   {'tenant': 'beta.2', 'queues': {'chat': {}}},
                   {'tenant': '$(touch %s)' % pwned}, {'tenant': '.hidden'}], f, indent=1)
    regdir = os.path.join(env.dir, 'registry.d')
    os.mkdir(regdir)
    for name, tenant in (('g.json', 'gamma'), ('.old.json', 'stale'), ('notes.txt', 'nope')):
        with open(os.path.join(regdir, name), 'w') as f:
            json.dump({'tenant': tenant}, f)
    cases = [
        (['lanework', '--registry', reg, 'enqueue', '--tenant', ''], None, {'acme', 'beta.2'}),
        (['lanework', 'status', '--registry=' + reg, '--tenant', 'a'], None, {'acme'}),
        (['lanework', 'pause', '--registry', '=', reg, '--tenant', '=', ''], None, {'acme', 'beta.2'}),
        (['lanework', 'stats', '--tenant=a'], reg, {'--tenant=acme'}),
        (['lanework', 'fsck', '--tenant', ''], regdir, {'gamma'}),
        (['lanework', '--registry', regdir, 'events', '--tenant', ''], reg, {'gamma'}),
        (['lanework-worker', '--registry', reg, '--tenant', 'b'], None, {'beta.2'}),
        (['lanework-worker', '--tenant', ''], regdir, {'gamma'}),
        (['lanework', 'enqueue', '--tenant', ''], None, set()),
        (['lanework', 'enqueue', '--tenant', ''], os.path.join(env.dir, 'missing.json'), set()),
    ]
    for words, registry, want in cases:
        got = complete(env, words, registry=registry)
        check(got == want, '%s<TAB> (LANEWORK_REGISTRY=%s) offers %s, not %s'
              % (' '.join(words), registry, sorted(got), sorted(want)))
    check(not os.path.exists(pwned), 'completing from the registry ran what a tenant name held')
    # Files for the flags that name one.
    with open(os.path.join(env.dir, 'jobs.jsonl'), 'w') as f:
        f.write('{}\n')
    got = complete(env, ['lanework', 'enqueue', '--batch', 'jobs'])
    check(got == {'jobs.jsonl'}, '--batch jobs<TAB> offers %s' % sorted(got))
    got = complete(env, ['lanework', 'enqueue', '--spool', 'reg'])
    check(got == {'registry.d'}, '--spool reg<TAB> (directories) offers %s' % sorted(got))


def test_meson_install_puts_pages_and_completion(env):
    meson = os.environ.get('LANEWORK_MESON') or shutil.which('meson')
    check(meson and BUILD, 'meson (%r) or the build root (%r) not known' % (meson, BUILD))
    dest = os.path.join(env.dir, 'destdir')
    p = subprocess.run([meson, 'install', '-C', BUILD, '--no-rebuild', '--quiet', '--destdir', dest],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, 'meson install --destdir: exit %d\n%s%s' % (p.returncode, p.stdout, p.stderr))
    found = {}
    for root, dirs, files in os.walk(dest):
        for n in files:
            found[os.path.relpath(os.path.join(root, n), dest)] = os.path.join(root, n)
    for page in ('lanework.1', 'lanework-worker.1'):
        hits = [v for k, v in found.items() if k.endswith('share/man/man1/' + page)]
        check(len(hits) == 1, 'meson install put %s at %s' % (page, [k for k in found if page in k]))
        with open(hits[0]) as f:
            check(f.read() == man_page(page), 'the installed %s is not the built one' % page)
    comp = {}
    for name in ('lanework', 'lanework-worker'):
        hits = [v for k, v in found.items() if k.endswith('share/bash-completion/completions/' + name)]
        check(len(hits) == 1, 'meson install put no completions/%s (%s)' % (name, sorted(found)[:40]))
        comp[name] = hits[0]
    check(os.path.islink(comp['lanework-worker']) and
          os.path.realpath(comp['lanework-worker']) == os.path.realpath(comp['lanework']),
          'completions/lanework-worker is not a link to completions/lanework')
    with open(comp['lanework']) as f, open(COMPLETION) as g:
        check(f.read() == g.read(), 'the installed completion is not docs/completion/lanework.bash')
    # bash-completion loads completions/NAME for command NAME: each works alone.
    check(complete(env, ['lanework-worker', '--bu'], src=comp['lanework-worker']) == {'--burst'},
          'the installed lanework-worker completion')
    check(complete(env, ['lanework', 'wo'], src=comp['lanework']) == {'workers'}, 'the installed lanework one')


if __name__ == '__main__':
    lwtest.run([test_cli_page_names_every_command_and_flag, test_cli_page_has_the_exit_status_table,
                test_worker_page_names_every_flag_signal_and_endpoint, test_man_pages_render_without_warnings,
                test_completion_offers_every_command_and_flag, test_completion_offers_every_worker_flag_and_value,
                test_completion_offers_tenants_of_the_registry, test_meson_install_puts_pages_and_completion])

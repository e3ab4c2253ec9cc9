#!/usr/bin/env python3
"""The scripts bundle: what a client needs of common/scripts/, in one JSON
document, so the Python and Node clients run the very scripts the C code
runs and build their calls from the same interface blocks.

Usage: scripts_bundle.py [SCRIPTS_DIR] > bundle.json
(SCRIPTS_DIR defaults to ../common/scripts beside this file).

Nothing here parses a script itself: the bodies come from embed.py's body()
(lib.lua in front, the Redis 7 shebang) and the interfaces from iface.py's
parse() and check_body(), imported from SCRIPTS_DIR -- one builder of a
body, one parser of the "--@" syntax, for the C code and both clients.

The bundle:
  {"protocol": N,
   "library": {"name": "lanework_HASH", "text": TEXT},   (FUNCTION LOAD)
   "scripts": {NAME: {"body": TEXT, "sha1": HEX, "function": "lw_HASH_NAME",
                      "keys":  {"fixed": [KEY...], "groups": [GROUP...]},
                      "argv":  {"fixed": [[NAME, TYPE]...], "groups": [...]},
                      "reply": {"fixed": [...], "groups": [...]} | absent,
                      "result": [NAME, TYPE] | absent,
                      "lists": {LIST: GROUP}}}}
  GROUP = {"name": G, "count": COUNT-or-null, "items": [[NAME, TYPE]...]}
  (key items are [KEYNAME, "key"]).

"protocol" is the lanework protocol these scripts speak, read from lib.lua's
`local PROTOCOL = 'N'` line (lib.lua checks it against `NS:{TENANT}:protocol`
in every script call; the clients also check it before their first request
for a tenant, to refuse with their own exception).
"""
import hashlib
import importlib.util
import json
import os
import sys

def protocol_of(lib_text):
    """The N of lib.lua's `local PROTOCOL = 'N'` line."""
    import re
    m = re.search(r"^local PROTOCOL = '(\d+)'$", lib_text, re.M)
    if not m:
        raise SystemExit("lib.lua: no \"local PROTOCOL = 'N'\" line")
    return int(m.group(1))

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, '..', 'common', 'scripts')


def _module(scripts_dir, name):
    spec = importlib.util.spec_from_file_location('lanework_' + name, os.path.join(scripts_dir, name + '.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _section(sec):
    if sec is None:
        return None
    return {'fixed': [list(i) for i in sec.fixed_items()],
            'groups': [{'name': g.name, 'count': g.count, 'items': [list(i) for i in g.items]}
                       for g in sec.groups]}


def build(scripts_dir=DEFAULT_DIR):
    """The bundle (a dict) of every script in scripts_dir but lib.lua."""
    iface, embed = _module(scripts_dir, 'iface'), _module(scripts_dir, 'embed')
    with open(os.path.join(scripts_dir, 'lib.lua'), encoding='utf-8') as f:
        lib = f.read()
    out, texts = {}, []
    for fn in sorted(os.listdir(scripts_dir)):
        if not fn.endswith('.lua') or fn == 'lib.lua':
            continue
        name = fn[:-4]
        with open(os.path.join(scripts_dir, fn), encoding='utf-8') as f:
            text = f.read()
        f_ = iface.parse(name, text)
        iface.check_body(f_, text, lib)
        body = embed.body(lib, text, name)
        texts.append((name, text))
        entry = {'body': body, 'sha1': hashlib.sha1(body.encode('utf-8')).hexdigest(),
                 'keys': _section(f_.sections.get('keys')), 'argv': _section(f_.sections.get('argv'))}
        if 'reply' in f_.sections:
            entry['reply'] = _section(f_.sections['reply'])
            entry['lists'] = {k[6:]: _section(v)['groups'][0] for k, v in f_.sections.items()
                              if k.startswith('reply.')}
        else:
            entry['result'] = list(f_.sections['result'].fixed_items()[0])
        out[name] = entry
    lib_text, h = embed.library(lib, texts)
    for name in out:
        out[name]['function'] = embed.function_name(h, name)
    return {'protocol': protocol_of(lib), 'library': {'name': 'lanework_' + h, 'text': lib_text},
            'scripts': out}


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR
    try:
        bundle = build(d)
    except Exception as e:  # Malformed, a missing file: one line, exit 1
        sys.exit('scripts_bundle.py: %s' % e)
    json.dump(bundle, sys.stdout, indent=None, sort_keys=True)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()

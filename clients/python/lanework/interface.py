"""Script calls built from the "--@" interface blocks (parsed by
common/scripts/iface.py into the bundle): KEYS and ARGV are assembled by
item name, in the order the block declares, and replies read back into
dicts by item name. No argument position is written anywhere in the client.
"""
from . import _bundle


class Script:
    """One script of common/scripts/: its body, SHA1, function name (in
    library()) and interface."""

    def __init__(self, name, entry):
        self.name = name
        self.body = entry['body']
        self.sha1 = entry['sha1']
        self.function = entry['function']
        self._keys = entry['keys']
        self._argv = entry['argv']
        self._reply = entry.get('reply')
        self._result = entry.get('result')
        self._lists = entry.get('lists', {})

    def call_args(self, prefix, fixed, groups=None):
        """(keys, argv) for a call. `fixed`: the fixed ARGV items by name
        (a group's COUNT item is filled in from the group's length);
        `groups`: group name -> list of dicts of its items. Key names are
        put under the tenant `prefix`; a group key "x:<name>" takes the
        group's `name` item."""
        groups = groups or {}
        counts = {g['count']: len(groups.get(g['name'], ())) for g in self._argv['groups'] if g['count']}
        keys = [prefix + k for k, _ in self._keys['fixed']]
        for g in self._keys['groups']:
            for item in groups.get(g['name'], ()):
                keys.extend(prefix + k.replace('<name>', str(item['name'])) for k, _ in g['items'])
        argv = []
        for name, typ in self._argv['fixed']:
            v = counts[name] if name in counts else fixed[name]
            argv.append(_arg(self.name, name, typ, v))
        for g in self._argv['groups']:
            for item in groups.get(g['name'], ()):
                argv.extend(_arg(self.name, n, t, item[n]) for n, t in g['items'])
        return keys, argv

    def read(self, reply):
        """The reply as the block describes it: the value of a "result"
        script; a list of dicts for a reply made of groups; a dict (lists
        of dicts for list items) for fixed elements."""
        if self._result is not None:
            return reply
        if not isinstance(reply, list):
            raise ValueError('%s.lua: reply is not an array' % self.name)
        if self._reply['groups']:
            return _groups(self._reply['groups'][0]['items'], reply)
        out = {}
        for (name, typ), v in zip(self._reply['fixed'], reply):
            out[name] = _groups(self._lists[name]['items'], v) if typ == 'list' else v
        return out


def _arg(script, name, typ, v):
    if typ in ('int', 'ms', 's'):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError('%s.lua: %s must be an integer' % (script, name))
        return str(v)
    return '' if v is None else v


def _groups(items, flat):
    k = len(items)
    if len(flat) % k:
        raise ValueError('reply of %d elements is not groups of %d' % (len(flat), k))
    names = [n for n, _ in items]
    return [dict(zip(names, flat[i:i + k])) for i in range(0, len(flat), k)]


_scripts = {}


def script(name):
    """The Script NAME (enqueue, cancel, retry...) from the bundle."""
    s = _scripts.get(name)
    if s is None:
        s = _scripts[name] = Script(name, _bundle.load()['scripts'][name])
    return s


def library():
    """The text of the function library of every script (FUNCTION LOAD)."""
    return _bundle.load()['library']['text']


def library_name():
    """Its name: lanework_HASH."""
    return _bundle.load()['library']['name']


def protocol():
    """The lanework protocol version these scripts speak."""
    return _bundle.load()['protocol']

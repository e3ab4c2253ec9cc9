"""Where the scripts come from: the one copy in common/scripts/, never a
copy kept by hand.

An installed package carries `scripts.json`, built from common/scripts/ by
setup.py when the package is built (clients/scripts_bundle.py). Run from a
checkout instead (PYTHONPATH=clients/python, `pip install -e`), there is no
scripts.json beside this file and the bundle is built in memory from the
repository's common/scripts/ at first use -- so an edit to a script is seen
at once, with no stale copy."""
import importlib.util
import json
import os

from .errors import LaneworkError

_HERE = os.path.dirname(os.path.abspath(__file__))
_SHIPPED = os.path.join(_HERE, 'scripts.json')
_REPO_BUILDER = os.path.join(_HERE, '..', '..', 'scripts_bundle.py')

_cache = None


def load():
    """The bundle dict: {"protocol": N, "scripts": {NAME: {...}}}."""
    global _cache
    if _cache is None:
        if os.path.exists(_SHIPPED):
            with open(_SHIPPED, encoding='utf-8') as f:
                _cache = json.load(f)
        elif os.path.exists(_REPO_BUILDER):
            spec = importlib.util.spec_from_file_location('lanework_scripts_bundle', _REPO_BUILDER)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            _cache = mod.build()
        else:
            raise LaneworkError('lanework: scripts: %s is missing (a broken install: reinstall the package)'
                                % _SHIPPED)
    return _cache

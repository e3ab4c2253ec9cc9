"""Settings, as the CLI reads them (CONTRACT section 2): an argument wins
over the environment, which wins over the built-in default."""
import os

from .errors import InvalidInput

DEFAULT_URL = 'redis://127.0.0.1:6379/0'
DEFAULT_NAMESPACE = 'lw'
DEFAULT_MAX_PAYLOAD = 1024 * 1024
# Fallbacks the scripts use only while no worker has published the tenant's
# settings (lib.lua `setting`): the CLI's defaults, and its variables.
DEFAULT_EVENTS_MAX = 100000
DEFAULT_KEEP_FAILED = 7 * 24 * 3600
# Built-in job defaults: what the CLI uses without a registry (common/config.h).
DEFAULT_ATTEMPTS = 3
DEFAULT_TIMEOUT_MS = 180 * 1000
DEFAULT_BACKOFF_MS = 1000


class Config:
    """The resolved settings of one client."""

    def __init__(self, url=None, namespace=None, max_payload=None, min_replicas=None):
        self.url = url or os.environ.get('LANEWORK_REDIS_URL') or DEFAULT_URL
        self.namespace = namespace or os.environ.get('LANEWORK_NAMESPACE') or DEFAULT_NAMESPACE
        if max_payload is None:
            max_payload = _env_int('LANEWORK_MAX_PAYLOAD', DEFAULT_MAX_PAYLOAD)
        self.max_payload = max_payload
        self.events_max = _env_int('LANEWORK_EVENTS_MAX', DEFAULT_EVENTS_MAX)
        self.keep_failed_s = _env_int('LANEWORK_KEEP_FAILED', DEFAULT_KEEP_FAILED)
        # WAIT for this many replicas after every state change (0: none).
        if min_replicas is None:
            min_replicas = _env_int('LANEWORK_MIN_REPLICAS', 0)
        elif isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 0:
            raise InvalidInput('lanework: min_replicas: %r is not a non-negative integer' % (min_replicas,))
        self.min_replicas = min_replicas

    def prefix(self, tenant):
        """The key prefix of a tenant: NS:{TENANT}: (a Cluster hash tag)."""
        return '%s:{%s}:' % (self.namespace, tenant)


def _env_int(name, default):
    v = os.environ.get(name)
    if not v:
        return default
    try:
        n = int(v)
    except ValueError:
        raise InvalidInput('lanework: %s: "%s" is not an integer' % (name, v)) from None
    if n < 0:
        raise InvalidInput('lanework: %s: must be >= 0' % name)
    return n


from .target import redact  # noqa: E402,F401 - where it always was; URLs are target.py's now

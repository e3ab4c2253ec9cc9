"""Job records and events as users see them: the objects `lanework status`
and `lanework events` print (common/views.c, CONTRACT section 4), built
from the raw Redis fields. A record may have been written by anyone with
access to Redis, so nothing is trusted: JSON fields are decoded only when
they are JSON (else kept as text), numbers only when they are numbers."""
import json
import time

TERMINAL = ('succeeded', 'failed', 'cancelled', 'expired')


def _reject(c):
    raise ValueError(c)


def _json(v, empty_none=False):
    if v is None or (empty_none and v == ''):
        return None
    try:
        return json.loads(v, parse_constant=_reject)
    except ValueError:
        return v


def _int(v):
    if v is None or v == '':
        return None
    s = v[1:] if v.startswith('-') else v
    return int(v) if s.isdigit() and s.isascii() else None


def rfc3339(ms):
    """Milliseconds since the epoch as RFC 3339 UTC with milliseconds."""
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ms // 1000)) + '.%03dZ' % (ms % 1000)


def _time(v):
    ms = _int(v)
    return rfc3339(ms) if ms and ms > 0 else None


def _seconds(v):
    ms = _int(v)
    if ms is None or ms < 0:
        return None
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _text(v, empty_none=False):
    return None if v is None or (empty_none and v == '') else v


def job(tenant, f):
    """The status dict of a job record (HGETALL fields as a dict)."""
    return {
        'id': f.get('id'),
        'tenant': tenant,
        'kind': _text(f.get('kind')),
        'queue': _text(f.get('queue')),
        'lane': _text(f.get('lane')),
        'status': _text(f.get('status')),
        'payload': _json(f.get('payload')),
        'attempt': _int(f.get('attempt')),
        'attempts': _int(f.get('attempts')),
        'timeout': _seconds(f.get('timeout')),
        'enqueued_at': _time(f.get('enqueued')),
        'started_at': _time(f.get('started')),
        'finished_at': _time(f.get('finished')),
        'result': _json(f.get('result'), empty_none=True),
        'error': _text(f.get('error'), True),
        'worker': _text(f.get('worker'), True),
        'run_at': _time(f.get('run_at')),
        'expires_at': _time(f.get('expires')),
        'unique': _text(f.get('unique'), True),
        'spool_dir': _text(f.get('spool'), True),
    }


def event(entry_id, f, part=0):
    """The event dict of one stream entry (its fields as a dict) of
    partition `part`: its id is shown `ID#P` for a partition P >= 1, as
    `lanework events` shows it (cmd_events.c shown_id)."""
    ms = entry_id.split('-', 1)[0]
    return {
        'id': '%s#%d' % (entry_id, part) if part >= 1 else entry_id,
        'type': _text(f.get('type')),
        'job': _text(f.get('job')),
        'kind': _text(f.get('kind')),
        'lane': _text(f.get('lane')),
        'attempt': _int(f.get('attempt')),
        'worker': _text(f.get('worker'), True),
        'ts': _time(ms),
        'data': _json(f.get('data'), empty_none=True),
    }


# Partitions a tenant may have (common/partition.h LW_PARTITIONS_MAX).
PARTITIONS_MAX = 64
_U64_MAX = 18446744073709551615


def _u64(digits):
    return digits.isascii() and digits.isdigit() and int(digits) <= _U64_MAX


def is_stream_id(s):
    """True for MS or MS-SEQ (decimal, each part a 64-bit unsigned number),
    with `#P` after it for an event of partition P >= 1 (1..63, no leading
    zero): what events(since=) takes, as the CLI's --since (cmd_events.c
    is_stream_id)."""
    if not isinstance(s, str) or len(s) > 60:
        return False
    s, hash_, part = s.partition('#')
    if hash_ and not (part.isascii() and part.isdigit() and part[0] != '0' and int(part) < PARTITIONS_MAX):
        return False
    a, dash, b = s.partition('-')
    return _u64(a) and (not dash or _u64(b))


def split_event_id(s):
    """(entry id, partition) of an id is_stream_id accepts: `ID#P` is
    (ID, P), a plain `ID` is (ID, 0)."""
    eid, _, part = s.partition('#')
    return eid, int(part or 0)

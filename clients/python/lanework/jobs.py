"""Jobs as an application describes them, checked and completed as the CLI
does (common/jobspec.c): the same safe names, payload limit, number ranges,
messages and defaults, so a job is the same whoever enqueued it."""
import json
import os
import re
import time
from decimal import Decimal, ROUND_CEILING

from . import config
from .errors import InvalidInput

NAME_MAX = 200
UNIQUE_MAX = 200
MAX_SECONDS = 315360000  # ten years: keeps every millisecond count far from overflow
MAX_DEPTH = 1000
SAFE_RULE = "letters, digits, '-', '_', '.'; not starting with '.'; at most 200 bytes"
_SAFE = re.compile(r'[A-Za-z0-9_.-]+')
FIELDS = ('kind', 'payload', 'lane', 'queue', 'id', 'unique', 'delay', 'attempts', 'timeout',
          'expires', 'unique_for')


def check_name(what, v, required=False):
    """Refuses an unsafe tenant/kind/queue/lane/id (CONTRACT 8: letters,
    digits, '-', '_', '.'; not starting with '.')."""
    if v is None:
        if required:
            raise InvalidInput('%s: missing' % what)
        return
    if (not isinstance(v, str) or not _SAFE.fullmatch(v) or v.startswith('.')
            or len(v.encode()) > NAME_MAX):
        raise InvalidInput('%s: "%.64s" is not a safe name (%s)' % (what, v, SAFE_RULE))


def new_id():
    """A new job id as the CLI makes them: 12 hex digits of milliseconds,
    12 of randomness (sortable by enqueue time)."""
    ms = int(time.time() * 1000) & ((1 << 48) - 1)
    return '%012x%s' % (ms, os.urandom(6).hex())


def seconds_ms(what, v, allow_zero):
    """Seconds (int, float, or numeric text) as milliseconds, a remainder
    finer than 1 ms rounded up, as the CLI does."""
    rule = '>= 0' if allow_zero else '> 0'
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise InvalidInput('%s: must be a number of seconds %s' % (what, rule))
    try:
        d = Decimal(str(v))
    except ArithmeticError:
        raise InvalidInput('%s: must be a number of seconds %s' % (what, rule)) from None
    if not d.is_finite() or d < 0 or d > MAX_SECONDS or (d == 0 and not allow_zero):
        raise InvalidInput('%s: must be a number of seconds %s' % (what, rule))
    return int((d * 1000).to_integral_value(rounding=ROUND_CEILING))


def encode_payload(payload, max_payload):
    """The payload as compact JSON text, checked against the limit (bytes of
    UTF-8; max_payload <= 0: no limit) and the nesting bound."""
    try:
        text = json.dumps(payload, separators=(',', ':'), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise InvalidInput('payload: JSON nested deeper than %d levels' % MAX_DEPTH) from None
    except (TypeError, ValueError) as e:
        raise InvalidInput('payload: not valid JSON (%s)' % e) from None
    n = len(text.encode('utf-8'))
    if max_payload > 0 and n > max_payload:
        raise InvalidInput('payload: %d bytes is over the limit of %d (max_payload, LANEWORK_MAX_PAYLOAD)' % (n, max_payload))
    if _depth(text) > MAX_DEPTH:
        raise InvalidInput('payload: JSON nested deeper than %d levels' % MAX_DEPTH)
    return text


def _depth(text):
    if '[' not in text and '{' not in text:
        return 0
    depth = top = 0
    in_str = esc = False
    for c in text:
        if in_str:
            if esc:
                esc = False
            elif c == '\\':
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in '[{':
            depth += 1
            top = max(top, depth)
        elif c in ']}':
            depth -= 1
    return top


def resolve(tenant, job, max_payload):
    """One job (a dict with FIELDS, `kind` required) as enqueue.lua's group
    items, with what partition.place routes it by. Raises InvalidInput,
    naming the field, before anything is sent."""
    unknown = [k for k in job if k not in FIELDS]
    if unknown:
        raise InvalidInput('unknown field "%.64s" (known: %s)' % (unknown[0], ', '.join(FIELDS)))
    check_name('tenant', tenant, required=True)
    check_name('kind', job.get('kind'), required=True)
    for what in ('queue', 'lane', 'id'):
        check_name(what, job.get(what))
    unique = job.get('unique')
    if unique is not None:
        if not isinstance(unique, str) or not 1 <= len(unique.encode('utf-8', 'surrogatepass')) <= UNIQUE_MAX:
            raise InvalidInput('unique: must be 1 to %d bytes' % UNIQUE_MAX)
        if any(ord(c) < 0x20 or ord(c) == 0x7f for c in unique):
            raise InvalidInput('unique: must not hold control characters')
        try:
            unique.encode('utf-8')
        except UnicodeEncodeError:
            raise InvalidInput('unique: must be UTF-8 text') from None
    attempts = job.get('attempts')
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int)
                                 or not 1 <= attempts <= 2**31 - 1):
        raise InvalidInput('attempts: must be an integer >= 1')
    ms = {}
    for what, allow_zero in (('delay', True), ('timeout', False), ('expires', True), ('unique_for', True)):
        v = job.get(what)
        ms[what] = 0 if v is None else seconds_ms(what, v, allow_zero)
    if ms['unique_for'] > 0 and unique is None:
        raise InvalidInput('unique_for: needs a unique key (unique) to hold')
    payload = encode_payload(job.get('payload'), max_payload)
    jid = job.get('id') or new_id()
    return {
        # Where it goes (partition.place): the routing key -- the lane given,
        # else the unique key, else the id given; None for a generated id
        # routed by itself -- and what place() may draw again.
        'route': job.get('lane') or unique or job.get('id') or None,
        'id_generated': not job.get('id'),
        'lane_is_id': not job.get('lane'),
        # enqueue.lua's group items.
        'id': jid,
        'kind': job['kind'],
        'queue': job.get('queue') or 'default',
        'lane': job.get('lane') or jid,
        'payload': payload,
        'attempts': attempts or config.DEFAULT_ATTEMPTS,
        'timeout_ms': ms['timeout'] or config.DEFAULT_TIMEOUT_MS,
        'backoff_ms': config.DEFAULT_BACKOFF_MS,
        'delay_ms': ms['delay'],
        'expires_ms': ms['expires'],
        'unique': unique or '',
        'spool': '',
        'unique_for_ms': ms['unique_for'],
    }


class JobId(str):
    """A job id as enqueue returns it. `.created` is False when an existing
    job was returned instead (CONTRACT 4.5: its id, or unique key, was
    taken); `.why` then says by what, as enqueue.lua answers ("held
    queued": the unique key is held by this job, which is queued; "exists
    succeeded": a job with this id exists)."""

    created: bool
    why: str

    def __new__(cls, value, created=True, why=''):
        s = super().__new__(cls, value)
        s.created = bool(created)
        s.why = why or ''
        return s

"""Partitioned tenants (common/partition.h; DESIGN.md section 11): a
tenant's lanes spread over K keyspaces, routed exactly as the C side
routes them, so a job is where the CLI and the workers look for it.

Partition 0 of tenant T is its own prefix NS:{T}: (a tenant never
partitioned is partition 0 of itself), partition p >= 1 is NS:{T#p}:. A
job goes to partition CRC16(routing key) % K, the routing key being its
lane when given, else its unique key, else its id; a generated id gets
last digits that put it in that same partition, so the id alone finds the
job at once. K is partition 0's settings field `partitions` (absent: 1), read
once per tenant and client; enqueue.lua refuses a call routed by another
count with `LWPARTITIONS K` before writing anything.

When the count went from 1 to K, the jobs that finished before stay in
partition 0 until their retention ends, with their unique keys; an id or a
unique key routes by K now, often elsewhere. Until partition 0's settings
field `legacy_until` has passed, an enqueue of a job with its own id or a
unique key routed to a partition other than 0 asks partition 0 first
(known.lua, ops.py): a job it answers for is that existing job
(needs_known)."""
import re

from . import jobs

PARTITIONS_MAX = 64


def _crc_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data, crc=0):
    """CRC16/XMODEM (poly 0x1021, init 0, no reflection) of bytes `data`:
    Redis Cluster's slot hash, C's lw_crc16 (common/slot.c). `crc`: the
    CRC16 of a text `data` goes on from (lw_crc16_more)."""
    t = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


def partition_of(key, k):
    """The partition (0..k-1) of routing key `key` (str: its UTF-8 bytes,
    the whole key, no hash-tag parsing) among k; 0 when k < 2."""
    if k < 2:
        return 0
    return crc16(key.encode('utf-8', 'surrogatepass')) % k


def prefix(namespace, tenant, p):
    """Partition p's key prefix: NS:{T}: for 0, NS:{T#p}: else."""
    return '%s:{%s#%d}:' % (namespace, tenant, p) if p > 0 else '%s:{%s}:' % (namespace, tenant)


def parse_count(v):
    """The count a settings field holds, as the CLI reads it (cli_partitions):
    absent or not 1..PARTITIONS_MAX is 1."""
    try:
        k = int(v)
    except (TypeError, ValueError):
        return 1
    return k if 1 <= k <= PARTITIONS_MAX else 1


_REFUSED = re.compile(r'LWPARTITIONS (\d+)\b')


def refused_count(text):
    """The count in force from enqueue.lua's `LWPARTITIONS K ...` refusal
    (in error text `text`), or None when it is no such refusal."""
    m = _REFUSED.search(str(text).split('\n', 1)[0])
    return parse_count(m.group(1)) if m else None


def _id_into(jid, k, want):
    """New id `jid` (jobs.new_id) made one of partition `want` among k, as
    common/partition.c id_into does: its last three hex digits stepped from
    their random value, the CRC of the rest taken once (drawing whole ids
    cost k draws and CRCs per job)."""
    for _ in range(64):
        head = crc16(jid[:-3].encode('ascii'))
        start = int(jid[-3:], 16)
        for j in range(4096):
            tail = '%03x' % ((start + j) & 0xFFF)
            if crc16(tail.encode('ascii'), head) % k == want:
                return jid[:-3] + tail
        jid = jobs.new_id()
    return jid


def place(spec, k):
    """The partition (0..k-1) of checked spec `spec` (jobs.resolve) among k,
    as lw_job_spec_place: routed by its lane, else its unique key, else its
    id. A generated id is drawn again until it falls in the routing key's
    partition (the lane, when it was not given, follows the id). May be
    called again with another k while nothing was written for the spec."""
    route = spec['route']
    if not spec['id_generated']:
        return partition_of(route, k)
    if route is None:
        return partition_of(spec['id'], k)
    want = partition_of(route, k)
    jid = _id_into(spec['id'], k, want) if k > 1 else spec['id']
    spec['id'] = jid
    if spec['lane_is_id']:
        spec['lane'] = jid
    return want


def needs_known(spec, part):
    """Whether checked spec `spec`, placed in partition `part`, must be
    asked about in partition 0 first while the tenant's legacy window is
    open (cli_known_needed): routed elsewhere than 0, with its own id or a
    unique key (a generated id cannot be one from before)."""
    return part != 0 and (not spec['id_generated'] or bool(spec['unique']))


class Counts:
    """The partition count of each tenant a client met (tenant -> K):
    read once, kept for the client's life, replaced when enqueue.lua says
    another is in force. With it, whether partition 0 may still answer for
    ids and unique keys from before the tenant was partitioned (settings
    `legacy_until`, known.lua): kept until a known.lua reply says the
    window has passed."""

    def __init__(self):
        self._k = {}
        self._legacy = set()

    def get(self, tenant):
        return self._k.get(tenant)

    def set(self, tenant, k, legacy=False):
        self._k[tenant] = k
        if legacy and k is not None and k > 1:
            self._legacy.add(tenant)
        else:
            self._legacy.discard(tenant)

    def legacy(self, tenant):
        """True while enqueues must ask partition 0 first (known.lua)."""
        return tenant in self._legacy

    def legacy_over(self, tenant):
        """A known.lua reply said open=0: no need to ask again."""
        self._legacy.discard(tenant)

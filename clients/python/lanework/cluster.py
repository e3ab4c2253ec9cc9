"""Redis Cluster (redis-cluster:// and rediss-cluster:// URLs, CONTRACT
section 12): which master serves each hash slot, and a plain redis-py
client per master.

Every script call of the clients names keys of one tenant partition
(NS:{T}: or NS:{T#p}:, one hash slot), and every other command one key, so
each request goes whole to one master, on that master's own redis-py
client -- the same FCALL / EVALSHA / FUNCTION LOAD / SCRIPT LOAD code as
on a single Redis, with its mode kept per master, and a WAIT (min_replicas)
on the very connection that ran the calls it confirms. redis-py's own
RedisCluster (4.3) is not used: it sends a call again after a lost
connection (an enqueue could run twice) and has no pipeline that holds a
WAIT to the connection of the calls before it.

The slot map comes from CLUSTER SLOTS, asked of the masters known and then
the seeds, each in turn, and is read again after a MOVED, a lost
connection or a refused connect (a failover). driver.py follows the
redirections: MOVED (at once), ASK, TRYAGAIN, CLUSTERDOWN and "non local
key" (a slot migrating or a failover: after a pause), and a connect that
failed (nothing was sent), each within FOLLOW_S; in all of them the call
did not run, so sending it again cannot run it twice. A connection lost
after a call was sent is never followed: the call may have run, and the
caller gets RedisUnavailable."""
import threading

from .partition import crc16

SLOTS = 16384
# Redirections are followed for at most this long per call (a failover in
# the fixture's cluster takes 2-3 s: cluster-node-timeout 1 s + election).
FOLLOW_S = 5.0
# An XREAD over several slots (events(follow) on a partitioned tenant) is
# one non-blocking read per partition, again after this pause, until its
# BLOCK time is over: one XREAD may not name keys of several slots.
POLL_S = 0.1

_REDIRECTS = ('MOVED', 'ASK', 'TRYAGAIN', 'CLUSTERDOWN')


def key_slot(key):
    """The hash slot of key: CRC16 of its hash tag (between the first '{'
    and the next '}', when not empty), else of the whole key."""
    k = key.encode('utf-8', 'surrogatepass') if isinstance(key, str) else bytes(key)
    s = k.find(b'{')
    if s >= 0:
        e = k.find(b'}', s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16(k) % SLOTS


def redirection(e):
    """The kind of redirection error (reply or exception) e is -- 'MOVED',
    'ASK', 'TRYAGAIN', 'CLUSTERDOWN' -- or None. A script that touched a
    key no longer on this node (a slot migrating) counts as TRYAGAIN."""
    if not isinstance(e, Exception):
        return None
    text = str(e)
    code = text.split(' ', 1)[0]
    if code in _REDIRECTS:
        return code
    if 'non local key' in text:
        return 'TRYAGAIN'
    return None


def unsent(e):
    """True when redis-py exception e is a failed connect: the command was
    never sent (redis-py says "Error N connecting to HOST:PORT")."""
    return 'connecting to' in str(e) or 'Timeout connecting' in str(e)


def cmd_keys(args):
    """The keys of one command of ops.py: XREAD's streams, else args[1]."""
    if str(args[0]).upper() == 'XREAD':
        rest = list(args[[str(a).upper() for a in args].index('STREAMS') + 1:])
        return rest[:len(rest) // 2]
    return [args[1]] if len(args) > 1 else []


def op_slot(op):
    """The slot of a Cmd or Script (its first key's); for a command without
    keys, that of its route (TIME asked of a partition's master), else
    None."""
    if getattr(op, 'route', None) is not None:
        return key_slot(op.route)
    keys = op.keys if hasattr(op, 'keys') else cmd_keys(op.args)
    return key_slot(keys[0]) if keys else None


class _Map:
    """The slot map and the per-master clients, shared by both kinds."""

    def __init__(self, t, make_node):
        self.shown = t.shown
        self.seeds = list(t.seeds)
        self.make = make_node
        self.nodes = {}     # (host, port) -> redis-py client of that node
        self.slots = None   # [(host, port) or None] by slot
        self.stale = True
        self.lock = threading.Lock()

    def node(self, addr):
        n = self.nodes.get(addr)
        if n is None:
            with self.lock:  # a Client is shared by threads: one client per node
                n = self.nodes.get(addr)
                if n is None:
                    n = self.nodes[addr] = self.make(*addr)
        return n

    def candidates(self):
        """Who to ask for the map: the masters known, then the seeds."""
        known = list(dict.fromkeys(a for a in (self.slots or ()) if a))
        return known + [s for s in self.seeds if s not in known]

    def read_map(self, reply, asked):
        """Builds the map from a CLUSTER SLOTS reply got from `asked`."""
        slots = [None] * SLOTS
        for r in reply:
            host = r[2][0]
            if isinstance(host, bytes):
                host = host.decode()
            addr = (host if host and host != '?' else asked[0], int(r[2][1]))
            for s in range(int(r[0]), int(r[1]) + 1):
                slots[s] = addr
        self.slots = slots
        self.stale = False

    def addr(self, slot):
        """The master serving slot in the map (refreshed when stale)."""
        return self.slots[slot] if slot is not None else next(a for a in self.slots if a)

    def moved(self, e):
        """Files a MOVED reply's new owner of its slot."""
        parts = str(e).split()
        if len(parts) >= 3 and parts[1].isdigit():
            host, _, port = parts[2].rpartition(':')
            if port.isdigit() and self.slots is not None:
                self.slots[int(parts[1])] = (host or self.slots[int(parts[1])][0], int(port))

    def no_owner(self, slot):
        import redis.exceptions as rx
        return rx.ResponseError('CLUSTERDOWN Hash slot %d not served (in the map of %s)' % (slot, self.shown))


class Cluster(_Map):
    """The blocking kind (redis.Redis per master)."""

    def refresh(self):
        """Reads the slot map again; raises the last error when no node
        answers (the cluster is unreachable)."""
        import redis.exceptions as rx
        last = None
        for a in self.candidates():
            try:
                reply = self.node(a).execute_command('CLUSTER', 'SLOTS')
            except rx.RedisError as e:
                last = e
                continue
            self.read_map(reply, a)
            return
        raise last

    def addr_for(self, slot):
        if self.stale or self.slots is None:
            self.refresh()
        return self.addr(slot)

    def close(self):
        for n in list(self.nodes.values()):
            n.close()
            n.connection_pool.disconnect()


class AsyncCluster(_Map):
    """The asyncio kind (redis.asyncio.Redis per master)."""

    async def refresh(self):
        import redis.exceptions as rx
        last = None
        for a in self.candidates():
            try:
                reply = await self.node(a).execute_command('CLUSTER', 'SLOTS')
            except rx.RedisError as e:
                last = e
                continue
            self.read_map(reply, a)
            return
        raise last

    async def addr_for(self, slot):
        if self.stale or self.slots is None:
            await self.refresh()
        return self.addr(slot)

    async def close(self):
        for n in list(self.nodes.values()):
            await n.close()
            await n.connection_pool.disconnect()

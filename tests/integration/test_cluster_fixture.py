"""The Redis Cluster fixture (lwtest.ClusterSet) itself, before any test of
the worker or the CLI relies on it: 3 masters and 3 replicas on loopback.

  up                  cluster_state:ok on every node, all slots assigned,
                      every master with its replica; url() names every node
  slot_of             the fixture's CRC16 agrees with CLUSTER KEYSLOT (hash
                      tags, empty tags, plain keys)
  migrate_slot        the slot of {t1} moved, keys and all, to another
                      master while a client writes to it (following ASK and
                      MOVED; no write lost): the keys answer on the new
                      owner, the old one answers MOVED to it
  failover            a master killed -9: its replica serves its slots and
                      every live node says cluster_state:ok again; the
                      killed node rejoins as a replica
  reshard             redis-cli --cluster reshard of 10 slots
  tls                 the same cluster over TLS (client port, bus and
                      replication) comes up, answers through redis-cli
                      --tls and migrates a slot
"""
import subprocess
import threading

import lwtest
from lwtest import check, wait_until, RespError


def cluster_env(env, tls=None):
    env.redis.stop()  # the Env's own Redis is not used
    return lwtest.ClusterSet(env.dir, masters=3, replicas=1, tls=tls)


class Traffic(threading.Thread):
    """INCR lw:{t1}:ctr and SET lw:{t1}:new:N in a loop, as a cluster
    client does: to the node the slot map names, following MOVED (the
    slot moved) and ASK (ASKING, then the command on the importing node)."""

    def __init__(self, cs):
        super().__init__(daemon=True)
        self.cs, self.incrs, self.error, self.redirects = cs, 0, None, {}
        self.halt = threading.Event()

    def call(self, *args):
        node = self.cs.node_for_key(args[1])
        for _ in range(10):
            c = node.client()
            try:
                try:
                    return c.call(*args)
                except lwtest.RespError as e:
                    kind, _slot, addr = str(e).split(' ')[:3]
                    if kind not in ('MOVED', 'ASK'):
                        raise
                    self.redirects[kind] = self.redirects.get(kind, 0) + 1
                    target = self.cs.by_port(addr.rsplit(':', 1)[1])
                    if kind == 'MOVED':
                        node = target
                        continue
                    t = target.client()
                    try:
                        t.call('ASKING')
                        return t.call(*args)
                    finally:
                        t.close()
            finally:
                c.close()
        raise lwtest.TestFailure('too many redirects for %r' % (args,))

    def run(self):
        try:
            while not self.halt.is_set():
                self.call('SET', 'lw:{t1}:new:%d' % self.incrs, 'n')
                self.call('INCR', 'lw:{t1}:ctr')
                self.incrs += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(timeout=10)


def keyslot(node, key):
    return node.call('CLUSTER', 'KEYSLOT', key)


@lwtest.plain_only
def test_cluster_slots_migration_failover(env):
    cs = cluster_env(env)
    try:
        check(len(cs.masters()) == 3 and len(cs.replicas()) == 3,
              'masters %d replicas %d' % (len(cs.masters()), len(cs.replicas())))
        for m in cs.masters():
            check(len(cs.replicas(of=m)) == 1, 'master %d has replicas %r' % (m.data_port, cs.replicas(of=m)))
        url = cs.url()
        check(url.startswith('redis-cluster://127.0.0.1:') and url.count(',') == 5, url)

        # slot_of against the server's own hash
        n0 = cs.nodes[0]
        for k in ['{t1}', 'lw:{t1}:job:1', 'lw:{t2}:q', 'plain', '{}x', 'a{}b{c}', 'x{y}z{w}', '{{t1}}',
                  'foo{', '}bar{baz}', 'é{ü}', '', 'lw:{tenant-with-a-long-name_42}:lanes']:
            check(cs.slot_of(k) == keyslot(n0, k), 'slot_of(%r) = %d, CLUSTER KEYSLOT %d'
                  % (k, cs.slot_of(k), keyslot(n0, k)))

        # keys written through the node that serves them
        keys = ['lw:{t1}:job:%d' % i for i in range(250)]
        slot = cs.slot_of('{t1}')
        src = cs.node_for_slot(slot)
        c = src.client()
        try:
            c.pipeline([['SET', k, 'v' + k] for k in keys])
        finally:
            c.close()
        check(src.call('CLUSTER', 'COUNTKEYSINSLOT', slot) == len(keys), 'keys not on the owner')
        other = next(m for m in cs.masters() if m is not src)
        try:
            other.call('GET', keys[0])
            check(False, 'a master not serving the slot answered GET')
        except RespError as e:
            check(str(e).startswith('MOVED %d 127.0.0.1:%d' % (slot, src.data_port)), 'before: %s' % e)

        # migrate the slot (batches of 100: three MIGRATE rounds) while a
        # client keeps writing to it, following ASK and MOVED
        traffic = Traffic(cs)
        traffic.start()
        try:
            wait_until(lambda: traffic.incrs >= 20, timeout=10, what='traffic to start')
            old, moved = cs.migrate_slot(slot, other, timeout=30)
            n = traffic.incrs
            wait_until(lambda: traffic.incrs >= n + 20, timeout=10, what='traffic after the migration')
        finally:
            traffic.stop()
        check(traffic.error is None, 'traffic: %r' % traffic.error)
        check(old is src and moved >= len(keys), 'migrate_slot returned %r, %d' % (old, moved))
        check(int(other.call('GET', 'lw:{t1}:ctr')) == traffic.incrs,
              'counter %s after %d INCRs' % (other.call('GET', 'lw:{t1}:ctr'), traffic.incrs))
        check(traffic.redirects.get('ASK', 0) > 0 or traffic.redirects.get('MOVED', 0) > 0,
              'the traffic saw no redirect: %r' % traffic.redirects)
        print('traffic during the migration: %d INCRs, redirects %r' % (traffic.incrs, traffic.redirects))
        keys += ['lw:{t1}:new:%d' % i for i in range(traffic.incrs)] + ['lw:{t1}:ctr']
        check(cs.node_for_slot(slot) is other, 'slot %d not on the target' % slot)
        check(src.call('CLUSTER', 'COUNTKEYSINSLOT', slot) == 0, 'keys left on the old owner')
        check(other.call('CLUSTER', 'COUNTKEYSINSLOT', slot) == len(keys), 'keys missing on the new owner')
        check(other.call('GET', keys[7]) == 'v' + keys[7], 'a moved key lost its value')
        try:
            src.call('GET', keys[7])
            check(False, 'the old owner answered GET of a moved slot')
        except RespError as e:
            check(str(e) == 'MOVED %d 127.0.0.1:%d' % (slot, other.data_port), 'old owner said: %s' % e)
        # the slot map every live node holds says so too, replicas included
        for n in cs.live():
            check(cs.slot_map(n)[slot] is other, 'node %d still maps slot %d elsewhere' % (n.data_port, slot))

        # kill the new owner: its replica takes the slot (with the keys,
        # once it has them: replication is asynchronous)
        cs.wait_synced(other)
        dead = cs.kill_master(other)
        new = cs.wait_failover(dead, timeout=20)
        check(new is not dead and cs.node_for_slot(slot) is new, 'slot %d not on the promoted replica' % slot)
        check(new.call('GET', keys[7]) == 'v' + keys[7], 'the promoted replica lacks the moved keys')
        check(len(cs.masters()) == 3, 'masters after failover: %d' % len(cs.masters()))
        cs.rejoin(dead, timeout=20)
        check(dead in cs.replicas(of=new), 'the killed master did not rejoin as a replica of its successor')

        # redis-cli --cluster reshard: a few slots between two masters
        a, b = [m for m in cs.masters()][:2]
        na = len(cs.slots_of(a))
        cs.reshard(10, a, b)
        check(len(cs.slots_of(a)) == na - 10, 'reshard: %d slots on the source (was %d)' % (len(cs.slots_of(a)), na))
    finally:
        cs.close()


@lwtest.plain_only
def test_tls_cluster(env):
    ca = lwtest.TlsCA(env.dir)
    cs = cluster_env(env, tls=ca)
    try:
        url = cs.url()
        check(url.startswith('rediss-cluster://127.0.0.1:') and ('?ca=' + ca.ca_cert) in url, url)
        check(len(cs.masters()) == 3 and len(cs.replicas()) == 3, 'TLS cluster roles')
        # a TLS client through redis-cli's cluster mode (-c follows MOVED)
        n = cs.nodes[0]
        for i in range(5):
            p = subprocess.run(['redis-cli'] + cs.cli_args() + ['-c', '-p', str(n.data_port), 'SET',
                                                                'lw:{t1}:k%d' % i, 'x'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            check(p.returncode == 0 and p.stdout.strip() == b'OK', 'redis-cli --tls -c SET: %r' % p.stdout)
        slot = cs.slot_of('{t1}')
        src = cs.node_for_slot(slot)
        check(src.call('CLUSTER', 'COUNTKEYSINSLOT', slot) == 5, 'TLS keys not on the owner')
        # MIGRATE between TLS nodes (tls-cluster: MIGRATE connects with TLS)
        to = next(m for m in cs.masters() if m is not src)
        cs.migrate_slot(slot, to, timeout=20)
        check(to.call('CLUSTER', 'COUNTKEYSINSLOT', slot) == 5, 'TLS migration lost keys')
    finally:
        cs.close()


if __name__ == '__main__':
    lwtest.run([test_cluster_slots_migration_failover, test_tls_cluster])

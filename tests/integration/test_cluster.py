"""Redis Cluster (redis-cluster://; CONTRACT section 12) for the worker and
the CLI: a 3-master cluster with a replica each, made by redis-cli --cluster
create (lwtest.ClusterSet).

  slot routing      tenants in different slots: each tenant's keys live on
                    the master serving its slot, and its jobs run (worker
                    and CLI reach that node through the seeds)
  slot migration    a busy tenant's slot moved to another master while the
                    worker runs (MIGRATE key by key; MOVED/ASK/TRYAGAIN on the
                    way): every accepted job runs, the keys are all on the
                    new owner, fsck clean
  failover          the master of a busy tenant killed -9 under load: its
                    replica takes over, the worker follows; prints accepted /
                    executions / lost / duplicates and fsck is clean (without
                    --min-replicas: the figure is measured, not asserted)
  fleet-wide reads  `lanework workers` reads NS:workers and every
                    NS:worker:NAME from the master owning it (one connection
                    per master: 100 workers in 100 slots list fine);
                    `lanework stats` without --tenant or --registry finds the
                    tenants of every master
  MOVED followed    a seed with a stale slot map sends the CLI to a master
                    that answers MOVED: enqueue, cancel and retry follow it
                    once to the owner instead of exiting 3
"""
import json
import socket
import threading
import time

import lwtest
from lwtest import check, wait_until

TENANTS = ['t1', 't2', 't3', 't4']


def cluster_env(env):
    env.redis.stop()
    env.cs = env.own(lwtest.ClusterSet(env.dir, masters=3, replicas=1))
    env.write_registry([env.tenant(t) for t in TENANTS])
    return env.cs


def cli(env, *args, input=None, timeout=60):
    return env.cli(*(list(args) + ['--redis', env.cs.url()]), redis=False, input=input, timeout=timeout)


def batch(env, tenant, n, tag):
    lines = ''.join('{"kind":"record","payload":{"tag":"%s","i":%d}}\n' % (tag, i) for i in range(n))
    rc, out, err = cli(env, 'enqueue', '--tenant', tenant, '--batch', '-', input=lines)
    return rc, out.split(), err


def statuses(env, tenant, ids):
    """{id: status} read from the node serving the tenant's slot."""
    node = env.cs.node_for_key('lw:{%s}:x' % tenant)
    c = node.client()
    try:
        got = c.pipeline([['HGET', 'lw:{%s}:job:%s' % (tenant, i), 'status'] for i in ids])
    finally:
        c.close()
    return dict(zip(ids, got))


def wait_done(env, tenant, ids, timeout=60):
    def done():
        try:
            st = statuses(env, tenant, ids)
        except (OSError, lwtest.RespError, lwtest.TestFailure):
            return False
        return all(v == 'succeeded' for v in st.values())
    wait_until(done, timeout=timeout, what='%d jobs of %s to succeed' % (len(ids), tenant))


def fsck(env, tenant):
    rc, out, err = cli(env, 'fsck', '--tenant', tenant)
    check(rc == 0, 'fsck %s: %s %s' % (tenant, out, err))


def test_tenants_routed_to_their_slots(env):
    cs = cluster_env(env)
    try:
        nodes = {t: cs.node_for_key('lw:{%s}:x' % t).data_port for t in TENANTS}
        check(len(set(nodes.values())) >= 2, 'the tenants should span masters: %r' % nodes)
        w = env.worker('--concurrency', '4', redis_url=cs.url())
        ids = {}
        for t in TENANTS:
            rc, got, err = batch(env, t, 20, 'a')
            check(rc == 0 and len(got) == 20, 'enqueue %s through the cluster: %d %s' % (t, rc, err))
            ids[t] = got
        for t in TENANTS:
            wait_done(env, t, ids[t])
            node = cs.node_for_key('lw:{%s}:x' % t)
            check(node.call('EXISTS', 'lw:{%s}:job:%s' % (t, ids[t][0])) == 1,
                  '%s: the job is not on the node serving its slot' % t)
            rc, out, err = cli(env, 'status', '--tenant', t, ids[t][0])
            check(rc == 0 and 'succeeded' in out, 'status %s: %d %s' % (t, rc, err))
            fsck(env, t)
        check(w.running(), w.log())
        libs = [n.call('FUNCTION', 'LIST') for n in cs.masters()]
        check(all(libs), 'the function library is missing on a master')
    finally:
        cs.close()


def test_slot_migrated_while_workers_run(env):
    cs = cluster_env(env)
    try:
        w = env.worker('--concurrency', '4', redis_url=cs.url())
        slot = cs.slot_of('lw:{t1}:x')
        accepted, errors, stop = [], [0], threading.Event()

        def load():
            while not stop.is_set():
                rc, got, err = batch(env, 't1', 10, 'm')
                accepted.extend(got)  # ids printed were acknowledged
                if rc != 0:
                    errors[0] += 1
                    time.sleep(0.05)

        th = threading.Thread(target=load, daemon=True)
        th.start()
        wait_until(lambda: len(accepted) >= 100, timeout=30, what='jobs before the migration')
        owner = cs.node_for_slot(slot)
        target = next(m for m in cs.masters() if m is not owner)
        src, moved = cs.migrate_slot(slot, target)
        wait_until(lambda: cs.node_for_slot(slot) is target, timeout=10, what='the slot on its new owner')
        n_then = len(accepted)
        wait_until(lambda: len(accepted) >= n_then + 100, timeout=30, what='enqueues after the migration')
        stop.set()
        th.join(30)
        wait_done(env, 't1', accepted, timeout=90)
        runs = env.runs()
        dups = sum(1 for i in accepted if len(runs.get(i, [])) > 1)
        print('slot migration: accepted %d / keys moved %d / duplicates %d / refused batches %d'
              % (len(accepted), moved, dups, errors[0]), flush=True)
        check(owner.call('CLUSTER', 'COUNTKEYSINSLOT', str(slot)) == 0, 'keys stayed on the old owner')
        check(target.call('EXISTS', 'lw:{t1}:job:' + accepted[0]) == 1, 'the new owner lacks the jobs')
        fsck(env, 't1')
        check(w.running(), w.log())
    finally:
        cs.close()


@lwtest.plain_only
def test_master_killed_under_load(env):
    cs = cluster_env(env)
    try:
        w = env.worker('--concurrency', '4', '--lease', '5', redis_url=cs.url())
        accepted, stop = [], threading.Event()

        def load():
            while not stop.is_set():
                rc, got, err = batch(env, 't1', 10, 'k')
                accepted.extend(got)
                if rc != 0:
                    time.sleep(0.05)

        th = threading.Thread(target=load, daemon=True)
        th.start()
        wait_until(lambda: len(accepted) >= 100, timeout=30, what='jobs before the kill')
        owner = cs.node_for_key('lw:{t1}:x')
        cs.wait_synced(owner)
        cs.kill_master(owner)
        t0 = time.monotonic()
        cs.wait_failover(owner, timeout=30)
        took = time.monotonic() - t0
        n_then = len(accepted)
        wait_until(lambda: len(accepted) >= n_then + 100, timeout=30, what='enqueues after the failover')
        stop.set()
        th.join(30)
        node = cs.node_for_key('lw:{t1}:x')
        lost = [i for i in accepted if node.call('EXISTS', 'lw:{t1}:job:' + i) != 1]
        present = [i for i in accepted if i not in set(lost)]
        wait_done(env, 't1', present, timeout=90)
        runs = env.runs()
        print('cluster failover: accepted %d / executions %d / lost %d / duplicates %d (failover %.1f s)'
              % (len(accepted), sum(len(runs.get(i, [])) for i in accepted), len(lost),
                 sum(1 for i in accepted if len(runs.get(i, [])) > 1), took), flush=True)
        fsck(env, 't1')
        check(w.running(), w.log())
    finally:
        cs.close()


def names_on_masters(cs, fmt, per_master=1):
    """Names NAME whose keys fmt % NAME fall on each master, per_master of
    each: {name: master}."""
    got, count = {}, {}
    for i in range(10000):
        name = 'f%d' % i
        node = cs.node_for_key(fmt % name)
        if count.get(node.data_port, 0) < per_master:
            count[node.data_port] = count.get(node.data_port, 0) + 1
            got[name] = node
        if len(count) == cs.n_masters and all(v == per_master for v in count.values()):
            return got
    raise lwtest.TestFailure('no names for every master: %r' % count)


def test_workers_listed_from_every_master(env):
    cs = cluster_env(env)
    try:
        names = names_on_masters(cs, 'lw:worker:%s', per_master=1)
        check(len({n.data_port for n in names.values()}) == 3, 'names on 3 masters: %r' % names)
        ws = {n: env.worker('--concurrency', '2', '--lease', '10', name=n, redis_url=cs.url())
              for n in names}
        for n, node in names.items():
            wait_until(lambda: node.call('EXISTS', 'lw:worker:' + n) == 1, timeout=10,
                       what='%s in the directory' % n)
        rc, out, err = env.cli('workers', '--json', '--redis', cs.url(), redis=False, registry=False)
        check(rc == 0, 'workers --json through the cluster: %d %s' % (rc, err))
        got = {w['name']: w for w in json.loads(out)}
        check(set(got) == set(names), 'listed %r, expected %r' % (sorted(got), sorted(names)))
        for n in names:
            w = got[n]
            check(w['pid'] == ws[n].pid and w['concurrency'] == 2 and w['lease'] == 10000 and
                  w['state'] == 'running' and w['tenants'] == ','.join(TENANTS),
                  '%s: fields %r' % (n, w))
        rc, out, err = env.cli('workers', '--redis', cs.url(), redis=False, registry=False)
        check(rc == 0, 'workers through the cluster: %d %s' % (rc, err))
        rows = {l.split()[0]: l.split() for l in out.splitlines()[1:]}
        check(set(rows) == set(names) and all(r[3] == 'running' for r in rows.values()),
              'the table: %r' % out)
        for w in ws.values():
            check(w.running(), w.log())
    finally:
        cs.close()


def test_workers_many_slots_one_connection_per_master(env):
    # 100 directory entries in (about) 100 slots, written straight to their
    # masters: one connection per slot would pass the CLI's 64.
    cs = cluster_env(env)
    try:
        names = names_on_masters(cs, 'lw:worker:%s', per_master=34)
        home = cs.node_for_key('lw:workers')
        t = home.call('TIME')
        now = int(t[0]) * 1000 + int(t[1]) // 1000
        for i, (n, node) in enumerate(sorted(names.items())):
            node.call('HSET', 'lw:worker:' + n, 'name', n, 'host', 'h%d' % i, 'pid', str(1000 + i),
                      'concurrency', '3', 'state', 'running', 'lease', '60000')
            home.call('ZADD', 'lw:workers', str(now - i), n)
        rc, out, err = env.cli('workers', '--json', '--redis', cs.url(), redis=False, registry=False)
        check(rc == 0, 'workers --json, %d entries: %d %s' % (len(names), rc, err))
        got = {w['name']: w for w in json.loads(out)}
        check(set(got) == set(names), 'listed %d of %d' % (len(set(got) & set(names)), len(names)))
        for i, n in enumerate(sorted(names)):
            check(got[n]['host'] == 'h%d' % i and got[n]['pid'] == 1000 + i and
                  got[n]['state'] == 'running', '%s: %r' % (n, got[n]))
    finally:
        cs.close()


def test_stats_finds_the_tenants_of_every_master(env):
    cs = cluster_env(env)
    try:
        masters = {t: cs.node_for_key('lw:{%s}:x' % t).data_port for t in TENANTS}
        check(len(set(masters.values())) >= 2, 'the tenants should span masters: %r' % masters)
        for t in TENANTS:
            rc, got, err = batch(env, t, 3, 's')
            check(rc == 0 and len(got) == 3, 'enqueue %s: %d %s' % (t, rc, err))
        # No --tenant, no --registry: the tenants are found by SCAN.
        rc, out, err = env.cli('stats', '--json', '--redis', cs.url(), redis=False, registry=False)
        check(rc == 0, 'stats --json through the cluster: %d %s' % (rc, err))
        got = json.loads(out)['tenants']
        check(set(got) == set(TENANTS), 'stats listed %r, expected %r (masters %r)'
              % (sorted(got), TENANTS, masters))
        rc, out, err = env.cli('stats', '--redis', cs.url(), redis=False, registry=False)
        check(rc == 0 and all(t in out for t in TENANTS), 'stats: %d %s %s' % (rc, out, err))
    finally:
        cs.close()


class StaleSeed:
    """A fake cluster seed on 127.0.0.1 whose CLUSTER SLOTS says that one
    master (`node`) serves every slot, as a seed with an old map would; PING
    is PONG, anything else an error. Serves until close()."""

    def __init__(self, node):
        self.slots = [[0, 16383, ['127.0.0.1', node.data_port, node.node_id]]]
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(('127.0.0.1', 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _enc(v):
        if isinstance(v, list):
            return b'*%d\r\n' % len(v) + b''.join(StaleSeed._enc(x) for x in v)
        if isinstance(v, int):
            return b':%d\r\n' % v
        return b'$%d\r\n%s\r\n' % (len(v.encode()), v.encode())

    def _commands(self, f):
        """Each command (a RESP array of bulk strings) read from file f."""
        while True:
            line = f.readline()
            if not line.startswith(b'*'):
                return
            args = []
            for _ in range(int(line[1:])):
                n = int(f.readline()[1:])
                args.append(f.read(n + 2)[:-2].decode())
            yield args

    def _client(self, conn):
        with conn, conn.makefile('rb') as f:
            conn.settimeout(10)
            try:
                for args in self._commands(f):
                    name = ' '.join(args[:2]).upper()
                    if name == 'CLUSTER SLOTS':
                        conn.sendall(self._enc(self.slots))
                    elif args[0].upper() == 'PING':
                        conn.sendall(b'+PONG\r\n')
                    else:
                        conn.sendall(b'-ERR the stale seed answers only PING and CLUSTER SLOTS\r\n')
            except OSError:
                pass

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.lsock.close()


def test_moved_is_followed_once(env):
    cs = cluster_env(env)
    seed = None
    try:
        names = names_on_masters(cs, 'lw:{%s}:x', per_master=1)
        tenant, owner = sorted(names.items())[0]
        wrong = next(m for m in cs.masters() if m is not owner)
        seed = StaleSeed(wrong)
        url = 'redis-cluster://127.0.0.1:%d' % seed.port

        def run(*args):
            return env.cli(*(list(args) + ['--redis', url]), redis=False, registry=False)

        # --min-replicas 1: the WAIT goes where the job was written.
        rc, out, err = run('enqueue', '--tenant', tenant, '--kind', 'noop', '--min-replicas', '1')
        check(rc == 0, 'enqueue through a stale seed: %d %s' % (rc, err))
        jid = out.strip()
        check(owner.call('EXISTS', 'lw:{%s}:job:%s' % (tenant, jid)) == 1, 'the job is not on its owner')
        slot = str(cs.slot_of('lw:{%s}:x' % tenant))
        check(wrong.call('CLUSTER', 'COUNTKEYSINSLOT', slot) == 0, 'keys on the wrong master')
        rc, out, err = run('cancel', '--tenant', tenant, jid)
        check(rc == 0 and out.strip() == 'cancelled', 'cancel through a stale seed: %d %r %s' % (rc, out, err))
        rc, out, err = run('retry', '--tenant', tenant, jid)
        check(rc == 0 and out.strip() == jid, 'retry through a stale seed: %d %r %s' % (rc, out, err))
        check(owner.call('HGET', 'lw:{%s}:job:%s' % (tenant, jid), 'status') == 'queued',
              'the retried job is not queued on its owner')
    finally:
        if seed:
            seed.close()
        cs.close()


if __name__ == '__main__':
    lwtest.run([test_tenants_routed_to_their_slots, test_slot_migrated_while_workers_run,
                test_master_killed_under_load, test_workers_listed_from_every_master,
                test_workers_many_slots_one_connection_per_master,
                test_stats_finds_the_tenants_of_every_master, test_moved_is_followed_once])

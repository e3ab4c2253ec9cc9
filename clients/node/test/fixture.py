#!/usr/bin/env python3
"""The servers of tests/integration/lwtest.py for the Node tests, so both
clients are tested against the very same fixtures (TlsCA, Redis(tls=...),
SentinelSet) rather than a second copy in JavaScript.

    fixture.py DIR tls        a CA, a TLS server `plain` and one requiring
                              client certificates, `mutual`
    fixture.py DIR sentinel   a SentinelSet: a master, a replica, three sentinels
    fixture.py DIR tls-sentinel  the same over TLS, with a password on the
                              data nodes and another on the sentinels
    fixture.py DIR cluster    a ClusterSet: 3 masters with a replica each
    fixture.py DIR tls-cluster   3 masters over TLS (data, bus, replication), no replica

Prints one JSON line describing what it made, then answers commands, one
JSON array a line on stdin ([name, args...]), with one JSON line each:
{"ok": value} or {"error": text}. stdin closed: everything is stopped."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'tests', 'integration'))
import lwtest  # noqa: E402


def node(r):
    return {'sock': r.sock, 'port': getattr(r, 'data_port', r.tls_port)}


def tls(d):
    ca = lwtest.TlsCA(d)
    plain = lwtest.Redis(d, name='plain', tls=ca)
    mutual = lwtest.Redis(d, name='mutual', tls=ca, tls_auth_clients='yes')
    info = {'ca': ca.ca_cert, 'other_ca': ca.other_ca_cert, 'cert': ca.client_cert, 'key': ca.client_key,
            'plain': node(plain), 'mutual': node(mutual)}
    return info, {}, [plain.stop, mutual.stop]


def sentinel(d, tls=False):
    ca = lwtest.TlsCA(d) if tls else None
    ss = (lwtest.SentinelSet(d, replicas=1, tls=ca, password='data-pw-1', sentinel_password='sent-pw-2') if tls
          else lwtest.SentinelSet(d, replicas=1))
    killed = []

    def kill_master():
        killed.append(ss.kill_master())
        return node(killed[-1])

    def kill_replica():
        r = ss.replicas[0]
        r.kill9()
        killed.append(r)
        return node(r)

    outsiders = []

    def demote_master():
        """The master made a replica of an outsider node, with no failover
        (so no CLIENT KILL): clients' open connections meet READONLY."""
        o = lwtest.Redis(d, name='outsider%d' % len(outsiders), extra=['--port', str(lwtest.free_port()), '--bind', '127.0.0.1'])
        outsiders.append((ss.master(), o))
        outsiders[-1][0].call('REPLICAOF', '127.0.0.1', int(o.call('CONFIG', 'GET', 'port')[1]))
        return node(outsiders[-1][0])

    def restore_master():
        m, o = outsiders.pop()
        m.call('REPLICAOF', 'NO', 'ONE')
        o.stop()
        return node(m)

    commands = {
        'demote_master': demote_master,
        'restore_master': restore_master,
        'master': lambda: node(ss.master()),
        'kill_master': kill_master,
        'kill_replica': kill_replica,
        'wait_failover': lambda timeout=20: node(ss.wait_failover(timeout)),
        'rejoin': lambda: ss.rejoin(killed.pop()),
    }
    info = {'url': ss.url(), 'master_name': ss.master_name}
    if tls:  # URLs with what the tests vary (lwtest builds them)
        info.update(ca=ca.ca_cert, other_ca_url=ss.url(ca=ca.other_ca_cert), sni_url=ss.url(sni='localhost'),
                    bad_sentinel_pw_url=ss.url(sentinel_password='wrong-pw-3'), bad_pw_url=ss.url(auth=':wrong-pw-4@'))
    return info, commands, [ss.close]


def cluster(d, tls=False):
    ca = lwtest.TlsCA(d) if tls else None
    cs = lwtest.ClusterSet(d, masters=3, replicas=0 if tls else 1, tls=ca)
    killed = []

    def by_port(port):
        return cs.by_port(port)

    def kill_master(port):
        killed.append(cs.kill_master(by_port(port)))
        return node(killed[-1])

    commands = {
        'node_for_key': lambda key: node(cs.node_for_key(key)),
        'masters': lambda: [node(m) for m in cs.masters()],
        'replicas_of': lambda port: [node(r) for r in cs.replicas(of=by_port(port))],
        'kill_master': kill_master,
        'wait_failover': lambda timeout=20: node(cs.wait_failover(killed[-1], timeout)),
        'migrate_slot': lambda key, port: cs.migrate_slot(cs.slot_of(key), by_port(port), batch=20)[1],
    }
    info = {'url': cs.url()}
    if tls:
        info['other_ca_url'] = cs.url(ca=ca.other_ca_cert)
    return info, commands, [cs.close]


def main():
    d, kind = sys.argv[1], sys.argv[2]
    kinds = {'tls': tls, 'sentinel': sentinel, 'tls-sentinel': lambda d: sentinel(d, tls=True), 'cluster': cluster,
             'tls-cluster': lambda d: cluster(d, tls=True)}
    info, commands, stops = kinds[kind](d)
    print(json.dumps(info), flush=True)
    try:
        for line in sys.stdin:
            name, *args = json.loads(line)
            try:
                out = {'ok': commands[name](*args)}
            except Exception as e:  # noqa: BLE001 - the test reports it
                out = {'error': '%s: %s' % (type(e).__name__, e)}
            print(json.dumps(out), flush=True)
    finally:
        for stop in stops:
            stop()


if __name__ == '__main__':
    main()

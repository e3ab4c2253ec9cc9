"""rq_peer.py — RQ's enqueuer for tests/bench/peers/run.sh.

    python3 rq_peer.py enqueue SOCK N     Queue.enqueue_many, 1,000 jobs per pipeline

Prints one JSON line. Needs Debian's python3-rq (run with /usr/bin/python3).
"""
import json
import sys
import time

import redis
from rq import Queue

import rq_jobs


def main():
    mode, sock, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode != 'enqueue':
        sys.exit('rq_peer.py: unknown mode %s' % mode)
    conn = redis.Redis(unix_socket_path=sock)
    conn.ping()
    q = Queue('default', connection=conn)
    t0 = time.monotonic()
    for i in range(0, n, 1000):
        with conn.pipeline() as pipe:
            q.enqueue_many([Queue.prepare_data(rq_jobs.noop, args=(k,)) for k in range(i, min(n, i + 1000))],
                           pipeline=pipe)
            pipe.execute()
    print(json.dumps({'jobs': n, 'seconds': time.monotonic() - t0}))


if __name__ == '__main__':
    main()

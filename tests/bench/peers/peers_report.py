"""peers_report.py — the tables of tests/bench/peers/run.sh: medians of the
samples peers.py measured, per drain, bulk enqueue and latency, and the
summary of lanework against the best peer (markdown, on stdout)."""
import os
import statistics
import time


def med(samples, key, field):
    v = [s[field] for s in samples if s['key'] == key and field in s]
    return statistics.median(v) if v else None


ENQ_METHOD = {'lanework': '`enqueue --batch`', 'bullmq': 'addBulk 1,000/call',
              'sidekiq': 'push_bulk 1,000/call', 'rq': 'enqueue_many 1,000/pipeline'}


def enq_median(S, system):
    """The system's bulk enqueue (the pre-fills of its largest lane-less
    drains): {'jobs', 'jobs_s', 'redis_us'} medians, or None."""
    ss = [s for s in S if s.get('system') == system and 'enq_jobs_s' in s and not s.get('lanes')]
    if not ss:
        return None
    top = max(s['jobs'] for s in ss)
    ss = [s for s in ss if s['jobs'] == top]
    return {'jobs': top, 'jobs_s': statistics.median(s['enq_jobs_s'] for s in ss),
            'redis_us': statistics.median(s['enq_redis_us'] for s in ss)}


def fmt_rate(v):
    return 'n/a' if v is None else '{:,.0f}'.format(v)


def report(S, keys, peers_missing, args, load0):
    """Prints the tables of the samples S (peers.py's dicts), in the order of
    the measurement keys."""
    meta = {}
    for s in S:
        meta.setdefault(s['key'], s)

    def m(key, field):
        return med(S, key, field)

    print()
    print('lanework vs BullMQ, Sidekiq, RQ — one redis-server %s on a unix socket; medians of %d rep(s); %s'
          % (args.redis_version, args.reps, time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())))
    print('host: %d CPU(s), %s; load average at start %.2f, at end %.2f (other work on the machine '
          'shares the cores)' % (os.cpu_count() or 0, args.machine, load0, os.getloadavg()[0]))
    for line in peers_missing:
        print('skipped: ' + line)
    print()
    print('| drain | N | jobs/s | jobs/s per rep | Redis µs/job | Redis busy | worker CPU µs/job '
          '| worker peak RSS MiB (sum) | bulk enqueue jobs/s | Redis µs/enqueued job |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for k in keys:
        if k.startswith('latency') or k not in meta:
            continue
        reps = ' / '.join(fmt_rate(s['jobs_s']) for s in S if s['key'] == k)
        print('| %s | %s | %s | %s | %.1f | %.0f %% | %.1f | %.1f | %s | %.1f |'
              % (k, fmt_rate(meta[k]['jobs']), fmt_rate(m(k, 'jobs_s')), reps, m(k, 'redis_us'),
                 m(k, 'redis_busy') * 100, m(k, 'worker_cpu_us'),
                 m(k, 'worker_rss_mib'), fmt_rate(m(k, 'enq_jobs_s')), m(k, 'enq_redis_us')))
    enq_rows = [(sy, enq_median(S, sy)) for sy in ENQ_METHOD]
    if any(v for _, v in enq_rows):
        print()
        print('| bulk enqueue, one process (medians of every pre-fill) | N | jobs/s | Redis µs/enqueued job |')
        print('|---|---:|---:|---:|')
        for sy, v in enq_rows:
            if v:
                print('| %s %s | %s | %s | %.1f |' % (sy, ENQ_METHOD[sy], fmt_rate(v['jobs']),
                                                      fmt_rate(v['jobs_s']), v['redis_us']))
    lat_keys = [k for k in keys if k.startswith('latency') and k in meta]
    if lat_keys:
        print()
        print('| start latency, %g single enqueues/s for %g s | p50 ms | p99 ms | max ms | p99 per rep '
              '| jobs/s sent | sent > 1 ms late |' % (args.rate, args.seconds))
        print('|---|---:|---:|---:|---:|---:|---:|')
        for k in lat_keys:
            reps = ' / '.join('%.2f' % s['p99'] for s in S if s['key'] == k)
            print('| %s (%s) | %.2f | %.2f | %.2f | %s | %s | %.1f %% |'
                  % (k[len('latency '):], meta[k]['setting'], m(k, 'p50'), m(k, 'p99'), m(k, 'max'), reps,
                     fmt_rate(m(k, 'rate')), m(k, 'late') / meta[k]['jobs'] * 100))

    def best(cands, field, low=False):
        """(value, key) of the best of cands by median field."""
        got = [(m(k, field), k) for k in cands if k in meta and m(k, field) is not None]
        if not got:
            return None, None
        return (min if low else max)(got)

    def row(figure, lw, peer, unit, low=False, note=''):
        lv, lk = lw
        pv, pk = peer
        lws = 'n/a' if lv is None else '%s (%s)' % (unit(lv), lk)
        if pv is None:
            print('| %s | %s | — %s | — |' % (figure, lws, note))
            return
        ratio = lv / pv if lv is not None and pv else None
        verdict = ''
        if ratio is not None:
            verdict = ' (%s)' % ('better' if (ratio < 1) == low else 'worse') if ratio != 1 else ''
        print('| %s | %s | %s: %s | %s%s |' % (figure, lws, pk, unit(pv),
                                              'n/a' if ratio is None else '%.2f×' % ratio, verdict))

    jobs = lambda v: '%s jobs/s' % fmt_rate(v)  # noqa: E731
    us = lambda v: '%.1f µs' % v  # noqa: E731
    ms = lambda v: '%.2f ms' % v  # noqa: E731
    lw1 = [k for k in keys if k.startswith('lanework thread') and k.endswith(' 1p')]
    lw2 = [k for k in keys if k.startswith('lanework thread') and k.endswith(' 2p')]
    peer1 = [k for k in keys if not k.startswith('lanework') and k.endswith(' 1p') and not k.startswith('rq fork')]
    peer2 = [k for k in keys if not k.startswith('lanework') and k.endswith(' 2p')]
    print()
    print('| figure | lanework | best peer (setting) | ratio lanework/peer |')
    print('|---|---|---|---:|')
    row('drain, 1 worker process', best(lw1, 'jobs_s'), best(peer1, 'jobs_s'), jobs)
    row('drain, 1 process, vs BullMQ c50 completed kept', best(lw1, 'jobs_s'),
        best(['bullmq c50 keep 1p'], 'jobs_s'), jobs)
    row('drain, 2 worker processes', best(lw2, 'jobs_s'), best(peer2, 'jobs_s'), jobs)
    l1, l2 = best(lw1, 'jobs_s'), best(lw2, 'jobs_s')
    if l1[0] and l2[0]:
        print('| lanework 2 processes / 1 process | %.2f× (%s / %s) | — | — |' % (l2[0] / l1[0], l2[1], l1[1]))
    lw_all = lw1 + lw2
    peer_all = peer1 + peer2
    row('Redis CPU per drained job (lowest; lower is better)', best(lw_all, 'redis_us', low=True),
        best(peer_all, 'redis_us', low=True), us, low=True)
    row('worker CPU per drained job (lowest; lower is better)', best(lw_all, 'worker_cpu_us', low=True),
        best(peer_all, 'worker_cpu_us', low=True), us, low=True)
    row('process per job (fork), 1 process', best(['lanework fork c16 1p'], 'jobs_s'),
        best(['rq fork Worker 1p'], 'jobs_s'), jobs)
    enq = {sy: enq_median(S, sy) for sy in ENQ_METHOD}
    enq = {sy: v for sy, v in enq.items() if v}
    lw_enq = enq.get('lanework')
    peer_enq = [(v, sy) for sy, v in enq.items() if sy != 'lanework']

    def enq_best(field, low=False):
        got = [(v[field], '%s %s' % (sy, ENQ_METHOD[sy])) for v, sy in peer_enq]
        return (min if low else max)(got) if got else (None, None)
    lw_label = 'lanework ' + ENQ_METHOD['lanework']
    row('bulk enqueue, one process', (lw_enq['jobs_s'], lw_label) if lw_enq else (None, None),
        enq_best('jobs_s'), jobs)
    row('Redis CPU per enqueued job (lower is better)', (lw_enq['redis_us'], lw_label) if lw_enq else (None, None),
        enq_best('redis_us', low=True), us, low=True)
    row('enqueue→start p99 at %g single jobs/s (thread; lower is better)' % args.rate,
        best(['latency lanework thread'], 'p99', low=True),
        best(['latency bullmq', 'latency sidekiq'], 'p99', low=True), ms, low=True)
    row('enqueue→start p99, thread, vs BullMQ c50', best(['latency lanework thread'], 'p99', low=True),
        best(['latency bullmq'], 'p99', low=True), ms, low=True)
    row('enqueue→start p99 (fork; lower is better)', best(['latency lanework fork'], 'p99', low=True),
        best(['latency bullmq', 'latency sidekiq'], 'p99', low=True), ms, low=True)
    lk = 'lanework thread c128 10 lanes 1p'
    if lk in meta:
        v = m(lk, 'jobs_s')
        print('| 10 shared lanes, c128, 1 process | %s jobs/s; hand-over %.2f ms per lane (10 / throughput) '
              '| — (BullMQ OSS has no groups; Sidekiq OSS and RQ have no per-key serial lanes) | — |'
              % (fmt_rate(v), 10 / v * 1000))
    print()
    print('bulk enqueue: lanework = `lanework enqueue --batch FILE` timed from exec to exit (start-up, file '
          'read included); peers timed inside their process from the first call to the last reply.')
    print('drain jobs/s: from the first job taken to the last one done, polled every 2 ms (process '
          'start-up not included: startup_s in the JSON); CPU is each worker process\'s wait4 rusage, '
          'children included; RSS its own peak (VmHWM); both summed over the worker processes.')
    print('guarantees differ: lanework leases and fences every job, keeps its record and appends an event '
          'per transition; BullMQ locks each job and keeps it (keep) or deletes it (remove); Sidekiq OSS '
          'pops with BRPOP (a job in hand is lost if its process dies) and keeps no record; RQ keeps a '
          'job hash and the finished registry.')

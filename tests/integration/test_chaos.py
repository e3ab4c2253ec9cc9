"""Chaos: nothing accepted is lost through kill -9 of workers, kill -9 of
Redis (restarted from its AOF), SIGTERM hand-backs under load, and poison
jobs that crash their child or kill their worker every time.

Each test prints one line of figures:
  accepted (jobs the CLI acknowledged), executions (handler runs, from the
  handlers' own record file), kills, lost (accepted jobs without a terminal
  status: must be 0), duplicates (executions beyond one per job: what
  at-least-once costs after a kill), and checks the lane order from the
  handlers' own clocks and `lanework fsck` at the end.

Every test is bounded: the kill loops run for a fixed time, the waits have
deadlines.
"""
import collections
import os
import random
import signal
import time

import lwtest
from lwtest import Redis, check, wait_until

TERMINAL = ('succeeded', 'failed', 'cancelled', 'expired')


def use_aof_redis(env):
    """Replaces the test's Redis with one that fsyncs its AOF on every write,
    so an acknowledged enqueue survives kill -9 of Redis."""
    env.redis.stop()
    env.redis = Redis(env.dir, name='redis-aof', aof=True)


def lane_jobs(env, tenant, nlanes, per_lane, ms, attempts):
    """Enqueues per_lane jobs in each of nlanes lanes, interleaved, plus as
    many lane-less jobs; returns (ids, {lane: [ids in enqueue order]})."""
    lines = []
    for k in range(per_lane):
        for l in range(nlanes):
            lines.append({'kind': 'record', 'lane': 'lane-%d' % l, 'payload': {'ms': ms},
                          'attempts': attempts})
        lines.append({'kind': 'record', 'payload': {'ms': ms}, 'attempts': attempts})
    ids = env.enqueue_batch(lines, tenant=tenant)
    lanes = collections.defaultdict(list)
    for line, jid in zip(lines, ids):
        if 'lane' in line:
            lanes[line['lane']].append(jid)
    return ids, lanes


def executions(env):
    """{job id: [(start_ms, end_ms or None), ...]} from the record file."""
    runs = collections.defaultdict(list)
    open_runs = {}
    for what, ms, jid, _lane, pid in env.records():
        if what == 'START':
            open_runs[(jid, pid)] = len(runs[jid])
            runs[jid].append([ms, None])
        elif (jid, pid) in open_runs:
            runs[jid][open_runs.pop((jid, pid))][1] = ms
    return runs


def check_lane_order(lanes, runs):
    """Each lane's jobs ran in enqueue order, and a job's first run started
    only after the previous job's last run had ended (its success)."""
    for lane, ids in lanes.items():
        prev_end = None
        for jid in ids:
            rs = runs.get(jid)
            check(rs, 'job %s of %s never ran' % (jid, lane))
            if prev_end is not None:
                check(rs[0][0] >= prev_end,
                      'lane %s: job %s started at %d before the previous job ended at %d'
                      % (lane, jid, rs[0][0], prev_end))
            done = [r for r in rs if r[1] is not None]
            check(done, 'job %s of %s never completed a run' % (jid, lane))
            prev_end = done[-1][1]


def report(env, name, tenant, ids, kills, extra=''):
    """Prints the figures and checks nothing was lost."""
    st = env.statuses(tenant, ids)
    lost = [i for i, s in zip(ids, st) if s not in TERMINAL]
    runs = executions(env)
    nexec = sum(len(runs.get(i, [])) for i in ids)
    dups = sum(max(0, len(runs.get(i, [])) - 1) for i in ids)
    counts = collections.Counter(st)
    print('%s: accepted=%d executions=%d kills=%d lost=%d duplicates=%d statuses=%s%s'
          % (name, len(ids), nexec, kills, len(lost), dups, dict(counts), extra), flush=True)
    check(not lost, '%d accepted jobs have no terminal status: %s' % (len(lost), lost[:5]))
    return counts, runs


def fsck_clean(env, tenant):
    rc, out, err = env.cli('fsck', '--tenant', tenant)
    check(rc == 0, 'fsck found problems (exit %d):\n%s%s' % (rc, out[-3000:], err))


def wait_terminal(env, tenant, ids, timeout):
    def done():
        return all(s in TERMINAL for s in env.statuses(tenant, ids))
    wait_until(done, timeout=timeout, interval=0.2, what='%d jobs to end' % len(ids))


def all_succeeded_in_lane_order(env, name, ids, lanes, kills, why):
    """Waits for every job to end, prints the figures, and checks that each
    succeeded (`why` says what a failure would mean) and that every lane
    ran in enqueue order."""
    wait_terminal(env, 't1', ids, timeout=120)
    counts, runs = report(env, name, 't1', ids, kills)
    check(counts['succeeded'] == len(ids), '%s: %s' % (why, dict(counts)))
    check_lane_order(lanes, runs)


def event_count(env, typ):
    return sum(1 for e in env.events('t1') if e['type'] == typ)


class Fleet:
    """Workers that a supervisor restarts when they die, as a container
    orchestrator would."""

    def __init__(self, env, n, args):
        self.env, self.args = env, list(args)
        self.seq = 0
        self.live = [self.spawn() for _ in range(n)]

    def spawn(self):
        self.seq += 1
        return self.env.worker(*self.args, name='f%d' % self.seq)

    def supervise(self):
        """Replaces dead workers; returns how many had died."""
        dead = [w for w in self.live if not w.running()]
        for w in dead:
            self.live.remove(w)
            self.live.append(self.spawn())
        return len(dead)

    def kill9_random(self):
        w = random.choice(self.live)
        w.kill9()
        self.live.remove(w)
        self.live.append(self.spawn())

    def stop(self):
        # A worker spawned a moment ago may not have reached main() yet
        # (slow under ASan): a SIGTERM then meets the default action. Its
        # handlers are in place once it logged worker.start.
        for w in self.live:
            wait_until(lambda: 'worker.start' in w.log() or not w.running(), timeout=30,
                       what='%s started' % w.name)
        for w in self.live:
            w.signal(signal.SIGTERM)
        for w in self.live:
            check(w.wait(40) == 0, 'worker %s exited %s' % (w.name, w.proc.returncode))


def test_kill9_random_workers_every_second(env):
    use_aof_redis(env)
    env.write_registry([env.tenant('t1', defaults={'attempts': 20, 'timeout': 30, 'backoff': 0.05})])
    # Enough work to outlast the kill loop: ~1,230 jobs x 150 ms on 16 slots.
    ids, lanes = lane_jobs(env, 't1', nlanes=40, per_lane=30, ms=150, attempts=20)
    fleet = Fleet(env, 4, ['--concurrency', '4', '--lease', '1'])
    kills = 0
    t_end = time.monotonic() + 12
    while time.monotonic() < t_end:
        time.sleep(1)
        fleet.kill9_random()
        kills += 1
    all_succeeded_in_lane_order(env, 'kill -9 workers', ids, lanes, kills, 'not every job succeeded')
    check(event_count(env, 'job.lost') > 0, 'kills under load left no job.lost event: the kills did not bite')
    fleet.stop()
    fsck_clean(env, 't1')


def children_of(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def test_kill9_pool_workers_and_children(env):
    """--isolation pool: kill -9 of workers and of their pre-forked
    children, in turn, every half second under load. A killed child fails
    or hands back only the attempt it ran (retried), a killed worker's
    children go with it; nothing is lost, lanes keep their order, fsck is
    clean."""
    use_aof_redis(env)
    env.write_registry([env.tenant('t1', defaults={'attempts': 20, 'timeout': 30, 'backoff': 0.05})])
    ids, lanes = lane_jobs(env, 't1', nlanes=16, per_lane=20, ms=80, attempts=20)
    fleet = Fleet(env, 2, ['--isolation', 'pool', '--concurrency', '4', '--lease', '1'])
    kills = child_kills = 0
    t_end = time.monotonic() + 6
    while time.monotonic() < t_end:
        time.sleep(0.5)
        kids = [c for w in fleet.live if w.running() for c in children_of(w.pid)]
        if kids and child_kills <= kills:
            try:
                os.kill(random.choice(kids), signal.SIGKILL)
                child_kills += 1
            except ProcessLookupError:
                pass
        else:
            fleet.kill9_random()
            kills += 1
    check(child_kills > 0, 'no pool child was there to kill: the test did not bite')
    all_succeeded_in_lane_order(env, 'kill -9 pool workers and children', ids, lanes, kills + child_kills,
                                'not every job succeeded')
    fleet.stop()
    fsck_clean(env, 't1')


def test_redis_kill9_and_aof_restart(env):
    use_aof_redis(env)
    env.write_registry([env.tenant('t1', defaults={'attempts': 5, 'timeout': 30, 'backoff': 0.05})])
    # ~840 jobs x 50 ms on 8 slots: Redis dies twice while they run.
    ids, lanes = lane_jobs(env, 't1', nlanes=20, per_lane=40, ms=50, attempts=5)
    workers = [env.worker('--concurrency', '4', '--lease', '2') for _ in range(2)]
    kills = 0
    for _ in range(2):
        time.sleep(1.5)
        env.redis.kill9()
        kills += 1
        # Enqueues while Redis is down are refused (exit 3), not accepted.
        rc, _out, err = env.cli('enqueue', '--tenant', 't1', '--kind', 'noop', '--payload', '{}')
        check(rc == 3, 'enqueue with Redis down exited %d, not 3: %s' % (rc, err))
        time.sleep(1)
        env.redis.start()
        # Jobs accepted after the restart run too.
        ids.append(env.enqueue('t1', 'record', {'ms': 1}))
    all_succeeded_in_lane_order(env, 'redis kill -9 + AOF restart', ids, lanes, kills, 'not every job succeeded')
    for w in workers:
        check(w.running(), 'worker %s died with Redis:\n%s' % (w.name, w.log()[-3000:]))
    for w in workers:
        w.signal(signal.SIGTERM)
        check(w.wait(30) == 0, 'worker %s did not exit 0' % w.name)
    fsck_clean(env, 't1')


def test_sigterm_handback_under_load(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 1, 'timeout': 30, 'backoff': 0.05})])
    # attempts = 1: a hand-back that counted an attempt would fail the job.
    ids, lanes = lane_jobs(env, 't1', nlanes=20, per_lane=12, ms=300, attempts=1)
    workers = [env.worker('--concurrency', '4', '--shutdown-timeout', '0.05') for _ in range(3)]
    stops = 0
    t_end = time.monotonic() + 8
    while time.monotonic() < t_end:
        time.sleep(0.7)
        w = workers.pop(0)
        w.signal(signal.SIGTERM)
        check(w.wait(30) == 0, 'worker %s did not exit 0 after SIGTERM' % w.name)
        stops += 1
        workers.append(env.worker('--concurrency', '4', '--shutdown-timeout', '0.05'))
    all_succeeded_in_lane_order(env, 'SIGTERM hand-back', ids, lanes, stops, 'a hand-back cost an attempt')
    check(event_count(env, 'job.handed_back') > 0, 'no job was handed back: the stops did not bite')
    for w in workers:
        w.signal(signal.SIGTERM)
        check(w.wait(30) == 0, 'worker did not exit 0')
    fsck_clean(env, 't1')


def test_poison_jobs(env):
    env.write_registry([env.tenant('t1', defaults={'attempts': 3, 'timeout': 30, 'backoff': 0.05})])
    fleet = Fleet(env, 2, ['--concurrency', '2', '--lease', '1'])
    segv = env.enqueue('t1', 'crash', {})
    killer = env.enqueue('t1', 'kill_worker', {})
    ids = env.enqueue_batch([{'kind': 'record', 'payload': {'ms': 2}} for _ in range(200)], tenant='t1')
    deaths = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        deaths += fleet.supervise()
        if all(s in TERMINAL for s in env.statuses('t1', ids + [segv, killer])):
            break
        time.sleep(0.1)
    deaths += fleet.supervise()
    counts, _runs = report(env, 'poison jobs', 't1', ids + [segv, killer], deaths)
    check(counts['succeeded'] == len(ids), 'healthy jobs did not all succeed: %s' % dict(counts))
    s = env.status('t1', segv)
    check(s['status'] == 'failed' and s['attempt'] == 3, 'segfaulting job: %s' % s)
    k = env.status('t1', killer)
    check(k['status'] == 'failed' and k['attempt'] == 3, 'worker-killing job: %s' % k)
    check(deaths == 3, 'the worker-killing job killed %d workers, not 3 (one per attempt)' % deaths)
    fleet.stop()
    fsck_clean(env, 't1')


if __name__ == '__main__':
    lwtest.run([test_kill9_random_workers_every_second,
                test_kill9_pool_workers_and_children, test_redis_kill9_and_aof_restart,
                test_sigterm_handback_under_load, test_poison_jobs])

"""What each client method does, written once for both Client (blocking)
and AsyncClient (asyncio).

Every operation is a generator that yields the Redis work it needs as
small request objects (Cmd, Script, Pipe, Sleep) and receives each reply;
errors come back into it as exceptions (RedisUnavailable, whose `.outage`
is True for a lost connection rather than a refusal). Client and
AsyncClient only carry the requests out (drive() / drive_async()), so the
two cannot drift apart in what they send or how they read it. Events to
hand to the caller are yielded as Emit."""
import time

from . import interface, jobs, partition, views
from .errors import InvalidInput, JobFailed, NoSuchJob, RedisUnavailable, WaitTimeout

# As the CLI: enqueue.lua calls of at most this many jobs (cmd_batch.c).
CALL_JOBS = 256
# wait: statuses are read again at least this often (the stream only cuts latency).
CHECK_MS = 1000
EVENTS_PAGE = 1000
FOLLOW_BLOCK_MS = 5000
# events(follow) of a partitioned tenant: a held event (_follow_merged) is
# looked at again after at most this long.
FOLLOW_POLL_MS = 100


class Cmd:
    """One Redis command. errors_ok: a refusal is returned, not raised.
    route: for a command without keys (TIME), a key whose master it is
    asked of on a cluster (cluster.op_slot); ignored elsewhere."""

    def __init__(self, *args, errors_ok=False, route=None):
        self.args, self.errors_ok, self.route = args, errors_ok, route


class Script:
    """One script call (FCALL or EVALSHA: driver.py) on the keys of
    partition `prefix`. replicas: a state change the caller is told about,
    confirmed by WAIT for that many replicas (cfg.min_replicas; 0: no
    WAIT), after a PUBLISH on PREFIXsync, as the CLI's cli_confirm."""

    def __init__(self, name, keys, argv, replicas=0, prefix=None):
        self.script, self.keys, self.argv = interface.script(name), keys, argv
        self.name, self.replicas = name, replicas
        self.channel = prefix + 'sync' if prefix else None


class Pipe:
    """Scripts or commands pipelined; replies in order, refusals as
    exception objects (a script that did not run is sent again by the
    driver). replicas: as Script's, for the whole pipeline."""

    def __init__(self, items, replicas=0):
        self.items, self.replicas = items, replicas


class Sleep:
    def __init__(self, seconds):
        self.seconds = seconds


class Emit:
    def __init__(self, value):
        self.value = value


class _named:
    """Prefixes an InvalidInput raised inside with "lanework: CMD: ", the
    shape of every CLI error line."""

    def __init__(self, cmd, where=''):
        self.prefix = 'lanework: %s: %s' % (cmd, where)

    def __enter__(self):
        return self

    def __exit__(self, typ, e, tb):
        if typ is InvalidInput and not str(e).startswith('lanework:'):
            raise InvalidInput(self.prefix + str(e)) from None
        return False


def _check_tenant_id(cmd, tenant, job_id):
    with _named(cmd):
        jobs.check_name('tenant', tenant, required=True)
        jobs.check_name('id', job_id, required=True)


def resolve_one(cfg, tenant, kind, payload, options):
    """The checked spec of one enqueue(): InvalidInput now, nothing sent."""
    spec = {k: v for k, v in options.items() if v is not None}
    spec['kind'] = kind
    spec['payload'] = payload
    with _named('enqueue'):
        return jobs.resolve(tenant, spec, cfg.max_payload)


def partitions(cfg, counts, tenant):
    """The partition count in force for tenant (partition.Counts caches
    it): partition 0's settings field `partitions`, absent 1 -- as the CLI
    reads it (enqueue-cli/partitions.c), with `legacy_until` in the same
    HMGET: partition 0 may still answer for ids and unique keys from
    before the tenant was partitioned (known.lua, enqueue_resolved)."""
    k = counts.get(tenant)
    if k is None:
        r = yield Cmd('HMGET', cfg.prefix(tenant) + 'settings', 'partitions', 'legacy_until')
        k = partition.parse_count(r[0])
        counts.set(tenant, k, legacy=r[1] is not None)
    return k


def job_prefix(cfg, counts, tenant, job_id, cmd):
    """The key prefix of the partition holding job `job_id`: the id's own
    partition first, then the others (one pipelined round trip), as the
    CLI's cli_job_partition; none holding it: the id's own, where the
    command finds no job and says so."""
    k = yield from partitions(cfg, counts, tenant)
    if k == 1:
        # The one count that can be stale: 1 -> K (DESIGN.md section 11).
        # Not in partition 0: read the count again before saying "no job".
        mine = partition.prefix(cfg.namespace, tenant, 0)
        if (yield Cmd('EXISTS', mine + 'job:' + job_id, errors_ok=True)) == 1:
            return mine
        counts.set(tenant, None)
        k = yield from partitions(cfg, counts, tenant)
        if k == 1:
            return mine
    own = partition.partition_of(job_id, k)
    mine = partition.prefix(cfg.namespace, tenant, own)
    got = yield Cmd('EXISTS', mine + 'job:' + job_id, errors_ok=True)
    if got == 1:
        return mine
    others = [p for p in range(k) if p != own]
    if not isinstance(got, Exception):
        got = yield Pipe([Cmd('EXISTS', partition.prefix(cfg.namespace, tenant, p) + 'job:' + job_id)
                          for p in others])
        for p, n in zip(others, got):
            if isinstance(n, Exception):
                got = n
                break
            if n == 1:
                return partition.prefix(cfg.namespace, tenant, p)
    if isinstance(got, Exception):
        raise RedisUnavailable('lanework: %s: redis refused: %s' % (cmd, str(got).splitlines()[0]))
    return mine


def enqueue_many(cfg, counts, tenant, specs, single=False):
    """Validates every job first (nothing is sent if one is bad), then
    enqueues them in pipelined calls of CALL_JOBS. Returns [JobId]."""
    if isinstance(specs, (str, bytes, dict)):
        raise InvalidInput('lanework: enqueue: jobs: must be a list of job dicts')
    resolved = []
    for i, spec in enumerate(specs):
        with _named('enqueue', '' if single else 'jobs[%d]: ' % i):
            if not isinstance(spec, dict):
                raise InvalidInput('must be a dict')
            resolved.append(jobs.resolve(tenant, spec, cfg.max_payload))
    return (yield from enqueue_resolved(cfg, counts, tenant, resolved))


def _enqueue_calls(cfg, tenant, resolved, todo, k, parts):
    """The enqueue.lua calls of specs resolved[i] for i in todo, routed
    among k partitions (parts[i]: partition.place's answer): [(Script,
    [i...])], each partition's jobs in their input order, CALL_JOBS a call."""
    by_part = {}
    for i in todo:
        by_part.setdefault(parts[i], []).append(i)
    calls = []
    for p in sorted(by_part):
        prefix = partition.prefix(cfg.namespace, tenant, p)
        idx = by_part[p]
        for n in range(0, len(idx), CALL_JOBS):
            part = idx[n:n + CALL_JOBS]
            keys, argv = interface.script('enqueue').call_args(
                prefix, {'prefix': prefix, 'events_cap': cfg.events_max, 'partitions': k},
                {'job': [resolved[i] for i in part]})
            calls.append((Script('enqueue', keys, argv, cfg.min_replicas, prefix), part))
    return calls


def _one_or_pipe(calls, first_raises):
    """The replies of Scripts `calls`: one call alone (its refusal raised
    when first_raises, else returned as the exception), several pipelined
    (refusals as exception objects)."""
    if len(calls) > 1:
        return (yield Pipe(calls))
    try:
        return [(yield calls[0])]
    except RedisUnavailable as e:
        if first_raises:
            raise
        return [e]


def _known_before(cfg, counts, tenant, resolved, todo, parts, out, nothing_written):
    """Partition 0's answers (known.lua) for the jobs of todo that need
    asking (partition.needs_known): a job it answers for is that existing
    job, put into out[i] as enqueue.lua's "existed" answer, and left out of
    the enqueue. One call per CALL_JOBS of them, pipelined, in one round
    trip before the enqueue calls. Returns (todo without them, the
    refusal met or None; the jobs it was met for are left out too: not
    enqueued). Clears the tenant's legacy mark once a reply says the window
    has passed."""
    ask = [i for i in todo if partition.needs_known(resolved[i], parts[i])]
    if not ask:
        return todo, None
    prefix = partition.prefix(cfg.namespace, tenant, 0)
    calls = []
    for n in range(0, len(ask), CALL_JOBS):
        part = ask[n:n + CALL_JOBS]
        keys, argv = interface.script('known').call_args(
            prefix, {'prefix': prefix, 'events_cap': cfg.events_max},
            {'job': [{'id': resolved[i]['id'], 'unique': resolved[i]['unique']} for i in part]})
        calls.append((Script('known', keys, argv), part))
    # Nothing written yet: a refusal goes up as the driver words it.
    replies = yield from _one_or_pipe([c for c, _ in calls], nothing_written)
    gone, refused, closed = set(), None, False
    for (call, idx), reply in zip(calls, replies):
        if isinstance(reply, Exception):
            if nothing_written:
                text = str(reply).splitlines()[0]
                e = RedisUnavailable('lanework: enqueue: redis refused: %s' % text)
                e.refusal = text
                raise e
            refused = refused or reply
            gone.update(idx)
            continue
        got = call.script.read(reply)
        closed = closed or got['open'] == 0
        for i, j in zip(idx, got['jobs']):
            if j['id']:
                out[i] = jobs.JobId(j['id'], False, j['why'])
                gone.add(i)
    if closed:
        counts.legacy_over(tenant)
    return [i for i in todo if i not in gone], refused


def enqueue_resolved(cfg, counts, tenant, resolved):
    """Enqueues checked specs (jobs.resolve), routed over the tenant's
    partitions, in pipelined calls of CALL_JOBS; returns [JobId] in their
    order. A call refused with LWPARTITIONS K (the count changed since it
    was read: nothing was written) is routed again by K and sent once more.

    While partition 0 may answer for ids and unique keys from before the
    tenant was partitioned (Counts.legacy), the jobs routed elsewhere that
    carry their own id or a unique key are asked about there first
    (_known_before): one it answers for is returned as that existing job,
    exactly as enqueue.lua's "existed" answer, and not enqueued."""
    if not resolved:
        return []
    k = yield from partitions(cfg, counts, tenant)
    out = [None] * len(resolved)
    todo = list(range(len(resolved)))
    refused = None
    for round_ in range(2):
        parts = {i: partition.place(resolved[i], k) for i in todo}
        if counts.legacy(tenant):
            todo, met = yield from _known_before(cfg, counts, tenant, resolved, todo, parts, out,
                                                 all(o is None for o in out))
            refused = refused or met
        calls = _enqueue_calls(cfg, tenant, resolved, todo, k, parts)
        if not calls:
            break
        if len(calls) == 1:
            try:
                replies = [(yield calls[0][0])]
            except RedisUnavailable as e:
                # Alone, a refusal goes up as the driver words it -- but for
                # LWPARTITIONS, and after jobs of an earlier round went in
                # (or were answered for by partition 0).
                if e.refusal is None or (round_ == 0 and all(o is None for o in out)
                                         and partition.refused_count(e.refusal) is None):
                    raise
                replies = [e]
        else:
            replies = yield Pipe([c for c, _ in calls], cfg.min_replicas)
        todo, moved = [], None
        for (call, idx), reply in zip(calls, replies):
            if isinstance(reply, Exception):
                got = partition.refused_count(getattr(reply, 'refusal', None) or reply)
                if got is not None and round_ == 0:
                    moved = got
                    todo.extend(idx)
                    continue
                refused = refused or reply
                continue
            for i, j in zip(idx, call.script.read(reply)):
                out[i] = jobs.JobId(j['id'], j['created'] == 1, j['why'])
        if moved is None:
            break
        k = moved
        # The count just changed: partition 0 says whether it still answers
        # for jobs from before (known.lua's open), as the CLI does.
        counts.set(tenant, k, legacy=True)
        todo.sort()
    done = [j for j in out if j is not None]
    if refused is not None:
        # The calls of a pipeline run independently: say how many went in,
        # and which (e.ids), so the caller can re-send only the others.
        e = RedisUnavailable('lanework: enqueue: redis refused: %s (%d of %d jobs enqueued)'
                             % (getattr(refused, 'refusal', None) or str(refused).splitlines()[0],
                                len(done), len(resolved)))
        e.ids = done
        # A connection lost on one master of a cluster after others took their calls.
        e.outage = bool(getattr(refused, 'outage', False))
        raise e
    return out


def enqueue(cfg, counts, tenant, kind, payload, options):
    ids = yield from enqueue_resolved(cfg, counts, tenant, [resolve_one(cfg, tenant, kind, payload, options)])
    return ids[0]


def status(cfg, counts, tenant, job_id):
    _check_tenant_id('status', tenant, job_id)
    prefix = yield from job_prefix(cfg, counts, tenant, job_id, 'status')
    return (yield from _status_at(prefix, tenant, job_id))


def _status_at(prefix, tenant, job_id):
    r = yield Cmd('HGETALL', prefix + 'job:' + job_id, errors_ok=True)
    if isinstance(r, Exception):
        if str(r).startswith('WRONGTYPE'):
            raise JobFailed('lanework: status: job %s: corrupt record (not a hash)' % job_id)
        raise RedisUnavailable('lanework: status: redis refused: %s' % r)
    if not r:
        raise NoSuchJob('lanework: status: no such job %s' % job_id)
    if 'id' not in r:
        raise JobFailed('lanework: status: job %s: corrupt record (no id field)' % job_id)
    return views.job(tenant, r)


def wait(cfg, counts, tenant, job_id, timeout):
    """Not a busy poll, as the CLI (cmd_wait.c): the stream position is read
    before the status, then XREAD BLOCK waits for an event naming the job,
    at most CHECK_MS between two reads of the record. A lost connection is
    waited out within the deadline; then position and status are read
    again. The job's partition is found first (job_prefix): its events are
    in that partition's stream."""
    _check_tenant_id('wait', tenant, job_id)
    with _named('wait'):
        timeout_ms = None if timeout is None else jobs.seconds_ms('timeout', timeout, True)
    deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
    prefix = None
    tries = 0
    while True:
        try:
            if prefix is None:
                prefix = yield from job_prefix(cfg, counts, tenant, job_id, 'wait')
            ev, key = prefix + 'events', prefix + 'job:' + job_id
            last = '0-0'
            top = yield Cmd('XREVRANGE', ev, '+', '-', 'COUNT', '1')
            if top:
                last = top[0][0]
            while True:
                st = yield Cmd('HGET', key, 'status', errors_ok=True)
                tries = 0
                if isinstance(st, Exception) and not str(st).startswith('WRONGTYPE'):
                    raise RedisUnavailable('lanework: wait: redis refused: %s' % st)
                if st is None:
                    raise NoSuchJob('lanework: wait: no such job %s' % job_id)
                if isinstance(st, Exception) or st in views.TERMINAL:
                    job = yield from _status_at(prefix, tenant, job_id)
                    if job['status'] == 'succeeded':
                        return job
                    raise JobFailed('lanework: wait: job %s ended %s: %s'
                                    % (job_id, job['status'], job['error'] or 'no error recorded'), job)
                checked = time.monotonic()
                while True:
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        raise WaitTimeout('lanework: wait: timed out after %gs: job %s not ended'
                                          % (timeout_ms / 1000, job_id))
                    block = CHECK_MS - (now - checked) * 1000
                    if deadline is not None:
                        block = min(block, (deadline - now) * 1000)
                    if block < 1:
                        break
                    r = yield Cmd('XREAD', 'COUNT', '1000', 'BLOCK', str(int(block)), 'STREAMS', ev, last)
                    if r and any(_names_job(r, job_id)):
                        break
                    if r:
                        last = r[0][1][-1][0]
        except RedisUnavailable as e:
            if not e.outage:
                raise
            tries += 1
            pause = min(0.05 * 2 ** tries, 1.0)
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise WaitTimeout('lanework: wait: timed out after %gs: job %s not ended (%s)'
                                  % (timeout_ms / 1000, job_id, e)) from None
            yield Sleep(pause)


def _names_job(xread_reply, job_id):
    for _stream, entries in xread_reply:
        for _eid, fields in entries:
            yield fields.get('job') == job_id


def cancel(cfg, counts, tenant, job_id):
    """As `lanework cancel`: returns "cancelled" or "requested" (an active
    job: its worker stops it)."""
    _check_tenant_id('cancel', tenant, job_id)
    prefix = yield from job_prefix(cfg, counts, tenant, job_id, 'cancel')
    # cancel.lua answers "cancelled" also for a job cancelled before: ask
    # first, so a second cancel is told apart (as the CLI does).
    before = yield Cmd('HGET', prefix + 'job:' + job_id, 'status', errors_ok=True)
    if before == 'cancelled':
        job = yield from _status_at(prefix, tenant, job_id)
        raise JobFailed('lanework: cancel: job %s already cancelled' % job_id, job)
    keys, argv = interface.script('cancel').call_args(
        prefix, {'prefix': prefix, 'events_cap': cfg.events_max, 'keep_failed_s': cfg.keep_failed_s,
                 'id': job_id})
    r = yield Script('cancel', keys, argv, cfg.min_replicas, prefix)
    if r in ('cancelled', 'requested'):
        return r
    if r == 'missing':
        raise NoSuchJob('lanework: cancel: no such job %s' % job_id)
    if str(r).startswith('corrupt'):
        raise JobFailed('lanework: cancel: job %s: %s' % (job_id, r))
    job = yield from _status_at(prefix, tenant, job_id)
    raise JobFailed('lanework: cancel: job %s already %s' % (job_id, r), job)


def retry(cfg, counts, tenant, job_id):
    """As `lanework retry ID`: a failed, cancelled or expired job is queued
    again with a fresh set of attempts. Returns the id."""
    _check_tenant_id('retry', tenant, job_id)
    prefix = yield from job_prefix(cfg, counts, tenant, job_id, 'retry')
    # retry.lua answers "queued" also for a job that was queued already.
    before = yield Cmd('HGET', prefix + 'job:' + job_id, 'status', errors_ok=True)
    keys, argv = interface.script('retry').call_args(
        prefix, {'prefix': prefix, 'events_cap': cfg.events_max, 'mode': 'ids'}, {'arg': [{'value': job_id}]})
    r = yield Script('retry', keys, argv, cfg.min_replicas, prefix)
    what = interface.script('retry').read(r)[0]['status']
    if what == 'queued' and before != 'queued':
        return job_id
    if what == 'missing':
        raise NoSuchJob('lanework: retry: no such job %s' % job_id)
    if what.startswith('corrupt'):
        raise JobFailed('lanework: retry: job %s: %s' % (job_id, what))
    if what.startswith('held: '):
        raise InvalidInput('lanework: retry: job %s is not retried: its unique key is held by job %s'
                           % (job_id, what[6:]))
    raise InvalidInput('lanework: retry: job %s is %s, not failed, cancelled or expired' % (job_id, what))


def _eid(eid):
    ms, _, seq = eid.partition('-')
    return int(ms), int(seq or 0)


def events(cfg, counts, tenant, since, follow):
    """As `lanework events [--since ID] [--follow]`: what the stream holds
    (pages of XRANGE), then with follow new events as they come (XREAD
    BLOCK), forever. A partitioned tenant has a stream per partition: they
    are read together and merged by (entry id, partition) -- exact within a
    partition, across them as good as the clocks of the servers that wrote
    them (each stream's ids come from its own last id and that clock).
    With follow that is the order too (_follow_merged).

    Event ids are the CLI's: `ID#P` for an event of partition P >= 1 of a
    partitioned tenant, else the plain entry id. `since` is such an id, and
    resumes exactly after that event of the merged order, as `--since`:
    every partition is read after ID, except that partitions after P read
    an entry with id ID too (it comes after ID#P) -- `since_cursors`."""
    with _named('events'):
        jobs.check_name('tenant', tenant, required=True)
    if since is not None and not views.is_stream_id(since):
        raise InvalidInput('lanework: events: since: "%.64s" is not an event id (like 1700000000000-0)'
                           % since)
    k = yield from partitions(cfg, counts, tenant)
    keys = [partition.prefix(cfg.namespace, tenant, p) + 'events' for p in range(k)]
    last, incl = since_cursors(since, k, tenant)
    if follow and k > 1:
        yield from _follow_merged(keys, since, last, incl)
        return
    pending = [[] for _ in range(k)]   # entries read, not yet emitted, per partition
    more = [True] * k                  # the partition's stream may hold more
    while True:
        need = [p for p in range(k) if more[p] and not pending[p]]
        if need:
            cmds = [Cmd('XRANGE', keys[p], _start(last[p], incl[p]), '+', 'COUNT', str(EVENTS_PAGE))
                    for p in need]
            pages = [(yield cmds[0])] if len(cmds) == 1 else (yield Pipe(cmds))
            for p, page in zip(need, pages):
                if isinstance(page, Exception):
                    raise RedisUnavailable('lanework: events: redis refused: %s' % str(page).splitlines()[0])
                pending[p] = list(page)
                more[p] = len(page) == EVENTS_PAGE
                incl[p] = incl[p] and not page
        ready = [p for p in range(k) if pending[p]]
        if not ready:
            break
        p = min(ready, key=lambda q: _eid(pending[q][0][0]))
        eid, fields = pending[p].pop(0)
        last[p] = eid
        yield Emit(views.event(eid, fields, p))
    if not follow:
        return
    last = [l or '0-0' for l in last]
    while True:
        r = yield Cmd('XREAD', 'COUNT', str(EVENTS_PAGE), 'BLOCK', str(FOLLOW_BLOCK_MS), 'STREAMS', *keys, *last)
        got = []
        for stream, entries in r or ():
            p = keys.index(stream)
            for eid, fields in entries:
                got.append((_eid(eid), eid, fields))
                last[p] = eid
        got.sort(key=lambda e: e[0])
        for _, eid, fields in got:
            yield Emit(views.event(eid, fields))  # one partition: plain ids


def since_cursors(since, k, tenant):
    """Each partition's cursor for events(since=) on a tenant of k
    partitions, as `lanework events --since` (cmd_events.c
    events_partitioned): ([last id read] * k, [its own id is still to
    read] * k). `ID#P` (P >= 1): every partition starts after ID, but those
    after P at ID (inclusive) -- in the merged (id, partition) order an
    entry ID of partition Q > P comes after ID#P; a plain ID is ID#0.
    InvalidInput for a partition the tenant does not have."""
    if since is None:
        return [''] * k, [False] * k
    eid, part = views.split_event_id(since)
    if part and k <= 1:
        raise InvalidInput('lanework: events: since: "%.64s" names a partition, but tenant %s is not partitioned'
                           % (since, tenant))
    if part >= k:
        raise InvalidInput('lanework: events: since: "%.64s" names partition %d, but tenant %s has %d'
                           % (since, part, tenant, k))
    return [eid] * k, [p > part for p in range(k)]


def _start(last, incl):
    """XRANGE's start after cursor `last` ('': from the first entry; incl:
    at it)."""
    if not last:
        return '-'
    return last if incl else '(' + last


def _after(eid):
    """The (ms, seq) just past stream id eid."""
    ms, seq = _eid(eid)
    return ms, seq + 1


def _follow_merged(keys, since, last=None, incl=None):
    """events(follow) of a partitioned tenant (a stream per partition, in
    keys), yielded in merged (id, partition) order, as the CLI's `events
    --follow` (cmd_events.c events_round).

    The partitions are read one round at a time, and a partition read late
    in a round may hold an event with a lower id than one already read of
    another (their ids are different masters' clocks, and the reads are not
    at one instant). So each round asks each partition's master for its
    TIME just before reading that partition, in the same pipeline on the
    same connection: an event added there afterwards gets an id at or past
    that time. What was read is held, and an event is yielded once nothing
    can come before it any more: its id is below every partition's bound --
    the round's TIME of a partition read to its end, else the last id read
    of it (what it holds beyond comes after). Between rounds an XREAD
    COUNT 1 BLOCK (on a cluster, polled by the driver) waits for something
    new; for a held event, at most until the clocks should have passed it
    (FOLLOW_POLL_MS at most). The cost is latency: the skew between the
    masters' clocks. Without follow, and with one partition, no TIME is
    asked (events). last, incl: since_cursors's (None: from since, a plain
    entry id or None, applied to every partition)."""
    k = len(keys)
    last = list(last) if last is not None else [since or ''] * k
    incl = list(incl) if incl is not None else [False] * k
    more = [False] * k      # p's last read filled a page: it may hold more
    held = []               # ((ms, seq), p, id, fields) read, not yielded
    while True:
        nheld = [0] * k
        for h in held:
            nheld[h[1]] += 1
        # A partition with a page's worth held beyond the others is not read
        # again until they catch up (its bound is its last id read).
        read = [p for p in range(k) if not (more[p] and nheld[p] >= EVENTS_PAGE)]
        items = []
        for p in read:
            items += [Cmd('TIME', route=keys[p]),
                      Cmd('XRANGE', keys[p], _start(last[p], incl[p]), '+', 'COUNT', str(EVENTS_PAGE))]
        replies = yield Pipe(items)
        clock = {}
        for i, p in enumerate(read):
            t, page = replies[2 * i], replies[2 * i + 1]
            for rep in (t, page):
                if isinstance(rep, RedisUnavailable):
                    raise rep
                if isinstance(rep, Exception):
                    raise RedisUnavailable('lanework: events: redis refused: %s' % str(rep).splitlines()[0])
            clock[p] = int(t[0]) * 1000 + int(t[1]) // 1000
            for eid, fields in page:
                held.append((_eid(eid), p, eid, fields))
                last[p] = eid
                incl[p] = False
            more[p] = len(page) == EVENTS_PAGE
        # Ids below `below` ((ms, seq), exclusive) cannot be preceded by any
        # read later.
        below = min(_after(last[p]) if more[p] else (clock[p], 0) for p in range(k))
        held.sort(key=lambda h: (h[0], h[1]))
        n = 0
        while n < len(held) and held[n][0] < below:
            n += 1
        out, held = held[:n], held[n:]
        for _, p, eid, fields in out:
            yield Emit(views.event(eid, fields, p))
        if any(more):
            continue
        # Wait for a new event, or for the clocks to pass the first held one.
        wait = FOLLOW_BLOCK_MS if not held else min(FOLLOW_POLL_MS, max(1, held[0][0][0] - below[0] + 1))
        yield Cmd('XREAD', 'COUNT', '1', 'BLOCK', str(wait), 'STREAMS', *keys, *[l or '0-0' for l in last])


def protocol_check(cfg, url_shown, tenant):
    """Refuses a Redis whose lanework protocol differs from the scripts'.
    The version sits in the tenant's own key `NS:{T}:protocol` (a Redis ACL
    user limited to `~NS:{T}:*` can read it, and in a Cluster it lives on
    the tenant's slot); one that has none yet gets ours, first writer
    wins. Run once per client and tenant, before the first request."""
    from .errors import ProtocolMismatch
    ours = str(interface.protocol())
    key = cfg.prefix(tenant) + 'protocol'
    theirs = yield Cmd('GET', key)
    if theirs is None:
        yield Cmd('SET', key, ours, 'NX')
        theirs = yield Cmd('GET', key)
    if theirs != ours:
        raise ProtocolMismatch('lanework: protocol: this client speaks lanework protocol %s, the Redis at %s '
                               'holds protocol %s (key %s): upgrade the older side'
                               % (ours, url_shown, theirs, key))


class ProtocolState:
    """The tenants whose protocol_check passed, per client."""

    def __init__(self):
        self.ok = set()


def checked(cfg, url_shown, state, tenant, gen):
    """Runs operation `gen` (on `tenant`) with protocol_check before its
    first request to Redis -- after its validation, so bad input is
    InvalidInput whatever the state of Redis, as with the CLI."""
    try:
        op = next(gen)
    except StopIteration as stop:
        return stop.value
    if tenant not in state.ok:
        yield from protocol_check(cfg, url_shown, tenant)
        state.ok.add(tenant)
    while True:
        try:
            reply = yield op
        except Exception as e:  # noqa: BLE001 - what the driver threw in: the op's to handle
            try:
                op = gen.throw(e)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            op = gen.send(reply)
        except StopIteration as stop:
            return stop.value

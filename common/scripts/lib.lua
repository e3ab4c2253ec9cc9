-- lib.lua: helpers shared by every lanework script. embed.py puts this file
-- in front of each script, so each script is one self-contained EVAL body,
-- and in front of all of them in the one function library (begin(), below).
--
-- Conventions of every script:
--   ARGV[1] is the tenant prefix P = "NS:{TENANT}:", ARGV[2] the event stream
--   cap; like the retention times some scripts take, it is only the caller's
--   fallback for a tenant whose settings no worker published (setting()).
--   KEYS declares the tenant's fixed keys the script touches (they give the
--   cluster slot); per-job, per-lane and per-queue keys are derived from P and
--   carry the same {TENANT} hash tag, so they live in the same slot.
--   Time is the Redis server's (TIME), one clock for the whole fleet.
--   Every check that can fail runs before the first write of its job, and
--   unreadable records are read with redis.pcall, so a corrupt record can
--   never make a script stop half-way (Redis does not roll scripts back).
--
-- Where a job can be (docs/DESIGN.md, "Invariants"):
--   lane:L  list   every job of lane L not yet finished, in enqueue order; its
--                  head is always a live job (queued, scheduled or active)
--   ready:Q list   heads that are queued and runnable now (claim pops here)
--   schedule zset  heads that are scheduled, scored by run_at
--   active:Q zset  heads that are running, scored by lease deadline
-- Finished jobs left behind inside a lane or a ready list are tombstones:
-- every reader skips an entry whose job is not in the state it expects.

-- How a call runs: the same text serves two ways of running it (embed.py).
-- As an EVAL body, lib.lua comes first and begin(ARGV) runs before the
-- script's own code. In the function library (FUNCTION LOAD once, FCALL per
-- call), lib.lua's functions are built once per load and each script is a
-- function that calls begin(ARGV) first. So nothing at lib.lua's top level
-- may depend on a call: every value that belongs to one call is declared
-- here or next to its helper, and begin() below (re)sets each of them. Redis
-- runs one script at a time, so one call's values never meet another's.
local P, K_EVENTS, K_STATS, K_SCHEDULE
local EVENTS_CAP_ARG -- ARGV[2]: the caller's event stream cap (emit)

-- The lanework protocol these scripts speak: the job record, the keys and
-- the scripts' interfaces as they are. P..'protocol' says which one the
-- tenant's keys were written with; a script of another protocol refuses the
-- whole call, before any write, naming both (CONTRACT section 10). Every
-- caller -- the worker, the CLI, the Python and Node clients -- runs these
-- scripts, so this is the one check (begin(), below; clients/scripts_bundle.py
-- reads the number from this line). Bump it when a change would let an
-- older client and a newer fleet misread each other.
local PROTOCOL = '1'

-- Numbers and texts. Each conversion costs a libc strtod or printf: Redis
-- 7.0 formats every Lua number handed to redis.call with "%.17g", and
-- tonumber/tostring are no cheaper. The same few values (a timestamp,
-- attempt counters, small constants) recur all through a run, so each
-- conversion is made once per distinct value and script run.
local NUM_S, NUM_OF

-- num_s(x): the argument text Redis makes of number x. For integers below
-- 2^53 "%d" prints the same digits as "%.17g"; anything else (-0, fractions,
-- huge or non-finite values) is returned as is, for Redis to format as it
-- always did.
local function num_s(x)
    local s = NUM_S[x]
    if s and (x ~= 0 or 1 / x > 0) then return s end
    if x % 1 ~= 0 or x <= -9007199254740992 or x >= 9007199254740992 or (x == 0 and 1 / x < 0) then
        return x
    end
    s = string.format('%d', x)
    NUM_S[x] = s
    return s
end

-- str(x): tostring(x). Lua prints numbers with "%.14g", which agrees with
-- "%d" for integers below 1e14.
local function str(x)
    if x < 1e14 and x > -1e14 then
        local s = num_s(x)
        if type(s) == 'string' then return s end
    end
    return tostring(x)
end

-- num(s): tonumber(s) of a text s (a string, not nil).
local function num(s)
    local v = NUM_OF[s]
    if v == nil then
        v = tonumber(s) or false
        NUM_OF[s] = v
    end
    return v or nil
end

-- NOW_US: the same TIME reading in microseconds, as text (fencing tokens).
local NOW_US
local function now_ms()
    local t = redis.call('TIME')
    NOW_US = t[1] .. string.format('%06d', tonumber(t[2]))
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local LIVE = { queued = true, scheduled = true }

-- The fields job_get reads and checks, in this order, followed by those a
-- script asks for: job_fields(...) is the list to give job_get. Reading only
-- what a script uses matters: each field of an HMGET costs about as much as
-- a small command.
local function job_fields(...)
    local f = { 'status', 'queue', 'lane', 'kind', 'attempt', 'attempts', 'run_at', 'expires', ... }
    f.checked = 8
    return f
end
-- claimed_fields(...): the same without run_at and expires, for scripts that
-- only act on jobs the claim already read whole (finish.lua): j.run_at and
-- j.expires are then nil. Two fields fewer per record and call.
local function claimed_fields(...)
    local f = { 'status', 'queue', 'lane', 'kind', 'attempt', 'attempts', ... }
    f.checked = 6
    return f
end
-- Built at first use, never changed: the same for every call (so a loaded
-- library keeps them; an EVAL body builds them only if it needs them).
local JOB_FIELDS  -- job_get's default: token, worker, unique and cancel too
local HEAD_FIELDS -- what placing a lane's next head needs (lane_advance)

-- job_get(id[, fields]) -> job table, or nil and a reason ("missing",
-- "corrupt: ..."). fields: from job_fields (default: JOB_FIELDS). Fields
-- past the checked ones are j[name], false when absent, except token,
-- worker and unique: '' when absent.
-- Never raises: a key of the wrong type is reported, not thrown.
local function job_get(id, fields)
    if not fields then
        JOB_FIELDS = JOB_FIELDS or job_fields('token', 'worker', 'unique', 'cancel')
        fields = JOB_FIELDS
    end
    local r = redis.pcall('HMGET', P .. 'job:' .. id, unpack(fields))
    if type(r) == 'table' and r.err then
        return nil, 'corrupt: record is not a hash'
    end
    local status = r[1]
    if not status then
        if redis.call('EXISTS', P .. 'job:' .. id) == 0 then
            return nil, 'missing'
        end
        return nil, 'corrupt: no status'
    end
    if not (status == 'queued' or status == 'scheduled' or status == 'active' or status == 'succeeded'
            or status == 'failed' or status == 'cancelled' or status == 'expired') then
        return nil, 'corrupt: unknown status'
    end
    local checked = fields.checked
    local times = checked == 8
    local j = {
        id = id, status = status, queue = r[2], lane = r[3], kind = r[4],
        attempt = r[5] and num(r[5]), attempts = r[6] and num(r[6]),
        run_at = times and (not r[7] and 0 or num(r[7])) or nil,
        expires = times and (not r[8] and 0 or num(r[8])) or nil,
    }
    if not j.queue or j.queue == '' then return nil, 'corrupt: no queue' end
    if not j.lane or j.lane == '' then return nil, 'corrupt: no lane' end
    if not j.kind or j.kind == '' then return nil, 'corrupt: no kind' end
    if not j.attempt or not j.attempts then return nil, 'corrupt: bad attempt counters' end
    if times and (not j.run_at or not j.expires) then return nil, 'corrupt: bad times' end
    for k = checked + 1, #fields do
        local f, v = fields[k], r[k]
        if not v and (f == 'token' or f == 'worker' or f == 'unique') then v = '' end
        j[f] = v
    end
    return j
end

-- setting(name, fallback): the tenant's setting `name` (events_max,
-- keep_succeeded, keep_failed: common/settings.h) as the workers published
-- it in P.."settings", else `fallback` (the caller's own, while nothing is
-- published). One HMGET per script run, at the first use.
local SETTINGS
local function setting(name, fallback)
    if not SETTINGS then
        local r = redis.call('HMGET', P .. 'settings', 'events_max', 'keep_succeeded', 'keep_failed', 'partitions',
            'ttl_max')
        SETTINGS = { events_max = tonumber(r[1]), keep_succeeded = tonumber(r[2]), keep_failed = tonumber(r[3]),
                     partitions = tonumber(r[4]), ttl_max = tonumber(r[5]) }
    end
    return SETTINGS[name] or fallback
end

-- emit appends one event to the tenant's capped stream. Every XADD trims
-- (MAXLEN ~): trimming only at a run's first event would save a fifth of
-- each later XADD, but let the stream hold a whole batch (up to 1,000
-- outcomes) beyond the cap, long enough for a follower to read what a
-- stricter cap would have trimmed past it (test_reconnect's follower).
local EVMAX_S
local function emit(typ, j, worker, data)
    if not EVMAX_S then EVMAX_S = num_s(setting('events_max', tonumber(EVENTS_CAP_ARG) or 100000)) end
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVMAX_S, '*',
        'type', typ, 'job', j.id, 'kind', j.kind or '', 'lane', j.lane or '',
        'attempt', str(j.attempt or 0), 'worker', worker or '', 'data', data or '')
end

-- Deferred writes. A script body run through run() (below) does not make
-- some writes as they happen: counter changes are summed per stats field,
-- and members handed to defer() are gathered per command and key; both are
-- written at the end, one command per field or key (a batch of 256 jobs
-- costs one HINCRBY instead of 256). Only writes that nothing in the script
-- reads back are deferred, so the result is the one of writing in place.
local COUNTS, COUNT_FIELDS -- nil: not under run(), write in place
local DEFERRED, DEFER_ORDER
local DEFER_READY -- push_ready defers its tail pushes (enqueue.lua)

-- count keeps the per-queue counters of the stats hash: current numbers for
-- queued/scheduled, running totals for the terminal statuses.
local function count(status, queue, delta)
    local f = status .. ':' .. queue
    if not COUNTS then
        redis.call('HINCRBY', K_STATS, f, delta)
        return
    end
    local c = COUNTS[f]
    if not c then
        c = 0
        COUNT_FIELDS[#COUNT_FIELDS + 1] = f
    end
    COUNTS[f] = c + delta
end

-- write_deferred(e): the one command a deferred entry stands for. wake:
-- publish the queue on P.."wake" if the RPUSH found the list empty
-- (push_ready's wake-up).
local function write_deferred(e)
    DEFERRED[e.key] = nil
    for k = 1, e.n, 512 do
        local last = math.min(k + 511, e.n)
        local n = redis.call(e.cmd, e.key, unpack(e, k, last))
        if e.wake and k == 1 and n == last then
            redis.call('PUBLISH', P .. 'wake', e.wake)
        end
    end
end

-- defer(cmd, key, a[, b[, wake]]): one more member (ZREM, RPUSH: a; ZADD:
-- score a, member b) for the one `cmd key ...` written at the end; in place
-- when not under run().
local function defer(cmd, key, a, b, wake)
    if not DEFERRED then
        if b == nil then return redis.call(cmd, key, a) end
        return redis.call(cmd, key, a, b)
    end
    local e = DEFERRED[key]
    if e and e.cmd ~= cmd then
        write_deferred(e) -- another command for that key: keep the order
        e = nil
    end
    if not e then
        e = { cmd = cmd, key = key, wake = wake, n = 0 }
        DEFERRED[key] = e
        DEFER_ORDER[#DEFER_ORDER + 1] = e
    end
    local n = e.n + 1
    e[n] = a
    if b ~= nil then
        n = n + 1
        e[n] = b
    end
    e.n = n
end

-- flush_deferred(key): write what is deferred for key now (a script about
-- to read it); without a key, every deferred write.
local function flush_deferred(key)
    if key then
        local e = DEFERRED[key]
        if e then write_deferred(e) end
        return
    end
    -- A field whose changes add up to 0 is still written, as in place: an
    -- HINCRBY by 0 creates the field, and stats readers see the same hash.
    local fields, counts = COUNT_FIELDS, COUNTS
    COUNTS, COUNT_FIELDS = {}, {}
    for _, f in ipairs(fields) do
        redis.call('HINCRBY', K_STATS, f, num_s(counts[f]))
    end
    local order = DEFER_ORDER
    DEFER_ORDER = {}
    for _, e in ipairs(order) do
        if DEFERRED[e.key] == e then write_deferred(e) end
    end
end

-- POPPED: list entries a script popped ahead of use (claim.lua takes a
-- batch of a ready list with one LPOP): { key = list, [1..] = entries,
-- next = index of the first one not yet used }.
local POPPED

-- run(body) runs a script's body with deferred writes and returns its
-- result. If the body raises, the entries it popped ahead and did not use
-- go back, what it deferred before the error is written all the same, and
-- the error is raised again: Redis keeps a failed script's earlier writes,
-- and the state must be the one of writing each in place.
local function run(body)
    COUNTS, COUNT_FIELDS, DEFERRED, DEFER_ORDER = {}, {}, {}, {}
    local ok, res = pcall(body)
    if not ok then
        local p = POPPED
        if p and p.next <= #p then
            local back = {}
            for k = #p, p.next, -1 do back[#back + 1] = p[k] end
            pcall(redis.call, 'LPUSH', p.key, unpack(back))
        end
        pcall(flush_deferred)
        if type(res) ~= 'table' then res = { err = tostring(res) } end
        error(res, 0)
    end
    flush_deferred()
    return res
end

-- push_ready appends a runnable head to its queue's ready list (front = true
-- for a job that already had its turn: handed back or lost). Publishes a
-- wake-up when the list was empty; wake-ups only cut latency, workers poll.
-- READY_PUSHES counts the pushes of this run (claim.lua: a ready list it
-- found empty is still empty if nothing was pushed since).
-- always: publish even when the list was not empty (a job handed back or
-- lost: whoever watched the list so far may be idle at its cap, and the
-- job already waited once).
local READY_PUSHES
local function push_ready(queue, id, front, always)
    local rk = P .. 'ready:' .. queue
    READY_PUSHES = READY_PUSHES + 1
    if DEFER_READY and not front then
        defer('RPUSH', rk, id, nil, queue)
        return
    end
    local n
    if front then n = redis.call('LPUSH', rk, id) else n = redis.call('RPUSH', rk, id) end
    if n == 1 or always then redis.call('PUBLISH', P .. 'wake', queue) end
end

local function is_head(j)
    return redis.call('LINDEX', P .. 'lane:' .. j.lane, '0') == j.id
end

-- SCHEDULE_WRITES counts the writes of this run to the schedule (claim.lua:
-- its earliest entry read before is still the earliest if none happened).
local SCHEDULE_WRITES

-- schedule_add puts a head in the schedule until run_at. The earliest
-- run_at this run added is remembered so that publish_due can tell idle
-- workers about a due time they do not know yet.
local SCHEDULED_MIN
local function schedule_add(id, run_at)
    redis.call('ZADD', K_SCHEDULE, num_s(run_at), id)
    SCHEDULE_WRITES = SCHEDULE_WRITES + 1
    if not SCHEDULED_MIN or run_at < SCHEDULED_MIN then SCHEDULED_MIN = run_at end
end

-- expiring_add puts a waiting job in the expiry index (enqueue.lua). An
-- expiry is a due time too: only a claim ends a job that waited too long,
-- so idle workers are told of it as of a scheduled job (publish_due) and
-- claim.lua's due_in counts it.
local EXPIRING_MIN
local function expiring_add(id, at)
    redis.call('ZADD', P .. 'expiring', num_s(at), id)
    if not EXPIRING_MIN or at < EXPIRING_MIN then EXPIRING_MIN = at end
end

-- publish_due: when this run scheduled the schedule's earliest entry (or
-- added the expiry index's earliest), say on P.."wake" how far away it is
-- ("@MS", a delay rather than a time, so that no worker compares Redis time
-- with its own clock). Without it an idle worker learns a new due time only
-- from its next poll, which backs off to seconds. Each script that may
-- schedule calls it once, at its end.
local function publish_due(now)
    local due
    if SCHEDULED_MIN then
        local first = redis.call('ZRANGE', K_SCHEDULE, '0', '0', 'WITHSCORES')
        if first[2] and tonumber(first[2]) == SCHEDULED_MIN then due = SCHEDULED_MIN end
    end
    if EXPIRING_MIN then
        local first = redis.call('ZRANGE', P .. 'expiring', '0', '0', 'WITHSCORES')
        if first[2] and tonumber(first[2]) == EXPIRING_MIN and (not due or EXPIRING_MIN < due) then
            due = EXPIRING_MIN
        end
    end
    SCHEDULED_MIN, EXPIRING_MIN = nil, nil
    if not due then return end
    local delay = due - now
    if delay < 0 then delay = 0 end
    redis.call('PUBLISH', P .. 'wake', '@' .. num_s(delay))
end

-- make_head_ready places the head of a lane: scheduled (in schedule) until
-- its run_at, then queued (in ready:Q). A scheduled job that becomes runnable
-- is a transition and gets its job.queued event.
local function make_head_ready(j, now)
    if j.run_at > now then
        schedule_add(j.id, j.run_at)
        return
    end
    if j.status == 'scheduled' then
        redis.call('HSET', P .. 'job:' .. j.id, 'status', 'queued')
        count('scheduled', j.queue, -1)
        count('queued', j.queue, 1)
        j.status = 'queued'
        emit('job.queued', j, '', '')
    end
    push_ready(j.queue, j.id, false)
end

-- lane_advance gives lane L its next head after the former head left. Heads
-- that are tombstones (finished, missing or unreadable records) are popped.
-- nid: the lane's head when the caller already knows it.
local function lane_advance(lane, now, nid)
    local lk = P .. 'lane:' .. lane
    while true do
        if not nid then nid = redis.call('LINDEX', lk, '0') end
        if not nid then return end
        HEAD_FIELDS = HEAD_FIELDS or job_fields()
        local j = job_get(nid, HEAD_FIELDS)
        if j and j.status == 'active' then return end
        if j and LIVE[j.status] and j.lane == lane then
            make_head_ready(j, now)
            return
        end
        redis.call('LPOP', lk)
        nid = nil
    end
end

-- unique_holder(key, now) -> the id and status of the job holding unique
-- key KEY, or nil when KEY is free. Held: unique:KEY names a job that waits
-- or runs, or one that finished before its unique_until (--unique-for).
-- Anything else -- a record gone, a finished job's key left by data from
-- before keys were freed at the finish -- is free. The record says it, not
-- the key's TTL (tenant ACL users have no TTL commands).
local function unique_holder(key, now)
    local u = redis.call('GET', P .. 'unique:' .. key)
    if not u then return nil end
    local r = redis.pcall('HMGET', P .. 'job:' .. u, 'status', 'unique_until')
    if type(r) ~= 'table' or r.err or type(r[1]) ~= 'string' then return nil end
    if LIVE[r[1]] or r[1] == 'active' or (tonumber(r[2]) or 0) > now then return u, r[1] end
    return nil
end

-- job_existing(id, unique, now) -> the job an enqueue of job ID with
-- unique key UNIQUE ('' for none) would be answered with instead of being
-- created, and why: 'held STATUS' (UNIQUE is held by that job) or 'exists
-- STATUS' (a job with that id exists); nil when it would be created. The
-- one definition of a duplicate, for enqueue.lua and known.lua.
local function job_existing(id, unique, now)
    if unique ~= '' then
        local u, st = unique_holder(unique, now)
        if u then return u, 'held ' .. st end
    end
    if redis.call('EXISTS', P .. 'job:' .. id) == 1 then
        local st = redis.pcall('HGET', P .. 'job:' .. id, 'status')
        return id, 'exists ' .. (type(st) == 'string' and st or 'unreadable')
    end
    return nil
end

-- finish_job ends job j (already out of ready/schedule/active) in terminal
-- `status`: sets the retention, frees its unique key at the same time, and
-- hands its lane to the next job when it was the head. `fields` are extra
-- HSET pairs (result, error). running: j was active, so it heads its lane
-- (invariants 1-2).
-- A unique key is free once its job finished (DEL), unless the job was
-- enqueued with unique_for: then it expires at the record's unique_until,
-- and the record is kept at least that long, so the key never names a
-- record that is gone.
local function finish_job(j, status, now, keep_s, fields, running)
    local jk = P .. 'job:' .. j.id
    redis.call('HSET', jk, 'status', status, 'finished', num_s(now), unpack(fields))
    local unique = j.unique
    if unique == nil then unique = redis.call('HGET', jk, 'unique') or '' end -- not read by job_get
    local keep = keep_s
    if unique ~= '' then
        local uk = P .. 'unique:' .. unique
        if redis.call('GET', uk) == j.id then
            local until_ms = tonumber(redis.call('HGET', jk, 'unique_until')) or 0
            if until_ms > now then
                local hold = math.ceil((until_ms - now) / 1000)
                redis.call('EXPIRE', uk, num_s(hold))
                if hold > keep then keep = hold end
            else
                redis.call('DEL', uk)
            end
        end
    end
    redis.call('EXPIRE', jk, num_s(keep))
    if keep > setting('ttl_max', 0) then
        -- The longest any record of this keyspace is kept (settings.lua:
        -- how long partition 0 may answer for ids from before partitioning).
        -- Written when it grows, so about never.
        redis.call('HSET', P .. 'settings', 'ttl_max', num_s(keep))
        SETTINGS.ttl_max = keep
    end
    if status == 'failed' then
        -- Scored so that the trim at keep_failed (finish.lua) drops it when
        -- the record expires: later than its finish when a unique_for hold
        -- keeps the record longer.
        redis.call('ZADD', P .. 'failed', num_s(now + (keep - keep_s) * 1000), j.id)
    end
    count(status, j.queue, 1)
    j.status = status
    local lk = P .. 'lane:' .. j.lane
    if running then
        -- Popping two entries tells in one command whether j was the head
        -- and what heads the lane now (nothing, for a lane of one job). The
        -- entries popped that must stay are pushed back, in order; the head
        -- not being j would mean a broken invariant 1, left as it was.
        local h = redis.call('LPOP', lk, '2')
        if not h then return end
        if h[1] == j.id then
            if h[2] then
                redis.call('LPUSH', lk, h[2])
                lane_advance(j.lane, now, h[2])
            end
        elseif h[2] then
            redis.call('LPUSH', lk, h[2], h[1])
        else
            redis.call('LPUSH', lk, h[1])
        end
    elseif redis.call('LINDEX', lk, '0') == j.id then
        redis.call('LPOP', lk)
        lane_advance(j.lane, now)
    end
end

-- end_waiting ends a queued or scheduled job (cancel, expiry) wherever it
-- waits: out of the schedule and the expiry index; a ready-list entry stays
-- behind as a tombstone (removing it would cost O(ready)).
local function end_waiting(j, status, now, keep_s, fields)
    count(j.status, j.queue, -1)
    redis.call('ZREM', K_SCHEDULE, j.id)
    SCHEDULE_WRITES = SCHEDULE_WRITES + 1
    redis.call('ZREM', P .. 'expiring', j.id)
    finish_job(j, status, now, keep_s, fields)
end

-- drop_corrupt deals with an unreadable record met in a ready list or a
-- lease set: if its lane can still be read and it heads that lane, the lane
-- moves on (a corrupt job must not hold a lane forever); if it is a hash, it
-- is marked failed so `lanework status` shows why, and like any failed job
-- it is in the failed index and expires. The caller reports it to the
-- worker's log.
local function drop_corrupt(id, why, now, keep_s)
    local jk = P .. 'job:' .. id
    local lane = redis.pcall('HGET', jk, 'lane')
    if type(lane) == 'string' and lane ~= '' then
        local lk = P .. 'lane:' .. lane
        if redis.call('LINDEX', lk, '0') == id then
            redis.call('LPOP', lk)
            lane_advance(lane, now)
        end
    end
    if redis.call('TYPE', jk).ok == 'hash' then
        -- The counters of the status it leaves must follow, or stats and
        -- fsck disagree with the records from now on.
        local old = redis.call('HMGET', jk, 'status', 'queue')
        if (old[1] == 'queued' or old[1] == 'scheduled') and type(old[2]) == 'string' and old[2] ~= '' then
            count(old[1], old[2], -1)
        end
        redis.call('HSET', jk, 'status', 'failed', 'finished', num_s(now),
            'error', 'corrupt job record (' .. why .. ')')
        redis.call('EXPIRE', jk, num_s(keep_s))
        redis.call('ZADD', P .. 'failed', num_s(now), id)
    end
end

-- Outages. A lease deadline is Redis time, and Redis time runs on while
-- nobody can reach Redis (stopped, restarting, loading, cut off from every
-- worker). Without a correction, the first reaper to run after an outage
-- longer than a lease would take every running job from workers that are
-- healthy and only waited for Redis, and refuse their outcomes.
--
-- So the periodic lease scripts (renew.lua, every sixth of a lease per
-- worker with running jobs; reap.lua, every sixth +-20 % per worker) note
-- when they ran in P.."alive", and the lease of their caller in
-- P.."leases" (zset: lease ms -> when a caller with that lease last ran).
-- The shortest lease among the callers that were running when the previous
-- script ran sets the fleet's cadence: no live fleet leaves a gap of more
-- than OUTAGE_FRACTION of it between two lease scripts. A longer gap, or a
-- clock that went back that much, means no lease script could run during
-- it: every lease still valid when it began gets the gap back (time stood
-- still for it) plus OUTAGE_GRACE_MS for its worker to reconnect and
-- renew. Leases already expired then are left alone: their workers were
-- gone before the outage. A lease so moved is at most one lease plus the
-- grace away, however long the gap was (a fleet that was down for an hour
-- delays nothing by an hour). The fraction is also what keeps an unnoticed
-- forward step of Redis's clock smaller than the safety margin of every
-- worker's fence (it freezes attempts 0.35 lease before their deadline:
-- docs/DESIGN.md section 5), so this never lets two attempts run at once.
-- claim.lua checks for a gap too before it makes leases (a cheap GET; the
-- full check when its caller's own cadence says so), so that leases made
-- after an outage are not moved as if they were older.
local OUTAGE_GRACE_MS = 5000
local OUTAGE_FRACTION = 0.3

-- observe_outage(now, lease) -> the gap in ms when one was found, else 0.
-- lease: the caller's --lease (ms).
local function observe_outage(now, lease)
    local k, lk = P .. 'alive', P .. 'leases'
    local last = tonumber(redis.call('GET', k) or '')
    redis.call('SET', k, num_s(now))
    local shortest = lease
    if last then
        local seen = redis.call('ZRANGE', lk, '0', '-1', 'WITHSCORES')
        for i = 1, #seen, 2 do
            local l, at = tonumber(seen[i]), tonumber(seen[i + 1])
            if l and at and l < shortest and at >= last - l * OUTAGE_FRACTION then shortest = l end
        end
    end
    redis.call('ZADD', lk, num_s(now), num_s(lease))
    redis.call('ZREMRANGEBYSCORE', lk, '-inf', num_s(now - 3600000))
    if not last then return 0 end
    local gap = now - last
    local limit = shortest * OUTAGE_FRACTION
    if gap <= limit and gap >= -limit then return 0 end
    local shift = gap + OUTAGE_GRACE_MS
    for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
        local ak = P .. 'active:' .. q
        local held = redis.call('ZRANGEBYSCORE', ak, num_s(last), '+inf', 'WITHSCORES')
        for i = 1, #held, 2 do
            redis.call('ZADD', ak, 'XX', num_s(tonumber(held[i + 1]) + shift), held[i])
        end
    end
    return gap
end

-- outage_before_claim(now, lease): claim.lua's check, one GET when all is
-- well. Returns the gap found (0: none) and whether P.."alive" is absent
-- (no lease script ran on this Redis yet: claim.lua starts the record when
-- it makes leases, or an outage before the first renewal would go
-- unnoticed; it never moves an existing record, which would hide a gap).
local function outage_before_claim(now, lease)
    local last = tonumber(redis.call('GET', P .. 'alive') or '')
    if not last then return 0, true end
    local gap = now - last
    if gap <= lease * OUTAGE_FRACTION and gap >= -lease * OUTAGE_FRACTION then return 0, false end
    return observe_outage(now, lease), false
end

-- begin(argv): the start of every call, before anything else of lib.lua is
-- used: sets what belongs to this call (all of it: a value left from the
-- previous call of a loaded library would leak into this one) and checks the
-- tenant's protocol. Returns an error reply to return at once, or nil.
local function begin(argv)
    P = argv[1]
    K_EVENTS, K_STATS, K_SCHEDULE = P .. 'events', P .. 'stats', P .. 'schedule'
    EVENTS_CAP_ARG = argv[2]
    NUM_S, NUM_OF = {}, {}
    NOW_US, SETTINGS, EVMAX_S, POPPED = nil, nil, nil, nil
    COUNTS, COUNT_FIELDS, DEFERRED, DEFER_ORDER = nil, nil, nil, nil
    DEFER_READY, READY_PUSHES, SCHEDULE_WRITES = false, 0, 0
    SCHEDULED_MIN, EXPIRING_MIN = nil, nil
    local have = redis.call('GET', P .. 'protocol')
    if have and have ~= PROTOCOL then
        return redis.error_reply('LWPROTOCOL tenant keys under ' .. P .. ' are of lanework protocol ' .. have ..
            '; this client speaks protocol ' .. PROTOCOL .. ' (upgrade the older side)')
    end
    if not have then redis.call('SET', P .. 'protocol', PROTOCOL) end
    return nil
end

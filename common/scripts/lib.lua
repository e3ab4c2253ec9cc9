-- lib.lua: helpers shared by every lanework script. embed.py puts this file
-- in front of each script, so each script is one self-contained EVAL body.
--
-- Conventions of every script:
--   ARGV[1] is the tenant prefix P = "NS:{TENANT}:", ARGV[2] the event stream cap.
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

local P = ARGV[1]
local EVMAX = tonumber(ARGV[2]) or 100000

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local LIVE = { queued = true, scheduled = true }
local KNOWN = {
    queued = true, scheduled = true, active = true, succeeded = true,
    failed = true, cancelled = true, expired = true,
}

local JOB_FIELDS = { 'status', 'queue', 'lane', 'kind', 'attempt', 'attempts',
                     'run_at', 'token', 'worker', 'unique', 'expires', 'cancel' }

-- job_get(id) -> job table, or nil and a reason ("missing", "corrupt: ...").
-- Never raises: a key of the wrong type is reported, not thrown.
local function job_get(id)
    local r = redis.pcall('HMGET', P .. 'job:' .. id, unpack(JOB_FIELDS))
    if type(r) == 'table' and r.err then
        return nil, 'corrupt: record is not a hash'
    end
    if not r[1] then
        if redis.call('EXISTS', P .. 'job:' .. id) == 0 then
            return nil, 'missing'
        end
        return nil, 'corrupt: no status'
    end
    local j = {
        id = id, status = r[1], queue = r[2], lane = r[3], kind = r[4],
        attempt = tonumber(r[5]), attempts = tonumber(r[6]),
        run_at = tonumber(r[7] or '0'), token = r[8] or '', worker = r[9] or '',
        unique = r[10] or '', expires = tonumber(r[11] or '0'), cancel = r[12],
    }
    if not KNOWN[j.status] then return nil, 'corrupt: unknown status' end
    if not j.queue or j.queue == '' then return nil, 'corrupt: no queue' end
    if not j.lane or j.lane == '' then return nil, 'corrupt: no lane' end
    if not j.kind or j.kind == '' then return nil, 'corrupt: no kind' end
    if not j.attempt or not j.attempts then return nil, 'corrupt: bad attempt counters' end
    if not j.run_at or not j.expires then return nil, 'corrupt: bad times' end
    return j
end

-- emit appends one event to the tenant's capped stream.
local function emit(typ, j, worker, data)
    redis.call('XADD', P .. 'events', 'MAXLEN', '~', EVMAX, '*',
        'type', typ, 'job', j.id, 'kind', j.kind or '', 'lane', j.lane or '',
        'attempt', tostring(j.attempt or 0), 'worker', worker or '', 'data', data or '')
end

-- count keeps the per-queue counters of the stats hash: current numbers for
-- queued/scheduled, running totals for the terminal statuses.
local function count(status, queue, delta)
    redis.call('HINCRBY', P .. 'stats', status .. ':' .. queue, delta)
end

-- push_ready appends a runnable head to its queue's ready list (front = true
-- for a job that already had its turn: handed back or lost). Publishes a
-- wake-up when the list was empty; wake-ups only cut latency, workers poll.
local function push_ready(queue, id, front)
    local rk = P .. 'ready:' .. queue
    local n
    if front then n = redis.call('LPUSH', rk, id) else n = redis.call('RPUSH', rk, id) end
    if n == 1 then redis.call('PUBLISH', P .. 'wake', queue) end
end

local function is_head(j)
    return redis.call('LINDEX', P .. 'lane:' .. j.lane, 0) == j.id
end

-- make_head_ready places the head of a lane: scheduled (in schedule) until
-- its run_at, then queued (in ready:Q). A scheduled job that becomes runnable
-- is a transition and gets its job.queued event.
local function make_head_ready(j, now)
    if j.run_at > now then
        redis.call('ZADD', P .. 'schedule', j.run_at, j.id)
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
local function lane_advance(lane, now)
    local lk = P .. 'lane:' .. lane
    while true do
        local nid = redis.call('LINDEX', lk, 0)
        if not nid then return end
        local j = job_get(nid)
        if j and j.status == 'active' then return end
        if j and LIVE[j.status] and j.lane == lane then
            make_head_ready(j, now)
            return
        end
        redis.call('LPOP', lk)
    end
end

-- finish_job ends job j (already out of ready/schedule/active) in terminal
-- `status`: sets the retention, frees its unique key at the same time, and
-- hands its lane to the next job when it was the head. `fields` are extra
-- HSET pairs (result, error).
local function finish_job(j, status, now, keep_s, fields)
    local jk = P .. 'job:' .. j.id
    redis.call('HSET', jk, 'status', status, 'finished', now, unpack(fields))
    redis.call('EXPIRE', jk, keep_s)
    if j.unique ~= '' then
        local uk = P .. 'unique:' .. j.unique
        if redis.call('GET', uk) == j.id then redis.call('EXPIRE', uk, keep_s) end
    end
    if status == 'failed' then
        redis.call('ZADD', P .. 'failed', now, j.id)
    end
    count(status, j.queue, 1)
    j.status = status
    local lk = P .. 'lane:' .. j.lane
    if redis.call('LINDEX', lk, 0) == j.id then
        redis.call('LPOP', lk)
        lane_advance(j.lane, now)
    end
end

-- end_waiting ends a queued or scheduled job (cancel, expiry) wherever it
-- waits: out of the schedule and the expiry index; a ready-list entry stays
-- behind as a tombstone (removing it would cost O(ready)).
local function end_waiting(j, status, now, keep_s, fields)
    count(j.status, j.queue, -1)
    redis.call('ZREM', P .. 'schedule', j.id)
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
        if redis.call('LINDEX', lk, 0) == id then
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
        redis.call('HSET', jk, 'status', 'failed', 'finished', now,
            'error', 'corrupt job record (' .. why .. ')')
        redis.call('EXPIRE', jk, keep_s)
        redis.call('ZADD', P .. 'failed', now, id)
    end
end

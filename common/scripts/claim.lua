-- claim.lua: promote due jobs, expire stale ones, then claim up to `want`
-- runnable jobs for one worker, queues in strict priority order.
-- script-flags:
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events schedule stats expiring fence
--@ keys queue*nq: ready:<name> active:<name>
--@ argv: prefix:str events_cap:int worker:str lease_ms:ms want:int keep_failed_s:s nq:int
--@ argv queue*nq: name:str max_active:int
--@ reply: jobs:list bad:list due_in:int more:int gap:int
--@ reply.jobs job*: id:str token:str kind:str queue:str lane:str payload:json attempt:num attempts:num timeout_ms:num backoff_ms:num spool:str wait_ms:num
--@ reply.bad corrupt*: id:str reason:str
--
-- KEYS: 1 events, 2 schedule, 3 stats, 4 expiring, 5 fence,
--       then per queue i: ready:Q_i, active:Q_i
-- ARGV: 1 prefix, 2 events cap, 3 worker name, 4 lease_ms, 5 want,
--       6 keep_failed_s, 7 nq, then per queue: name, max_active (0: no cap)
--
-- Effect:
--  1. heads in schedule whose run_at has come go to ready:Q (job.queued);
--  2. waiting jobs whose expiry has come end `expired` (job.expired);
--  3. claim: pop lane heads from ready:Q while the queue is under its cap
--     and not paused (P.."paused", pause.lua);
--     each claimed job gets attempt+1, a fresh fencing token (INCR fence and
--     the claim's Redis time in us: unique across restores), a lease
--     (active:Q scored by now+lease_ms) and a job.started event.
--     Entries that are tombstones are dropped; unreadable records are
--     dropped and reported. A queued job whose cancel is still pending (set
--     while an earlier attempt ran) ends cancelled instead of starting.
-- Returns { jobs, bad, due_in, more, gap }:
--   jobs: 12 entries per claimed job: id token kind queue lane payload
--         attempt attempts timeout_ms backoff_ms spool wait_ms
--         (wait_ms: from the time the job became runnable to this start,
--         for the worker's lanework_queue_wait_seconds: the later of its
--         enqueue -- or its queued_at, set when it was queued anew by
--         `lanework retry`, a hand-back or a lost lease -- and its run_at,
--         the end of a delay or a retry backoff; read in the same HMGET)
--   bad: 2 entries per unreadable record: id, reason
--   due_in: ms from now until the earliest run_at in schedule or expiry in
--         P expiring (whichever comes first: both need a claim then), or -1
--         when there is neither (a delay, so that no worker compares Redis
--         time with its own clock)
--   more: 1 when a ready list still holds jobs the caps would allow
--   gap: an outage this call noticed first (lib.lua observe_outage), ms; 0
--
-- Invariants kept: a claimed job stays the head of its lane (the lane is
-- held); the number of active:Q members never exceeds the queue's cap.
--
-- Refused at maxmemory (no allow-oom): claiming grows memory (records,
-- events, leases), so at the limit the fleet stops claiming while outcomes,
-- renewals and the reaper (allow-oom) still get through.

-- {{ before lib.lua (embed.py puts this block in front of lib.lua)
-- The idle fast path. Every worker asks an idle tenant now and then (its
-- poll); when no ready list holds an entry and nothing in the expiry index
-- or the schedule is due, the answer is "nothing; the next run_at is D ms
-- away" -- the full path's answer, given here before lib.lua's functions
-- are built, which were most of such a call's cost (~20 us of Redis time
-- against ~3). It writes nothing: no run(), and no outage check (that
-- guards the leases a claim makes). A tenant whose keys are of another
-- protocol, or of none yet, takes the full path, which refuses or starts it.
do
    local nq = tonumber(ARGV[7])
    if redis.call('GET', ARGV[1] .. 'protocol') == '@PROTOCOL@' then
        local empty = true
        for qi = 1, nq do
            if redis.call('LLEN', KEYS[4 + 2 * qi]) > 0 then
                empty = false
                break
            end
        end
        if empty then
            -- Redis's clock only when something waits for a time.
            local e = redis.call('ZRANGE', KEYS[4], '0', '0', 'WITHSCORES')
            local s = redis.call('ZRANGE', KEYS[2], '0', '0', 'WITHSCORES')
            if not e[2] and not s[2] then return { {}, {}, -1, 0, 0 } end
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            if (not e[2] or tonumber(e[2]) > now) and (not s[2] or tonumber(s[2]) > now) then
                -- An expiry is a due time too (the full path's due_in).
                local due = s[2] and tonumber(s[2])
                if e[2] and (not due or tonumber(e[2]) < due) then due = tonumber(e[2]) end
                return { {}, {}, due and due - now or -1, 0, 0 }
            end
        end
    end
end
-- }} before lib.lua

local worker, lease = ARGV[3], tonumber(ARGV[4])
local want, KEEP_FAILED_ARG = tonumber(ARGV[5]), tonumber(ARGV[6])
-- Read when needed: most calls end nothing (the setting costs an HMGET).
local function keep_failed() return setting('keep_failed', KEEP_FAILED_ARG) end

-- A queue's cap here. In partition 0 of a partitioned tenant the caller
-- passes the whole cap and its share is taken here, by the count in force
-- (settings.partitions, this slot): a worker whose registry predates the
-- count must not run partition 0 with the whole cap while others run the
-- other partitions with their shares (DESIGN.md section 11, "Partitions").
-- Other partitions are claimed only by workers that know the count.
local function cap_of(cap)
    if cap <= 0 or string.find(P, '#', 1, true) then return cap end
    local k = setting('partitions', 1)
    if k < 2 then return cap end
    local share = math.floor(cap / k) + ((cap % k) > 0 and 1 or 0)
    return share > 0 and share or 1
end
local nq = tonumber(ARGV[7])
-- Queues paused fleet-wide (pause.lua): nothing is claimed from them; due
-- and expired jobs are still moved. A key of another type reads as nothing
-- paused rather than stopping every claim (fsck reports it).
local PAUSED = {}
do
    local r = redis.pcall('SMEMBERS', P .. 'paused')
    if type(r) == 'table' and not r.err then
        for _, q in ipairs(r) do PAUSED[q] = true end
    end
end
local SWEEP = '256'
local K_EXPIRING = P .. 'expiring'
local FIELDS = job_fields('cancel', 'payload', 'timeout', 'backoff', 'spool', 'enqueued', 'queued_at')

return run(function()
    local now = now_ms()
    local deadline_s -- now + lease, the lease deadline of the jobs claimed
    -- Tokens unique across restores: a Redis restored from older data (an
    -- RDB, or AOF everysec after a crash) counts `fence` again from an older
    -- value, and a reissued token would let a stale attempt renew and finish
    -- the new one. The claim's Redis time in microseconds makes them differ.
    local token_sfx = '-' .. NOW_US
    -- Leases made after an outage must not be moved as if they predated it.
    local gap, unrecorded = outage_before_claim(now, lease)

    -- The earliest schedule entry, read first: when it is not due there is
    -- nothing to promote, and unless this run writes the schedule it is also
    -- the next_due of the reply (one read instead of two per call).
    local first = redis.call('ZRANGE', K_SCHEDULE, '0', '0', 'WITHSCORES')
    if first[2] and tonumber(first[2]) <= now then
        first = nil
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_SCHEDULE, '-inf', num_s(now), 'LIMIT', '0', SWEEP)) do
            redis.call('ZREM', K_SCHEDULE, id)
            local j = job_get(id)
            if j and LIVE[j.status] and is_head(j) then
                make_head_ready(j, now)
            end
        end
    end
    local schedule_writes = SCHEDULE_WRITES

    for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_EXPIRING, '-inf', num_s(now), 'LIMIT', '0', SWEEP)) do
        redis.call('ZREM', K_EXPIRING, id)
        local j = job_get(id)
        if j and LIVE[j.status] then
            end_waiting(j, 'expired', now, keep_failed(), { 'error', 'expired: not started before its expiry' })
            emit('job.expired', j, '', '')
        end
    end

    local jobs, bad = {}, {}
    local got = 0
    local emptied = {} -- queue index -> READY_PUSHES when its ready list ran dry
    for qi = 1, nq do
        if got >= want then break end
        local qname, cap = ARGV[6 + 2 * qi], cap_of(tonumber(ARGV[7 + 2 * qi]))
        local rk, ak = KEYS[4 + 2 * qi], KEYS[5 + 2 * qi]
        local room = want - got
        if PAUSED[qname] then room = 0 end
        if cap > 0 then room = math.min(room, cap - redis.call('ZCARD', ak)) end
        while room > 0 do
            -- One LPOP takes as many entries as could still be claimed: each is
            -- then claimed or dropped as a tombstone, as if popped one by one
            -- (this loop pushes only at the tail, behind what it popped).
            local pushes, asked = READY_PUSHES, room
            local ids = redis.call('LPOP', rk, num_s(asked))
            if not ids then
                emptied[qi] = pushes
                break
            end
            ids.key = rk
            POPPED = ids
            for i, id in ipairs(ids) do
                ids.next = i + 1
                local j, why = job_get(id, FIELDS)
                if not j then
                    if why ~= 'missing' then drop_corrupt(id, why, now, keep_failed()) end
                    bad[#bad + 1] = id
                    bad[#bad + 1] = why
                elseif j.status == 'queued' and j.queue == qname and is_head(j) then
                    if j.expires > 0 and j.expires <= now then
                        end_waiting(j, 'expired', now, keep_failed(), { 'error', 'expired: not started before its expiry' })
                        emit('job.expired', j, '', '')
                    elseif j.cancel == '1' then
                        end_waiting(j, 'cancelled', now, keep_failed(), { 'error', 'cancelled' })
                        emit('job.cancelled', j, '', '')
                    else
                        local jk = P .. 'job:' .. id
                        -- One text for the record and the reply (exact up to 2^53).
                        local token = string.format('%d', redis.call('INCR', P .. 'fence')) .. token_sfx
                        j.attempt = j.attempt + 1
                        redis.call('HSET', jk, 'status', 'active', 'attempt', num_s(j.attempt),
                            'started', num_s(now), 'worker', worker, 'token', token)
                        if j.cancel then redis.call('HDEL', jk, 'cancel') end -- a stale "0"
                        -- The leases of this queue go in with one ZADD after the
                        -- loop, before anything reads active:Q again.
                        deadline_s = deadline_s or num_s(now + lease)
                        defer('ZADD', ak, deadline_s, id)
                        -- An expiry bounds the wait before the first start only: a
                        -- job handed back, lost or retrying has been claimed already.
                        if j.expires > 0 then
                            redis.call('ZREM', K_EXPIRING, id)
                            redis.call('HDEL', jk, 'expires')
                        end
                        count('queued', j.queue, -1)
                        emit('job.started', j, worker, '')
                        local k = #jobs
                        jobs[k + 1] = id
                        jobs[k + 2] = token
                        jobs[k + 3] = j.kind
                        jobs[k + 4] = j.queue
                        jobs[k + 5] = j.lane
                        jobs[k + 6] = j.payload or 'null'
                        jobs[k + 7] = str(j.attempt)
                        jobs[k + 8] = str(j.attempts)
                        jobs[k + 9] = j.timeout or '0'
                        jobs[k + 10] = j.backoff or '0'
                        jobs[k + 11] = j.spool or ''
                        -- Runnable since: queued anew (retry, hand-back, lost), else enqueued;
                        -- the end of a delay or backoff when later (run_at).
                        local since = tonumber(j.queued_at or j.enqueued) or now
                        if j.run_at > since then since = j.run_at end
                        jobs[k + 12] = str(now > since and now - since or 0)
                        got = got + 1
                        room = room - 1
                    end
                end
            end
            POPPED = nil
            if #ids < asked and READY_PUSHES == pushes then
                emptied[qi] = pushes
                break
            end
        end
        flush_deferred(ak)
    end

    if got > 0 and unrecorded then redis.call('SET', P .. 'alive', num_s(now)) end
    local more = 0
    for qi = 1, nq do
        local cap = cap_of(tonumber(ARGV[7 + 2 * qi]))
        -- A list this run emptied is still empty if nothing was pushed since;
        -- a paused queue's jobs are not for claiming.
        if not PAUSED[ARGV[6 + 2 * qi]] and emptied[qi] ~= READY_PUSHES and redis.call('LLEN', KEYS[4 + 2 * qi]) > 0 and
            (cap == 0 or redis.call('ZCARD', KEYS[5 + 2 * qi]) < cap) then
            more = 1
            break
        end
    end
    if not first or SCHEDULE_WRITES ~= schedule_writes then
        first = redis.call('ZRANGE', K_SCHEDULE, '0', '0', 'WITHSCORES')
    end
    local due = first[2] and tonumber(first[2])
    -- The next expiry is a due time too: only a claim ends a job that waited
    -- too long, and an idle tenant's polls back off to seconds (the reply
    -- replaces what the worker knew of due times, publish_due's included).
    local e = redis.call('ZRANGE', K_EXPIRING, '0', '0', 'WITHSCORES')
    if e[2] and (not due or tonumber(e[2]) < due) then due = tonumber(e[2]) end
    local due_in = -1
    if due then
        due_in = due - now
        if due_in < 0 then due_in = 0 end
    end
    publish_due(now)
    return { jobs, bad, due_in, more, gap }
end)

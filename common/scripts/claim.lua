-- claim.lua: promote due jobs, expire stale ones, then claim up to `want`
-- runnable jobs for one worker, queues in strict priority order.
--
-- KEYS: 1 events, 2 schedule, 3 stats, 4 expiring, 5 fence,
--       then per queue i: ready:Q_i, active:Q_i
-- ARGV: 1 prefix, 2 events cap, 3 worker name, 4 lease_ms, 5 want,
--       6 keep_failed_s, 7 nq, then per queue: name, max_active (0: no cap)
--
-- Effect:
--  1. heads in schedule whose run_at has come go to ready:Q (job.queued);
--  2. waiting jobs whose expiry has come end `expired` (job.expired);
--  3. claim: pop lane heads from ready:Q while the queue is under its cap;
--     each claimed job gets attempt+1, a fresh fencing token (INCR fence), a
--     lease (active:Q scored by now+lease_ms) and a job.started event.
--     Entries that are tombstones are dropped; unreadable records are
--     dropped and reported.
-- Returns { jobs, bad, next_due, more }:
--   jobs: 11 entries per claimed job: id token kind queue lane payload
--         attempt attempts timeout_ms backoff_ms spool
--   bad: 2 entries per unreadable record: id, reason
--   next_due: the earliest run_at in schedule (ms), or -1
--   more: 1 when a ready list still holds jobs the caps would allow
--
-- Invariants kept: a claimed job stays the head of its lane (the lane is
-- held); the number of active:Q members never exceeds the queue's cap.

local worker, lease = ARGV[3], tonumber(ARGV[4])
local want, keep_failed = tonumber(ARGV[5]), tonumber(ARGV[6])
local nq = tonumber(ARGV[7])
local now = now_ms()
local SWEEP = 256

for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'schedule', '-inf', now, 'LIMIT', 0, SWEEP)) do
    redis.call('ZREM', P .. 'schedule', id)
    local j = job_get(id)
    if j and LIVE[j.status] and is_head(j) then
        make_head_ready(j, now)
    end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', now, 'LIMIT', 0, SWEEP)) do
    redis.call('ZREM', P .. 'expiring', id)
    local j = job_get(id)
    if j and LIVE[j.status] then
        end_waiting(j, 'expired', now, keep_failed, { 'error', 'expired: not started before its expiry' })
        emit('job.expired', j, '', '')
    end
end

local jobs, bad = {}, {}
local got = 0
for qi = 1, nq do
    if got >= want then break end
    local qname, cap = ARGV[6 + 2 * qi], tonumber(ARGV[7 + 2 * qi])
    local rk, ak = KEYS[4 + 2 * qi], KEYS[5 + 2 * qi]
    local room = want - got
    if cap > 0 then room = math.min(room, cap - redis.call('ZCARD', ak)) end
    while room > 0 do
        local id = redis.call('LPOP', rk)
        if not id then break end
        local j, why = job_get(id)
        if not j then
            if why ~= 'missing' then drop_corrupt(id, why, now, keep_failed) end
            bad[#bad + 1] = id
            bad[#bad + 1] = why
        elseif j.status == 'queued' and j.queue == qname and is_head(j) then
            if j.expires > 0 and j.expires <= now then
                end_waiting(j, 'expired', now, keep_failed, { 'error', 'expired: not started before its expiry' })
                emit('job.expired', j, '', '')
            else
                local jk = P .. 'job:' .. id
                local token = redis.call('INCR', P .. 'fence')
                j.attempt = j.attempt + 1
                redis.call('HSET', jk, 'status', 'active', 'attempt', j.attempt,
                    'started', now, 'worker', worker, 'token', token)
                redis.call('HDEL', jk, 'cancel')
                redis.call('ZADD', ak, now + lease, id)
                -- An expiry bounds the wait before the first start only: a
                -- job handed back, lost or retrying has been claimed already.
                if j.expires > 0 then
                    redis.call('ZREM', P .. 'expiring', id)
                    redis.call('HDEL', jk, 'expires')
                end
                count('queued', j.queue, -1)
                emit('job.started', j, worker, '')
                local x = redis.call('HMGET', jk, 'payload', 'timeout', 'backoff', 'spool')
                jobs[#jobs + 1] = id
                jobs[#jobs + 1] = tostring(token)
                jobs[#jobs + 1] = j.kind
                jobs[#jobs + 1] = j.queue
                jobs[#jobs + 1] = j.lane
                jobs[#jobs + 1] = x[1] or 'null'
                jobs[#jobs + 1] = tostring(j.attempt)
                jobs[#jobs + 1] = tostring(j.attempts)
                jobs[#jobs + 1] = x[2] or '0'
                jobs[#jobs + 1] = x[3] or '0'
                jobs[#jobs + 1] = x[4] or ''
                got = got + 1
                room = room - 1
            end
        end
    end
end

local more = 0
for qi = 1, nq do
    local cap = tonumber(ARGV[7 + 2 * qi])
    if redis.call('LLEN', KEYS[4 + 2 * qi]) > 0 and
        (cap == 0 or redis.call('ZCARD', KEYS[5 + 2 * qi]) < cap) then
        more = 1
        break
    end
end
local first = redis.call('ZRANGE', P .. 'schedule', 0, 0, 'WITHSCORES')
local next_due = -1
if first[2] then next_due = tonumber(first[2]) end
return { jobs, bad, next_due, more }

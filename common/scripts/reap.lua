-- reap.lua: take back the jobs whose lease expired (their worker died, hung
-- or was cut off from Redis for longer than the lease). Any worker calls
-- it, with jitter; one call per period does the work (below).
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events queues stats failed
--@ argv: prefix:str events_cap:int keep_failed_s:s limit:int lease_ms:ms
--@ reply: pairs:list gap:int wait:int
--@ reply.pairs taken*: id:str status:str
--
-- KEYS: 1 events, 2 queues, 3 stats, 4 failed
-- ARGV: 1 prefix, 2 events cap, 3 keep_failed_s, 4 limit, 5 lease_ms (the
--       caller's, for observe_outage)
--
-- Effect: first observe_outage (lib.lua): after a gap in which no lease
-- script could run (Redis stopped, restarting, unreachable), leases valid
-- when the gap began are moved on, so a Redis outage is never taken for
-- the death of every worker. Then per expired lease (the expiry is checked
-- here, inside the script, so two reapers cannot both act on one lease): a
-- death counts as an attempt. With attempts left the job goes back to the
-- head of its lane and the front of ready:Q (job.lost); on its last attempt
-- it ends failed (job.failed, data.lost = true), so a job that kills its
-- worker every time cannot crash-loop the fleet. A job whose cancel was
-- requested while it ran ends cancelled instead: the request must not die
-- with the worker that would have honoured it.
-- Returns { pairs, gap, wait }: pairs are 2 entries per job: id and its new
-- status (queued/failed/cancelled), or id and "corrupt: ..." for unreadable
-- records; gap: the outage observed in ms (0: none); wait: 0 when this call
-- reaped, else the ms until the next reap of the tenant is due (another
-- caller reaped within the period: the block below). A call that took
-- `limit` leases of a queue deletes P reaped, so the next caller reaps
-- again at once instead of waiting a period (the worker calls again then).
--
-- Allowed at maxmemory (allow-oom): taking back the jobs of dead workers
-- must go on under memory pressure.

-- {{ before lib.lua (embed.py puts this block in front of lib.lua)
-- One reaper per period, and an idle tenant's reap before lib.lua.
-- Every worker calls this for every tenant; one run per sixth of the
-- shortest lease is all the fleet needs (expired leases are found that
-- often, and P alive keeps the cadence observe_outage relies on). So a run
-- sets P reaped to the Redis time a sixth of the shortest lease later (and
-- to expire then), and a call before that time returns at once with the ms
-- left: the worker asks again only then (plus its jitter), and the first
-- caller after it reaps. More left than the caller's own period is not
-- what this script set (Redis's clock went back): reap. (The time is the
-- value, not read with PTTL: the ACL users of deploy/redis-acl may lack
-- PTTL, and a command refused inside a script fails the whole reap.)
-- In an idle tenant nothing has expired and there was no outage, and the
-- full path's only effect is observe_outage's bookkeeping: P alive and the
-- caller's entry in P leases. This block does exactly that before lib.lua's
-- functions are built (most of such a call's cost). It judges the gap
-- against the shortest lease of every entry in P leases -- at least as
-- strict as observe_outage, which counts only callers still running -- so
-- whatever it lets through, observe_outage finds no gap in either; anything
-- else (a possible gap, an expired lease, a tenant of another protocol or
-- none) takes the full path. 0.3 and the hour are lib.lua's
-- OUTAGE_FRACTION and its trim of P leases.
do
    local P, lease = ARGV[1], tonumber(ARGV[5])
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local due = tonumber(redis.call('GET', P .. 'reaped') or '')
    if due and due > now and due - now <= lease / 6 then return { {}, 0, due - now } end
    if redis.call('GET', P .. 'protocol') == '@PROTOCOL@' then
        local shortest = lease
        for _, l in ipairs(redis.call('ZRANGE', P .. 'leases', '0', '-1')) do
            l = tonumber(l)
            if l and l < shortest then shortest = l end
        end
        local period = math.max(1, math.floor(shortest / 6))
        redis.call('SET', P .. 'reaped', string.format('%d', now + period), 'PX', string.format('%d', period))
        local last = tonumber(redis.call('GET', P .. 'alive') or '')
        local gap, quiet = last and now - last, true
        if gap and gap <= shortest * 0.3 and gap >= -shortest * 0.3 then
            local now_s = string.format('%d', now)
            for _, q in ipairs(redis.call('SMEMBERS', KEYS[2])) do
                if #redis.call('ZRANGEBYSCORE', P .. 'active:' .. q, '-inf', now_s, 'LIMIT', '0', '1') > 0 then
                    quiet = false
                    break
                end
            end
            if quiet then
                redis.call('SET', P .. 'alive', now_s)
                redis.call('ZADD', P .. 'leases', now_s, string.format('%d', lease))
                redis.call('ZREMRANGEBYSCORE', P .. 'leases', '-inf', string.format('%d', now - 3600000))
                return { {}, 0, 0 }
            end
        end
    end
end
-- }} before lib.lua

local KEEP_FAILED_ARG, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
-- Read when needed: most calls end nothing (the setting costs an HMGET).
local function keep_failed() return setting('keep_failed', KEEP_FAILED_ARG) end
local now = now_ms()
local gap = observe_outage(now, tonumber(ARGV[5]))
local out = {}
local more = false
for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
    local ak = P .. 'active:' .. q
    local woke = false
    local ids = redis.call('ZRANGEBYSCORE', ak, '-inf', now, 'LIMIT', 0, limit)
    -- More may have expired than one call takes (a worker that died holding
    -- more than `limit`): the next caller must not be told to wait a period.
    if #ids >= limit then more = true end
    for _, id in ipairs(ids) do
        redis.call('ZREM', ak, id)
        local j, why = job_get(id)
        if not j then
            if why ~= 'missing' then drop_corrupt(id, why, now, keep_failed()) end
            out[#out + 1] = id
            out[#out + 1] = why
        elseif j.status == 'active' then
            local msg = 'lost: the lease of worker ' .. j.worker .. ' expired during attempt ' .. j.attempt
            if j.cancel == '1' then
                finish_job(j, 'cancelled', now, keep_failed(), { 'error', 'cancelled while running; ' .. msg })
                emit('job.cancelled', j, j.worker, cjson.encode({ error = msg, lost = true }))
                out[#out + 1] = id
                out[#out + 1] = 'cancelled'
            elseif j.attempt >= j.attempts then
                finish_job(j, 'failed', now, keep_failed(), { 'error', msg })
                emit('job.failed', j, j.worker, cjson.encode({ error = msg, lost = true }))
                out[#out + 1] = id
                out[#out + 1] = 'failed'
            else
                -- Runnable again from now (queued_at, as at a hand-back).
                redis.call('HSET', P .. 'job:' .. id, 'status', 'queued', 'error', msg, 'queued_at', num_s(now))
                count('queued', j.queue, 1)
                count('lost', j.queue, 1)
                push_ready(j.queue, id, true, not woke)
                woke = true
                emit('job.lost', j, j.worker, cjson.encode({ error = msg }))
                out[#out + 1] = id
                out[#out + 1] = 'queued'
            end
        end
    end
end
if more then redis.call('DEL', P .. 'reaped') end
publish_due(now)
return { out, gap, 0 }

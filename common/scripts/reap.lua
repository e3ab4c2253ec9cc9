-- reap.lua: take back the jobs whose lease expired (their worker died, hung
-- or was cut off from Redis for longer than the lease). Any worker runs it,
-- with jitter.
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events queues stats failed
--@ argv: prefix:str events_cap:int keep_failed_s:s limit:int lease_ms:ms
--@ reply: pairs:list gap:int
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
-- Returns { pairs, gap }: pairs are 2 entries per job: id and its new status
-- (queued/failed/cancelled), or id and "corrupt: ..." for unreadable
-- records; gap: the outage observed in ms (0: none).
--
-- Allowed at maxmemory (allow-oom): taking back the jobs of dead workers
-- must go on under memory pressure.

local KEEP_FAILED_ARG, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
-- Read when needed: most calls end nothing (the setting costs an HMGET).
local function keep_failed() return setting('keep_failed', KEEP_FAILED_ARG) end
local now = now_ms()
local gap = observe_outage(now, tonumber(ARGV[5]))
local out = {}
for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
    local ak = P .. 'active:' .. q
    local woke = false
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', ak, '-inf', now, 'LIMIT', 0, limit)) do
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
                redis.call('HSET', P .. 'job:' .. id, 'status', 'queued', 'error', msg)
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
publish_due(now)
return { out, gap }

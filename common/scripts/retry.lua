-- retry.lua: give finished-unsuccessfully jobs a fresh set of attempts.
-- script-flags:
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events stats failed
--@ argv: prefix:str events_cap:int mode:str
--@ argv arg*: value:str
--@ reply job*: id:str status:str
--
-- KEYS: 1 events, 2 stats, 3 failed
-- ARGV: 1 prefix, 2 events cap, 3 mode ("ids" or "failed"), then
--       ids: the job ids;  failed: the largest number of jobs to take from
--       the failed index in this call, and how many of its oldest entries to
--       skip (jobs left there by an earlier call: their keys were held)
--
-- Effect per failed, cancelled or expired job: attempt back to 0, status
-- queued, retention removed, out of the failed index, appended again at the
-- tail of its lane (enqueue order: it is enqueued anew); head of the lane
-- when the lane is free. One job.queued event (data.retry = true).
-- Returns 2 entries per id: id, and "queued", "missing", "corrupt: ...",
-- "held: ID" (its unique key is held by job ID, enqueued since it
-- finished) or the status that made it not retryable.

local mode = ARGV[3]
local now = now_ms()
local ids = {}
if mode == 'failed' then
    local skip = tonumber(ARGV[5] or '0')
    ids = redis.call('ZRANGE', P .. 'failed', skip, skip + tonumber(ARGV[4]) - 1)
else
    for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local RETRYABLE = { failed = true, cancelled = true, expired = true }
local out = {}
for _, id in ipairs(ids) do
    local j, why = job_get(id)
    out[#out + 1] = id
    if not j then
        redis.call('ZREM', P .. 'failed', id)
        out[#out + 1] = why
    elseif not RETRYABLE[j.status] then
        out[#out + 1] = j.status
    elseif j.unique ~= '' and (unique_holder(j.unique, now) or id) ~= id then
        out[#out + 1] = 'held: ' .. unique_holder(j.unique, now)
    else
        local jk = P .. 'job:' .. id
        redis.call('PERSIST', jk)
        redis.call('HDEL', jk, 'finished', 'cancel', 'expires', 'run_at', 'result')
        redis.call('HSET', jk, 'status', 'queued', 'attempt', 0, 'queued_at', now) -- OLDEST of stats
        redis.call('ZREM', P .. 'failed', id)
        if j.unique ~= '' then redis.call('SET', P .. 'unique:' .. j.unique, id) end -- no expiry while live
        j.status, j.attempt, j.run_at = 'queued', 0, 0
        count('queued', j.queue, 1)
        count('retried_manual', j.queue, 1)
        emit('job.queued', j, '', cjson.encode({ retry = true }))
        local lk = P .. 'lane:' .. j.lane
        redis.call('LREM', lk, 0, id)
        if redis.call('RPUSH', lk, id) == 1 then make_head_ready(j, now) end
        out[#out + 1] = 'queued'
    end
end
publish_due(now)
return out

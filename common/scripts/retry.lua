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
-- finished), "partitioned: ..." (below) or the status that made it not
-- retryable.
--
-- Partitions (DESIGN.md section 11): a job kept in partition 0 from before
-- the tenant was partitioned may belong, by its lane, to another partition
-- now; queued again here it would run beside its lane's new jobs there.
-- It is refused: enqueue it again (it then goes where its lane lives).

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

-- CRC16/XMODEM, as common/slot.c: which partition a routing key is in.
local function crc16(s)
    local crc = 0
    for i = 1, #s do
        crc = bit.bxor(crc, bit.lshift(string.byte(s, i), 8))
        for _ = 1, 8 do
            if bit.band(crc, 0x8000) ~= 0 then
                crc = bit.band(bit.bxor(bit.lshift(crc, 1), 0x1021), 0xFFFF)
            else
                crc = bit.band(bit.lshift(crc, 1), 0xFFFF)
            end
        end
    end
    return crc
end
local NPARTS = not string.find(P, '#', 1, true) and
    tonumber(redis.call('HGET', P .. 'settings', 'partitions') or '1') or 1

-- The partition the job's routing key (partition.h: its lane, else its
-- unique key, else its id) is in now.
local function home_of(j, id)
    local key = j.lane ~= id and j.lane or (j.unique ~= '' and j.unique or id)
    return crc16(key) % NPARTS
end
local out = {}
for _, id in ipairs(ids) do
    local j, why = job_get(id)
    out[#out + 1] = id
    if not j then
        redis.call('ZREM', P .. 'failed', id)
        out[#out + 1] = why
    elseif not RETRYABLE[j.status] then
        out[#out + 1] = j.status
    elseif NPARTS > 1 and home_of(j, id) ~= 0 then
        out[#out + 1] = 'partitioned: enqueued before the tenant had ' .. NPARTS ..
            ' partitions; its lane lives in partition ' .. home_of(j, id) .. ' now: enqueue it again'
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

-- delete.lua: delete jobs that have finished or still wait.
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events schedule stats expiring failed
--@ argv: prefix:str events_cap:int status:str queue:str n:int
--@ argv job*n: id:str
--@ reply job*: id:str status:str
--
-- KEYS: 1 events, 2 schedule, 3 stats, 4 expiring, 5 failed
-- ARGV: 1 prefix, 2 events cap, 3 status, 4 queue: only jobs of that
--       status / queue are deleted ('': any; lanework purge), 5 n, then n
--       job ids
--
-- Effect per job that finished (succeeded, failed, cancelled, expired) or
-- waits (queued, scheduled): its record is deleted, and with it every
-- trace -- its place in the failed index, its unique key when it holds it,
-- and for a waiting job its place in the lane (the next job heads the lane
-- when it was the head), the schedule and the expiry index; the current
-- counters go down (the running totals keep what happened). A ready-list
-- entry stays behind as a tombstone, which every reader skips (removing it
-- would cost O(ready)). One job.deleted event with the status it had.
-- A running job is left alone ("active": cancel it first, and delete it
-- once it has ended): its worker would record an outcome for a record
-- that is gone.
-- Returns 2 entries per id: id, and "deleted", "skipped" (another status or
-- queue than asked: left alone), "active", "missing" or "corrupt: ..."
-- (fsck --repair deals with those).
--
-- allow-oom: deleting is how an operator makes room.

local now = now_ms()
local only_status, only_queue = ARGV[3], ARGV[4]
local out = {}
for i = 0, tonumber(ARGV[5]) - 1 do
    local id = ARGV[6 + i]
    local j, why = job_get(id)
    local res
    if not j then
        res = why
    elseif (only_status ~= '' and j.status ~= only_status) or (only_queue ~= '' and j.queue ~= only_queue) then
        res = 'skipped'
    elseif j.status == 'active' then
        res = 'active'
    else
        if LIVE[j.status] then
            count(j.status, j.queue, -1)
            redis.call('ZREM', K_SCHEDULE, id)
            redis.call('ZREM', KEYS[4], id)
            local lk = P .. 'lane:' .. j.lane
            if redis.call('LINDEX', lk, '0') == id then
                redis.call('LPOP', lk)
                lane_advance(j.lane, now)
            else
                redis.call('LREM', lk, '1', id)
            end
        else
            redis.call('ZREM', KEYS[5], id)
        end
        if j.unique ~= '' and redis.call('GET', P .. 'unique:' .. j.unique) == id then
            redis.call('DEL', P .. 'unique:' .. j.unique)
        end
        redis.call('DEL', P .. 'job:' .. id)
        emit('job.deleted', j, '', j.status)
        res = 'deleted'
    end
    out[#out + 1] = id
    out[#out + 1] = res
end
publish_due(now)
return out

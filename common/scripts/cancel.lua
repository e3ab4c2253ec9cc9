-- cancel.lua: cancel one job.
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events schedule stats expiring
--@ argv: prefix:str events_cap:int keep_failed_s:s id:str
--@ result: status:str
--
-- KEYS: 1 events, 2 schedule, 3 stats, 4 expiring
-- ARGV: 1 prefix, 2 events cap, 3 keep_failed_s, 4 id
--
-- Effect: a queued or scheduled job ends cancelled at once (job.cancelled)
-- and, if it headed its lane, the lane moves on. An active job gets
-- cancel=1 and a message on P.."cancel": its worker stops the attempt (it
-- also learns it at its next lease renewal) and records "cancelled".
-- Returns "cancelled", "requested", "missing", "corrupt: ..." or the
-- terminal status the job already has.
--
-- Allowed at maxmemory (allow-oom): cancelling is how an operator sheds
-- load, and what it writes is small.

local keep_failed, id = setting('keep_failed', tonumber(ARGV[3])), ARGV[4]
local now = now_ms()
local j, why = job_get(id)
if not j then return why end
if LIVE[j.status] then
    end_waiting(j, 'cancelled', now, keep_failed, { 'error', 'cancelled' })
    emit('job.cancelled', j, '', '')
    publish_due(now)
    return 'cancelled'
end
if j.status == 'active' then
    redis.call('HSET', P .. 'job:' .. id, 'cancel', '1')
    redis.call('PUBLISH', P .. 'cancel', id)
    return 'requested'
end
return j.status

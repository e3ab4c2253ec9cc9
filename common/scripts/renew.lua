-- renew.lua: extend the leases of the attempts a worker is running.
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events
--@ argv: prefix:str events_cap:int lease_ms:ms n:int
--@ argv lease*n: id:str token:str
--@ reply: statuses:list gap:int
--@ reply.statuses lease*: status:int
--
-- KEYS: 1 events (declared for the slot only)
-- ARGV: 1 prefix, 2 events cap, 3 lease_ms, 4 n, then n pairs: id token
--
-- Effect: first observe_outage (lib.lua): after a gap in which no lease
-- script could run, the leases still valid when it began are moved on by
-- the gap plus a grace. Then for each job still active under that token,
-- its lease deadline in active:Q becomes now + lease_ms.
-- Returns { statuses, gap }: one status per pair, in order: 1 the lease is
-- this attempt's and now extended, 2 the same and a cancel of the job was
-- requested (the worker stops it and reports "cancelled"), 0 the lease is
-- no longer this attempt's (the worker kills it and forgets its outcome);
-- gap: the outage observed, in ms (0: none), for the worker's log.
--
-- Allowed at maxmemory (allow-oom): renewals only move scores, and a
-- refused renewal would turn memory pressure into lost leases.

local lease, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local FIELDS = job_fields('token', 'cancel')
local now = now_ms()
local gap = observe_outage(now, lease)
local deadline = num_s(now + lease)
local statuses = {}
for i = 0, n - 1 do
    local id, token = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
    local j = job_get(id, FIELDS)
    if j and j.status == 'active' and j.token == token then
        redis.call('ZADD', P .. 'active:' .. j.queue, 'XX', deadline, id)
        statuses[i + 1] = j.cancel == '1' and 2 or 1
    else
        statuses[i + 1] = 0
    end
end
return { statuses, gap }

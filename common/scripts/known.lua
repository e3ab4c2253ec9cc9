-- known.lua: which of some jobs partition 0 of a partitioned tenant still
-- answers for from before the tenant was partitioned.
-- script-flags:
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: settings
--@ argv: prefix:str events_cap:int n:int
--@ argv job*n: id:str unique:str
--@ reply: open:int jobs:list
--@ reply.jobs job*: id:str why:str
--
-- KEYS: 1 settings (of partition 0)
-- ARGV: 1 prefix (partition 0's), 2 events cap (unused), 3 n, then n pairs:
--       the id and unique key ('' for none) of a job about to be enqueued
--       in another partition
--
-- Why (DESIGN.md section 11, "Partitions"): when a tenant's count goes from
-- 1 to K, the jobs that finished before stay in partition 0 until their
-- retention ends, and so do their unique keys (--unique-for). An id or a
-- unique key routes by the new count now, often to another partition, where
-- nothing of them is known: enqueueing it again there would make a second
-- job. settings.lua marks how long such records can live (legacy_until);
-- until then an enqueuer asks this script first, in partition 0, about each
-- job that carries its own id or a unique key and routes elsewhere, and
-- enqueues only those it is not answered for.
--
-- Not racy: no such record is written after the change (enqueue.lua in
-- partition 0 refuses a caller routing by the old count, and retry.lua a job
-- whose lane routes elsewhere), so a record absent here cannot appear later.
--
-- Effect: none while the window is open (legacy_until in the future); once
-- it has passed, the field is deleted and every job is unknown. Returns 1
-- while the window is open, else 0 (the caller can stop asking), then two
-- entries per job, as enqueue.lua would answer for it: the existing job's id
-- and why ('held STATUS' or 'exists STATUS'), or '' '' when it would be
-- created. Refused at maxmemory like enqueue.lua, whose call follows.

local n = tonumber(ARGV[3])
local now = now_ms()
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'legacy_until')) or 0
local open = until_ms > now
if until_ms > 0 and not open then redis.call('HDEL', KEYS[1], 'legacy_until') end

local out = {}
for i = 0, n - 1 do
    local b = 4 + i * 2
    local existing, why = nil, nil
    if open then existing, why = job_existing(ARGV[b], ARGV[b + 1], now) end
    out[#out + 1] = existing or ''
    out[#out + 1] = why or ''
end
return { open and 1 or 0, out }

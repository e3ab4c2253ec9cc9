-- settings.lua: publish what a worker knows of a tenant that other writers
-- cannot: its settings (common/settings.h), which every other script
-- applies in place of its caller's arguments (lib.lua setting), and the
-- kinds its module serves, which the CLI checks enqueues against
-- (enqueue-cli/kinds.c).
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: settings kinds
--@ argv: prefix:str events_cap:int n:int
--@ argv setting*n: name:str value:int
--@ argv kind*: name:str
--@ reply old*: value:str
--
-- KEYS: 1 settings, 2 kinds
-- ARGV: 1 prefix, 2 events cap (unused), 3 n, then n pairs: name value
--       (events_max, keep_succeeded, keep_failed), then the kinds the
--       tenant's module serves ("*": every kind; none without a module)
--
-- Effect: HSET of every pair; SADD of the kinds -- a union of what every
-- worker serves, so a rolling upgrade never makes a new kind look unserved.
-- Returns the value each setting had before, in order ('' when unset), so
-- that a worker whose flags disagree with what another published can say
-- so. `partitions` (sent for partition 0 only) is the exception: the count
-- enqueuers route by (enqueue.lua) changes only from absent/1 to another
-- value, and only while no job of the partition waits or runs -- routing
-- by a new count would split a lane with jobs across two partitions. Its
-- entry in the reply is the value in force after the call, so a worker
-- whose registry asks for another count can say that it was not applied.
-- allow-oom: a few small fields, and an outcome recorded with a stale
-- retention would be worse.

local n = tonumber(ARGV[3])
local P = ARGV[1]

-- A job of this keyspace waits or runs (the counters every transition
-- keeps), a failed one is kept (retry --all-failed would queue it in its
-- old partition), or a queue is paused.
local function unfinished()
    if redis.call('ZCARD', P .. 'failed') > 0 then return true end
    -- A paused queue: the partitions made by the change would not know it
    -- (pause.lua writes each partition's own set).
    -- A key of another type pauses nothing (claim.lua): it holds nothing.
    local paused = redis.pcall('SCARD', P .. 'paused')
    if type(paused) == 'number' and paused > 0 then return true end
    for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
        local c = redis.call('HMGET', P .. 'stats', 'queued:' .. q, 'scheduled:' .. q)
        if (tonumber(c[1]) or 0) > 0 or (tonumber(c[2]) or 0) > 0 or
            redis.call('ZCARD', P .. 'active:' .. q) > 0 then
            return true
        end
    end
    return false
end

-- Partition 0 keeps the records and unique keys of the jobs that finished
-- before the count changed, and an id or unique key routes elsewhere now:
-- until the last of them expires, an enqueue routed to another partition
-- asks partition 0 first (known.lua), or a reused id would make a second
-- job. No record outlives ttl_max (the longest retention finish_job ever
-- gave, lib.lua) or the retentions set now, whichever is longer.
-- legacy_seen marks that the window of the count in force was opened: a
-- count applied by a release without known.lua (a rolling upgrade shares
-- the registry) gets its window from the first worker that knows of it.
local function legacy_window()
    local r = redis.call('HMGET', KEYS[1], 'ttl_max', 'keep_succeeded', 'keep_failed')
    local s = math.max(tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0)
    if s > 0 then
        redis.call('HSET', KEYS[1], 'legacy_until', string.format('%d', now_ms() + s * 1000))
    end
    redis.call('HSET', KEYS[1], 'legacy_seen', '1')
end

local out = {}
for i = 4, 3 + 2 * n, 2 do
    local old = redis.call('HGET', KEYS[1], ARGV[i]) or ''
    if ARGV[i] == 'partitions' then
        local want = ARGV[i + 1]
        if want ~= (old ~= '' and old or '1') and (old == '' or old == '1') and not unfinished() then
            redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
            old = ARGV[i + 1]
            legacy_window()
        elseif old ~= '' and old ~= '1' and redis.call('HEXISTS', KEYS[1], 'legacy_seen') == 0 then
            legacy_window()
        end
        out[#out + 1] = old ~= '' and old or '1'
    else
        out[#out + 1] = old
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
end
if #ARGV > 3 + 2 * n then
    redis.call('SADD', KEYS[2], unpack(ARGV, 4 + 2 * n))
end
return out

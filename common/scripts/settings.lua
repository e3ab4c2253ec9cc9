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
-- so. allow-oom: a few small fields, and an outcome recorded with a stale
-- retention would be worse.

local n = tonumber(ARGV[3])
local out = {}
for i = 4, 3 + 2 * n, 2 do
    out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i]) or ''
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if #ARGV > 3 + 2 * n then
    redis.call('SADD', KEYS[2], unpack(ARGV, 4 + 2 * n))
end
return out

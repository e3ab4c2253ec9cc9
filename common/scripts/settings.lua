-- settings.lua: publish a tenant's settings (common/settings.h), which every
-- other script applies in place of its caller's arguments (lib.lua setting).
-- script-flags: allow-oom
--
-- KEYS: 1 settings
-- ARGV: 1 prefix, 2 events cap (unused), then pairs: name value
--       (events_max, keep_succeeded, keep_failed)
--
-- Effect: HSET of every pair. Returns the value each had before, in order
-- ('' when unset), so that a worker whose flags disagree with what another
-- published can say so. Refused by no OOM: three small fields, and an
-- outcome recorded with a stale retention would be worse.

local out = {}
for i = 3, #ARGV - 1, 2 do
    out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i]) or ''
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return out

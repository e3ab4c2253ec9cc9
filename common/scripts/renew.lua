-- renew.lua: extend the leases of the attempts a worker is running.
--
-- KEYS: 1 events (declared for the slot only)
-- ARGV: 1 prefix, 2 events cap, 3 lease_ms, 4 n, then n pairs: id token
--
-- Effect: for each job still active under that token, its lease deadline in
-- active:Q becomes now + lease_ms.
-- Returns { lost, cancel }: ids whose lease is no longer this attempt's (the
-- worker must stop them and forget their outcome), and ids whose
-- cancellation was requested (the worker stops them and reports
-- "cancelled").

local lease, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local lost, cancel = {}, {}
for i = 0, n - 1 do
    local id, token = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
    local j = job_get(id)
    if j and j.status == 'active' and j.token == token then
        redis.call('ZADD', P .. 'active:' .. j.queue, 'XX', now + lease, id)
        if j.cancel == '1' then cancel[#cancel + 1] = id end
    else
        lost[#lost + 1] = id
    end
end
return { lost, cancel }

-- fsck.lua: confirm (and in mode "repair", fix) the inconsistencies
-- `lanework fsck` suspects in one tenant (docs/DESIGN.md, section 4, "fsck").
-- script-flags: allow-oom
-- (checks must work at maxmemory; repairs write little)
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events stats schedule failed queues expiring
--@ argv: prefix:str events_cap:int mode:str keep_failed_s:s lease_ms:ms n:int
--@ argv item*n: check:str a:str b:str c:str
--@ reply item*: status:str text:str
--
-- KEYS: 1 events, 2 stats, 3 schedule, 4 failed, 5 queues, 6 expiring
-- ARGV: 1 prefix, 2 events cap, 3 mode ("check" or "repair"), 4 keep_failed_s,
--       5 lease_ms (given to a running job found without a lease), 6 n,
--       then n groups of 4: check a b c (unused arguments are "")
--
-- The CLI reads the tenant with SCAN/LRANGE/ZRANGE while the fleet runs, so
-- what it sees is not one instant: it only *suspects*. Each suspect is
-- checked again here, atomically, i.e. at a moment between two scripts, where
-- every invariant must hold: a problem confirmed here is real, never a
-- transient. A repair runs in the same call, right after its check confirmed
-- the problem, and does every check before its first write.
--
-- Checks (a, b, c):
--   type         key-suffix, expected type: a key of the wrong type
--   job_corrupt  id: an unreadable record (not yet marked failed)
--   job_lane     id: a live job is in its lane exactly once; a running job
--                is its lane's head
--   lane_foreign lane, id: a live job of another lane inside this lane
--   lane_head    lane: the head of the lane is live
--   job_place    id: a waiting head is in its structure (ready:Q or
--                schedule); a running job has a lease in active:Q
--   schedule     id: a schedule member is a scheduled lane head
--   active       queue, id: an active:Q member is a running job of queue Q
--   expiring     id: an expiring member is a waiting job
--   failed       id: a readable member of the failed index is failed
--   job_failidx  id: a failed job is in the failed index
--   unique       key: unique:KEY names a job that has that unique key, and
--                only lasts past its finish with an expiry (unique_for)
--   job_unique   id: a live job with a unique key holds it, without expiry
--   queue_set    queue: the queue is in the queues set (the reaper's list)
--   count        stats field, counted number, version: stats "queued:Q" or
--                "scheduled:Q" equals the number the CLI counted while the
--                tenant's last event id was `version` (a count can only be
--                taken by reading every record, which cannot be done inside
--                one script; every status change appends an event, so an
--                unchanged last event id means the count is still exact)
--
-- Returns 2 entries per item: a status and a text.
--   ok        no problem (any more)           info     not a problem: text says what was seen
--   problem   text says what is wrong         changed  the tenant changed since it was counted
--   repaired  text: the problem, what was done
--   cannot    text: the problem, why it was left alone
--   error     text: a Redis error met while checking (e.g. a key of the wrong type)

local mode, keep_failed = ARGV[3], setting('keep_failed', tonumber(ARGV[4]))
local lease, n = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local CHANGED = {}

local function running_or_live(j)
    return j.status == 'active' or LIVE[j.status]
end

-- unreadable(why): job_get's reason without its "corrupt: " prefix.
local function unreadable(why)
    return (string.gsub(why, '^corrupt: ', ''))
end

-- what(id): the record's status for messages, and the record when readable.
local function what(id)
    local j, why = job_get(id)
    if j then return j.status, j end
    if why == 'missing' then return 'missing' end
    return 'unreadable (' .. unreadable(why) .. ')'
end

local function lane_key(lane) return P .. 'lane:' .. lane end

local function occurrences(key, id)
    return #redis.call('LPOS', key, id, 'COUNT', 0)
end

local function zhas(key, id)
    return redis.call('ZSCORE', key, id) ~= false
end

local function version()
    local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
    if e[1] then return e[1][1] end
    return ''
end

-- place_head puts a live head where it belongs, without adding a second
-- ready-list entry when it has one already.
local function place_head(j)
    if j.status == 'queued' then
        if redis.call('LPOS', P .. 'ready:' .. j.queue, j.id) then return 'it is in ready:' .. j.queue end
        push_ready(j.queue, j.id, false)
        return 'queued it in ready:' .. j.queue
    elseif j.status == 'scheduled' then
        -- Out first: a due head left in the schedule would be promoted twice.
        redis.call('ZREM', KEYS[3], j.id)
        make_head_ready(j, now)
        if j.status == 'queued' then return 'it was due: queued it' end
        return 'scheduled it'
    end
    return 'it is running'
end

-- advance pops dead entries off the head of a lane and places the new head.
-- A live job of another lane found at the head stops it (lane_foreign
-- deals with that). Returns what it did.
local function advance(lane)
    local lk, popped = lane_key(lane), 0
    while true do
        local h = redis.call('LINDEX', lk, 0)
        if not h then
            return 'removed ' .. popped .. ' dead entries; the lane is empty'
        end
        local j = job_get(h)
        if j and running_or_live(j) then
            if j.lane ~= lane then
                return 'removed ' .. popped .. ' dead entries; next head ' .. h .. ' is of lane ' .. j.lane
            end
            return 'removed ' .. popped .. ' dead entries; new head ' .. h .. ': ' .. place_head(j)
        end
        redis.call('LPOP', lk)
        popped = popped + 1
    end
end

-- insert_in_order puts job j back into its lane before the first job
-- enqueued after it (enqueue order is the lane order). It may go in front of
-- a head that has not started (that head waits behind it again, out of the
-- schedule), never in front of a running one.
local function insert_in_order(j)
    local lk = lane_key(j.lane)
    local mine = tonumber(redis.call('HGET', P .. 'job:' .. j.id, 'enqueued')) or now
    local entries = redis.call('LRANGE', lk, 0, -1)
    for i, e in ipairs(entries) do
        local t = tonumber(redis.pcall('HGET', P .. 'job:' .. e, 'enqueued'))
        if t and t > mine and i > 1 and e ~= entries[1] then
            redis.call('LINSERT', lk, 'BEFORE', e, j.id)
            return 'put it back into lane ' .. j.lane .. ' before ' .. e
        end
        if t and t > mine and i == 1 then
            local hj = job_get(e)
            if not (hj and hj.status == 'active') then
                redis.call('LPUSH', lk, j.id)
                if hj and hj.status == 'scheduled' then redis.call('ZREM', KEYS[3], e) end
                return 'put it back at the head of lane ' .. j.lane .. ', before ' .. e .. '; ' .. place_head(j)
            end
        end
    end
    redis.call('RPUSH', lk, j.id)
    return 'put it back at the tail of lane ' .. j.lane
end

local CHECK, REPAIR = {}, {}

-- type ------------------------------------------------------------------
CHECK.type = function(suffix, expected)
    local t = redis.call('TYPE', P .. suffix).ok
    if t == expected or t == 'none' then return nil end
    return 'key ' .. P .. suffix .. ' is a ' .. t .. ', not a ' .. expected
end
REPAIR.type = function()
    return 'cannot', 'not ours to guess what it held: rename or delete it by hand'
end

-- job_corrupt -----------------------------------------------------------
local function quarantined(jk)
    return redis.call('TYPE', jk).ok == 'hash' and redis.call('HGET', jk, 'status') == 'failed'
        and redis.call('PTTL', jk) > 0
end

CHECK.job_corrupt = function(id)
    local j, why = job_get(id)
    if j or why == 'missing' then return nil end
    if quarantined(P .. 'job:' .. id) then
        return nil, 'job ' .. id .. ': corrupt record (' .. unreadable(why) ..
            '), marked failed; it expires with its retention'
    end
    return 'job ' .. id .. ': corrupt record (' .. unreadable(why) .. ')'
end
REPAIR.job_corrupt = function(id)
    local jk = P .. 'job:' .. id
    if redis.call('TYPE', jk).ok ~= 'hash' then
        return 'cannot', 'it is not a hash: rename or delete it by hand'
    end
    local _, why = job_get(id)
    local r = redis.call('HMGET', jk, 'status', 'queue', 'kind', 'lane', 'attempt')
    local status, queue = r[1], r[2]
    local msg = 'corrupt job record (' .. unreadable(why) .. ')'
    local queues = redis.call('SMEMBERS', KEYS[5])
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[6], id)
    for _, q in ipairs(queues) do
        redis.call('ZREM', P .. 'active:' .. q, id)
    end
    if queue and queue ~= '' then
        if LIVE[status] then count(status, queue, -1) end
        count('failed', queue, 1)
    end
    redis.call('HSET', jk, 'status', 'failed', 'finished', now, 'error', msg)
    redis.call('EXPIRE', jk, keep_failed)
    redis.call('ZADD', KEYS[4], now, id)
    emit('job.failed', { id = id, kind = r[3], lane = r[4], attempt = tonumber(r[5]) or 0 }, '',
        cjson.encode({ error = msg, fsck = true }))
    return 'repaired', 'marked it failed (it expires with the failed retention)'
end

-- job_lane --------------------------------------------------------------
CHECK.job_lane = function(id)
    local j = job_get(id)
    if not j or not running_or_live(j) then return nil end
    local k = occurrences(lane_key(j.lane), id)
    if k == 0 then return 'job ' .. id .. ': ' .. j.status .. ' but not in its lane ' .. j.lane end
    if k > 1 then
        return 'job ' .. id .. ': in its lane ' .. j.lane .. ' ' .. k .. ' times (expected once)'
    end
    local h = redis.call('LINDEX', lane_key(j.lane), 0)
    if j.status == 'active' and h ~= id then
        return 'job ' .. id .. ': active but not the head of its lane ' .. j.lane .. ' (head ' .. h .. ')'
    end
    return nil
end
-- drop_extra keeps the first of k > 1 entries of id (LREM with a count of 0
-- would remove them all).
local function drop_extra(lk, id, k)
    redis.call('LREM', lk, -(k - 1), id)
    return 'removed ' .. (k - 1) .. ' extra entries'
end

REPAIR.job_lane = function(id)
    local j = job_get(id)
    local lk = lane_key(j.lane)
    local k = occurrences(lk, id)
    local h = redis.call('LINDEX', lk, 0)
    if j.status == 'active' then
        if h == id then
            if k < 2 then return 'cannot', 'nothing to do (it heads its lane once)' end
            return 'repaired', drop_extra(lk, id, k)
        end
        -- A running job must head its lane: it goes in front, and the former
        -- head, which cannot have run meanwhile, waits behind it again.
        local hs, hj = 'none', nil
        if h then hs, hj = what(h) end
        if hj and hj.status == 'active' and hj.lane == j.lane then
            return 'cannot', 'its lane head ' .. h .. ' is running too: wait for one of them to end'
        end
        redis.call('LREM', lk, 0, id)
        redis.call('LPUSH', lk, id)
        if hj and hj.status == 'scheduled' then redis.call('ZREM', KEYS[3], h) end
        return 'repaired', 'made it the head of lane ' .. j.lane .. ' again (former head: ' .. (h or 'none') .. ', ' .. hs .. ')'
    end
    if k > 1 then return 'repaired', drop_extra(lk, id, k) end
    if not h then
        redis.call('RPUSH', lk, id)
        return 'repaired', 'put it back into lane ' .. j.lane .. ' as its head; ' .. place_head(j)
    end
    return 'repaired', insert_in_order(j)
end

-- lane_foreign ----------------------------------------------------------
CHECK.lane_foreign = function(lane, id)
    local j = job_get(id)
    if not j or j.lane == lane or not running_or_live(j) then return nil end
    if occurrences(lane_key(lane), id) == 0 then return nil end
    return 'lane ' .. lane .. ': holds ' .. j.status .. ' job ' .. id .. ' of lane ' .. j.lane
end
REPAIR.lane_foreign = function(lane, id)
    local j = job_get(id)
    if occurrences(lane_key(j.lane), id) == 0 then
        return 'cannot', 'it is not in its own lane ' .. j.lane .. ' (would be lost)'
    end
    local was_head = redis.call('LINDEX', lane_key(lane), 0) == id
    redis.call('LREM', lane_key(lane), 0, id)
    if was_head then return 'repaired', 'removed it; ' .. advance(lane) end
    return 'repaired', 'removed it'
end

-- lane_head -------------------------------------------------------------
CHECK.lane_head = function(lane)
    local h = redis.call('LINDEX', lane_key(lane), 0)
    if not h then return nil end
    local s, j = what(h)
    if j and running_or_live(j) then return nil end
    if j then s = s .. ' (not live)' end
    return 'lane ' .. lane .. ': head ' .. h .. ' is ' .. s
end
REPAIR.lane_head = function(lane)
    return 'repaired', advance(lane)
end

-- job_place -------------------------------------------------------------
CHECK.job_place = function(id)
    local j = job_get(id)
    if not j then return nil end
    -- A running job needs its lease wherever it is: without one, nothing
    -- would take it back if its worker died.
    if j.status == 'active' and not zhas(P .. 'active:' .. j.queue, id) then
        return 'job ' .. id .. ': active but has no lease in active:' .. j.queue
    end
    if redis.call('LINDEX', lane_key(j.lane), 0) ~= id then return nil end
    local head = 'lane ' .. j.lane .. ': head ' .. id .. ' is ' .. j.status
    if j.status == 'queued' and not redis.call('LPOS', P .. 'ready:' .. j.queue, id) then
        return head .. ' but not in ready:' .. j.queue
    elseif j.status == 'scheduled' and not zhas(KEYS[3], id) then
        return head .. ' but not in the schedule'
    end
    return nil
end
REPAIR.job_place = function(id)
    local j = job_get(id)
    if j.status == 'active' then
        redis.call('ZADD', P .. 'active:' .. j.queue, now + lease, id)
        return 'repaired', 'gave it a lease of ' .. math.floor(lease / 1000) ..
            ' s: its worker renews it, or the reaper takes the job back'
    end
    return 'repaired', place_head(j)
end

-- schedule / active / expiring / failed members ---------------------------
CHECK.schedule = function(id)
    if not zhas(KEYS[3], id) then return nil end
    local s, j = what(id)
    if j and j.status == 'scheduled' then
        local h = redis.call('LINDEX', lane_key(j.lane), 0)
        if h == id then return nil end
        return 'schedule: holds job ' .. id .. ', scheduled but not the head of its lane ' .. j.lane
    end
    return 'schedule: holds job ' .. id .. ', which is ' .. s
end
REPAIR.schedule = function(id)
    redis.call('ZREM', KEYS[3], id)
    return 'repaired', 'removed it from the schedule'
end

CHECK.active = function(queue, id)
    local ak = P .. 'active:' .. queue
    if not zhas(ak, id) then return nil end
    local s, j = what(id)
    if j and j.status == 'active' and j.queue == queue then return nil end
    if j and j.status == 'active' then s = 'active in queue ' .. j.queue end
    return 'active:' .. queue .. ': a lease for job ' .. id .. ', which is ' .. s
end
REPAIR.active = function(queue, id)
    redis.call('ZREM', P .. 'active:' .. queue, id)
    return 'repaired', 'removed the lease'
end

CHECK.expiring = function(id)
    if not zhas(KEYS[6], id) then return nil end
    local s, j = what(id)
    if j and LIVE[j.status] then return nil end
    return 'expiring: holds job ' .. id .. ', which is ' .. s
end
REPAIR.expiring = function(id)
    redis.call('ZREM', KEYS[6], id)
    return 'repaired', 'removed it from the expiry index'
end

CHECK.failed = function(id)
    if not zhas(KEYS[4], id) then return nil end
    local j = job_get(id)
    -- Missing: expired, the index is trimmed lazily. Unreadable: job_corrupt.
    if not j or j.status == 'failed' then return nil end
    return 'failed index: holds job ' .. id .. ', which is ' .. j.status
end
REPAIR.failed = function(id)
    redis.call('ZREM', KEYS[4], id)
    return 'repaired', 'removed it from the failed index'
end

CHECK.job_failidx = function(id)
    local j = job_get(id)
    if not j or j.status ~= 'failed' or zhas(KEYS[4], id) then return nil end
    return 'job ' .. id .. ': failed but not in the failed index (retry --all-failed misses it)'
end
REPAIR.job_failidx = function(id)
    local at = tonumber(redis.call('HGET', P .. 'job:' .. id, 'finished')) or now
    redis.call('ZADD', KEYS[4], at, id)
    return 'repaired', 'added it to the failed index'
end

-- unique keys -----------------------------------------------------------
CHECK.unique = function(key)
    local uk = P .. 'unique:' .. key
    local v = redis.pcall('GET', uk)
    if type(v) == 'table' then
        return 'unique key ' .. key .. ': is a ' .. redis.call('TYPE', uk).ok .. ', not a job id'
    end
    if not v then return nil end
    if redis.call('EXISTS', P .. 'job:' .. v) == 0 then
        -- With a TTL it is a finished job's key expiring after its record.
        if redis.call('PTTL', uk) >= 0 then return nil end
        return 'unique key ' .. key .. ': points to missing job ' .. v
    end
    local held = redis.pcall('HMGET', P .. 'job:' .. v, 'unique', 'status')
    if type(held) ~= 'table' or held.err then held = { false, false } end
    if held[1] == key then
        if LIVE[held[2]] or held[2] == 'active' or redis.call('PTTL', uk) >= 0 then return nil end
        return 'unique key ' .. key .. ': still held by job ' .. v .. ', which is ' .. tostring(held[2])
    end
    return 'unique key ' .. key .. ': points to job ' .. v .. ', whose unique key is ' ..
        (type(held[1]) == 'string' and held[1] or 'none')
end
REPAIR.unique = function(key)
    redis.call('DEL', P .. 'unique:' .. key)
    return 'repaired', 'deleted it'
end

CHECK.job_unique = function(id)
    local j = job_get(id)
    if not j or j.unique == '' or not running_or_live(j) then return nil end
    local uk = P .. 'unique:' .. j.unique
    local v = redis.pcall('GET', uk)
    local head = 'job ' .. id .. ': its unique key ' .. j.unique
    if v == id then
        if redis.call('PTTL', uk) < 0 then return nil end
        return head .. ' expires while the job is not finished'
    end
    if not v then return head .. ' is missing' end
    if type(v) ~= 'string' then return head .. ' is not a string' end
    return head .. ' points to job ' .. v
end
REPAIR.job_unique = function(id)
    local j = job_get(id)
    local uk = P .. 'unique:' .. j.unique
    local v = redis.pcall('GET', uk)
    if type(v) == 'string' and v ~= id and redis.pcall('HGET', P .. 'job:' .. v, 'unique') == j.unique then
        return 'cannot', 'job ' .. v .. ' holds that key too: decide which of the two stays'
    end
    redis.call('SET', uk, id)
    return 'repaired', 'pointed it at ' .. id .. ' (no expiry)'
end

-- queues set ------------------------------------------------------------
CHECK.queue_set = function(queue)
    if redis.call('SISMEMBER', KEYS[5], queue) == 1 then return nil end
    return 'queue ' .. queue .. ': not in the queues set (the reaper never looks at active:' .. queue .. ')'
end
REPAIR.queue_set = function(queue)
    redis.call('SADD', KEYS[5], queue)
    return 'repaired', 'added it'
end

-- counters --------------------------------------------------------------
CHECK.count = function(field, counted, ver)
    if version() ~= ver then return CHANGED end
    local have = redis.call('HGET', KEYS[2], field) or '0'
    if tonumber(have) == tonumber(counted) then return nil end
    local status = string.match(field, '^([^:]*)')
    local noun = counted == '1' and ' job is ' or ' jobs are '
    return 'stats ' .. field .. ' is ' .. have .. ', but ' .. counted .. noun .. status
end
REPAIR.count = function(field, counted)
    redis.call('HSET', KEYS[2], field, counted)
    return 'repaired', 'set it to ' .. counted
end

-- dispatch --------------------------------------------------------------
local function run_item(kind, a, b, c)
    local check = CHECK[kind]
    if not check then return 'error', 'unknown check ' .. tostring(kind) end
    local problem, info = check(a, b, c)
    if problem == CHANGED then return 'changed', '' end
    if not problem then
        if info then return 'info', info end
        return 'ok', ''
    end
    if mode ~= 'repair' then return 'problem', problem end
    local st, done = REPAIR[kind](a, b, c)
    return st, problem .. ': ' .. done
end

local out = {}
for i = 0, n - 1 do
    local b = 7 + i * 4
    local ok, st, text = pcall(run_item, ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3])
    if not ok then
        -- redis.call raises a table {err = ...}; Lua itself raises strings.
        if type(st) == 'table' then st = st.err or '?' end
        st, text = 'error', ARGV[b] .. ' ' .. ARGV[b + 1] .. ': ' .. tostring(st)
    end
    out[#out + 1] = st
    out[#out + 1] = text
end
return out

-- enqueue.lua: accept a batch of jobs of one tenant.
-- script-flags:
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events schedule stats queues expiring
--@ argv: prefix:str events_cap:int n:int partitions:int
--@ argv job*n: id:str kind:str queue:str lane:str payload:json attempts:int timeout_ms:ms backoff_ms:ms delay_ms:ms expires_ms:ms unique:str spool:str unique_for_ms:ms
--@ reply job*: id:str created:int why:str
--
-- KEYS: 1 events, 2 schedule, 3 stats, 4 queues, 5 expiring
-- ARGV: 1 prefix, 2 events cap, 3 n, 4 the partition count the caller
--       routed the jobs by (1: unpartitioned), then n groups of 13:
--       id kind queue lane payload attempts timeout_ms backoff_ms delay_ms
--       expires_ms unique spool unique_for_ms
--
-- Effect per job, unless its unique key is held or a job with that id exists
-- (then nothing changes and the existing job is returned): the record job:ID
-- is written (status queued, or scheduled with a delay), the job is appended
-- to its lane, and when it is the lane's only job it becomes the head
-- (ready:Q, or schedule until its run_at). One job.queued / job.scheduled
-- event. Returns 3 entries per job: the id, 1 (created) or 0 (existed), and
-- why it existed: '' when created, else 'held STATUS' (its unique key is
-- held by that job) or 'exists STATUS' (a job with that id exists).
--
-- Unique keys (CONTRACT 4.5): unique:KEY names the job holding KEY, without
-- expiry while that job waits or runs; finish_job frees it, or with
-- unique_for lets it expire unique_for after the enqueue (the record's
-- `unique_until`). A key that is not held (unique_holder) is taken over.
--
-- Partitions (DESIGN.md section 11): partition 0 of a tenant (the prefix
-- NS:{T}:, no '#') holds the count in force, settings.partitions (absent: 1).
-- A caller that routed by another count is refused before anything is
-- written, with `LWPARTITIONS K`: it routes again by K. Partitions >= 1
-- (NS:{T#p}:) are only reached by a caller that read K from partition 0.
--
-- Refused at maxmemory (no allow-oom): the caller is told (the CLI exits 3)
-- rather than Redis growing past its limit.
--
-- Invariants kept: a job is in its lane exactly once; the lane head is live;
-- a head is in exactly one of ready:Q / schedule; counters match statuses.

local n = tonumber(ARGV[3])

if not string.find(P, '#', 1, true) then
    -- The settings HMGET every enqueue makes anyway (events_max): no
    -- command of its own on the hot path.
    local have = setting('partitions', 1)
    if have ~= tonumber(ARGV[4]) then
        return redis.error_reply('LWPARTITIONS ' .. have .. ' tenant keys under ' .. P ..
            ' are in ' .. have .. ' partition(s); this call routed its jobs by ' .. ARGV[4])
    end
end

return run(function()
    -- Nothing here reads a ready list: the new heads go in with one RPUSH per
    -- queue at the end (and its wake-up if the list was empty).
    DEFER_READY = true
    local now = now_ms()
    local now_s = num_s(now)
    local known_queues = {} -- queues already SADDed by this call
    local out = {}
    for i = 0, n - 1 do
        local b = 5 + i * 13
        local id, kind, queue, lane = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
        local payload = ARGV[b + 4]
        local delay = num(ARGV[b + 8])
        local expires = num(ARGV[b + 9])
        local unique, spool, unique_for = ARGV[b + 10], ARGV[b + 11], num(ARGV[b + 12])

        local existing, estatus = job_existing(id, unique, now)

        if existing then
            out[#out + 1] = existing
            out[#out + 1] = 0
            out[#out + 1] = estatus
        else
            local j = { id = id, kind = kind, queue = queue, lane = lane, attempt = 0,
                        status = 'queued', run_at = 0, unique = unique }
            local rec = { 'id', id, 'kind', kind, 'queue', queue, 'lane', lane,
                          'payload', payload, 'attempt', '0', 'attempts', ARGV[b + 5],
                          'timeout', ARGV[b + 6], 'backoff', ARGV[b + 7], 'enqueued', now_s }
            if delay > 0 then
                j.status = 'scheduled'
                j.run_at = now + delay
                rec[#rec + 1] = 'run_at'
                rec[#rec + 1] = num_s(j.run_at)
            end
            if expires > 0 then
                rec[#rec + 1] = 'expires'
                rec[#rec + 1] = num_s(now + expires)
                expiring_add(id, now + expires)
            end
            if unique ~= '' then
                rec[#rec + 1] = 'unique'
                rec[#rec + 1] = unique
                redis.call('SET', P .. 'unique:' .. unique, id)
                if unique_for > 0 then
                    rec[#rec + 1] = 'unique_until'
                    rec[#rec + 1] = num_s(now + unique_for)
                end
            end
            if spool ~= '' then
                rec[#rec + 1] = 'spool'
                rec[#rec + 1] = spool
            end
            rec[#rec + 1] = 'status'
            rec[#rec + 1] = j.status
            redis.call('HSET', P .. 'job:' .. id, unpack(rec))
            if not known_queues[queue] then
                redis.call('SADD', P .. 'queues', queue)
                known_queues[queue] = true
            end
            count(j.status, queue, 1)
            emit(j.status == 'queued' and 'job.queued' or 'job.scheduled', j, '', '')
            if redis.call('RPUSH', P .. 'lane:' .. lane, id) == 1 then
                make_head_ready(j, now)
            end
            out[#out + 1] = id
            out[#out + 1] = 1
            out[#out + 1] = ''
        end
    end
    publish_due(now)
    return out
end)

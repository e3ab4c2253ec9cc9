-- finish.lua: record what a batch of attempts of one tenant did: handler
-- events and outcomes, in the order they happened.
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events schedule stats failed
--@ argv: prefix:str events_cap:int worker:str keep_succeeded_s:s keep_failed_s:s n:int
--@ argv entry*n: id:str token:str outcome:str text:str delay_ms:ms event_type:str
--@ reply entry*: status:str
--
-- KEYS: 1 events, 2 schedule, 3 stats, 4 failed
-- ARGV: 1 prefix, 2 events cap, 3 worker name, 4 keep_succeeded_s,
--       5 keep_failed_s, 6 n, then n groups of 6:
--       id token outcome text delay_ms event_type
--   outcome: event     a handler's own event (step.created, ...): event_type,
--                      text is its JSON data, delay_ms its number within the
--                      attempt (1, 2, ...; 0: unnumbered); the job stays
--                      active
--            ok        the handler succeeded; text is the result JSON
--            retry     the attempt failed (text: error); scheduled again after
--                      delay_ms while attempts remain, else failed
--            fail      failed now, no retry (text: error)
--            cancelled the attempt stopped because the job was cancelled
--            handback  the worker stops: back to the head of its lane,
--                      the attempt does not count (unless the job's cancel
--                      was requested meanwhile: then it ends cancelled)
--
-- Fencing: an entry counts only when the job is active and its token is
-- the one of this attempt; otherwise the lease was lost (reaped, given to
-- another worker) and the entry is refused ("stale"): a stale attempt can
-- neither end the job nor write into the history of its next attempt.
-- Retrying a call whose reply was lost is therefore harmless for outcomes
-- (the second call is refused), and for numbered events: the record keeps
-- the token and number of the attempt's last event appended (evtok,
-- evseq), and an event numbered no higher is not appended again (a batch
-- resent after a lost reply or a --min-replicas shortfall while its job
-- still runs).
-- Returns one status per entry: event, succeeded, scheduled, failed,
-- cancelled, queued (handed back) or stale.
--
-- Allowed at maxmemory (allow-oom): an attempt that ran must be recorded as
-- what it was; refusing it would let the reaper fail or rerun it.

local worker = ARGV[3]
local keep_ok = setting('keep_succeeded', tonumber(ARGV[4]))
local keep_failed = setting('keep_failed', tonumber(ARGV[5]))
local n = tonumber(ARGV[6])
-- 'error' only to know whether a success has an earlier attempt's error to
-- clear (most jobs have none: no HDEL then).
local FIELDS = claimed_fields('token', 'unique', 'cancel', 'error')

return run(function()
    local now = now_ms()
    local out = {}
    for i = 0, n - 1 do
        local b = 7 + i * 6
        local id, token, outcome, text = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
        local j = job_get(id, FIELDS)
        if not j or j.status ~= 'active' or j.token ~= token then
            out[#out + 1] = 'stale'
        elseif outcome == 'event' then
            local seq = tonumber(ARGV[b + 4]) or 0
            local jk = P .. 'job:' .. id
            local last = seq > 0 and redis.call('HMGET', jk, 'evtok', 'evseq') or nil
            if not last or last[1] ~= token or (tonumber(last[2]) or 0) < seq then
                if last then redis.call('HSET', jk, 'evtok', token, 'evseq', seq) end
                emit(ARGV[b + 5], j, worker, text)
            end
            out[#out + 1] = 'event'
        else
            local jk = P .. 'job:' .. id
            -- The lease goes with the deferred writes (one ZREM per queue and
            -- call): nothing in this script reads active:Q.
            defer('ZREM', P .. 'active:' .. j.queue, id)
            if outcome == 'handback' and j.cancel ~= '1' then
                j.attempt = j.attempt - 1
                -- Runnable again from now (queued_at: the next start's wait_ms
                -- and the queue's oldest count from it, not from the enqueue).
                redis.call('HSET', jk, 'status', 'queued', 'attempt', num_s(j.attempt), 'queued_at', num_s(now))
                count('queued', j.queue, 1)
                push_ready(j.queue, id, true, true)
                emit('job.handed_back', j, worker, '')
                out[#out + 1] = 'queued'
            elseif outcome == 'ok' then
                if j.error then redis.call('HDEL', jk, 'error') end
                finish_job(j, 'succeeded', now, keep_ok, { 'result', text }, true)
                emit('job.succeeded', j, worker, '')
                out[#out + 1] = 'succeeded'
            elseif outcome == 'cancelled' or (j.cancel == '1' and outcome ~= 'ok') then
                if outcome == 'handback' then text = 'cancelled while running (stopped by its worker\'s shutdown)' end
                finish_job(j, 'cancelled', now, keep_failed, { 'error', text }, true)
                emit('job.cancelled', j, worker, cjson.encode({ error = text }))
                out[#out + 1] = 'cancelled'
            elseif outcome == 'retry' and j.attempt < j.attempts then
                local delay = tonumber(ARGV[b + 4]) or 0
                j.run_at = now + delay
                redis.call('HSET', jk, 'status', 'scheduled', 'run_at', num_s(j.run_at), 'error', text)
                schedule_add(id, j.run_at)
                count('scheduled', j.queue, 1)
                count('retried', j.queue, 1)
                emit('job.retrying', j, worker, cjson.encode({ error = text, delay_ms = delay }))
                out[#out + 1] = 'scheduled'
            else
                finish_job(j, 'failed', now, keep_failed, { 'error', text }, true)
                emit('job.failed', j, worker, cjson.encode({ error = text }))
                out[#out + 1] = 'failed'
            end
        end
    end
    redis.call('ZREMRANGEBYSCORE', P .. 'failed', '-inf', num_s(now - keep_failed * 1000))
    publish_due(now)
    return out
end)

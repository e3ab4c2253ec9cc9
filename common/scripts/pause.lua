-- pause.lua: pause or resume a queue of a tenant, fleet-wide.
-- script-flags: allow-oom
--
-- Interface (syntax: common/scripts/iface.py; the prose below explains it):
--@ keys: events paused queues
--@ argv: prefix:str events_cap:int queue:str pause:int
--@ reply: changed:int partitions:int
--
-- KEYS: 1 events, 2 paused, 3 queues
-- ARGV: 1 prefix, 2 events cap, 3 queue, 4 1 to pause, 0 to resume
--
-- Effect: pause adds the queue to P.."paused" (and to P.."queues", so
-- stats and the dashboard show a queue paused before its first job);
-- claim.lua claims nothing from a paused queue, whoever asks -- the state is
-- in Redis, so it holds across worker restarts and for every worker, and
-- running jobs finish as usual. Resume removes it, and wakes the workers
-- (P.."wake") when its ready list holds jobs: wake-ups only cut latency.
-- One queue.paused / queue.resumed event (job empty, data: the queue) when
-- the state changed, in partition 0 only (one pause, one event). Returns
-- { 1 when it changed, 0 when the queue was already so; the partition
-- count in force (partition 0's settings; 1 elsewhere) }.
--
-- In a partitioned tenant each partition has its own set (claim.lua sees
-- its own slot only): the CLI runs this in partition 0 first, then in every
-- other partition of the count this call returns -- the count it read before
-- may be stale, and settings.lua keeps the count from changing while a
-- queue of partition 0 is paused, so no partition made later misses it.
--
-- allow-oom: pausing is how an operator stops a flood at the limit.

local queue, pause = ARGV[3], ARGV[4] == '1'
local changed
if pause then
    changed = redis.call('SADD', KEYS[2], queue)
    redis.call('SADD', KEYS[3], queue)
else
    changed = redis.call('SREM', KEYS[2], queue)
    if changed == 1 and redis.call('LLEN', P .. 'ready:' .. queue) > 0 then
        redis.call('PUBLISH', P .. 'wake', queue)
    end
end
local lead = not string.find(P, '#', 1, true)
if changed == 1 and lead then
    emit(pause and 'queue.paused' or 'queue.resumed', { id = '', kind = '', lane = '', attempt = 0 }, '', queue)
end
return { changed, lead and setting('partitions', 1) or 1 }

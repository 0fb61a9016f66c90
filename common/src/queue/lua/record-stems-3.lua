-- Records the stems a worker uploaded, only while it still owns the job (a worker that lost it to
-- the reaper leaves the record to the new owner). Returns 'owned', 'lost', or 'gone' when every
-- claim was deleted while it ran (or it was submitted again since): completing then tells which.
-- Emits: the songhash on the events channel when written.
local jobKey = KEYS[1]        -- job hash
local processingKey = KEYS[2] -- processing list of this worker
local eventsChannel = KEYS[3] -- events channel
local hash = ARGV[1]          -- songhash
local stems = ARGV[2]         -- uploaded stems (comma-separated)
local now = ARGV[3]

if redis.call('LPOS', processingKey, hash) == false then return 'lost' end
if redis.call('HGET', jobKey, 'state') ~= 'processing' then return 'gone' end
redis.call('HSET', jobKey, 'stems', stems, 'updatedAt', now)
redis.call('PUBLISH', eventsChannel, hash)
return 'owned'

-- The status belongs to the claim and the finish it reported: when the job was deleted or run
-- again since, or the claim is gone, nothing is written. Returns 1 if written.
-- Emits: the songhash on the events channel when written.
local jobKey = KEYS[1]        -- job hash
local claimKey = KEYS[2]      -- the tenant's claim
local eventsChannel = KEYS[3] -- events channel
local hash = ARGV[1]          -- songhash
local status = ARGV[2]        -- callback status
local finishedAt = ARGV[3]    -- finishedAt of the outcome the callback reported
local now = ARGV[4]

if redis.call('HGET', jobKey, 'finishedAt') ~= finishedAt or redis.call('EXISTS', claimKey) == 0 then return 0 end
redis.call('HSET', claimKey, 'callbackStatus', status, 'updatedAt', now)
redis.call('PUBLISH', eventsChannel, hash)
return 1

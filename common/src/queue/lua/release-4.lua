-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] toWorker, KEYS[4] events channel
-- ARGV[1] songhash, ARGV[2] now
-- Graceful hand-back (shutdown): the job goes to the front of the queue and the attempt is not counted.
local owned = redis.call('LREM', KEYS[1], 1, ARGV[1])
if owned == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'attempts', -1)
redis.call('HSET', KEYS[2], 'state', 'queued', 'progress', '0', 'updatedAt', ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 1

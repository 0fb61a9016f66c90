-- KEYS[1] job hash, KEYS[2] events channel
-- ARGV[1] songhash, ARGV[2] worker id, ARGV[3] now
-- Marks a claimed job as processing and counts the attempt. Returns the attempt number.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'createdAt', ARGV[3])
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'processing', 'progress', '0', 'worker', ARGV[2], 'startedAt', ARGV[3], 'updatedAt', ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return attempts

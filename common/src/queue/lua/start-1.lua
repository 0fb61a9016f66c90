-- KEYS[1] job hash
-- ARGV[1] worker id, ARGV[2] now
-- Marks a claimed job as processing and counts the attempt. Returns the attempt number.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'createdAt', ARGV[2])
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'processing', 'progress', '0', 'worker', ARGV[1], 'startedAt', ARGV[2], 'updatedAt', ARGV[2])
return attempts

-- KEYS[1] job hash, KEYS[2] processing list of this worker, KEYS[3] events channel
-- ARGV[1] songhash, ARGV[2] progress, ARGV[3] now
-- Writes progress only while this worker still owns the job. Returns 1 if owned.
if redis.call('LPOS', KEYS[2], ARGV[1]) == false then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'updatedAt', ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1

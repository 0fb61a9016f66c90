-- KEYS[1] job hash, KEYS[2] events channel
-- ARGV[1] songhash, ARGV[2] callback status, ARGV[3] finishedAt of the outcome the callback reported, ARGV[4] now
-- The status belongs to the finish it reported: when the job was deleted or run again since,
-- nothing is written. Returns 1 if written.
if redis.call('HGET', KEYS[1], 'finishedAt') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'callbackStatus', ARGV[2], 'updatedAt', ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1

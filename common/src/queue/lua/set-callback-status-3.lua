-- KEYS[1] job hash, KEYS[2] the tenant's claim, KEYS[3] events channel
-- ARGV[1] songhash, ARGV[2] callback status, ARGV[3] finishedAt of the outcome the callback reported, ARGV[4] now
-- The status belongs to the claim and the finish it reported: when the job was deleted or run
-- again since, or the claim is gone, nothing is written. Returns 1 if written.
if redis.call('HGET', KEYS[1], 'finishedAt') ~= ARGV[3] or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'callbackStatus', ARGV[2], 'updatedAt', ARGV[4])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1

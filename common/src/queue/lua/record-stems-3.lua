-- KEYS[1] job hash, KEYS[2] processing list of this worker, KEYS[3] events channel
-- ARGV[1] songhash, ARGV[2] uploaded stems (comma-separated), ARGV[3] now
-- Records the stems a worker uploaded, only while it still owns the job (a worker that lost it to
-- the reaper leaves the record to the new owner). Returns 'owned', 'lost', or 'gone' when every
-- claim was deleted while it ran (or it was submitted again since): completing then tells which.
if redis.call('LPOS', KEYS[2], ARGV[1]) == false then return 'lost' end
if redis.call('HGET', KEYS[1], 'state') ~= 'processing' then return 'gone' end
redis.call('HSET', KEYS[1], 'stems', ARGV[2], 'updatedAt', ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 'owned'

-- KEYS[1] job hash, KEYS[2] toWorker, KEYS[3] dead, KEYS[4] events channel
-- ARGV[1] songhash
-- Forgets a song: its record and its places in the queue and in `dead`. Returns 1 if there was a record.
local existed = redis.call('DEL', KEYS[1])
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('LREM', KEYS[3], 0, ARGV[1])
redis.call('PUBLISH', KEYS[4], ARGV[1])
return existed

-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] toWorker, KEYS[4] events channel
-- ARGV[1] songhash, ARGV[2] now, ARGV[3] duration seconds
-- The stems are uploaded: mark done and release. If a reaper had handed the job on meanwhile,
-- drop the duplicate from the queue (the stems exist, re-running would only overwrite them).
local owned = redis.call('LREM', KEYS[1], 1, ARGV[1])
if owned == 0 then redis.call('LREM', KEYS[3], 0, ARGV[1]) end
redis.call('HSET', KEYS[2], 'state', 'done', 'progress', '1', 'error', '', 'finishedAt', ARGV[2], 'updatedAt', ARGV[2], 'durationSec', ARGV[3])
redis.call('PUBLISH', KEYS[4], ARGV[1])
return owned

-- KEYS[1] job hash, KEYS[2] toWorker list, KEYS[3] events channel
-- ARGV[1] songhash, ARGV[2] now (ISO), ARGV[3] callback JSON or '', ARGV[4] size, ARGV[5] filename,
-- ARGV[6] '1' to re-run a done/failed job, ARGV[7] callback status or '' (a callback refused at submit)
-- Returns 'enqueued', 'queued' (already waiting or running) or 'done' (already separated).
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'processing' then return 'queued' end
if state == 'done' and ARGV[6] ~= '1' then return 'done' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'progress', '0', 'attempts', '0', 'error', '',
  'createdAt', ARGV[2], 'updatedAt', ARGV[2], 'callback', ARGV[3], 'callbackStatus', ARGV[7], 'sizeBytes', ARGV[4], 'filename', ARGV[5])
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 'enqueued'

-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] toWorker, KEYS[4] dead, KEYS[5] events channel
-- ARGV[1] songhash, ARGV[2] error, ARGV[3] max attempts, ARGV[4] '1' if retryable, ARGV[5] now
-- Returns 'retry' (back in the queue, behind the waiting jobs), 'dead' (failed for good) or 'lost' (not ours any more).
local owned = redis.call('LREM', KEYS[1], 1, ARGV[1])
if owned == 0 then return 'lost' end
local attempts = tonumber(redis.call('HGET', KEYS[2], 'attempts') or '0')
local outcome = 'dead'
if ARGV[4] == '1' and attempts < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[2], 'state', 'queued', 'progress', '0', 'error', ARGV[2], 'updatedAt', ARGV[5])
  redis.call('LPUSH', KEYS[3], ARGV[1])
  outcome = 'retry'
else
  redis.call('HSET', KEYS[2], 'state', 'failed', 'error', ARGV[2], 'finishedAt', ARGV[5], 'updatedAt', ARGV[5])
  redis.call('LREM', KEYS[4], 0, ARGV[1])
  redis.call('LPUSH', KEYS[4], ARGV[1])
end
redis.call('PUBLISH', KEYS[5], ARGV[1])
return outcome

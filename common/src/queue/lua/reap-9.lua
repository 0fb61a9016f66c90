-- uses: songs
-- KEYS[1] processing list of a worker, KEYS[2] its heartbeat key, KEYS[3] toWorker, KEYS[4] dead,
-- KEYS[5] workers set, KEYS[6] events channel, KEYS[7] order, KEYS[8] vtime, KEYS[9] expiries
-- ARGV[1] worker id, ARGV[2] job key root, ARGV[3] max attempts, ARGV[4] now, ARGV[5] claims key
-- root, ARGV[6] claim key root, ARGV[7] retention seconds, ARGV[8] now (ms)
-- A worker whose heartbeat expired is dead: its jobs go back to the front of the queue,
-- or to `dead` once they have used their attempts; each job it held gets its event. Returns {requeued, dead}.
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0} end
local requeued, dead = 0, 0
while true do
  local hash = redis.call('RPOP', KEYS[1])
  if not hash then break end
  local jobKey = ARGV[2] .. hash
  if redis.call('EXISTS', jobKey) == 1 then
    local attempts = tonumber(redis.call('HGET', jobKey, 'attempts') or '0')
    if attempts >= tonumber(ARGV[3]) then
      redis.call('HSET', jobKey, 'state', 'failed', 'error', 'worker died ' .. attempts .. ' times while processing this job', 'finishedAt', ARGV[4], 'updatedAt', ARGV[4], 'failedMs', ARGV[8])
      redis.call('LREM', KEYS[4], 0, hash)
      redis.call('LPUSH', KEYS[4], hash)
      retain(jobKey, ARGV[5] .. hash, ARGV[6] .. hash .. ':', KEYS[9], hash, ARGV[7], ARGV[8])
      dead = dead + 1
    else
      redis.call('HSET', jobKey, 'state', 'queued', 'progress', '0', 'error', 'worker ' .. ARGV[1] .. ' stopped responding; retrying', 'updatedAt', ARGV[4])
      front_insert(KEYS[3], KEYS[7], KEYS[8], hash)
      requeued = requeued + 1
    end
    redis.call('PUBLISH', KEYS[6], hash)
  end
end
redis.call('SREM', KEYS[5], ARGV[1])
return {requeued, dead}

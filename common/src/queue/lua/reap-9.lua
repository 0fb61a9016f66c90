-- uses: songs
-- A worker whose heartbeat expired is dead: its jobs go back to the front of the queue,
-- or to `dead` once they have used their attempts. Returns {requeued, dead}.
-- Emits: each job's songhash on the events channel.
local processingKey = KEYS[1] -- processing list of a worker
local heartbeatKey = KEYS[2]  -- its heartbeat key
local queueKey = KEYS[3]      -- toWorker
local deadKey = KEYS[4]       -- dead
local workersKey = KEYS[5]    -- workers set
local eventsChannel = KEYS[6] -- events channel
local orderKey = KEYS[7]      -- order (fair tags)
local vtimeKey = KEYS[8]      -- vtime
local expiriesKey = KEYS[9]   -- expiries
local workerId = ARGV[1]
local jobRoot = ARGV[2]       -- job key root (job:<h>)
local maxAttempts = tonumber(ARGV[3])
local now = ARGV[4]
local claimsRoot = ARGV[5]    -- claims key root (claims:<h>)
local claimRoot = ARGV[6]     -- claim key root (claim:<h>:<tenant>)
local retentionSec = ARGV[7]
local nowMs = ARGV[8]

if redis.call('EXISTS', heartbeatKey) == 1 then return {0, 0} end
local requeued, dead = 0, 0
-- A range of a split song (`<hash>#<i>#<splitId>`) is reap-ranges-9's: its heartbeat may have lapsed
-- between that script and this one, so such items stay in the list (and the worker in the set) for
-- the next round, where reap-ranges-9 hands them back.
local ranges = {}
while true do
  local hash = redis.call('RPOP', processingKey)
  if not hash then break end
  local jobKey = jobRoot .. hash
  if string.find(hash, '#', 1, true) then
    table.insert(ranges, hash)
  elseif redis.call('EXISTS', jobKey) == 1 then
    local attempts = tonumber(redis.call('HGET', jobKey, 'attempts') or '0')
    if attempts >= maxAttempts then
      redis.call('HSET', jobKey, 'state', 'failed', 'error', 'worker died ' .. attempts .. ' times while processing this job', 'finishedAt', now, 'updatedAt', now, 'failedMs', nowMs)
      redis.call('LREM', deadKey, 0, hash)
      redis.call('LPUSH', deadKey, hash)
      retain(jobKey, claimsRoot .. hash, claimRoot .. hash .. ':', expiriesKey, hash, retentionSec, nowMs)
      dead = dead + 1
    else
      redis.call('HSET', jobKey, 'state', 'queued', 'progress', '0', 'error', 'worker ' .. workerId .. ' stopped responding; retrying', 'updatedAt', now)
      front_insert(queueKey, orderKey, vtimeKey, hash)
      requeued = requeued + 1
    end
    redis.call('PUBLISH', eventsChannel, hash)
  end
end
if #ranges > 0 then
  for _, item in ipairs(ranges) do redis.call('LPUSH', processingKey, item) end
  return {requeued, dead}
end
redis.call('SREM', workersKey, workerId)
return {requeued, dead}

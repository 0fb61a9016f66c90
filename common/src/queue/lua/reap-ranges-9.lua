-- uses: songs, ranges
-- The reaper's step for the ranges and encoding units a dead worker held (run before reap-9.lua,
-- which handles its songs): each goes back to the front of its list, or, once it has used its attempts, fails
-- its song for good with the range's reason. Emits the job event of each song touched. Returns {requeued, dead}.
local processingKey = KEYS[1] -- processing list of the worker
local heartbeatKey = KEYS[2]  -- its heartbeat key
local queueKey = KEYS[3]      -- toWorker
local deadKey = KEYS[4]       -- songs failed for good
local eventsChannel = KEYS[5] -- events channel
local orderKey = KEYS[6]      -- fair order: tag of each waiting item
local vtimeKey = KEYS[7]      -- fair order: virtual time
local expiriesKey = KEYS[8]   -- retention sweep list
local encoderKey = KEYS[9]    -- toEncoder
local workerId = ARGV[1]
local jobRoot = ARGV[2]
local maxAttempts = tonumber(ARGV[3])
local now = ARGV[4]
local claimsRoot = ARGV[5]
local claimRoot = ARGV[6]
local retentionSec = ARGV[7]
local nowMs = ARGV[8]

if redis.call('EXISTS', heartbeatKey) == 1 then return {0, 0} end
local requeued, dead = 0, 0
for _, item in ipairs(redis.call('LRANGE', processingKey, 0, -1)) do
  local hash, i, splitId = parse_range_item(item)
  if hash then
    redis.call('LREM', processingKey, 0, item)
    local jobKey = jobRoot .. hash
    local state, worker, attempts = range_get(jobKey, i)
    if range_current(jobKey, splitId) and state == 'queued' then
      -- taken (BLMOVE) but not started when the worker died
      if requeue_untaken(jobKey, i, item, queueKey, encoderKey, orderKey, vtimeKey) then
        requeued = requeued + 1
        redis.call('PUBLISH', eventsChannel, hash)
      end
    elseif range_current(jobKey, splitId) and state == 'processing' and worker == workerId then
      if attempts >= maxAttempts then
        fail_split_song(jobKey, hash, range_label(jobKey, i) .. ': worker died ' .. attempts .. ' times while processing it', now, nowMs,
          queueKey, encoderKey, orderKey, deadKey, claimsRoot .. hash, claimRoot .. hash .. ':', expiriesKey, retentionSec)
        dead = dead + 1
      else
        range_set(jobKey, i, 'queued', '', attempts)
        redis.call('HSET', jobKey, 'error', 'worker ' .. workerId .. ' stopped responding during ' .. range_label(jobKey, i) .. '; retrying', 'updatedAt', now)
        requeue_front(jobKey, i, item, queueKey, encoderKey, orderKey, vtimeKey)
        requeued = requeued + 1
      end
      redis.call('PUBLISH', eventsChannel, hash)
    end
  end
end
return {requeued, dead}

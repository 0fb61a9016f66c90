-- uses: songs, ranges
-- A range or an encoding unit failed on this worker: back in its list (a range in its tenant's fair turn) while it has attempts
-- left and the error is worth a retry ('retry'), else the whole song fails for good with the range's
-- reason ('dead'; lib/ranges.lua fail_split_song). Emits the job event. 'lost' (not this worker's
-- range) and 'gone' (the song was deleted, failed or run again) write nothing.
local processingKey = KEYS[1] -- processing list of this worker
local jobKey = KEYS[2]        -- job hash
local queueKey = KEYS[3]      -- toWorker
local deadKey = KEYS[4]       -- songs failed for good
local eventsChannel = KEYS[5] -- events channel
local orderKey = KEYS[6]      -- fair order: tag of each waiting item
local lastKey = KEYS[7]       -- fair order: each tenant's last tag
local vtimeKey = KEYS[8]      -- fair order: virtual time
local claimsKey = KEYS[9]     -- claims set
local expiriesKey = KEYS[10]  -- retention sweep list
local encoderKey = KEYS[11]   -- toEncoder
local item = ARGV[1]          -- '<songhash>#<i>#<splitId>'
local workerId = ARGV[2]
local error = ARGV[3]
local maxAttempts = tonumber(ARGV[4])
local retryable = ARGV[5] == '1'
local now = ARGV[6]
local claimRoot = ARGV[7]
local retentionSec = ARGV[8]
local nowMs = ARGV[9]

local hash, i, splitId = parse_range_item(item)
if redis.call('LREM', processingKey, 1, item) == 0 then return 'lost' end
if not range_current(jobKey, splitId) then return 'gone' end
local state, worker, attempts = range_get(jobKey, i)
if state ~= 'processing' or worker ~= workerId then return 'lost' end
local outcome = 'dead'
if retryable and attempts < maxAttempts then
  range_set(jobKey, i, 'queued', '', attempts)
  redis.call('HSET', jobKey, 'error', range_label(jobKey, i) .. ' failed, retrying: ' .. error, 'updatedAt', now)
  if i >= range_count(jobKey) then
    redis.call('LPUSH', encoderKey, item)
  else
    fair_insert(queueKey, orderKey, lastKey, vtimeKey, redis.call('HGET', jobKey, 'tenant') or 'default', item)
  end
  outcome = 'retry'
else
  fail_split_song(jobKey, hash, range_label(jobKey, i) .. ' failed after ' .. attempts .. ' attempt' .. (attempts == 1 and '' or 's') .. ': ' .. error,
    now, nowMs, queueKey, encoderKey, orderKey, deadKey, claimsKey, claimRoot .. hash .. ':', expiriesKey, retentionSec)
end
redis.call('PUBLISH', eventsChannel, hash)
return outcome

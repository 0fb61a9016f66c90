-- uses: songs, ranges
-- Graceful hand-back of a range or an encoding unit (shutdown): it goes to the front of its list and the attempt is
-- not counted (as release-6.lua). Emits the job event. Returns 1 if it was this worker's.
local processingKey = KEYS[1] -- processing list of this worker
local jobKey = KEYS[2]        -- job hash
local queueKey = KEYS[3]      -- toWorker
local eventsChannel = KEYS[4] -- events channel
local orderKey = KEYS[5]      -- fair order: tag of each waiting item
local vtimeKey = KEYS[6]      -- fair order: virtual time
local encoderKey = KEYS[7]    -- toEncoder
local item = ARGV[1]          -- '<songhash>#<i>#<splitId>'
local workerId = ARGV[2]
local now = ARGV[3]

local hash, i, splitId = parse_range_item(item)
if redis.call('LREM', processingKey, 1, item) == 0 then return 0 end
if not range_current(jobKey, splitId) then return 1 end
local state, worker, attempts = range_get(jobKey, i)
if state == 'queued' then
  -- taken but not started (range-start-5.lua did not run): back to the front of its list
  if requeue_untaken(jobKey, i, item, queueKey, encoderKey, orderKey, vtimeKey) then redis.call('PUBLISH', eventsChannel, hash) end
  return 1
end
if state ~= 'processing' or worker ~= workerId then return 1 end
range_set(jobKey, i, 'queued', '', math.max(0, attempts - 1))
redis.call('HSET', jobKey, 'updatedAt', now)
requeue_front(jobKey, i, item, queueKey, encoderKey, orderKey, vtimeKey)
redis.call('PUBLISH', eventsChannel, hash)
return 1

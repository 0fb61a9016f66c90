-- uses: ranges
-- A worker took a range item (BLMOVE into its processing list): the range is processing on it and
-- its attempt counted; its start tag becomes the virtual time of fair order (as start-4.lua).
-- Emits the job event. Returns {'owned', attempt}, or {'gone'} when the song was deleted, failed or
-- run again since the item was queued (the item leaves the list; nothing is written).
local jobKey = KEYS[1]        -- job hash
local processingKey = KEYS[2] -- processing list of this worker
local eventsChannel = KEYS[3] -- events channel
local orderKey = KEYS[4]      -- fair order: tag of each waiting item
local vtimeKey = KEYS[5]      -- fair order: virtual time
local item = ARGV[1]          -- '<songhash>#<i>#<splitId>'
local workerId = ARGV[2]
local now = ARGV[3]

local hash, i, splitId = parse_range_item(item)
local tag = tonumber(redis.call('HGET', orderKey, item) or '0')
redis.call('HDEL', orderKey, item)
if not hash or not range_current(jobKey, splitId) or range_get(jobKey, i) ~= 'queued' then
  redis.call('LREM', processingKey, 0, item)
  return {'gone'}
end
if tag > tonumber(redis.call('GET', vtimeKey) or '0') then redis.call('SET', vtimeKey, tag) end
local _, _, attempts = range_get(jobKey, i)
attempts = attempts + 1
range_set(jobKey, i, 'processing', workerId, attempts)
redis.call('HSET', jobKey, 'updatedAt', now)
redis.call('PUBLISH', eventsChannel, hash)
return {'owned', attempts}

-- Shared helpers of a split song (issue 23), prepended to scripts whose first line names `ranges`.
-- A song longer than SPLIT_MIN_SEC is split by the worker that took it into ranges of consecutive
-- chunks (split-7.lua). Fields of job:<songhash>:
--   rangeChunks  '0,4,8': range i is chunks [a_i, a_(i+1)), the last one to the song's end
--   rangeStride  the chunk stride in frames (44.1 kHz), for the view's fromSec/toSec
--   splitId      this split's token: a queue item of an earlier run of the song is not this run's
--   r<i>         '<state>|<worker>|<attempts>', state queued, processing or done
--   rangesDone   how many ranges are done
--   encodeUnits  once every range is done: one unit per stem, r<n+j> (range-done-6.lua)
--   encodesDone  how many of those are done
-- A range waits in `toWorker` as the item '<songhash>#<i>#<splitId>' (fair order counts ranges) and
-- is held in a worker's processing list like a song.

local function range_item(hash, i, splitId)
  return hash .. '#' .. i .. '#' .. splitId
end

-- songhash, range index, split token of an item ('<h>#<i>#<splitId>'); nil for a song's item
local function parse_range_item(item)
  local hash, i, splitId = string.match(item, '^([^#]+)#(%d+)#(.+)$')
  if not hash then return nil end
  return hash, tonumber(i), splitId
end

local function range_count(jobKey)
  local chunks = redis.call('HGET', jobKey, 'rangeChunks') or ''
  if chunks == '' then return 0 end
  local _, commas = string.gsub(chunks, ',', '')
  return commas + 1
end

-- state, worker, attempts of range i
local function range_get(jobKey, i)
  local v = redis.call('HGET', jobKey, 'r' .. i) or ''
  local state, worker, attempts = string.match(v, '^([^|]*)|([^|]*)|(%d+)$')
  return state, worker or '', tonumber(attempts or '0')
end

local function range_set(jobKey, i, state, worker, attempts)
  redis.call('HSET', jobKey, 'r' .. i, state .. '|' .. worker .. '|' .. attempts)
end

-- The item belongs to the song's current split and the song is still running.
local function range_current(jobKey, splitId)
  return redis.call('HGET', jobKey, 'state') == 'processing' and redis.call('HGET', jobKey, 'splitId') == splitId
end

-- Takes the song's waiting ranges and encoding units out of the queue (and their fair-order tags).
local function unqueue_ranges(jobKey, queueKey, orderKey, hash)
  local splitId = redis.call('HGET', jobKey, 'splitId')
  if not splitId then return end
  for i = 0, range_count(jobKey) + tonumber(redis.call('HGET', jobKey, 'encodeUnits') or '0') - 1 do
    local item = range_item(hash, i, splitId)
    redis.call('LREM', queueKey, 0, item)
    redis.call('HDEL', orderKey, item)
  end
end

-- 'range 2 of 3 (11.7 s to 23.4 s)' or 'the encoding of stem 2 of 5', for errors
local function range_label(jobKey, i)
  local bounds = {}
  for a in string.gmatch(redis.call('HGET', jobKey, 'rangeChunks') or '', '[^,]+') do table.insert(bounds, tonumber(a)) end
  if i >= #bounds then
    return 'the encoding of stem ' .. (i - #bounds + 1) .. ' of ' .. (redis.call('HGET', jobKey, 'encodeUnits') or '?')
  end
  local stride = tonumber(redis.call('HGET', jobKey, 'rangeStride') or '0')
  local from = string.format('%.1f', bounds[i + 1] * stride / 44100)
  local to = bounds[i + 2] and string.format('%.1f s', bounds[i + 2] * stride / 44100) or 'the end'
  return 'range ' .. (i + 1) .. ' of ' .. #bounds .. ' (' .. from .. ' s to ' .. to .. ')'
end

-- The split song fails for good (a range used its attempts): as fail-10's dead branch, and its
-- waiting ranges leave the queue; ranges running elsewhere find the song failed at their next
-- transition and stop.
local function fail_split_song(jobKey, hash, error, now, nowMs, queueKey, orderKey, deadKey, claimsKey, claimBase, expiriesKey, retentionSec)
  redis.call('HSET', jobKey, 'state', 'failed', 'error', error, 'finishedAt', now, 'updatedAt', now, 'failedMs', nowMs)
  unqueue_ranges(jobKey, queueKey, orderKey, hash)
  redis.call('LREM', deadKey, 0, hash)
  redis.call('LPUSH', deadKey, hash)
  retain(jobKey, claimsKey, claimBase, expiriesKey, hash, retentionSec, nowMs)
end

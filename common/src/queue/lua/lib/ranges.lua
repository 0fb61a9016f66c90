-- Shared helpers of a split song (issue 23), prepended to scripts whose first line names `ranges`.
-- A song longer than SPLIT_MIN_SEC is split by the worker that took it into ranges of consecutive
-- chunks (split-8.lua). Fields of job:<songhash>:
--   rangeChunks  '0,4,8': range i is chunks [a_i, a_(i+1)), the last one to the song's end
--   rangeStride  the chunk stride in frames (44.1 kHz), for the view's fromSec/toSec
--   splitId      this split's token: a queue item of an earlier run of the song is not this run's
--   r<i>         '<state>|<worker>|<attempts>', state queued, processing or done
--   rangesDone   how many ranges are done
--   encodeUnits  one unit per stem, r<n+j>, queued with the ranges (split-8.lua); 0 = the last
--                range's worker stitches and encodes the song itself
--   encodesDone  how many of those are done
-- A range waits in `toWorker` as the item '<songhash>#<i>#<splitId>' (fair order counts ranges) and
-- is held in a worker's processing list like a song. An encoding unit (i >= the ranges' count)
-- waits in `toEncoder`, a plain list, for a worker's side slot: it runs beside the ranges, encoding
-- its stem as the song's contiguous prefix grows, so it never holds a worker a range could use.

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

-- Takes the song's waiting ranges and encoding units out of their lists (and their fair-order tags).
local function unqueue_ranges(jobKey, queueKey, encoderKey, orderKey, hash)
  local splitId = redis.call('HGET', jobKey, 'splitId')
  if not splitId then return end
  local n = range_count(jobKey)
  for i = 0, n + tonumber(redis.call('HGET', jobKey, 'encodeUnits') or '0') - 1 do
    local item = range_item(hash, i, splitId)
    if i < n then
      redis.call('LREM', queueKey, 0, item)
      redis.call('HDEL', orderKey, item)
    else
      redis.call('LREM', encoderKey, 0, item)
    end
  end
end

-- An item handed back goes to the front of its list: a range to toWorker's (songs.lua front_insert),
-- an encoding unit to toEncoder's (BLMOVE takes from the right).
local function requeue_front(jobKey, i, item, queueKey, encoderKey, orderKey, vtimeKey)
  if i >= range_count(jobKey) then
    redis.call('RPUSH', encoderKey, item)
  else
    front_insert(queueKey, orderKey, vtimeKey, item)
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

-- An item taken from its list (BLMOVE) by a worker that stopped before range-start-5.lua: still
-- 'queued' and in no list, it would be lost. Back to the front of its list unless it is there already.
local function requeue_untaken(jobKey, i, item, queueKey, encoderKey, orderKey, vtimeKey)
  local list = i >= range_count(jobKey) and encoderKey or queueKey
  if redis.call('LPOS', list, item) ~= false then return false end
  requeue_front(jobKey, i, item, queueKey, encoderKey, orderKey, vtimeKey)
  return true
end

-- The split song fails for good (a range used its attempts): as fail-10's dead branch, and its
-- waiting ranges leave the queue; ranges running elsewhere find the song failed at their next
-- transition and stop.
local function fail_split_song(jobKey, hash, error, now, nowMs, queueKey, encoderKey, orderKey, deadKey, claimsKey, claimBase, expiriesKey, retentionSec)
  redis.call('HSET', jobKey, 'state', 'failed', 'error', error, 'finishedAt', now, 'updatedAt', now, 'failedMs', nowMs)
  unqueue_ranges(jobKey, queueKey, encoderKey, orderKey, hash)
  redis.call('LREM', deadKey, 0, hash)
  redis.call('LPUSH', deadKey, hash)
  retain(jobKey, claimsKey, claimBase, expiriesKey, hash, retentionSec, nowMs)
end

-- uses: songs, ranges
-- The worker that took a long song splits it into ranges of consecutive chunks (issue 23): each
-- range waits in the queue in its tenant's fair turn (fair order counts ranges, so one tenant's long
-- song does not starve another's short one), the song stays `processing` and leaves this worker's
-- list. Its per-stem encoding units (`units`, items numbered after the ranges) wait in toEncoder from
-- now on: a worker's side slot takes each and encodes its stem as the ranges finish, in song order.
-- Emits the job event. Returns 'split', 'lost' (not this worker's) or 'gone' (deleted or
-- submitted again).
local processingKey = KEYS[1] -- processing list of this worker
local jobKey = KEYS[2]        -- job hash
local queueKey = KEYS[3]      -- toWorker
local orderKey = KEYS[4]      -- fair order: tag of each waiting item
local lastKey = KEYS[5]       -- fair order: each tenant's last tag
local vtimeKey = KEYS[6]      -- fair order: virtual time
local eventsChannel = KEYS[7] -- events channel
local encoderKey = KEYS[8]    -- toEncoder
local hash = ARGV[1]          -- songhash
local chunks = ARGV[2]        -- range boundaries in chunks, '0,4,8' (range i = [a_i, a_(i+1)), the last to the end)
local stride = ARGV[3]        -- chunk stride in frames
local splitId = ARGV[4]       -- this split's token
local estimatedFrames = ARGV[5] -- the song's length in frames as the worker estimates it
local now = ARGV[6]
local units = tonumber(ARGV[7]) -- encoding units, one per stem (0: the last range's worker encodes every stem)

if redis.call('LPOS', processingKey, hash) == false then return 'lost' end
if redis.call('HGET', jobKey, 'state') ~= 'processing' then
  redis.call('LREM', processingKey, 0, hash)
  return 'gone'
end
redis.call('LREM', processingKey, 0, hash)
-- a split run lists its pieces anew (range-piece-2.lua): forget those of an earlier split of this run
for i = 0, range_count(jobKey) - 1 do redis.call('HDEL', jobKey, 'p' .. i) end
redis.call('HSET', jobKey, 'encodeUnits', units, 'encodesDone', '0', 'rangeChunks', chunks, 'rangeStride', stride, 'splitId', splitId, 'rangesDone', '0',
  'rangeFrames', estimatedFrames, 'pieceEnds', '', 'readyFrames', '0', 'updatedAt', now)
local tenant = redis.call('HGET', jobKey, 'tenant') or 'default'
local n = range_count(jobKey)
for i = 0, n - 1 do
  range_set(jobKey, i, 'queued', '', 0)
  fair_insert(queueKey, orderKey, lastKey, vtimeKey, tenant, range_item(hash, i, splitId))
end
for j = 0, units - 1 do
  range_set(jobKey, n + j, 'queued', '', 0)
  redis.call('LPUSH', encoderKey, range_item(hash, n + j, splitId))
end
redis.call('PUBLISH', eventsChannel, hash)
return 'split'

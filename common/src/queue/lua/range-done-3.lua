-- uses: ranges
-- A worker stored a range's output (store.ts rangeKey): the range is done. The worker finishing the
-- last range becomes the song's stitcher, decided here atomically: the song's own item goes into its
-- processing list, so stitching is claimed, heartbeaten, reaped and retried like any run of a song
-- (complete-6, fail-10, reap-9, release-6). Emits the job event.
-- Returns {'stitch' or 'done', done flags '1'/'0' per range} (the worker publishes the pieces the
-- contiguous ranges make final); {'lost'} (not this worker's range any more) or {'gone'} (the song was
-- deleted, failed or run again).
local processingKey = KEYS[1] -- processing list of this worker
local jobKey = KEYS[2]        -- job hash
local eventsChannel = KEYS[3] -- events channel
local item = ARGV[1]          -- '<songhash>#<i>#<splitId>'
local workerId = ARGV[2]
local now = ARGV[3]

local hash, i, splitId = parse_range_item(item)
if redis.call('LREM', processingKey, 1, item) == 0 then return {'lost'} end
if not range_current(jobKey, splitId) then return {'gone'} end
local state, worker, attempts = range_get(jobKey, i)
if state ~= 'processing' or worker ~= workerId then return {'lost'} end
range_set(jobKey, i, 'done', workerId, attempts)
local n = range_count(jobKey)
local done = redis.call('HINCRBY', jobKey, 'rangesDone', 1)
local reply = {'done'}
for j = 0, n - 1 do
  table.insert(reply, range_get(jobKey, j) == 'done' and '1' or '0')
end
local fields = {'progress', string.format('%.4f', 0.9 * done / n), 'updatedAt', now}
if done >= n then
  reply[1] = 'stitch'
  table.insert(fields, 'worker')
  table.insert(fields, workerId)
  redis.call('LPUSH', processingKey, hash)
end
redis.call('HSET', jobKey, unpack(fields))
redis.call('PUBLISH', eventsChannel, hash)
return reply

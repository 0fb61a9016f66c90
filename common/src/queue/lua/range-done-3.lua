-- uses: songs, ranges
-- A worker finished a unit of a split song: a range of chunks whose output it stored (store.ts
-- rangeKey), or the encoding of one stem (issue 23 item 5). The units were queued with the ranges
-- (split-8.lua) and run beside them, each encoding its stem as the ranges finish; with encodeUnits 0
-- the worker finishing the last chunk range stitches and encodes every stem itself ('stitch'). The
-- worker finishing the last unit gets the song's own item in its processing list, so the song's
-- finish (record the stems, complete-6) is claimed, heartbeaten, reaped and retried like any run of
-- a song. Emits the job event. Returns {'stitch' | 'encode' | 'finish' | 'done', done flag per
-- chunk range '1'/'0'} ('encode': the last chunk range, the units finish the song); {'lost'} (not
-- this worker's unit any more) or {'gone'} (the song was deleted, failed or run again).
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
local units = tonumber(redis.call('HGET', jobKey, 'encodeUnits') or '0')
local reply = {'done'}
local fields = {'updatedAt', now}
local finish = false
if i < n then
  local done = redis.call('HINCRBY', jobKey, 'rangesDone', 1)
  table.insert(fields, 'progress')
  table.insert(fields, string.format('%.4f', 0.8 * done / n))
  if done >= n then
    if units > 0 then
      reply[1] = 'encode'
    else
      reply[1] = 'stitch'
      finish = true
    end
  end
else
  -- a unit is done only after every range (it encodes its stem to the song's end)
  local encoded = redis.call('HINCRBY', jobKey, 'encodesDone', 1)
  table.insert(fields, 'progress')
  table.insert(fields, string.format('%.4f', 0.8 + 0.15 * encoded / units))
  if encoded >= units then
    reply[1] = 'finish'
    finish = true
  end
end
for j = 0, n - 1 do
  table.insert(reply, range_get(jobKey, j) == 'done' and '1' or '0')
end
if finish then
  table.insert(fields, 'worker')
  table.insert(fields, workerId)
  redis.call('LPUSH', processingKey, hash)
end
redis.call('HSET', jobKey, unpack(fields))
redis.call('PUBLISH', eventsChannel, hash)
return reply

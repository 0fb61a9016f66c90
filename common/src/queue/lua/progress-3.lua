-- Progress of a running job, and the progressive pieces it has published (issue 21).
-- Emits: the songhash on the events channel when 'owned'.
local jobKey = KEYS[1]        -- job hash
local processingKey = KEYS[2] -- processing list of this worker
local eventsKey = KEYS[3]     -- events channel
local hash = ARGV[1]          -- songhash
local progress = ARGV[2]      -- fraction 0..1
local now = ARGV[3]
local readyFrames = ARGV[4]   -- frames final for every stem ('' = no pieces)
local totalFrames = ARGV[5]   -- the song's length in frames ('' = not known yet)
local pieceEnds = ARGV[6]     -- this run's cumulative piece end frames so far, comma-separated ('' = none)
local reset = ARGV[7]         -- '1': the recorded pieces are gone (a new run of a finished song): start the list again
-- Writes only while this worker owns the job, and never re-creates a deleted record. Returns
-- 'owned'; 'lost' (the reaper handed it on); 'gone' (every claim was deleted while it ran) or
-- 'superseded' (deleted and submitted again): in those two the job leaves this worker's list and the
-- worker stops working on it. readyFrames only grows. The recorded piece list is extended with the
-- ends beyond its length: a piece is appended once (seq = current count) and a retried run
-- re-publishing the same pieces leaves it as it is; a call that did not reach Redis is made good by
-- the next one.
if redis.call('LPOS', processingKey, hash) == false then return 'lost' end
local state = redis.call('HGET', jobKey, 'state')
if state ~= 'processing' then
  redis.call('LREM', processingKey, 0, hash)
  if not state then return 'gone' end
  return 'superseded'
end
local fields = {'progress', progress, 'updatedAt', now}
local oldEnds = redis.call('HGET', jobKey, 'pieceEnds') or ''
local oldReady = tonumber(redis.call('HGET', jobKey, 'readyFrames') or '0') or 0
if reset == '1' then
  oldEnds = ''
  oldReady = 0
  table.insert(fields, 'pieceEnds')
  table.insert(fields, '')
  table.insert(fields, 'readyFrames')
  table.insert(fields, '0')
end
local count = function(list)
  if list == '' then return 0 end
  local _, commas = string.gsub(list, ',', '')
  return commas + 1
end
if pieceEnds ~= '' and count(pieceEnds) > count(oldEnds) then
  table.insert(fields, 'pieceEnds')
  table.insert(fields, pieceEnds)
end
if readyFrames ~= '' and tonumber(readyFrames) > oldReady then
  table.insert(fields, 'readyFrames')
  table.insert(fields, readyFrames)
end
if totalFrames ~= '' then
  table.insert(fields, 'totalFrames')
  table.insert(fields, totalFrames)
end
redis.call('HSET', jobKey, unpack(fields))
redis.call('PUBLISH', eventsKey, hash)
return 'owned'

-- uses: ranges
-- A split song's progressive piece (issue 23 item 4): piece i covers range i's frames including its
-- boundary with range i-1, so it is final once both ranges are done; the worker that saw both done
-- stored it (live/<songhash>/<i>.f32). The record lists pieces only over the song's contiguous
-- prefix: `pieceEnds` and `readyFrames` (never lowered) advance when the gap before them closes,
-- whichever ranges finish first. Emits the job event. Returns 'owned' or 'gone'.
local jobKey = KEYS[1]        -- job hash
local eventsChannel = KEYS[2] -- events channel
local hash = ARGV[1]          -- songhash
local splitId = ARGV[2]       -- the split the piece belongs to
local seq = ARGV[3]           -- piece (= range) index
local endFrame = ARGV[4]      -- the piece's end frame in the song
local totalFrames = ARGV[5]   -- the song's length in frames ('' = not known)
local now = ARGV[6]

if not range_current(jobKey, splitId) then return 'gone' end
redis.call('HSET', jobKey, 'p' .. seq, endFrame)
local ends = {}
local j = 0
while true do
  local e = redis.call('HGET', jobKey, 'p' .. j)
  if not e then break end
  table.insert(ends, e)
  j = j + 1
end
local fields = {'updatedAt', now}
if #ends > 0 then
  table.insert(fields, 'pieceEnds')
  table.insert(fields, table.concat(ends, ','))
  local ready = tonumber(ends[#ends])
  if ready > tonumber(redis.call('HGET', jobKey, 'readyFrames') or '0') then
    table.insert(fields, 'readyFrames')
    table.insert(fields, tostring(ready))
  end
end
if totalFrames ~= '' then
  table.insert(fields, 'totalFrames')
  table.insert(fields, totalFrames)
end
redis.call('HSET', jobKey, unpack(fields))
redis.call('PUBLISH', eventsChannel, hash)
return 'owned'

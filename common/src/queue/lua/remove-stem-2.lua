-- KEYS[1] job hash, KEYS[2] events channel
-- ARGV[1] songhash, ARGV[2] track, ARGV[3] now
-- Takes a removed stem off the job's list. Writes nothing when the record is gone or does not list
-- the stem (a job that is queued or running again lists none). Returns 1 if the record changed.
local stems = redis.call('HGET', KEYS[1], 'stems')
if not stems then return 0 end
local kept, found = {}, false
for track in string.gmatch(stems, '[^,]+') do
  if track == ARGV[2] then found = true else table.insert(kept, track) end
end
if not found then return 0 end
redis.call('HSET', KEYS[1], 'stems', table.concat(kept, ','), 'updatedAt', ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1

-- uses: songs
-- KEYS[1] job hash, KEYS[2] the tenant's claim, KEYS[3] claims set, KEYS[4] events channel
-- ARGV[1] songhash, ARGV[2] track, ARGV[3] now, ARGV[4] claim key root
-- Removes a stem from one tenant's view of the song. The stem leaves the job's list only when no
-- claim sees it any more: 'last' (the caller then deletes the object), 'hidden' (another claim
-- still has it), 'absent' (no such claim, or it does not see that stem: a song queued or running
-- again lists none).
local stems = redis.call('HGET', KEYS[1], 'stems')
if not stems or not has_item(stems, ARGV[2]) or redis.call('EXISTS', KEYS[2]) == 0 then return 'absent' end
local hidden = redis.call('HGET', KEYS[2], 'hidden') or ''
if has_item(hidden, ARGV[2]) then return 'absent' end
redis.call('HSET', KEYS[2], 'hidden', hidden == '' and ARGV[2] or (hidden .. ',' .. ARGV[2]), 'updatedAt', ARGV[3])
local base = ARGV[4] .. ARGV[1] .. ':'
for _, t in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if not has_item(redis.call('HGET', base .. t, 'hidden'), ARGV[2]) then
    redis.call('PUBLISH', KEYS[4], ARGV[1])
    return 'hidden'
  end
end
for _, t in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  -- a claim key gone by TTL is not written again (it would come back with no TTL)
  if redis.call('EXISTS', base .. t) == 1 then
    redis.call('HSET', base .. t, 'hidden', without_item(redis.call('HGET', base .. t, 'hidden'), ARGV[2]))
  end
end
redis.call('HSET', KEYS[1], 'stems', without_item(stems, ARGV[2]), 'updatedAt', ARGV[3])
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 'last'

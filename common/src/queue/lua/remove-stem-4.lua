-- uses: songs
-- Removes a stem from one tenant's view of the song. The stem leaves the job's list only when no
-- claim sees it any more: 'last' (the caller then deletes the object), 'hidden' (another claim
-- still has it), 'absent' (no such claim, or it does not see that stem: a song queued or running
-- again lists none). Emits: the songhash on the events channel unless 'absent'.
local jobKey = KEYS[1]        -- job hash
local claimKey = KEYS[2]      -- the tenant's claim
local claimsKey = KEYS[3]     -- claims set
local eventsChannel = KEYS[4] -- events channel
local hash = ARGV[1]          -- songhash
local track = ARGV[2]
local now = ARGV[3]
local claimRoot = ARGV[4]     -- claim key root (claim:<h>:<tenant>)

local stems = redis.call('HGET', jobKey, 'stems')
if not stems or not has_item(stems, track) or redis.call('EXISTS', claimKey) == 0 then return 'absent' end
local hidden = redis.call('HGET', claimKey, 'hidden') or ''
if has_item(hidden, track) then return 'absent' end
redis.call('HSET', claimKey, 'hidden', hidden == '' and track or (hidden .. ',' .. track), 'updatedAt', now)
local base = claimRoot .. hash .. ':'
for _, t in ipairs(redis.call('SMEMBERS', claimsKey)) do
  if not has_item(redis.call('HGET', base .. t, 'hidden'), track) then
    redis.call('PUBLISH', eventsChannel, hash)
    return 'hidden'
  end
end
for _, t in ipairs(redis.call('SMEMBERS', claimsKey)) do
  -- a claim key gone by TTL is not written again (it would come back with no TTL)
  if redis.call('EXISTS', base .. t) == 1 then
    redis.call('HSET', base .. t, 'hidden', without_item(redis.call('HGET', base .. t, 'hidden'), track))
  end
end
redis.call('HSET', jobKey, 'stems', without_item(stems, track), 'updatedAt', now)
redis.call('PUBLISH', eventsChannel, hash)
return 'last'

-- The retention sweeper's step for one song past its deadline: forget the record and every claim
-- (Redis may have expired them already; the claims set outlives them, lib/songs.lua), take it out of
-- each claimant's library and active set, and answer 1, so the caller removes the objects. A song
-- queued or running again since is left alone and leaves the sweep list (0); one whose deadline
-- moved (a new claim restarted retention) stays in it (0). Emits: the songhash on the events channel when forgotten.
local jobKey = KEYS[1]        -- job hash
local claimsKey = KEYS[2]     -- claims set
local expiriesKey = KEYS[3]   -- expiries
local deadKey = KEYS[4]       -- dead
local eventsChannel = KEYS[5] -- events channel
local hash = ARGV[1]          -- songhash
local claimRoot = ARGV[2]     -- claim key root (claim:<h>:<tenant>)
local nowMs = tonumber(ARGV[3])
local libraryRoot = ARGV[4]   -- library key root (library:<tenant>)
local activeRoot = ARGV[5]    -- active set root (optional)

local deadline = tonumber(redis.call('ZSCORE', expiriesKey, hash) or '0')
if deadline > nowMs then return 0 end
local state = redis.call('HGET', jobKey, 'state')
if state == 'queued' or state == 'processing' then
  redis.call('ZREM', expiriesKey, hash)
  return 0
end
for _, t in ipairs(redis.call('SMEMBERS', claimsKey)) do
  redis.call('DEL', claimRoot .. hash .. ':' .. t)
  redis.call('ZREM', libraryRoot .. t, hash)
  if activeRoot then redis.call('SREM', activeRoot .. t, hash) end
end
redis.call('DEL', jobKey, claimsKey)
redis.call('ZREM', expiriesKey, hash)
redis.call('LREM', deadKey, 0, hash)
redis.call('PUBLISH', eventsChannel, hash)
return 1

-- KEYS[1] job hash, KEYS[2] claims set, KEYS[3] expiries, KEYS[4] dead, KEYS[5] events channel
-- ARGV[1] songhash, ARGV[2] claim key root, ARGV[3] now (ms), ARGV[4] library key root,
-- ARGV[5] active set root
-- The retention sweeper's step for one song past its deadline: forget the record and every claim
-- (Redis may have expired them already; the claims set outlives them, lib/songs.lua), take it out of
-- each claimant's library and active set, and answer 1, so the caller removes the objects. A song
-- queued or running again since is left alone and leaves the sweep list (0); one whose deadline
-- moved (a new claim restarted retention) stays in it (0).
local deadline = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0')
if deadline > tonumber(ARGV[3]) then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'processing' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
for _, t in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', ARGV[2] .. ARGV[1] .. ':' .. t)
  redis.call('ZREM', ARGV[4] .. t, ARGV[1])
  if ARGV[5] then redis.call('SREM', ARGV[5] .. t, ARGV[1]) end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('LREM', KEYS[4], 0, ARGV[1])
redis.call('PUBLISH', KEYS[5], ARGV[1])
return 1

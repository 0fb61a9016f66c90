-- KEYS[1] job hash, KEYS[2] events channel, KEYS[3] order, KEYS[4] vtime
-- ARGV[1] songhash, ARGV[2] worker id, ARGV[3] now
-- Marks a claimed job as processing and counts the attempt; its start tag becomes the virtual time
-- of fair order (lib/songs.lua). Returns the attempt number.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'createdAt', ARGV[3])
end
local tag = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if tag > tonumber(redis.call('GET', KEYS[4]) or '0') then redis.call('SET', KEYS[4], tag) end
redis.call('HDEL', KEYS[3], ARGV[1])
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'processing', 'progress', '0', 'worker', ARGV[2], 'startedAt', ARGV[3], 'updatedAt', ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return attempts

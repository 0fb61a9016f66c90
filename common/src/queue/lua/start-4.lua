-- Marks a claimed job as processing and counts the attempt; its start tag becomes the virtual time
-- of fair order (lib/songs.lua). Returns the attempt number. Emits: the songhash on the events channel.
local jobKey = KEYS[1]        -- job hash
local eventsChannel = KEYS[2] -- events channel
local orderKey = KEYS[3]      -- order (fair tags)
local vtimeKey = KEYS[4]      -- vtime
local hash = ARGV[1]          -- songhash
local workerId = ARGV[2]
local now = ARGV[3]

if redis.call('EXISTS', jobKey) == 0 then
  redis.call('HSET', jobKey, 'createdAt', now)
end
local tag = tonumber(redis.call('HGET', orderKey, hash) or '0')
if tag > tonumber(redis.call('GET', vtimeKey) or '0') then redis.call('SET', vtimeKey, tag) end
redis.call('HDEL', orderKey, hash)
local attempts = redis.call('HINCRBY', jobKey, 'attempts', 1)
redis.call('HSET', jobKey, 'state', 'processing', 'progress', '0', 'worker', workerId, 'startedAt', now, 'updatedAt', now)
redis.call('PUBLISH', eventsChannel, hash)
return attempts

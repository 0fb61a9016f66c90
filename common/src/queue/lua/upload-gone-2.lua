-- The retention sweeper's step for a song that failed for good: its upload leaves the store at
-- once (nothing reads it again: a new submission uploads it anew), and the record says so
-- (`uploadGone`), so the sweep's walk of `dead` stops at the first song it has done. Only a song
-- still failed is marked (a song submitted again since needs its upload). Returns 1 if written.
-- Emits: the songhash on the events channel when written.
local jobKey = KEYS[1]        -- job hash
local eventsChannel = KEYS[2] -- events channel
local hash = ARGV[1]          -- songhash
local mark = ARGV[2] == '1'   -- '1' to mark the upload gone, '0' to take the mark back (its removal failed)

if redis.call('HGET', jobKey, 'state') ~= 'failed' then return 0 end
if mark then
  if redis.call('HGET', jobKey, 'uploadGone') == '1' then return 0 end
  redis.call('HSET', jobKey, 'uploadGone', '1')
else
  redis.call('HDEL', jobKey, 'uploadGone')
end
redis.call('PUBLISH', eventsChannel, hash)
return 1

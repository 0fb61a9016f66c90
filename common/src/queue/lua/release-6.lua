-- uses: songs
-- Graceful hand-back (shutdown): the job goes to the front of the queue and the attempt is not counted.
-- Returns 1 if this worker held it, 0 if not. Emits: the songhash on the events channel when requeued.
local processingKey = KEYS[1] -- processing list of this worker
local jobKey = KEYS[2]        -- job hash
local queueKey = KEYS[3]      -- toWorker
local eventsChannel = KEYS[4] -- events channel
local orderKey = KEYS[5]      -- order (fair tags)
local vtimeKey = KEYS[6]      -- vtime
local hash = ARGV[1]          -- songhash
local now = ARGV[2]

local owned = redis.call('LREM', processingKey, 1, hash)
if owned == 0 then return 0 end
if redis.call('EXISTS', jobKey) == 0 then return 1 end
redis.call('HINCRBY', jobKey, 'attempts', -1)
redis.call('HSET', jobKey, 'state', 'queued', 'progress', '0', 'updatedAt', now)
front_insert(queueKey, orderKey, vtimeKey, hash)
redis.call('PUBLISH', eventsChannel, hash)
return 1

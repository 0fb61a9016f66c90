-- uses: ranges
-- A tenant deletes its song: its claim goes. The song itself (record, places in the queue and in
-- `dead`) goes with the last claim: 'last' (the caller removes the objects), 'kept' (others still
-- claim it), 'absent' (this tenant has no claim). A split song's waiting ranges leave the queue with
-- it; ranges running stop at their worker's next look at the record (worker/src/ranges.ts). Emits: the songhash on the events channel unless 'absent'.
local jobKey = KEYS[1]        -- job hash
local claimsKey = KEYS[2]     -- claims set
local claimKey = KEYS[3]      -- the tenant's claim
local activeKey = KEYS[4]     -- the tenant's active set
local queueKey = KEYS[5]      -- toWorker
local deadKey = KEYS[6]       -- dead
local orderKey = KEYS[7]      -- order (fair tags)
local expiriesKey = KEYS[8]   -- expiries
local eventsChannel = KEYS[9] -- events channel
local libraryKey = KEYS[10]   -- the tenant's library
local encoderKey = KEYS[11]   -- toEncoder
local hash = ARGV[1]          -- songhash
local tenant = ARGV[2]

if redis.call('DEL', claimKey) == 0 then return 'absent' end
redis.call('SREM', claimsKey, tenant)
redis.call('SREM', activeKey, hash)
redis.call('ZREM', libraryKey, hash)
if redis.call('SCARD', claimsKey) > 0 then
  redis.call('PUBLISH', eventsChannel, hash)
  return 'kept'
end
unqueue_ranges(jobKey, queueKey, encoderKey, orderKey, hash)
redis.call('DEL', jobKey, claimsKey)
redis.call('LREM', queueKey, 0, hash)
redis.call('LREM', deadKey, 0, hash)
redis.call('HDEL', orderKey, hash)
redis.call('ZREM', expiriesKey, hash)
redis.call('PUBLISH', eventsChannel, hash)
return 'last'

-- KEYS[1] job hash, KEYS[2] claims set, KEYS[3] the tenant's claim, KEYS[4] the tenant's active set,
-- KEYS[5] toWorker, KEYS[6] dead, KEYS[7] order, KEYS[8] expiries, KEYS[9] events channel,
-- KEYS[10] the tenant's library
-- ARGV[1] songhash, ARGV[2] tenant
-- A tenant deletes its song: its claim goes. The song itself (record, places in the queue and in
-- `dead`) goes with the last claim: 'last' (the caller removes the objects), 'kept' (others still
-- claim it), 'absent' (this tenant has no claim).
if redis.call('DEL', KEYS[3]) == 0 then return 'absent' end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[10], ARGV[1])
if redis.call('SCARD', KEYS[2]) > 0 then
  redis.call('PUBLISH', KEYS[9], ARGV[1])
  return 'kept'
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('LREM', KEYS[5], 0, ARGV[1])
redis.call('LREM', KEYS[6], 0, ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('PUBLISH', KEYS[9], ARGV[1])
return 'last'

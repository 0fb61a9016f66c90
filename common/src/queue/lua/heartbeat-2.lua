-- A worker is alive while its heartbeat key exists; the set lists every worker the reaper checks.
-- Run by Queue.heartbeat and by the worker's heartbeat thread (worker/src/heartbeat-thread.mjs).
-- Emits nothing (no job changes). Returns 1.
local heartbeatKey = KEYS[1] -- heartbeat key of the worker
local workersKey = KEYS[2]   -- workers set
local workerId = ARGV[1]
local ttlSec = tonumber(ARGV[2])
local now = ARGV[3]

redis.call('SET', heartbeatKey, now, 'EX', ttlSec)
redis.call('SADD', workersKey, workerId)
return 1

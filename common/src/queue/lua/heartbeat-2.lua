-- KEYS[1] heartbeat key of the worker, KEYS[2] workers set
-- ARGV[1] worker id, ARGV[2] TTL seconds, ARGV[3] now
-- A worker is alive while its heartbeat key exists; the set lists every worker the reaper checks.
-- Run by Queue.heartbeat and by the worker's heartbeat thread (worker/src/heartbeat-thread.mjs).
redis.call('SET', KEYS[1], ARGV[3], 'EX', tonumber(ARGV[2]))
redis.call('SADD', KEYS[2], ARGV[1])
return 1

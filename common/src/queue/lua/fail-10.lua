-- uses: songs
-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] toWorker, KEYS[4] dead, KEYS[5] events channel,
-- KEYS[6] order, KEYS[7] last, KEYS[8] vtime, KEYS[9] claims set, KEYS[10] expiries
-- ARGV[1] songhash, ARGV[2] error, ARGV[3] max attempts, ARGV[4] '1' if retryable, ARGV[5] now,
-- ARGV[6] claim key root, ARGV[7] retention seconds, ARGV[8] now (ms)
-- Returns 'retry' (back in the queue in its tenant's fair turn), 'dead' (failed for good, retention
-- starts), 'lost' (not ours any more) or 'gone' (every claim was deleted while it ran, or it was
-- submitted again since: nothing is written).
local owned = redis.call('LREM', KEYS[1], 1, ARGV[1])
if owned == 0 then return 'lost' end
if redis.call('HGET', KEYS[2], 'state') ~= 'processing' then return 'gone' end
local attempts = tonumber(redis.call('HGET', KEYS[2], 'attempts') or '0')
local outcome = 'dead'
if ARGV[4] == '1' and attempts < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[2], 'state', 'queued', 'progress', '0', 'error', ARGV[2], 'updatedAt', ARGV[5])
  fair_insert(KEYS[3], KEYS[6], KEYS[7], KEYS[8], redis.call('HGET', KEYS[2], 'tenant') or 'default', ARGV[1])
  outcome = 'retry'
else
  -- `failedMs`: the tenants that sent it are charged an active place for a while (submit-12.lua);
  -- the upload leaves the store at the next retention sweep (fail-uploads-2.lua)
  redis.call('HSET', KEYS[2], 'state', 'failed', 'error', ARGV[2], 'finishedAt', ARGV[5], 'updatedAt', ARGV[5], 'failedMs', ARGV[8])
  redis.call('LREM', KEYS[4], 0, ARGV[1])
  redis.call('LPUSH', KEYS[4], ARGV[1])
  retain(KEYS[2], KEYS[9], ARGV[6] .. ARGV[1] .. ':', KEYS[10], ARGV[1], ARGV[7], ARGV[8])
end
redis.call('PUBLISH', KEYS[5], ARGV[1])
return outcome

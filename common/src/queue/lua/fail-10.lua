-- uses: songs
-- Returns 'retry' (back in the queue in its tenant's fair turn), 'dead' (failed for good, retention
-- starts), 'lost' (not ours any more) or 'gone' (every claim was deleted while it ran, or it was
-- submitted again since: nothing is written). Emits: the songhash on the events channel on 'retry' and 'dead'.
local processingKey = KEYS[1] -- processing list of this worker
local jobKey = KEYS[2]        -- job hash
local queueKey = KEYS[3]      -- toWorker
local deadKey = KEYS[4]       -- dead
local eventsChannel = KEYS[5] -- events channel
local orderKey = KEYS[6]      -- order (fair tags)
local lastKey = KEYS[7]       -- last (tenant → tag)
local vtimeKey = KEYS[8]      -- vtime
local claimsKey = KEYS[9]     -- claims set
local expiriesKey = KEYS[10]  -- expiries
local hash = ARGV[1]          -- songhash
local err = ARGV[2]           -- error
local maxAttempts = tonumber(ARGV[3])
local retryable = ARGV[4] == '1'
local now = ARGV[5]
local claimRoot = ARGV[6]     -- claim key root (claim:<h>:<tenant>)
local retentionSec = ARGV[7]
local nowMs = ARGV[8]

local owned = redis.call('LREM', processingKey, 1, hash)
if owned == 0 then return 'lost' end
if redis.call('HGET', jobKey, 'state') ~= 'processing' then return 'gone' end
local attempts = tonumber(redis.call('HGET', jobKey, 'attempts') or '0')
local outcome = 'dead'
if retryable and attempts < maxAttempts then
  redis.call('HSET', jobKey, 'state', 'queued', 'progress', '0', 'error', err, 'updatedAt', now)
  fair_insert(queueKey, orderKey, lastKey, vtimeKey, redis.call('HGET', jobKey, 'tenant') or 'default', hash)
  outcome = 'retry'
else
  -- `failedMs`: the tenants that sent it are charged an active place for a while (submit-12.lua);
  -- the upload leaves the store at the next retention sweep (fail-uploads-2.lua)
  redis.call('HSET', jobKey, 'state', 'failed', 'error', err, 'finishedAt', now, 'updatedAt', now, 'failedMs', nowMs)
  redis.call('LREM', deadKey, 0, hash)
  redis.call('LPUSH', deadKey, hash)
  retain(jobKey, claimsKey, claimRoot .. hash .. ':', expiriesKey, hash, retentionSec, nowMs)
end
redis.call('PUBLISH', eventsChannel, hash)
return outcome

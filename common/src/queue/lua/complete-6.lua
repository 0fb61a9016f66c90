-- uses: songs
-- Emits: the songhash on the events channel (unless 'gone' or 'superseded').
local processingKey = KEYS[1] -- processing list of this worker
local jobKey = KEYS[2]        -- job hash
local queueKey = KEYS[3]      -- toWorker
local eventsChannel = KEYS[4] -- events channel
local claimsKey = KEYS[5]     -- claims set
local expiriesKey = KEYS[6]   -- expiries
local hash = ARGV[1]          -- songhash
local now = ARGV[2]
local durationSec = ARGV[3]   -- processing time, seconds
local claimRoot = ARGV[4]     -- claim key root (claim:<h>:<tenant>)
local retentionSec = ARGV[5]
local nowMs = ARGV[6]

-- The stems are uploaded: mark done, release, and start the retention. If a reaper had handed the
-- job on meanwhile, drop the duplicate from the queue (the stems exist, re-running would only
-- overwrite them). The song's files are now those the run made and those it left alone
-- (`storedFormats`, submit-12.lua). Returns {'done' or 'lost', tenant…}: the claims this run was
-- made for (`pending`), each reported once, with a delivery id of its own (`eventId`, stable:
-- what the callback sends, so a receiver can tell a repeat); a claim whose request was made
-- before (another tenant's run for more formats) is not reported again. {'gone'} when every claim
-- was deleted while it ran, {'superseded'} when the song was deleted and submitted again meanwhile
-- (nothing is recorded in either case).
local owned = redis.call('LREM', processingKey, 1, hash)
local state = redis.call('HGET', jobKey, 'state')
if not state then return {'gone'} end
if owned == 1 and state ~= 'processing' then return {'superseded'} end
if owned == 0 then redis.call('LREM', queueKey, 0, hash) end
local formats = redis.call('HGET', jobKey, 'storedFormats') or ''
for f in string.gmatch(redis.call('HGET', jobKey, 'formats') or DEFAULT_FORMAT, '[^,]+') do formats = merge_format(formats, f) end
if formats == '' then formats = DEFAULT_FORMAT end
redis.call('HSET', jobKey, 'state', 'done', 'progress', '1', 'error', '', 'finishedAt', now, 'updatedAt', now, 'durationSec', durationSec,
  'formats', formats, 'storedFormats', formats)
local claimBase = claimRoot .. hash .. ':'
retain(jobKey, claimsKey, claimBase, expiriesKey, hash, retentionSec, nowMs)
local reply = {owned == 1 and 'done' or 'lost'}
-- each claim keeps the run made for it (start, attempts, processing time; the worker only for the
-- tenant that queued the run), so another tenant's later run does not change what it shows
local run = {}
for i, field in ipairs({'startedAt', 'attempts', 'worker', 'tenant'}) do run[i] = redis.call('HGET', jobKey, field) end
for _, t in ipairs(redis.call('SMEMBERS', claimsKey)) do
  local claim = claimBase .. t
  -- claims from before `pending` existed waited for the run that finishes them, as before
  if redis.call('HGET', claim, 'pending') ~= '0' and redis.call('EXISTS', claim) == 1 then
    redis.call('HSET', claim, 'pending', '0', 'doneAt', now, 'eventId', redis.sha1hex(hash .. ':' .. t .. ':' .. now),
      'runStartedAt', run[1] or '', 'runAttempts', run[2] or '0', 'runSec', durationSec, 'runWorker', (run[4] == t and run[3]) or '')
    table.insert(reply, t)
  end
end
redis.call('PUBLISH', eventsChannel, hash)
return reply

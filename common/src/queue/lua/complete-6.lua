-- uses: songs
-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] toWorker, KEYS[4] events channel,
-- KEYS[5] claims set, KEYS[6] expiries
-- ARGV[1] songhash, ARGV[2] now, ARGV[3] duration seconds, ARGV[4] claim key root,
-- ARGV[5] retention seconds, ARGV[6] now (ms)
-- The stems are uploaded: mark done, release, and start the retention. If a reaper had handed the
-- job on meanwhile, drop the duplicate from the queue (the stems exist, re-running would only
-- overwrite them). Returns {'done' or 'lost', tenant…}: the claims whose callbacks report this
-- finish; {'gone'} when every claim was deleted while it ran, {'superseded'} when the song was
-- deleted and submitted again meanwhile (nothing is recorded in either case).
local owned = redis.call('LREM', KEYS[1], 1, ARGV[1])
local state = redis.call('HGET', KEYS[2], 'state')
if not state then return {'gone'} end
if owned == 1 and state ~= 'processing' then return {'superseded'} end
if owned == 0 then redis.call('LREM', KEYS[3], 0, ARGV[1]) end
redis.call('HSET', KEYS[2], 'state', 'done', 'progress', '1', 'error', '', 'finishedAt', ARGV[2], 'updatedAt', ARGV[2], 'durationSec', ARGV[3])
retain(KEYS[2], KEYS[5], ARGV[4] .. ARGV[1] .. ':', KEYS[6], ARGV[1], ARGV[5], ARGV[6])
redis.call('PUBLISH', KEYS[4], ARGV[1])
local reply = {owned == 1 and 'done' or 'lost'}
for _, t in ipairs(redis.call('SMEMBERS', KEYS[5])) do table.insert(reply, t) end
return reply

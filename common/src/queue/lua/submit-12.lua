-- uses: songs
-- KEYS[1] job hash, KEYS[2] toWorker, KEYS[3] claims set, KEYS[4] this tenant's claim, KEYS[5] the
-- tenant's active set, KEYS[6] the tenant's audio seconds today, KEYS[7] order, KEYS[8] last,
-- KEYS[9] vtime, KEYS[10] expiries, KEYS[11] events channel, KEYS[12] the tenant's library (zset
-- songhash → claim time, ms)
-- ARGV[1] songhash, ARGV[2] now (ISO), ARGV[3] tenant, ARGV[4] callback JSON or '', ARGV[5] callback
-- status or '', ARGV[6] filename, ARGV[7] size, ARGV[8] number of tracks, ARGV[9] max active songs
-- (0 = no limit), ARGV[10] audio seconds, ARGV[11] max audio seconds a day (0 = no limit),
-- ARGV[12] TTL of the day's counter, ARGV[13] job key root, ARGV[14] claim key root,
-- ARGV[15] '1' when the upload is stored, ARGV[16] retention seconds, ARGV[17] now (ms),
-- ARGV[18] output format asked for (formats.ts), ARGV[19] stems asked for (comma-separated)
--
-- Output: a song is 'done' for this submission only if it is stored in a format that covers the
-- one asked for (mp3-320 covers mp3) with every stem asked for; otherwise a done song gets a new
-- run that makes the union of what it has and what is asked (one format per extension: mp3-320
-- replaces mp3), and the reply's third item names what it had ('<formats>|<stems>'). A waiting
-- song takes the request into its run ('extended'); a running one cannot ('running': submit again
-- once it is done).
--
-- One tenant's submission of a song. The work is shared: a song waiting or running gains a claim
-- ('queued'), a separated one too ('done'); otherwise it is queued in fair order ('enqueued', which
-- needs the upload stored first: 'upload' asks for it). A claim is the tenant's own filename,
-- callback and view of the stems. Quotas apply when the submission gives the tenant one more
-- active song: {'over_active', n} or {'over_minutes', seconds used}. Returns {outcome, n}.
local hash, now, tenant = ARGV[1], ARGV[2], ARGV[3]
local claim_base = ARGV[14] .. hash .. ':'
local state = redis.call('HGET', KEYS[1], 'state')
local had_claim = redis.call('EXISTS', KEYS[4]) == 1
local active = state == 'queued' or state == 'processing'
local want_format, want_stems = ARGV[18], ARGV[19]
local stored_stems = redis.call('HGET', KEYS[1], 'stems') or ''
local stored_formats = redis.call('HGET', KEYS[1], 'formats') or ''
if stored_formats == '' then stored_formats = 'mp3' end
local separated = state == 'done' and has_format(stored_formats, want_format) and has_all(stored_stems, want_stems)

local note = ''
if active then
  local run_formats = redis.call('HGET', KEYS[1], 'formats') or ''
  if run_formats == '' then run_formats = 'mp3' end
  local run_stems = redis.call('HGET', KEYS[1], 'wanted') or 'drums,bass,other,vocals'
  if not (has_format(run_formats, want_format) and has_all(run_stems, want_stems)) then
    if state == 'queued' then
      -- the worker reads formats and stems when it starts the run
      redis.call('HSET', KEYS[1], 'formats', merge_format(run_formats, want_format), 'wanted', union_items(run_stems, want_stems))
      note = 'extended'
    else
      note = 'running:' .. run_formats .. '|' .. run_stems
    end
  end
end

local outcome = 'enqueued'
if active then outcome = 'queued' elseif separated then outcome = 'done' end
if outcome == 'queued' and had_claim then
  if note == 'extended' then redis.call('PUBLISH', KEYS[11], hash) end
  return {'queued', 0, note}
end
if outcome == 'enqueued' and ARGV[15] ~= '1' then return {'upload', 0} end

if outcome ~= 'done' then
  local max_active = tonumber(ARGV[9])
  if max_active > 0 then
    for _, h in ipairs(redis.call('SMEMBERS', KEYS[5])) do
      local s = redis.call('HGET', ARGV[13] .. h, 'state')
      if (s ~= 'queued' and s ~= 'processing') or redis.call('EXISTS', ARGV[14] .. h .. ':' .. tenant) == 0 then
        redis.call('SREM', KEYS[5], h)
      end
    end
    local n = redis.call('SCARD', KEYS[5])
    if n >= max_active then return {'over_active', n} end
  end
  local max_sec = tonumber(ARGV[11])
  if max_sec > 0 then
    local used = tonumber(redis.call('GET', KEYS[6]) or '0')
    if used + tonumber(ARGV[10]) > max_sec then return {'over_minutes', tostring(used)} end
  end
  redis.call('SADD', KEYS[5], hash)
  redis.call('INCRBYFLOAT', KEYS[6], ARGV[10])
  redis.call('EXPIRE', KEYS[6], tonumber(ARGV[12]))
end

-- the claim
if not had_claim then
  redis.call('HSET', KEYS[4], 'tenant', tenant, 'createdAt', now)
  redis.call('SADD', KEYS[3], tenant)
  redis.call('ZADD', KEYS[12], tonumber(ARGV[17]), hash)
end
if outcome == 'done' then
  redis.call('HSET', KEYS[4], 'hidden', '', 'updatedAt', now)
  if not had_claim then
    local status = ARGV[5]
    if status == '' and ARGV[4] ~= '' then status = 'not sent: the song was already separated when it was submitted' end
    redis.call('HSET', KEYS[4], 'filename', ARGV[6], 'callback', '', 'callbackStatus', status)
  end
  retain(KEYS[1], KEYS[3], claim_base, KEYS[10], hash, ARGV[16], ARGV[17])
  redis.call('PUBLISH', KEYS[11], hash)
  return {'done', 0, ''}
end
redis.call('HSET', KEYS[4], 'filename', ARGV[6], 'callback', ARGV[4], 'callbackStatus', ARGV[5], 'hidden', '', 'updatedAt', now)
if outcome == 'queued' then
  redis.call('PUBLISH', KEYS[11], hash)
  return {'queued', 0, note}
end

-- a new run: the record starts again, the song stops expiring, and waits its fair turn; a song
-- with stems stored makes them again alongside what is asked now
local run_formats, run_stems = want_format, want_stems
if state == 'done' and stored_stems ~= '' then
  run_formats = merge_format(stored_formats, want_format)
  run_stems = union_items(stored_stems, want_stems)
  note = stored_formats .. '|' .. stored_stems
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'progress', '0', 'attempts', '0', 'error', '',
  'createdAt', now, 'updatedAt', now, 'sizeBytes', ARGV[7], 'audioSec', ARGV[10], 'tenant', tenant,
  'formats', run_formats, 'wanted', run_stems)
keep(KEYS[1], KEYS[3], claim_base, KEYS[10], hash)
fair_insert(KEYS[2], KEYS[7], KEYS[8], KEYS[9], tenant, hash)
redis.call('PUBLISH', KEYS[11], hash)
return {'enqueued', 0, note}

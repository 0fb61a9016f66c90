-- uses: songs
-- One tenant's submission of a song. The work is shared: a song waiting or running gains a claim
-- ('queued'), a separated one too ('done'); otherwise it is queued in fair order ('enqueued', which
-- needs the upload stored first: 'upload' asks for it). A claim is the tenant's own filename,
-- callback, request and view of the stems; `pending` '1' while it waits for a run to make what it
-- asked (the run's completion reports it, once: complete-6.lua). Quotas apply when the submission
-- gives the tenant one more active song: {'over_active', n} or {'over_minutes', seconds used}.
-- Returns {outcome, n, note}.
--
-- Output: a song is 'done' for this submission when its finished files (`stems` × `storedFormats`:
-- a run never rewrites them, so they stay served while another runs) cover the format asked for
-- (mp3-320 covers mp3) and every stem asked for. Otherwise a done song gets a new run: for a format
-- it lacks, that format alone (the files stored stay as they are and served); for stems it lacks,
-- the union in every format (one per extension: mp3-320 replaces mp3), which rewrites the files.
-- The reply's third item names what this tenant's own claim had asked before ('<formats>|<stems>';
-- never what other tenants asked). A waiting song takes the request into its run ('extended'); a
-- running one cannot ('running': submit again once it is done).
-- Emits: the songhash on the events channel, except for the refusals (over_active, over_minutes,
-- upload) and a 'queued' claim that changed nothing in the run.
local jobKey = KEYS[1]         -- job hash
local queueKey = KEYS[2]       -- toWorker
local claimsKey = KEYS[3]      -- claims set
local claimKey = KEYS[4]       -- this tenant's claim
local activeKey = KEYS[5]      -- the tenant's active set
local usageKey = KEYS[6]       -- the tenant's audio seconds today
local orderKey = KEYS[7]       -- order (fair tags)
local lastKey = KEYS[8]        -- last (tenant → tag)
local vtimeKey = KEYS[9]       -- vtime
local expiriesKey = KEYS[10]   -- expiries
local eventsChannel = KEYS[11] -- events channel
local libraryKey = KEYS[12]    -- the tenant's library (zset songhash → claim time, ms)
local hash = ARGV[1]           -- songhash
local now = ARGV[2]            -- ISO
local tenant = ARGV[3]
local callback = ARGV[4]       -- callback JSON or ''
local callbackStatus = ARGV[5] -- or ''
local filename = ARGV[6]
local sizeBytes = ARGV[7]
-- ARGV[8]: number of tracks (unused)
local maxActive = tonumber(ARGV[9])    -- max active songs (0 = no limit)
local audioSec = ARGV[10]              -- the song's length as its header states
local maxAudioSec = tonumber(ARGV[11]) -- max audio seconds a day (0 = no limit)
local usageTtl = tonumber(ARGV[12])    -- TTL of the day's counter
local jobRoot = ARGV[13]               -- job key root (job:<h>)
local claimRoot = ARGV[14]             -- claim key root (claim:<h>:<tenant>)
local uploaded = ARGV[15] == '1'       -- the upload is stored
local retentionSec = ARGV[16]
local nowMs = tonumber(ARGV[17])
local wantFormat = ARGV[18]            -- output format asked for (formats.ts)
local wantStems = ARGV[19]             -- stems asked for (comma-separated)
local failedHoldMs = tonumber(ARGV[20] or '0') -- how long a song that failed for good holds its active place (ms)

-- The tenant's active places (set `active`, kept only while the tenant has a limit): songs it
-- claims that are queued or processing, and songs that failed for good less than `hold_ms` ago (a
-- failed upload stays charged to each tenant that sent it for that long, or until it deletes the
-- song). The others leave the set. Returns the places taken.
local function active_places(active, job_root, claim_root, tenant, now_ms, hold_ms)
  for _, h in ipairs(redis.call('SMEMBERS', active)) do
    local job = job_root .. h
    local s = redis.call('HGET', job, 'state')
    local held = s == 'queued' or s == 'processing'
    if s == 'failed' then held = tonumber(redis.call('HGET', job, 'failedMs') or '0') + hold_ms > now_ms end
    if not held or redis.call('EXISTS', claim_root .. h .. ':' .. tenant) == 0 then redis.call('SREM', active, h) end
  end
  return redis.call('SCARD', active)
end

local claimBase = claimRoot .. hash .. ':'
local state = redis.call('HGET', jobKey, 'state')
local hadClaim = redis.call('EXISTS', claimKey) == 1
local active = state == 'queued' or state == 'processing'
local storedStems = redis.call('HGET', jobKey, 'stems') or ''
local storedFormats = stored_formats_of(jobKey, state)
local separated = storedStems ~= '' and has_format(storedFormats, wantFormat) and has_all(storedStems, wantStems)

local note = ''
if active and not separated then
  local runFormats = redis.call('HGET', jobKey, 'formats') or ''
  if runFormats == '' then runFormats = DEFAULT_FORMAT end
  local runStems = redis.call('HGET', jobKey, 'wanted') or DEFAULT_STEMS
  if not (has_format(runFormats, wantFormat) and has_all(runStems, wantStems)) then
    if state == 'queued' then
      -- the worker reads formats and stems when it starts the run
      redis.call('HSET', jobKey, 'formats', merge_format(runFormats, wantFormat), 'wanted', union_items(runStems, wantStems))
      note = 'extended'
    else
      note = 'running:' .. runFormats .. '|' .. runStems
    end
  end
end

local outcome = 'enqueued'
if separated then outcome = 'done' elseif active then outcome = 'queued' end
if outcome == 'queued' and hadClaim then
  -- what it asks now is made by the waiting run (or, running, is not: it submits again later)
  ask(claimKey, wantFormat, wantStems)
  redis.call('HSET', claimKey, 'pending', '1')
  if note == 'extended' then redis.call('PUBLISH', eventsChannel, hash) end
  return {'queued', 0, note}
end

-- quotas are checked before the upload is asked for: a refused submission stores nothing
if outcome ~= 'done' then
  if maxActive > 0 then
    local n = active_places(activeKey, jobRoot, claimRoot, tenant, nowMs, failedHoldMs)
    local counted = false
    for _, h in ipairs(redis.call('SMEMBERS', activeKey)) do if h == hash then counted = true end end
    -- a song that already holds one of the tenant's places (one it sent that failed) takes no other
    if not counted and n >= maxActive then return {'over_active', n} end
  end
  if maxAudioSec > 0 then
    local used = tonumber(redis.call('GET', usageKey) or '0')
    if used + tonumber(audioSec) > maxAudioSec then return {'over_minutes', tostring(used)} end
  end
  if outcome == 'enqueued' and not uploaded then return {'upload', 0} end
  -- the set is kept only while a limit applies (its owners: this script's pruning, drop-claim-11
  -- and expire-song-5); the seconds stay charged whatever becomes of the song
  if maxActive > 0 then redis.call('SADD', activeKey, hash) end
  redis.call('INCRBYFLOAT', usageKey, audioSec)
  redis.call('EXPIRE', usageKey, usageTtl)
end

-- the claim
local asked = ''
if hadClaim then
  local f, s = redis.call('HGET', claimKey, 'askFormats'), redis.call('HGET', claimKey, 'askStems')
  if f and s then asked = f .. '|' .. s end
else
  redis.call('HSET', claimKey, 'tenant', tenant, 'createdAt', now)
  redis.call('SADD', claimsKey, tenant)
  redis.call('ZADD', libraryKey, nowMs, hash)
end
ask(claimKey, wantFormat, wantStems)
if outcome == 'done' then
  redis.call('HSET', claimKey, 'hidden', '', 'updatedAt', now)
  if not hadClaim then
    local status = callbackStatus
    if status == '' and callback ~= '' then status = 'not sent: the song was already separated when it was submitted' end
    redis.call('HSET', claimKey, 'filename', filename, 'callback', '', 'callbackStatus', status, 'pending', '0', 'doneAt', now)
  end
  -- a song another tenant's run is making more of keeps no TTL until that run ends
  if not active then retain(jobKey, claimsKey, claimBase, expiriesKey, hash, retentionSec, nowMs) end
  redis.call('PUBLISH', eventsChannel, hash)
  return {'done', 0, ''}
end
redis.call('HSET', claimKey, 'filename', filename, 'callback', callback, 'callbackStatus', callbackStatus, 'hidden', '', 'updatedAt', now, 'pending', '1')
if outcome == 'queued' then
  redis.call('PUBLISH', eventsChannel, hash)
  return {'queued', 0, note}
end

-- a new run: the record starts again, the song stops expiring, and waits its fair turn. A song
-- with finished files keeps those the run does not rewrite (`stems` × `storedFormats`), served
-- throughout; a failed song's files are those of the run before it.
local runFormats, runStems, keptFormats = wantFormat, wantStems, ''
if storedStems ~= '' and storedFormats ~= '' then
  runStems = union_items(storedStems, wantStems)
  if has_all(storedStems, wantStems) then
    keptFormats = untouched_by(storedFormats, wantFormat)
  else
    runFormats = merge_format(storedFormats, wantFormat)
  end
  note = asked
end
redis.call('DEL', jobKey)
redis.call('HSET', jobKey, 'state', 'queued', 'progress', '0', 'attempts', '0', 'error', '',
  'createdAt', now, 'updatedAt', now, 'sizeBytes', sizeBytes, 'audioSec', audioSec, 'tenant', tenant,
  'formats', runFormats, 'wanted', runStems)
if keptFormats ~= '' then redis.call('HSET', jobKey, 'stems', storedStems, 'storedFormats', keptFormats) end
keep(jobKey, claimsKey, claimBase, expiriesKey, hash)
fair_insert(queueKey, orderKey, lastKey, vtimeKey, tenant, hash)
redis.call('PUBLISH', eventsChannel, hash)
return {'enqueued', 0, note}

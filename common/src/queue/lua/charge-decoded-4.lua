-- KEYS[1] job hash, KEYS[2] processing list of this worker, KEYS[3] claims set, KEYS[4] events channel
-- ARGV[1] songhash, ARGV[2] decoded seconds, ARGV[3] claim key root, ARGV[4] and ARGV[5] today's
-- usage key before and after the tenant (keys.ts: usage(tenant, today)), ARGV[6] TTL of the day's
-- counter, ARGV[7] max audio seconds a day (0 = no limit), ARGV[8] the tenant no quota binds (the
-- implicit tenant), ARGV[9] now (ISO)
--
-- The minutes quota from the decoded length: submit charged each tenant the length the header
-- states (the record's audioSec). Once the worker has decoded the song, the tenants this run is made
-- for are charged what the header left out, on today's counter: the tenant that queued the run and
-- every claim waiting for it (`pending` '1'; a claim from before `pending` existed: made since the
-- run was queued). A claim served by files already finished (pending '0') is not charged, as it
-- was not at submit. A shorter decode refunds nothing. audioSec becomes the decoded length, so a retried run
-- charges nothing twice. Only while this worker owns the job.
-- Returns {'lost'}, {'unchanged'}, or {'charged' or 'over', extra seconds, tenant=used seconds…}:
-- 'over' when every tenant charged is now past the limit (no one within quota wants the run).
local job, processing, claims, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local hash, decoded, claim_root, usage_head, usage_tail = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local ttl, max_sec, unlimited, now = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9]

if redis.call('LPOS', processing, hash) == false then return {'lost'} end
if redis.call('HGET', job, 'state') ~= 'processing' then return {'lost'} end
local charged = tonumber(redis.call('HGET', job, 'audioSec') or '0') or 0
local extra = decoded - charged
if extra <= 0 then return {'unchanged'} end

local run_created = redis.call('HGET', job, 'createdAt') or ''
local run_tenant = redis.call('HGET', job, 'tenant')
local reply = {'charged', string.format('%.3f', extra)}
local over, within = 0, 0
for _, tenant in ipairs(redis.call('SMEMBERS', claims)) do
  local claim = claim_root .. hash .. ':' .. tenant
  local pending = redis.call('HGET', claim, 'pending')
  local waits = pending == '1' or (not pending and (redis.call('HGET', claim, 'createdAt') or '') >= run_created)
  if tenant == run_tenant or waits then
    local key = usage_head .. tenant .. usage_tail
    local used = tonumber(redis.call('INCRBYFLOAT', key, string.format('%.3f', extra)))
    redis.call('EXPIRE', key, ttl)
    table.insert(reply, tenant .. '=' .. string.format('%.3f', used))
    if max_sec > 0 and tenant ~= unlimited and used > max_sec then over = over + 1 else within = within + 1 end
  end
end
redis.call('HSET', job, 'audioSec', string.format('%.3f', decoded), 'updatedAt', now)
redis.call('PUBLISH', events, hash)
if over > 0 and within == 0 then reply[1] = 'over' end
return reply

-- The minutes quota from the decoded length: submit charged each tenant the length the header
-- states (the record's audioSec). Once the worker has decoded the song, the tenants this run is made
-- for are charged what the header left out, on today's counter: the tenant that queued the run and
-- every claim waiting for it (`pending` '1'; a claim from before `pending` existed: made since the
-- run was queued). A claim served by files already finished (pending '0') is not charged, as it
-- was not at submit. A shorter decode refunds nothing. audioSec becomes the decoded length, so a retried run
-- charges nothing twice. Only while this worker owns the job.
-- Returns {'lost'}, {'unchanged'}, or {'charged' or 'over', extra seconds, tenant=used seconds…}:
-- 'over' when every tenant charged is now past the limit (no one within quota wants the run).
-- Emits: the songhash on the events channel when charged.
local job = KEYS[1]                -- job hash
local processing = KEYS[2]         -- processing list of this worker
local claims = KEYS[3]             -- claims set
local events = KEYS[4]             -- events channel
local hash = ARGV[1]               -- songhash
local decoded = tonumber(ARGV[2])  -- decoded seconds
local claim_root = ARGV[3]         -- claim key root (claim:<h>:<tenant>)
local usage_head = ARGV[4]         -- today's usage key before the tenant (keys.ts: usage(tenant, today))
local usage_tail = ARGV[5]         -- and after it
local ttl = tonumber(ARGV[6])      -- TTL of the day's counter
local max_sec = tonumber(ARGV[7])  -- max audio seconds a day (0 = no limit)
local unlimited = ARGV[8]          -- the tenant no quota binds (the implicit tenant)
local now = ARGV[9]                -- ISO

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

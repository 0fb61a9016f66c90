-- Shared helpers, prepended by scripts.ts to every script whose first line says `-- uses: songs`,
-- after the output formats' table (FORMAT_EXT, FORMAT_COVERS, DEFAULT_FORMAT, DEFAULT_STEMS)
-- generated from formats.ts by lua-prelude.ts.
-- Key names are built from roots passed in ARGV (the same layout as keys.ts): job:<h>, claims:<h>,
-- claim:<h>:<tenant>. Redis runs here as one node, so a script may touch keys it builds itself.

-- Fair order. Every waiting song has a virtual start tag in `order` (hash songhash → tag); the
-- list runs from the right in ascending tag order. A tenant's next song is tagged one past the later
-- of its own last tag (`last`, hash tenant → tag) and the tag of the last song started (`vtime`), so
-- a tenant with fifty songs waiting and a newcomer alternate, and an idle tenant banks no credit.
local function fair_insert(queue, order, last, vtime, tenant, hash)
  local v = tonumber(redis.call('GET', vtime) or '0')
  local tag = math.max(tonumber(redis.call('HGET', last, tenant) or '0'), v) + 1
  redis.call('HSET', last, tenant, tag)
  redis.call('HSET', order, hash, tag)
  local len = redis.call('LLEN', queue)
  local i = 0
  while i < len do
    local batch = redis.call('LRANGE', queue, i, i + 99)
    for j, h in ipairs(batch) do
      if tonumber(redis.call('HGET', order, h) or '0') <= tag then
        if i + j == 1 then redis.call('LPUSH', queue, hash) else redis.call('LINSERT', queue, 'BEFORE', h, hash) end
        return tag
      end
    end
    i = i + 100
  end
  redis.call('RPUSH', queue, hash)
  return tag
end

-- A song handed back runs next: tagged with the current virtual time, at the front.
local function front_insert(queue, order, vtime, hash)
  redis.call('HSET', order, hash, tonumber(redis.call('GET', vtime) or '0'))
  redis.call('RPUSH', queue, hash)
end

-- How long the claims set outlives the record and the claims (s): the sweeper reads it to take the
-- song out of each claimant's library and active set, so it must not expire before the sweep.
local CLAIMS_GRACE_SEC = 86400

-- Retention: a finished or failed song's record and claims expire after `seconds` (0 = never), and
-- `expiries` (zset songhash → deadline ms) tells the sweeper when to remove its objects.
local function retain(job, claims, claim_base, expiries, hash, seconds, now_ms)
  seconds = tonumber(seconds)
  if seconds <= 0 then return end
  local ttl = math.max(1, math.ceil(seconds))
  redis.call('EXPIRE', job, ttl)
  redis.call('EXPIRE', claims, ttl + CLAIMS_GRACE_SEC)
  for _, t in ipairs(redis.call('SMEMBERS', claims)) do redis.call('EXPIRE', claim_base .. t, ttl) end
  redis.call('ZADD', expiries, tonumber(now_ms) + seconds * 1000, hash)
end

-- A song waiting or running again never expires.
local function keep(job, claims, claim_base, expiries, hash)
  redis.call('PERSIST', job)
  redis.call('PERSIST', claims)
  for _, t in ipairs(redis.call('SMEMBERS', claims)) do redis.call('PERSIST', claim_base .. t) end
  redis.call('ZREM', expiries, hash)
end

local function has_item(list, item)
  for x in string.gmatch(list or '', '[^,]+') do if x == item then return true end end
  return false
end

local function count_items(list)
  local n = 0
  for _ in string.gmatch(list or '', '[^,]+') do n = n + 1 end
  return n
end

local function without_item(list, item)
  local kept = {}
  for x in string.gmatch(list or '', '[^,]+') do if x ~= item then table.insert(kept, x) end end
  return table.concat(kept, ',')
end

-- Output formats (formats.ts): stems stored as `have` serve a request for `want` when they are the
-- same format, or one `have` covers (FORMAT_INFO's `covers`: CBR mp3-320 serves a VBR mp3 request).
local function format_covers(have, want)
  return have == want or (FORMAT_COVERS[have] ~= nil and FORMAT_COVERS[have][want] == true)
end

local function has_format(list, want)
  for x in string.gmatch(list or '', '[^,]+') do if format_covers(x, want) then return true end end
  return false
end

local function ext_of(format)
  return FORMAT_EXT[format] or format
end

-- The formats after adding `want`: one per extension, `want` replacing the one it shares it with.
local function merge_format(list, want)
  if has_format(list, want) then return list end
  local kept = {}
  for x in string.gmatch(list or '', '[^,]+') do if ext_of(x) ~= ext_of(want) then table.insert(kept, x) end end
  table.insert(kept, want)
  return table.concat(kept, ',')
end

local function has_all(list, items)
  for x in string.gmatch(items or '', '[^,]+') do if not has_item(list, x) then return false end end
  return true
end

local function union_items(list, items)
  local out = {}
  for x in string.gmatch(list or '', '[^,]+') do if not has_item(table.concat(out, ','), x) then table.insert(out, x) end end
  for x in string.gmatch(items or '', '[^,]+') do if not has_item(table.concat(out, ','), x) then table.insert(out, x) end end
  return table.concat(out, ',')
end

-- The formats a record's files are complete in, for its `stems` (a run never rewrites them): the
-- `storedFormats` field; a record from before it has them once done, in `formats`.
local function stored_formats_of(job, state)
  local stored = redis.call('HGET', job, 'storedFormats')
  if stored then return stored end
  if state == 'done' and (redis.call('HGET', job, 'stems') or '') ~= '' then
    local f = redis.call('HGET', job, 'formats') or ''
    if f == '' then return DEFAULT_FORMAT end
    return f
  end
  return ''
end

-- The formats of `list` that a run making `run` leaves alone (none shares a file extension with it).
local function untouched_by(list, run)
  local kept = {}
  for x in string.gmatch(list or '', '[^,]+') do
    local rewritten = false
    for y in string.gmatch(run or '', '[^,]+') do if ext_of(x) == ext_of(y) then rewritten = true end end
    if not rewritten then table.insert(kept, x) end
  end
  return table.concat(kept, ',')
end

-- A claim's own request, the union of its submissions: `askFormats` and `askStems` (what its view
-- and downloads show, never what other claims asked).
local function ask(claim, format, stems)
  redis.call('HSET', claim,
    'askFormats', union_items(redis.call('HGET', claim, 'askFormats') or '', format),
    'askStems', union_items(redis.call('HGET', claim, 'askStems') or '', stems))
end

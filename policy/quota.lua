-- Quota reservations: one script checks every applicable quota before it changes anything (invariant 4).
-- Usage lives in wio:use:{w|u|r}:{name} hashes: bytes, objects (committed) and pbytes, pobjects (reserved,
-- i.e. writes in flight and multipart parts not yet completed). Limits come from the projection:
-- wio:w:{ws} (qb, qo), wio:u:{owner} (qb, qo), wio:r:{root} (qb, qo); "" or missing means unlimited.
-- A multipart upload is wio:mpu:{upload_id}: fields ws, owner, root and key (what it was started for) and
-- one field per part number holding that part's reserved size.
--
-- Every reservation is recorded in wio:rsv:{ws} (field: its token, value: "bytes objects deadline_ms") until it
-- is settled, released or kept for a part; one that outlives its deadline is given back by 'reconcile', and a
-- settle or release that finds its record gone (reclaimed) changes nothing. The workspace's usage hash has
-- known = 1 while its counters are trusted: a usage hash that is missing (Redis lost it) or was marked unknown
-- refuses reservations until 'reconcile' rebuilds it from the node. Uploads of a workspace: set wio:mpus:{ws}.
--
-- ARGV[1] = action; ARGV[2..4] = workspace, owner, root
-- (Negations are written "0 - x": Lua's unary minus makes -0, which HINCRBY refuses.)
-- reserve: ARGV[5] = bytes, ARGV[6] = objects to reserve, ARGV[7] = token, ARGV[8] = deadline in seconds;
--          optionally ARGV[9] = the writer's key group (policy/key_lock.lua), which holds the reservation from
--          now on, and ARGV[10] = the key's size before the group ('' for no object) from the writer that
--          formed it, which opens the group to others
--          -> {1} or {0, scope, limit_kind} or {0, 'unknown'} (the workspace's usage must be rebuilt first)
--          or {0, 'lost'} (the key group expired)
-- leave:   ARGV[5] = key group, ARGV[6] = the writer's token, ARGV[7] = '1' when its write succeeded,
--          ARGV[8] = its size. The writer leaves its group; the group's reservations stay held while others
--          are in it. The last to leave a group nobody else ever joined settles it with its own outcome
--          -> {'done'}; the last to leave a shared group must read the key's final size and 'close' it
--          -> {'close'}; else {'held'}.
-- close:   ARGV[5] = key group, ARGV[6] = the key's size now ('' no object, '?' unknown). Settles every
--          reservation the group holds: committed usage moves from the size before the group to this one.
-- settle:  ARGV[5], ARGV[6] = reserved bytes/objects; ARGV[7], ARGV[8] = committed delta bytes/objects;
--          ARGV[9] = token. A reclaimed reservation's write is on the node, uncounted: usage becomes unknown.
--          Optionally ARGV[10] = a key lock's token, ARGV[11..] = its lock names (policy/key_lock.lua): released
--          after the settlement, in the same call (one round trip instead of two at the end of every write).
-- release: ARGV[5], ARGV[6] = reserved bytes/objects to give back, ARGV[7] = token
-- part:    ARGV[5] = the part's reserved bytes, ARGV[6] = upload id, ARGV[7] = key, ARGV[8] = part number,
--          ARGV[9] = ttl seconds, ARGV[10] = the reservation's token (its record moves into the upload).
--          The part stays reserved under its upload, replacing (and giving back) an earlier upload of the
--          same part number. An upload that is gone (completed or aborted
--          meanwhile) or belongs to another workspace or key keeps nothing: the bytes are given back.
-- start:   ARGV[5] = upload id, ARGV[6] = key, ARGV[7] = ttl seconds. Binds a new upload to workspace and key.
-- owns:    ARGV[5] = upload id, ARGV[6] = key -> 1 when the upload was started for this workspace (owner, root) and key
-- held:    ARGV[5] = upload id, ARGV[6] = key -> the bytes its parts hold reserved, -1 when it is not owned
-- finish:  ARGV[5] = upload id, ARGV[6] = key, ARGV[7] = seconds to remember a completed upload (0: aborted).
--          Forgets the upload and gives its parts back -> bytes given
-- unknown: marks the workspace's usage unknown (a rebuild starts) -> reservations still in flight
-- forget:  a deleted workspace: its counters leave its owner's and root's, and its usage, reservations and
--          uploads are forgotten, so that a workspace made again under the name starts clean
--          -> what it held {bytes, objects, pbytes, pobjects}
-- reconcile: ARGV[5], ARGV[6] = bytes/objects the node holds under the workspace's prefix. Drops reservations
--          past their deadline and uploads that expired, recomputes pending usage from the records that
--          remain, sets committed usage to the node's, marks usage known
--          -> the corrections {bytes, objects, pbytes, pobjects}
local action, ws, owner, root = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local usage = {'wio:use:w:' .. ws, 'wio:use:u:' .. owner, 'wio:use:r:' .. root}
local limits = {'wio:w:' .. ws, 'wio:u:' .. owner, 'wio:r:' .. root}
local scopes = {'workspace', 'user', 'root'}
local reservations, uploads = 'wio:rsv:' .. ws, 'wio:mpus:' .. ws

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Forget reservation ``token``; false when it was not recorded any more (reclaimed by 'reconcile').
local function forget(token)
  return redis.call('HDEL', reservations, token) == 1
end

-- settle's optional release of the writer's key locks (as key_lock.lua 'release': only locks it still holds)
local function unlock_keys()
  if action ~= 'settle' or not ARGV[10] then return end
  for i = 11, #ARGV do
    if redis.call('TYPE', ARGV[i])['ok'] == 'string' and redis.call('GET', ARGV[i]) == ARGV[10] then
      redis.call('DEL', ARGV[i])
    end
  end
end

-- Forget reservation ``token`` -> its bytes and objects, or nil when it was reclaimed meanwhile.
local function take(token)
  local record = redis.call('HGET', reservations, token)
  if not record then return nil end
  redis.call('HDEL', reservations, token)
  local rb, ro = string.match(record, '^(%d+) (%d+) ')
  return tonumber(rb), tonumber(ro)
end

local function object_count(size)
  return (size == nil or size == '') and 0 or 1
end

local function change(field, delta)
  if delta ~= 0 then
    for i = 1, 3 do redis.call('HINCRBY', usage[i], field, delta) end
  end
end

-- An upload belongs to the workspace, owner and root it was started under (a workspace deleted and
-- re-created by someone else is another workspace) and to its key.
local function owns(upload, key)
  local bound = redis.call('HMGET', upload, 'ws', 'owner', 'root', 'key')
  return bound[1] == ws and bound[2] == owner and bound[3] == root and bound[4] == key
end

-- The bytes an upload's parts hold reserved (its numeric fields).
local function held(upload)
  local fields, total = redis.call('HGETALL', upload), 0
  for i = 1, #fields, 2 do
    if tonumber(fields[i]) then total = total + tonumber(fields[i + 1]) end
  end
  return total
end

if action == 'start' then
  local upload = 'wio:mpu:' .. ARGV[5]
  redis.call('HSET', upload, 'ws', ws, 'owner', owner, 'root', root, 'key', ARGV[6])
  redis.call('EXPIRE', upload, tonumber(ARGV[7]))
  redis.call('SADD', uploads, ARGV[5])
  return 1
end
if action == 'owns' then
  return owns('wio:mpu:' .. ARGV[5], ARGV[6]) and 1 or 0
end
if action == 'held' then
  local upload = 'wio:mpu:' .. ARGV[5]
  if not owns(upload, ARGV[6]) then return -1 end
  return held(upload)
end
if action == 'part' then
  local size, upload, part = tonumber(ARGV[5]), 'wio:mpu:' .. ARGV[6], ARGV[8]
  if not forget(ARGV[10]) then
    change('pbytes', size)   -- reclaimed while the part was sent: the stored part is pending again
  end
  if not owns(upload, ARGV[7]) then
    change('pbytes', 0 - size)
    return {0}
  end
  local old = tonumber(redis.call('HGET', upload, part)) or 0
  redis.call('HSET', upload, part, size)
  redis.call('EXPIRE', upload, tonumber(ARGV[9]))
  change('pbytes', 0 - old)
  return {1}
end
if action == 'finish' then
  local upload = 'wio:mpu:' .. ARGV[5]
  if not owns(upload, ARGV[6]) then
    return 0
  end
  local total = held(upload)
  redis.call('DEL', upload)
  redis.call('SREM', uploads, ARGV[5])
  change('pbytes', 0 - total)
  local keep = tonumber(ARGV[7]) or 0
  if keep > 0 then  -- completed: a repeated completion (a client's retry) is recognised for a while
    local done = 'wio:mpu-done:' .. ARGV[5]
    redis.call('HSET', done, 'ws', ws, 'owner', owner, 'root', root, 'key', ARGV[6])
    redis.call('EXPIRE', done, keep)
  end
  return total
end
if action == 'completed' then
  return owns('wio:mpu-done:' .. ARGV[5], ARGV[6]) and 1 or 0
end

if action == 'forget' then
  local use = redis.call('HMGET', usage[1], 'bytes', 'objects', 'pbytes', 'pobjects')
  local fields = {'bytes', 'objects', 'pbytes', 'pobjects'}
  local held = {}
  for f = 1, 4 do
    held[f] = tonumber(use[f]) or 0
    if held[f] ~= 0 then
      for i = 2, 3 do   -- (a scope removed with its root or user is not brought back, below zero)
        if redis.call('EXISTS', usage[i]) == 1 then redis.call('HINCRBY', usage[i], fields[f], 0 - held[f]) end
      end
    end
  end
  for _, id in ipairs(redis.call('SMEMBERS', uploads)) do
    if redis.call('HGET', 'wio:mpu:' .. id, 'ws') == ws then redis.call('DEL', 'wio:mpu:' .. id) end
  end
  redis.call('DEL', usage[1], reservations, uploads)
  return held
end
if action == 'unknown' then
  redis.call('HSET', usage[1], 'known', '0')
  local live, now = redis.call('HGETALL', reservations), now_ms()
  local count = 0
  for i = 2, #live, 2 do
    if tonumber(string.match(live[i], '(%d+)$')) > now then count = count + 1 end
  end
  return count
end
if action == 'reconcile' then
  local live, now = redis.call('HGETALL', reservations), now_ms()
  local pb, po = 0, 0
  for i = 1, #live, 2 do
    local rb, ro, deadline = string.match(live[i + 1], '^(%d+) (%d+) (%d+)$')
    if tonumber(deadline) <= now then
      redis.call('HDEL', reservations, live[i])
    else
      pb, po = pb + tonumber(rb), po + tonumber(ro)
    end
  end
  for _, id in ipairs(redis.call('SMEMBERS', uploads)) do
    local upload = 'wio:mpu:' .. id
    if redis.call('EXISTS', upload) == 1 and redis.call('HGET', upload, 'ws') == ws then
      pb = pb + held(upload)
    else
      redis.call('SREM', uploads, id)
    end
  end
  local use = redis.call('HMGET', usage[1], 'bytes', 'objects', 'pbytes', 'pobjects')
  local db = tonumber(ARGV[5]) - (tonumber(use[1]) or 0)
  local dob = tonumber(ARGV[6]) - (tonumber(use[2]) or 0)
  local dpb, dpo = pb - (tonumber(use[3]) or 0), po - (tonumber(use[4]) or 0)
  change('bytes', db)
  change('objects', dob)
  change('pbytes', dpb)
  change('pobjects', dpo)
  redis.call('HSET', usage[1], 'known', '1')
  return {db, dob, dpb, dpo}
end

if action == 'leave' then
  local group, token = ARGV[5], ARGV[6]
  if redis.call('TYPE', group)['ok'] ~= 'hash' or redis.call('HDEL', group, 'm:' .. token) == 0 then
    -- not a member any more: its group expired under it (renewals failed), perhaps formed again by others;
    -- what it did is not known here: its reservation is given back and usage rebuilt from the node
    local rb, ro = take(token)
    if rb then
      change('pbytes', 0 - rb)
      change('pobjects', 0 - ro)
      redis.call('HSET', usage[1], 'known', '0')
    end
    return {'done'}
  end
  if redis.call('HINCRBY', group, 'live', -1) > 0 then return {'held'} end
  if redis.call('HGET', group, 'n') ~= '1' then
    redis.call('HSET', group, 'state', 'closing')
    return {'close'}
  end
  local reserved = redis.call('HEXISTS', group, 't:' .. token) == 1
  local old = redis.call('HGET', group, 'old')
  redis.call('DEL', group)
  if not reserved then return {'done'} end   -- it wrote nothing (refused, or the old size could not be read)
  local rb, ro = take(token)
  if rb == nil then
    if ARGV[7] == '1' then redis.call('HSET', usage[1], 'known', '0') end   -- reclaimed: its write is uncounted
    return {'done'}
  end
  change('pbytes', 0 - rb)
  change('pobjects', 0 - ro)
  if ARGV[7] == '1' then
    change('bytes', tonumber(ARGV[8]) - (tonumber(old) or 0))
    change('objects', 1 - object_count(old))
  end
  return {'done'}
end
if action == 'close' then
  local group, final = ARGV[5], ARGV[6]
  local fields, pb, po, lost = {}, 0, 0, false
  if redis.call('TYPE', group)['ok'] == 'hash' then fields = redis.call('HGETALL', group) end
  local old = nil
  for i = 1, #fields, 2 do
    if fields[i] == 'old' then old = fields[i + 1] end
    if string.sub(fields[i], 1, 2) == 't:' then
      local rb, ro = take(string.sub(fields[i], 3))
      if rb == nil then lost = true else pb, po = pb + rb, po + ro end
    end
  end
  if #fields > 0 then redis.call('DEL', group) end
  change('pbytes', 0 - pb)
  change('pobjects', 0 - po)
  if lost or final == '?' or #fields == 0 then
    redis.call('HSET', usage[1], 'known', '0')   -- a write nobody can count: rebuild from the node
  else
    change('bytes', (tonumber(final) or 0) - (tonumber(old) or 0))
    change('objects', object_count(final) - object_count(old))
  end
  return {1}
end

local b, o = tonumber(ARGV[5]), tonumber(ARGV[6])
if action == 'reserve' then
  if redis.call('HGET', usage[1], 'known') ~= '1' then
    return {0, 'unknown'}
  end
  local group = ARGV[9]
  if group and (redis.call('TYPE', group)['ok'] ~= 'hash' or redis.call('HEXISTS', group, 'm:' .. ARGV[7]) == 0) then
    return {0, 'lost'}   -- its key group expired under it (and may have been formed again by others)
  end
  for i = 1, 3 do
    local lim = redis.call('HMGET', limits[i], 'qb', 'qo')
    local use = redis.call('HMGET', usage[i], 'bytes', 'objects', 'pbytes', 'pobjects')
    local qb, qo = tonumber(lim[1]), tonumber(lim[2])
    if qb and b > 0 and (tonumber(use[1]) or 0) + (tonumber(use[3]) or 0) + b > qb then
      return {0, scopes[i], 'bytes'}
    end
    if qo and o > 0 and (tonumber(use[2]) or 0) + (tonumber(use[4]) or 0) + o > qo then
      return {0, scopes[i], 'objects'}
    end
  end
  change('pbytes', b)
  change('pobjects', o)
  redis.call('HSET', reservations, ARGV[7], b .. ' ' .. o .. ' ' .. (now_ms() + 1000 * tonumber(ARGV[8])))
  if group then
    redis.call('HSET', group, 't:' .. ARGV[7], 1)
    if ARGV[10] then redis.call('HSET', group, 'state', 'open', 'old', ARGV[10]) end
  end
  return {1}
end
if action == 'settle' or action == 'release' then
  if not forget(ARGV[action == 'settle' and 9 or 7]) then
    if action == 'settle' then redis.call('HSET', usage[1], 'known', '0') end
    unlock_keys()
    return {0}
  end
  change('pbytes', 0 - b)
  change('pobjects', 0 - o)
end
if action == 'settle' then
  change('bytes', tonumber(ARGV[7]))
  change('objects', tonumber(ARGV[8]))
end
unlock_keys()
return {1}

-- Locks on object keys (invariant 8): racing writers of one key must not count it twice or free it twice.
--
-- A lock name is wio:lk:{ws}/{object}. It holds one of two things:
-- * an exclusive lock (a string: its holder's token), taken all or none over several names by deletes,
--   copies and completions, from reading the old size to settling;
-- * a key group (a hash), formed by PutObject so that whole-object writes of one key may overlap (S3 lets a
--   second PUT start while the first one's body is still arriving): fields state ('forming' while the
--   first writer reads the old size, 'open' while writers may join, 'closing' while the last one reads the
--   final size), old (the size before the group, '' for no object), n (writers that ever joined), live
--   (writers still in it), m:{token} per live member, t:{token} per reservation it holds (policy/quota.lua
--   settles the group), wanted (an exclusive locker waits: nobody joins any more).
--   A group takes at most MAX_WRITERS writers in all, then drains: writers that keep overlapping (one key
--   rewritten by many clients in a loop) still settle, and pending usage held by a group stays bounded.
-- Every lock expires unless its holders renew it.
--
-- ARGV[1] = action: "acquire" | "join" | "renew" | "release"; ARGV[2] = token; ARGV[3] = ttl in milliseconds;
-- ARGV[4..] = lock names (join: exactly one).
-- acquire -> 1 when every lock was free and is now taken, else 0 (none taken; a group asked for is marked wanted)
-- join    -> 1 (formed: the caller reads the old size), 2 (joined an open group) or 0 (wait and retry)
local action, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local MAX_WRITERS = 16

local function is_group(name)
  return redis.call('TYPE', name)['ok'] == 'hash'
end

if action == 'acquire' then
  for i = 4, #ARGV do
    if redis.call('EXISTS', ARGV[i]) == 1 then
      if is_group(ARGV[i]) then redis.call('HSET', ARGV[i], 'wanted', '1') end
      return 0
    end
  end
  for i = 4, #ARGV do redis.call('SET', ARGV[i], token, 'PX', ttl) end
  return 1
end
if action == 'join' then
  local name = ARGV[4]
  if redis.call('EXISTS', name) == 0 then
    redis.call('HSET', name, 'state', 'forming', 'n', 1, 'live', 1, 'm:' .. token, 1)
    redis.call('PEXPIRE', name, ttl)
    return 1
  end
  if not is_group(name) then return 0 end
  local g = redis.call('HMGET', name, 'state', 'wanted', 'n')
  if g[1] ~= 'open' or g[2] or tonumber(g[3]) >= MAX_WRITERS then return 0 end
  redis.call('HINCRBY', name, 'n', 1)
  redis.call('HINCRBY', name, 'live', 1)
  redis.call('HSET', name, 'm:' .. token, 1)
  redis.call('PEXPIRE', name, ttl)
  return 2
end
for i = 4, #ARGV do
  local name = ARGV[i]
  if is_group(name) then
    if action == 'renew' and redis.call('HEXISTS', name, 'm:' .. token) == 1 then redis.call('PEXPIRE', name, ttl) end
  elseif redis.call('GET', name) == token then
    if action == 'renew' then redis.call('PEXPIRE', name, ttl) else redis.call('DEL', name) end
  end
end
return 1

-- Quota reservations: one script checks every applicable quota before it changes anything (invariant 4).
-- Usage lives in wio:use:{w|u|r}:{name} hashes: bytes, objects (committed) and pbytes, pobjects (reserved,
-- i.e. writes in flight and multipart parts not yet completed). Limits come from the projection:
-- wio:w:{ws} (qb, qo), wio:u:{owner} (qb, qo), wio:r:{root} (qb, qo); "" or missing means unlimited.
--
-- ARGV[1] = action: "reserve" | "settle" | "release" | "adjust"
-- ARGV[2..4] = workspace, owner, root
-- (Negations are written "0 - x": Lua's unary minus makes -0, which HINCRBY refuses.)
-- reserve: ARGV[5] = bytes, ARGV[6] = objects to reserve  -> {1} or {0, scope, limit_kind}
-- settle:  ARGV[5], ARGV[6] = reserved bytes/objects; ARGV[7], ARGV[8] = committed delta bytes/objects
-- release: ARGV[5], ARGV[6] = reserved bytes/objects to give back
-- adjust:  ARGV[5], ARGV[6] = delta bytes/objects applied to committed usage directly (deletes)
local action, ws, owner, root = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local usage = {'wio:use:w:' .. ws, 'wio:use:u:' .. owner, 'wio:use:r:' .. root}
local limits = {'wio:w:' .. ws, 'wio:u:' .. owner, 'wio:r:' .. root}
local scopes = {'workspace', 'user', 'root'}
local b, o = tonumber(ARGV[5]), tonumber(ARGV[6])

if action == 'reserve' then
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
  for i = 1, 3 do
    redis.call('HINCRBY', usage[i], 'pbytes', b)
    redis.call('HINCRBY', usage[i], 'pobjects', o)
  end
  return {1}
end
for i = 1, 3 do
  if action == 'settle' or action == 'release' then
    redis.call('HINCRBY', usage[i], 'pbytes', 0 - b)
    redis.call('HINCRBY', usage[i], 'pobjects', 0 - o)
  end
  if action == 'settle' then
    redis.call('HINCRBY', usage[i], 'bytes', tonumber(ARGV[7]))
    redis.call('HINCRBY', usage[i], 'objects', tonumber(ARGV[8]))
  elseif action == 'adjust' then
    redis.call('HINCRBY', usage[i], 'bytes', b)
    redis.call('HINCRBY', usage[i], 'objects', o)
  end
end
return {1}

-- Exclusive locks on object keys, all or none: a write or delete that changes usage holds its key's lock
-- from reading the old size to settling its quota, so racing writers of one key cannot count it twice
-- or free it twice (invariant 8). Every lock holds a random token and expires unless renewed.
--
-- ARGV[1] = action: "acquire" | "renew" | "release"; ARGV[2] = token; ARGV[3] = ttl in milliseconds;
-- ARGV[4..] = lock names.  acquire -> 1 when every lock was free and is now taken, else 0 (none taken).
local action, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if action == 'acquire' then
  for i = 4, #ARGV do
    if redis.call('EXISTS', ARGV[i]) == 1 then return 0 end
  end
  for i = 4, #ARGV do redis.call('SET', ARGV[i], token, 'PX', ttl) end
  return 1
end
for i = 4, #ARGV do
  if redis.call('GET', ARGV[i]) == token then
    if action == 'renew' then redis.call('PEXPIRE', ARGV[i], ttl) else redis.call('DEL', ARGV[i]) end
  end
end
return 1

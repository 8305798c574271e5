-- The workspaces a user can see, with their grants, in one round trip.
-- ARGV[1] = access key id. Returns {meta_exists, key, user, name1, ws1, grants1, name2, ...}.
local out = {redis.call('EXISTS', 'wio:meta')}
local key = redis.call('HMGET', 'wio:k:' .. ARGV[1], 'user', 'secret', 'expires', 'token', 'scope')
out[2] = key
local user = key[1]
if not user then return out end
local u = redis.call('HMGET', 'wio:u:' .. user, 'disabled', 'admin', 'groups')
out[3] = u
local fields = {'u:' .. user}
local sets = {'wio:uw:' .. user, 'wio:pub'}
if u[3] then
  for g in string.gmatch(u[3], '[^,]+') do
    fields[#fields + 1] = 'g:' .. g
    sets[#sets + 1] = 'wio:gw:' .. g
  end
end
local names = redis.call('SUNION', unpack(sets))
table.sort(names)
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HMGET', 'wio:w:' .. name, 'node', 'bucket', 'prefix', 'owner', 'public', 'root', 'created')
  out[#out + 1] = redis.call('HMGET', 'wio:s:' .. name, unpack(fields))
end
return out

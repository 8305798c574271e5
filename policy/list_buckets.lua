#!lua
-- The workspaces a user can see, with their grants, in one round trip. Refused on a replica (see authorize.lua).
-- ARGV[1] = this server's run_id as the caller saw it, ARGV[2] = access key id (see authorize.lua).
-- Returns {verified, key, user, name1, ws1, grants1, name2, ...}.
--@include caller_lookup.lua
local sets = {'wio:uw:' .. user, 'wio:pub'}
if u[3] then
  for g in string.gmatch(u[3], '[^,]+') do sets[#sets + 1] = 'wio:gw:' .. g end
end
local names = redis.call('SUNION', unpack(sets))
table.sort(names)
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HMGET', 'wio:w:' .. name, 'node', 'bucket', 'prefix', 'owner', 'public', 'root', 'created')
  out[#out + 1] = redis.call('HMGET', 'wio:s:' .. name, unpack(fields))
end
return out

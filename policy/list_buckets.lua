#!lua
-- The workspaces a user can see, with their grants, in one round trip. Refused on a replica (see authorize.lua).
-- ARGV[1] = this server's run_id as the caller saw it, ARGV[2] = access key id (see authorize.lua).
-- Returns {verified, key, user, name1, ws1, grants1, name2, ...}.
local out = {redis.call('HGET', 'wio:meta', 'verified') == ARGV[1] and 1 or 0}
local key = redis.call('HMGET', 'wio:k:' .. ARGV[2], 'user', 'secret', 'expires', 'token', 'scope')
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

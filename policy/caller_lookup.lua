-- The opening authorize.lua and list_buckets.lua share: not a script of its own. policy/scripts.py puts it in
-- place of their `--@include caller_lookup.lua` line (after the `#!lua` shebang, which stays first).
-- ARGV[1] = the run_id of this server as the caller's connection saw it; ARGV[2] = access key id.
-- Starts `out` = {verified, key, user}: verified is 1 only when the API has checked this server's
-- projection against PostgreSQL (wio:meta verified = its run_id; see authorize.lua). Returns `out`
-- as it is when the key is unknown. Leaves `user` (its name), `u` (its hash: disabled, admin, groups)
-- and `fields`, the share-list fields that grant it something: 'u:<user>' and 'g:<group>' for each group.
local out = {redis.call('HGET', 'wio:meta', 'verified') == ARGV[1] and 1 or 0}
local key = redis.call('HMGET', 'wio:k:' .. ARGV[2], 'user', 'secret', 'expires', 'token', 'scope')
out[2] = key
local user = key[1]
if not user then return out end
local u = redis.call('HMGET', 'wio:u:' .. user, 'disabled', 'admin', 'groups')
out[3] = u
local fields = {'u:' .. user}
if u[3] then
  for g in string.gmatch(u[3], '[^,]+') do fields[#fields + 1] = 'g:' .. g end
end

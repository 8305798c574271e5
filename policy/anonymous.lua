#!lua
-- An unsigned request's one round trip (proxy/anonymous.py): the workspace and its node, returned only
-- when the workspace is marked for anonymous reads (anon = "1"), so nothing about any other workspace
-- leaves Redis for a caller nobody authenticated. Read on every request: clearing the mark takes effect
-- on the next one. The shebang without `no-writes` makes a replica refuse it, as authorize.lua.
-- ARGV[1] = the run_id of this server as the caller's connection saw it; ARGV[2] = the workspace name.
-- Returns {verified} or {verified, ws, node}; verified as in authorize.lua.
local out = {redis.call('HGET', 'wio:meta', 'verified') == ARGV[1] and 1 or 0}
local ws = redis.call('HMGET', 'wio:w:' .. ARGV[2], 'node', 'bucket', 'prefix', 'owner', 'public', 'root', 'anon')
if ws[7] ~= '1' or not ws[1] then return out end
out[2] = ws
out[3] = redis.call('HMGET', 'wio:n:' .. ws[1], 'endpoint', 'region', 'access', 'secret')
return out

#!lua
-- One round trip authorizes a request (docs/design.md invariant 7).
-- The shebang without `no-writes` makes a replica refuse this script (-READONLY) although it only
-- reads: a primary demoted under a proxy, holding the old data and the old verified mark, is never
-- read for a decision; the proxy drops the connection and finds the new primary (foundation/resp.py).
-- ARGV[1] = the run_id of this server as the caller's connection saw it; ARGV[2] = access key id;
-- ARGV[3..n] = workspace names the request touches (0, 1, or 2 for copies).
-- Returns {verified, key, user, ws1, node1, grants1, ws2, node2, grants2, ...}; verified is 1 only when
-- the API has checked this server's projection against PostgreSQL (wio:meta verified = its run_id),
-- so a replica promoted by a failover, or a server restarted from an old snapshot, is not trusted
-- until then (policy/projection.py). Every lookup is
-- by exact key, so the cost does not depend on how many users, workspaces or shares exist.
-- (Keys are computed here, so this script targets a single Redis/Valkey or a Sentinel setup.)
--@include caller_lookup.lua
for i = 3, #ARGV do
  local ws = redis.call('HMGET', 'wio:w:' .. ARGV[i], 'node', 'bucket', 'prefix', 'owner', 'public', 'root', 'anon')
  out[#out + 1] = ws
  if ws[1] then
    out[#out + 1] = redis.call('HMGET', 'wio:n:' .. ws[1], 'endpoint', 'region', 'access', 'secret')
    out[#out + 1] = redis.call('HMGET', 'wio:s:' .. ARGV[i], unpack(fields))
  else
    out[#out + 1] = {}
    out[#out + 1] = {}
  end
end
return out

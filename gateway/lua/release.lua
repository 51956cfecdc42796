-- Return a lease: what its worker did not use goes back (gateway/leases.py).
--
-- KEYS: the key's window, its sums, the lease's record, the account's
--       leases, then the budget windows.
-- ARGV: the lease's window entry, its score, its requests and tokens used,
--       the request id that asked for it, its micros not used.
--
-- The lease's entry is replaced by one for the requests it admitted (kept to
-- the same end), and what it did not use leaves the sums and budget counters
-- (those rebuilt since it was granted never held it).
--include give_back.lua
local lease = redis.call('HMGET', KEYS[3], 'g', 'x')
local granted = lease[1]
if not granted or lease[2] then return 0 end  -- returned already, or reclaimed
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[5])
local member, unused_micros = ARGV[1], tonumber(ARGV[6])
local lease_r, lease_t = string.match(member, '|(%d+)|(-?%d+)$')
if redis.call('ZREM', KEYS[1], member) == 1 then
  local used_r, used_t = tonumber(ARGV[3]), tonumber(ARGV[4])
  if used_r > 0 then
    redis.call('ZADD', KEYS[1], ARGV[2], member .. ':used|' .. used_r .. '|' .. used_t)
  end
  redis.call('HINCRBY', KEYS[2], 'r', used_r - tonumber(lease_r))
  redis.call('HINCRBY', KEYS[2], 't', used_t - tonumber(lease_t))
end
give_back(5, tonumber(granted), unused_micros)
return 1

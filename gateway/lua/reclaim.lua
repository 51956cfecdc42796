-- Reclaim a lease its worker never returned (it was killed): what its
-- requests did not settle goes back to the budget counters (gateway/leases.py
-- reclaim_leases). Its window entry left the window long ago.
--
-- KEYS: the account's leases, the lease's record, then its budget windows.
-- ARGV: the request id that asked for it.
--
-- Its record stays, marked reclaimed (`x`), until it expires: a request of
-- the lease settled later adds its whole cost, its reservation being gone.
--include give_back.lua
redis.call('ZREM', KEYS[1], ARGV[1])
local lease = redis.call('HMGET', KEYS[2], 'g', 'm', 's', 'x')
if not lease[1] or lease[4] then return 0 end
redis.call('HSET', KEYS[2], 'x', 1)
local unused = tonumber(lease[2]) - tonumber(lease[3])
give_back(3, tonumber(lease[1]), unused)
return unused

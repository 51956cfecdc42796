-- Redis's clock in ms, as `now`: every worker on every host shares it.
-- (Python reads the same clock with gateway.lua.redis_now_ms.)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

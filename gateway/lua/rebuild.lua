-- Rebuild a budget counter Redis does not have (a window not seen yet, or
-- counters Redis lost) from the usage records' sum, unless another worker
-- rebuilt it meanwhile (gateway/limiter_redis.py rebuild).
--
-- KEYS: the counter. ARGV: spent (micros), seconds to keep it (0: always).
--include now.lua
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'rebuilt', now)
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1

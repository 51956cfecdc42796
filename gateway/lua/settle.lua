-- Replace a request's reservation with its real cost, once its usage record is
-- written (gateway/limiter_redis.py RedisLimiter.settle, on the usage writer's
-- thread).
--
-- KEYS: the key's window, its sums, the record of the lease that admitted the
--       request (or any name, when none did), then the budget windows.
-- ARGV: admitted at (ms), its window entry's score (ms), request id, token
--       correction, real cost, reserved cost (micros), 1 if a lease admitted it.
-- Given by the loader: WINDOW_MS.
--
-- A token correction is an entry of its own beside the request's (or its
-- lease's), with the same score: it leaves the window with it. One whose
-- entry has left the window already (or the window itself) is dropped: the
-- tokens left with the entry.
-- A budget counter is a hash: `spent` (settled costs and reservations in
-- flight), `held` (the reservations alone, for the billing page), and
-- `rebuilt`, when it was (re)built from the usage records. Built before the
-- request was admitted, it holds the reservation: add the correction and
-- release the hold. Built after, while the request was in flight, it holds
-- neither the reservation nor (the record was not written yet) the real
-- cost: add the real cost. A counter that is gone is skipped: it will
-- be rebuilt from the records, this one included. A request a lease admitted
-- also counts on the lease's record, should the lease have to be reclaimed; a
-- lease reclaimed already took the request's reservation back: add the real
-- cost.
--include now.lua
local admitted, dtokens = tonumber(ARGV[1]), tonumber(ARGV[4])
local cost, reserved = tonumber(ARGV[5]), tonumber(ARGV[6])
if dtokens ~= 0 and tonumber(ARGV[2]) > now - WINDOW_MS and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3] .. ':settled|0|' .. dtokens)
  redis.call('HINCRBY', KEYS[2], 't', dtokens)
end
if reserved > 0 then
  local reclaimed = false
  if ARGV[7] == '1' then
    local lease = redis.call('HMGET', KEYS[3], 'g', 'x')
    if lease[2] then
      reclaimed = true
    elseif lease[1] then
      redis.call('HINCRBY', KEYS[3], 's', reserved)
    end
  end
  for i = 4, #KEYS do
    local rebuilt = redis.call('HGET', KEYS[i], 'rebuilt')
    if rebuilt then
      if tonumber(rebuilt) <= admitted and not reclaimed then
        redis.call('HINCRBY', KEYS[i], 'spent', cost - reserved)
        redis.call('HINCRBY', KEYS[i], 'held', 0 - reserved)
      else
        redis.call('HINCRBY', KEYS[i], 'spent', cost)
      end
    end
  end
end
return 0

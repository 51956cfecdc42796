-- give_back(first, granted, micros): take `micros` a lease did not use out of
-- the budget counters KEYS[first..], those (re)built from the usage records
-- after the lease was granted excepted: they never held it.
local function give_back(first, granted, micros)
  if micros <= 0 then return end
  for i = first, #KEYS do
    local rebuilt = redis.call('HGET', KEYS[i], 'rebuilt')
    if rebuilt and tonumber(rebuilt) <= granted then
      redis.call('HINCRBY', KEYS[i], 'spent', 0 - micros)
      redis.call('HINCRBY', KEYS[i], 'held', 0 - micros)
    end
  end
end

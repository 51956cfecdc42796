-- Admit one request, and reserve a lease of more of the key's requests when
-- it is far from all its limits (gateway/limiter_redis.py RedisLimiter.admit).
--
-- KEYS: the key's window (a sorted set), its sums (a hash: requests `r`,
--       tokens `t`), one counter per budget window, then the request's
--       admission marker, its lease's record and the account's leases
--       (every key named with the account's hash tag).
-- ARGV: rpm, tpm, tokens, request id, cost (micros), number of windows, retry
--       (1: this request asked before), lease asked (requests, 0: none), then
--       each window's limit (micros).
-- Given by the loader: WINDOW_MS, WINDOW_TTL_MS, LEASE_MS, LEASE_SHARE,
-- LEASE_RECORD_TTL_MS.
--
-- The window holds an entry per admission, "id|requests|tokens" scored by its
-- time, and the sums of the entries it holds (each added and subtracted once):
-- the requests and tokens of the last minute, exactly (RPM 60 is 60 in any
-- minute). A lease is one entry for all its requests, scored at its end, and a
-- record (a hash: granted `g`, micros reserved `m`, micros of its requests
-- settled `s`, its budget counters `w`) that whoever returns it deletes, so
-- that it is returned once.
-- A retry is exact: when the reply to an admission is lost (a broken
-- connection, a timeout) and the request asks again, the script finds the
-- first admission (its window entry, else its marker, written only for keys
-- with no RPM or TPM limit) and answers with it and its lease instead of
-- reserving twice. A lease is granted whole or not at all, so that a retry
-- can find it by name.
-- Every Redis call a script makes costs a few microseconds on the request
-- path: the first try skips the retry lookup, and RPM and TPM share one window.
-- (Lua writes a negative zero as "-0", which HINCRBY refuses: amounts taken
-- away are written 0 - n.)
--include now.lua
local window, ttl, lease_ms, share = WINDOW_MS, WINDOW_TTL_MS, LEASE_MS, LEASE_SHARE
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost, nwin, ask = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8])
local member = ARGV[4] .. '|1|' .. ARGV[3]
local marker, record = KEYS[3 + nwin], KEYS[4 + nwin]
local windowed = rpm > 0 or tpm > 0
if ARGV[7] == '1' then
  local admitted, lease = nil, 0
  if windowed then
    admitted = redis.call('ZSCORE', KEYS[1], member)
  else
    admitted = redis.call('GET', marker)
  end
  if admitted then
    if ask > 0 and redis.call('EXISTS', record) == 1 then lease = ask end
    return {'ok', 0, 0, 0, -1, 0, tonumber(admitted), lease}
  end
  ask = 0  -- the first try never got here: no lease, as the worker returns one found on a retry
end
local requests, used = 0, 0
if windowed then
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if #old > 0 then
    local gone_r, gone_t = 0, 0
    for _, entry in ipairs(old) do
      local r, n = string.match(entry, '|(%d+)|(-?%d+)$')
      gone_r, gone_t = gone_r + tonumber(r), gone_t + tonumber(n)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
    requests = redis.call('HINCRBY', KEYS[2], 'r', 0 - gone_r)
    used = redis.call('HINCRBY', KEYS[2], 't', 0 - gone_t)
  else
    local sums = redis.call('HMGET', KEYS[2], 'r', 't')
    requests, used = tonumber(sums[1] or '0'), tonumber(sums[2] or '0')
  end
  local full
  if rpm > 0 and requests >= rpm then
    full = 'rpm'
  elseif tpm > 0 and used + tokens > tpm then
    full = 'tpm'
  end
  if full then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local retry = window
    if oldest[2] then retry = math.max(tonumber(oldest[2]) + window - now, 0) end
    return {full, retry, requests, used, -1, 0, now, 0}
  end
end
local lease = ask
if rpm > 0 and (rpm - requests - 1) < share * ask then lease = 0 end
if tpm > 0 and (tpm - used - tokens) < share * ask * tokens then lease = 0 end
for i = 1, nwin do
  local spent = redis.call('HGET', KEYS[2 + i], 'spent')
  if not spent then return {'missing', 0, requests, used, i - 1, 0, now, 0} end
  local limit = tonumber(ARGV[8 + i])
  spent = tonumber(spent)
  if spent + cost > limit then
    return {'budget', 0, requests, used, i - 1, spent, now, 0}
  end
  if limit - spent - cost < share * ask * cost then lease = 0 end
end
if windowed then
  redis.call('ZADD', KEYS[1], now, member)
  if lease > 0 then
    redis.call('ZADD', KEYS[1], now + lease_ms, 'L' .. ARGV[4] .. '|' .. lease .. '|' .. lease * tokens)
  end
  redis.call('HINCRBY', KEYS[2], 'r', 1 + lease)
  redis.call('HINCRBY', KEYS[2], 't', tokens * (1 + lease))
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('SET', marker, now, 'PX', window)
end
for i = 1, nwin do
  redis.call('HINCRBY', KEYS[2 + i], 'spent', cost * (1 + lease))
  redis.call('HINCRBY', KEYS[2 + i], 'held', cost * (1 + lease))
end
if lease > 0 then
  redis.call('HSET', record, 'g', now, 'm', cost * lease, 's', 0,
             'w', table.concat(KEYS, ',', 3, 2 + nwin))
  redis.call('PEXPIRE', record, LEASE_RECORD_TTL_MS)
  redis.call('ZADD', KEYS[5 + nwin], now + lease_ms, ARGV[4])
end
return {'ok', 0, requests + 1, used + tokens, -1, 0, now, lease}

"""Lua scripts of the Redis orchestrator: every write is one atomic script.

Layout for prefix P and relative key k:
  P..k             the value, with Redis's own TTL when it expires
  P.."_deadlines"  sorted set k -> deadline (server time, ms); the sweep's source of truth
  P.."_shadow"     hash k -> value of every expiring key, so EXPIRE can carry the value
  P.."_claims"     sorted set k -> lease end of an EXPIRE claimed but not yet handled
  P.."_claimed"    hash k -> the value that claimed EXPIRE carries
  P.."_events"     pub/sub channel of CREATE/SET/DELETE, JSON {kind, key, value, src}
  P.."_epoch"      the name of this data set, written by the first caller that finds it
                   missing: a new name means the keys were lost (EPOCH)

Write scripts: KEYS = [value key, deadlines, shadow, claims, claimed];
ARGV[1] = k, ARGV[2] = channel ("": publish nothing), ARGV[3] = src, ARGV[4] = claim
lease (ms), then their own.
Deadline and TTL come from the same server clock in the same script, so they agree.

Claiming an expiry (ZREM from the deadlines) is exclusive: one manager gets it. The
claim stays in `_claims` until that manager has run its callbacks (ACK); if it dies
first, the lease runs out and a sweep anywhere delivers the EXPIRE again. An expired key
not yet swept is "settled" (claimed) by a creating write, so re-creating it never
loses its EXPIRE.
"""

from __future__ import annotations

_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
_COMMON = _NOW + """
local function publish(kind, value)
  if ARGV[2] == '' then return end
  redis.call('PUBLISH', ARGV[2], cjson.encode({kind = kind, key = ARGV[1], value = value,
                                               src = ARGV[3]}))
end
-- Claim the EXPIRE of a key whose value is gone but whose deadline is still recorded.
local function settle()
  local d = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if d and redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('ZREM', KEYS[2], ARGV[1])
    local v = redis.call('HGET', KEYS[3], ARGV[1])
    redis.call('HDEL', KEYS[3], ARGV[1])
    redis.call('ZADD', KEYS[4], now_ms() + tonumber(ARGV[4]), ARGV[1])
    if v then redis.call('HSET', KEYS[5], ARGV[1], v) end
    return v
  end
  return false
end
local function store(value, ms)
  if ms > 0 then
    redis.call('SET', KEYS[1], value, 'PX', ms)
    redis.call('ZADD', KEYS[2], now_ms() + ms, ARGV[1])
    redis.call('HSET', KEYS[3], ARGV[1], value)
  else
    redis.call('SET', KEYS[1], value)
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('HDEL', KEYS[3], ARGV[1])
  end
end
local function forget()
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
"""


def _with_common(body: str) -> str:
    return _COMMON + body


# ARGV[5] value, ARGV[6] overwrite "1"/"0", ARGV[7] expiration ms (0: none).
# Write scripts return {written 0/1, event kind or false, settled EXPIRE value or false}.
SET = _with_common("""
local expired = settle()
local existed = redis.call('EXISTS', KEYS[1]) == 1
if existed and ARGV[6] == '0' then return {0, false, expired} end
local kind = existed and 'set' or 'create'
store(ARGV[5], tonumber(ARGV[7]))
publish(kind, ARGV[5])
return {1, kind, expired}
""")

# ARGV[5] "1" when a value is expected (ARGV[6]) or "0" when the key must be absent,
# ARGV[7] new value, ARGV[8] expiration ms.
COMPARE_AND_SET = _with_common("""
local expired = settle()
local current = redis.call('GET', KEYS[1])
if ARGV[5] == '0' then
  if current then return {0, false, expired} end
elseif current ~= ARGV[6] then
  return {0, false, expired}
end
local kind = current and 'set' or 'create'
store(ARGV[7], tonumber(ARGV[8]))
publish(kind, ARGV[7])
return {1, kind, expired}
""")

# Touch: push the expiry of keys that exist out, with no event (a touch changes no
# value). Many keys at once, as heartbeats come by the thousand:
# KEYS = [deadlines, shadow, value keys], ARGV = [expiration ms, k for each value key].
# Returns 1 (touched) or 0 (gone) for each.
# store() keeps the shadow current for expiring keys; only a first expiry adds it.
TOUCH_MANY = _NOW + """
local ms = tonumber(ARGV[1])
local deadline = now_ms() + ms
local touched = {}
for i = 3, #KEYS do
  local k = ARGV[i - 1]
  local current = redis.call('GET', KEYS[i])
  if current then
    redis.call('PEXPIRE', KEYS[i], ms)
    redis.call('ZADD', KEYS[1], deadline, k)
    redis.call('HSETNX', KEYS[2], k, current)
    touched[#touched + 1] = 1
  else
    touched[#touched + 1] = 0
  end
end
return touched
"""

# Returns {1, deleted value} or {0}.
DELETE = _with_common("""
local current = redis.call('GET', KEYS[1])
if not current then return {0} end
forget()
publish('delete', current)
return {1, current}
""")

# ARGV[5] owner, ARGV[6] expiration ms. The owner re-locking extends the lock.
LOCK = _with_common("""
local expired = settle()
local current = redis.call('GET', KEYS[1])
local ms = tonumber(ARGV[6])
if not current then
  store(ARGV[5], ms)
  publish('create', ARGV[5])
  return {1, 'create', expired}
end
if current ~= ARGV[5] then return {0, false, expired} end
redis.call('PEXPIRE', KEYS[1], ms)
redis.call('ZADD', KEYS[2], now_ms() + ms, ARGV[1])
redis.call('HSETNX', KEYS[3], ARGV[1], current)
return {1, false, expired}
""")

# ARGV[5] owner.
UNLOCK = _with_common("""
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[5] then return 0 end
forget()
publish('delete', current)
return 1
""")

# KEYS = [deadlines, shadow, claims, claimed]; ARGV[1] = prefix, ARGV[2] = batch size,
# ARGV[3] = claim lease (ms). Claims every overdue deadline, and takes over claims
# whose manager never acknowledged them. Returns {now_ms, next wake-up (ms) or false,
# k1, v1, k2, v2, ...}.
SWEEP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local batch = tonumber(ARGV[2])
local lease_end = now + tonumber(ARGV[3])
local out = {tostring(now), false}
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, batch)) do
  redis.call('ZADD', KEYS[3], lease_end, k)
  table.insert(out, k)
  table.insert(out, redis.call('HGET', KEYS[4], k))
end
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, batch)) do
  redis.call('ZREM', KEYS[1], k)
  local v = redis.call('HGET', KEYS[2], k)
  redis.call('HDEL', KEYS[2], k)
  -- Redis expires a key only once past its TTL; at the exact deadline it may live on.
  redis.call('DEL', ARGV[1] .. k)
  redis.call('ZADD', KEYS[3], lease_end, k)
  if v then redis.call('HSET', KEYS[4], k, v) else redis.call('HDEL', KEYS[4], k) end
  table.insert(out, k)
  table.insert(out, v)
end
local nxt = false
for _, z in ipairs({KEYS[1], KEYS[3]}) do
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if first[2] and (not nxt or tonumber(first[2]) < nxt) then nxt = tonumber(first[2]) end
end
if nxt then out[2] = tostring(nxt) end
return out
"""

# KEYS = [claims, claimed]; ARGV = keys whose EXPIRE has been handled.
ACK = """
for _, k in ipairs(ARGV) do
  redis.call('ZREM', KEYS[1], k)
  redis.call('HDEL', KEYS[2], k)
end
return #ARGV
"""

# KEYS = [epoch]; ARGV[1] = a new name, kept only when there is none: a Redis that lost
# its data (restarted without persistence, or a replica promoted without it) has none,
# and the first manager to ask names the new data set for all.
EPOCH = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

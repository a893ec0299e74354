"""Lua scripts of the Redis presence store: every change is atomic, versioned and published.

Layout (``P`` is the key prefix; see docs/reference/cluster-internals.md):
``P entries`` hash entry id -> ``"<seq>|<json [topic, key, meta]>"``; ``P version`` change counter;
``P epoch`` id of this store's lifetime (a Redis that lost its data gets a new one); ``P replicas``
hash replica id -> node name; ``P owned:<replica>`` set of its entry ids; ``P alive:<replica>``
heartbeat key with a TTL. Every script that changes entries increments the version once and
publishes ``{"e": epoch, "v": version, "put": [[id, value]...], "del": [id...]}`` on ``P diff``.

Common KEYS: entries, version, epoch, replicas. Common ARGV: prefix, diff channel, candidate epoch.
"""

from __future__ import annotations

_PRELUDE = """
local E, V, EP, R = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, channel = ARGV[1], ARGV[2]
local epoch = redis.call('GET', EP)
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', EP, epoch)
end
local version = nil
local puts, dels = {}, {}
local function bump()
  if not version then version = redis.call('INCR', V) end
  return version
end
local function put(owned, id, payload)
  local old = redis.call('HGET', E, id)
  local value
  if old then
    value = string.sub(old, 1, string.find(old, '|', 1, true)) .. payload
    if value == old then return end
  else
    value = bump() .. '|' .. payload
  end
  bump()
  redis.call('HSET', E, id, value)
  redis.call('SADD', owned, id)
  puts[#puts + 1] = {id, value}
end
local function del(owned, id)
  redis.call('SREM', owned, id)
  if redis.call('HDEL', E, id) == 1 then
    bump()
    dels[#dels + 1] = id
  end
end
local function drop(replica)
  local owned = prefix .. 'owned:' .. replica
  for _, id in ipairs(redis.call('SMEMBERS', owned)) do
    if redis.call('HDEL', E, id) == 1 then
      bump()
      dels[#dels + 1] = id
    end
  end
  redis.call('DEL', owned, prefix .. 'alive:' .. replica)
  redis.call('HDEL', R, replica)
end
local function finish()
  if version then
    redis.call('PUBLISH', channel, cjson.encode({e = epoch, v = version, put = puts, del = dels}))
    return {epoch, version}
  end
  return {epoch, tonumber(redis.call('GET', V) or '0')}
end
"""

APPLY = (
    _PRELUDE
    + """
-- ARGV 4: replica, 5: ttl ms, 6: number of puts, then (id, payload) pairs, then ids to delete.
-- Returns version -1 when the replica is not registered (reaped, or Redis lost its data).
local me = ARGV[4]
if redis.call('HEXISTS', R, me) == 0 then return {epoch, -1} end
redis.call('SET', prefix .. 'alive:' .. me, '1', 'PX', ARGV[5])
local owned = prefix .. 'owned:' .. me
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  put(owned, ARGV[i], ARGV[i + 1])
  i = i + 2
end
for j = i, #ARGV do del(owned, ARGV[j]) end
return finish()
"""
)

ASSERT = (
    _PRELUDE
    + """
-- ARGV 4: replica, 5: ttl ms, 6: node name, 7: '1' on a fresh start, 8: number of entries, then
-- (id, payload) pairs: the complete set of entries this replica holds. Registers the replica and
-- makes the store hold exactly these entries for it. A fresh start also drops earlier
-- incarnations of the same node (a restarted node leaves no ghosts).
local me, node = ARGV[4], ARGV[6]
if ARGV[7] == '1' then
  local reps = redis.call('HGETALL', R)
  for j = 1, #reps, 2 do
    if reps[j + 1] == node and reps[j] ~= me then drop(reps[j]) end
  end
end
redis.call('HSET', R, me, node)
redis.call('SET', prefix .. 'alive:' .. me, '1', 'PX', ARGV[5])
local owned = prefix .. 'owned:' .. me
local wanted = {}
local i = 9
for _ = 1, tonumber(ARGV[8]) do
  wanted[ARGV[i]] = true
  i = i + 2
end
for _, id in ipairs(redis.call('SMEMBERS', owned)) do
  if not wanted[id] then del(owned, id) end
end
i = 9
for _ = 1, tonumber(ARGV[8]) do
  put(owned, ARGV[i], ARGV[i + 1])
  i = i + 2
end
return finish()
"""
)

DROP = (
    _PRELUDE
    + """
-- ARGV 4: 'dead' drops every replica whose alive key expired; 'self' drops replica ARGV 5.
if ARGV[4] == 'dead' then
  for _, r in ipairs(redis.call('HKEYS', R)) do
    if redis.call('EXISTS', prefix .. 'alive:' .. r) == 0 then drop(r) end
  end
else
  drop(ARGV[5])
end
return finish()
"""
)

HEARTBEAT = """
-- KEYS: replicas, alive key. ARGV 1: replica, 2: ttl ms. 0 when the replica is not registered.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""

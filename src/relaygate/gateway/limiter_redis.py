"""The Redis window store: one atomic Lua script checks every window, then counts in all of them.

Windows are sorted sets scored by Redis' own clock, so every gateway node shares the counts
and node clocks never matter.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis

from relaygate.gateway.limiter import Window, WindowStore
from relaygate.protocol.gateway.wire import RATE_PREFIX

_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local w = tonumber(entry[2]) + window - now
    if w < 1 then w = 1 end
    if w > wait then wait = w end
  end
end
if wait > 0 or ARGV[#ARGV] == '0' then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""


class RedisWindowStore(WindowStore):
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._ids = itertools.count()
        self._prefix = f"{os.getpid()}:{os.urandom(4).hex()}:"

    async def hit(self, windows: Sequence[Window], *, count: bool = True) -> int:
        keys = [RATE_PREFIX + w.key for w in windows]
        args: list[Any] = [self._prefix + str(next(self._ids))]
        for window in windows:
            args += [window.limit, window.window_ms]
        args.append("1" if count else "0")
        return int(await self._script(keys=keys, args=args))

"""Login throttling: at most ``limit`` failed logins per key (email, client address) per window.

An attempt reserves one failure on each of its keys *before* the password is checked and gives
it back when the login succeeds, so concurrent attempts can never exceed the limit. The window
starts at a key's first failure (fixed window). One node keeps counters in memory; a cluster
keeps them in Redis, updated atomically by a Lua script.
"""

from __future__ import annotations

import abc
import hashlib
import math
import time

import redis.asyncio as aioredis

LIMIT = 10
WINDOW = 300  # seconds
_MEMORY_SWEEP_AT = 10_000


def throttle_keys(email: str, address: str | None) -> list[str]:
    """Counter keys of one attempt; the email is hashed so no address is stored in Redis."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    keys = [f"email:{digest}"]
    if address:
        keys.append(f"addr:{address}")
    return keys


class LoginThrottle(abc.ABC):
    def __init__(self, limit: int = LIMIT, window: int = WINDOW) -> None:
        self.limit = limit
        self.window = window

    @abc.abstractmethod
    async def reserve(self, keys: list[str]) -> int | None:
        """Count one failure on every key; ``None`` if allowed, else seconds until retry."""

    @abc.abstractmethod
    async def release(self, keys: list[str]) -> None:
        """Give back the failure reserved for an attempt that succeeded."""


class MemoryThrottle(LoginThrottle):
    """Counters of one node (no awaits inside an update, so each update is atomic)."""

    def __init__(self, limit: int = LIMIT, window: int = WINDOW) -> None:
        super().__init__(limit, window)
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (failures, window end)

    async def reserve(self, keys: list[str]) -> int | None:
        now = time.monotonic()
        if len(self._counters) >= _MEMORY_SWEEP_AT:
            self._counters = {key: value for key, value in self._counters.items() if value[1] > now}
        retry_after: int | None = None
        for key in keys:
            count, ends = self._counters.get(key, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + self.window
            count += 1
            self._counters[key] = (count, ends)
            if count > self.limit:
                wait = max(1, math.ceil(ends - now))
                retry_after = max(retry_after or 0, wait)
        return retry_after

    async def release(self, keys: list[str]) -> None:
        for key in keys:
            entry = self._counters.get(key)
            if entry is not None and entry[0] > 0:
                self._counters[key] = (entry[0] - 1, entry[1])


# KEYS: counters; ARGV[1]: window seconds, ARGV[2]: limit. Returns the longest wait, 0 if allowed.
_RESERVE = """
local wait = 0
for _, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  if count > tonumber(ARGV[2]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = 1 end
    if ttl > wait then wait = ttl end
  end
end
return wait
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


class RedisThrottle(LoginThrottle):
    """Counters shared by every node of a cluster."""

    def __init__(
        self,
        redis: aioredis.Redis,
        limit: int = LIMIT,
        window: int = WINDOW,
        prefix: str = "relaygate:login:",
    ) -> None:
        super().__init__(limit, window)
        self._prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    async def reserve(self, keys: list[str]) -> int | None:
        wait = int(
            await self._reserve(keys=[self._prefix + key for key in keys], args=[self.window, self.limit])
        )
        return wait or None

    async def release(self, keys: list[str]) -> None:
        await self._release(keys=[self._prefix + key for key in keys])

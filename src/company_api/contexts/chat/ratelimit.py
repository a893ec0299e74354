"""Per-user message rate limit shared by every way of sending (HTTP and channels).

A sliding-window log: at most ``limit`` hits in any ``window`` seconds. The memory store serves one
node; the Redis store keeps the log in a sorted set so that every node of a cluster counts together
(Redis' clock is the only clock, so nodes with skewed clocks still agree).
"""

from __future__ import annotations

import abc
import time
import uuid
from collections import deque
from collections.abc import Callable

import redis.asyncio as aioredis

DEFAULT_LIMIT = 20
DEFAULT_WINDOW = 10.0


class RateLimiter(abc.ABC):
    def __init__(self, limit: int = DEFAULT_LIMIT, window: float = DEFAULT_WINDOW) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window

    @abc.abstractmethod
    async def hit(self, key: str) -> float | None:
        """Count one hit for ``key``: ``None`` when allowed, else seconds until one is allowed again.

        A refused hit is not counted, so a client that keeps retrying is let in as soon as the
        window allows.
        """


class MemoryRateLimiter(RateLimiter):
    """One node's log per key; keys whose window has passed are dropped so memory stays bounded."""

    SWEEP_EVERY = 1024

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(limit, window)
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._calls = 0

    async def hit(self, key: str) -> float | None:
        now = self._clock()
        self._calls += 1
        if self._calls % self.SWEEP_EVERY == 0:
            self._sweep(now)
        log = self._hits.setdefault(key, deque())
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.limit:
            return log[0] + self.window - now
        log.append(now)
        return None

    def _sweep(self, now: float) -> None:
        for key in [key for key, log in self._hits.items() if not log or log[-1] <= now - self.window]:
            del self._hits[key]

    def __len__(self) -> int:
        """Keys currently held (for tests of the memory bound)."""
        return len(self._hits)


# KEYS[1] the log; ARGV: limit, window in microseconds, a unique member. Returns 0 when allowed,
# else the microseconds to wait.
_HIT_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return 0
"""


class RedisRateLimiter(RateLimiter):
    """The log in a Redis sorted set per key, updated atomically by one script call."""

    def __init__(
        self,
        redis: aioredis.Redis,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        prefix: str = "relaygate:ratelimit:chat:",
    ) -> None:
        super().__init__(limit, window)
        self._script = redis.register_script(_HIT_SCRIPT)
        self._prefix = prefix

    async def hit(self, key: str) -> float | None:
        wait_us = int(
            await self._script(
                keys=[self._prefix + key],
                args=[self.limit, int(self.window * 1_000_000), uuid.uuid4().hex],
            )
        )
        return None if wait_us == 0 else wait_us / 1_000_000

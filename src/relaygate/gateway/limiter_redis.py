"""Shared rate-limit windows in Redis: exact (a script call per request) or leased in blocks.

Windows are sorted sets scored by Redis' own clock, so every gateway node shares the counts
and node clocks never matter. :class:`RedisWindowStore` checks every window, then counts in all
of them, atomically, per request. :class:`LeasingWindowStore` (what gateway nodes use) takes
slots in blocks and spends them locally, within a stated tolerance.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


# Lease up to ARGV[3i+1] slots of each window at once, all or nothing: every window must have
# room for at least one, else nothing is taken: {wait, wait of window 1, wait of window 2, ...}.
# Granted: {0, slots of window 1, slots of window 2, ...}.
_LEASE_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local room = {}
local waits = {0}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local w = tonumber(entry[2]) + window - now
    if w < 1 then w = 1 end
    if w > wait then wait = w end
    waits[i + 1] = w
  else
    waits[i + 1] = 0
  end
  room[i] = limit - count
end
if wait > 0 then
  waits[1] = wait
  return waits
end
local out = {0}
for i, key in ipairs(KEYS) do
  local n = math.min(tonumber(ARGV[3 * i + 1]), room[i])
  for j = 1, n do
    redis.call('ZADD', key, now, ARGV[1] .. ':' .. i .. ':' .. j)
  end
  redis.call('PEXPIRE', key, tonumber(ARGV[3 * i]))
  out[i + 1] = n
end
return out
"""


@dataclass(slots=True)
class _Lease:
    tokens: int = 0
    expires: float = 0.0
    """Monotonic time after which unused tokens are dropped (their window has passed)."""
    denied_until: float = 0.0
    """Monotonic time until which Redis said the window is full."""


class LeasingWindowStore(WindowStore):
    """Shared windows in Redis, with local budgets leased in blocks: no round trip per request.

    A request spends one token from a local lease per window; a window without tokens leases a
    block of ``max(1, min(max_block, limit // fraction))`` slots (fewer if fewer are free) in one
    script call, which counts them in Redis at once. A window Redis reports full is answered
    locally until its retry time. Tokens are used within their window only.

    Tolerance: counted-but-unspent tokens are the only slack, and a gateway holds at most one
    block minus one per window, so across ``G`` gateways a window admits at most
    ``limit + G * (block - 1)`` requests (``limit`` exactly while ``limit < 2 * fraction``, where
    blocks are one slot), and a request may be refused while another gateway still holds up to
    ``block - 1`` unspent slots. With the defaults (1/20 of the limit, at most 50) that is 5% of
    the limit per gateway.
    """

    SWEEP_EVERY: Final = 10_000

    def __init__(self, redis: Redis, *, fraction: int = 20, max_block: int = 50) -> None:
        self._script = redis.register_script(_LEASE_SCRIPT)
        self._exact = RedisWindowStore(redis)
        self.fraction = fraction
        self.max_block = max_block
        self._leases: dict[str, _Lease] = {}
        self._leasing: dict[str, asyncio.Future[None]] = {}
        self._ids = itertools.count()
        self._prefix = f"{os.getpid()}:{os.urandom(4).hex()}:L"
        self._hits = 0
        self.round_trips = 0
        """Script calls made so far (leases and checks): what the leasing saves is visible."""

    def block(self, window: Window) -> int:
        return max(1, min(self.max_block, window.limit // self.fraction))

    async def hit(self, windows: Sequence[Window], *, count: bool = True) -> int:
        for _ in range(8):  # a concurrent request may spend a fresh lease first: lease again
            now = time.monotonic()
            missing: list[Window] = []
            wait = 0.0
            for window in windows:
                lease = self._leases.get(window.key)
                if lease is None or lease.tokens <= 0 or lease.expires <= now:
                    if lease is not None and lease.denied_until > now:
                        wait = max(wait, lease.denied_until - now)
                    missing.append(window)
            if wait:
                return max(1, int(wait * 1000 + 0.999))
            if not missing:
                if count:
                    for window in windows:
                        self._leases[window.key].tokens -= 1
                    self._sweep(now)
                return 0
            if not count:  # only a check (an invalid request): never take slots for it
                self.round_trips += 1
                return await self._exact.hit(missing, count=False)
            wait_ms = await self._lease(missing)
            if wait_ms:
                return wait_ms
        self.round_trips += 1
        return await self._exact.hit(windows, count=count)  # heavy contention: count exactly

    async def _lease(self, windows: list[Window]) -> int:
        """Lease blocks for ``windows`` (joining a lease already in flight for the same keys)."""
        pending = [self._leasing[w.key] for w in windows if w.key in self._leasing]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            return 0
        future = asyncio.get_running_loop().create_future()
        for window in windows:
            self._leasing[window.key] = future
        try:
            args: list[Any] = [self._prefix + str(next(self._ids))]
            for window in windows:
                args += [window.limit, window.window_ms, self.block(window)]
            self.round_trips += 1
            reply = await self._script(keys=[RATE_PREFIX + w.key for w in windows], args=args)
        finally:
            for window in windows:
                del self._leasing[window.key]
            future.set_result(None)
        now = time.monotonic()
        wait = int(reply[0])
        if wait:
            for window, full_for in zip(windows, reply[1:], strict=True):
                if int(full_for):
                    lease = self._leases.setdefault(window.key, _Lease())
                    lease.tokens = 0
                    lease.denied_until = now + int(full_for) / 1000
            return wait
        for window, granted in zip(windows, reply[1:], strict=True):
            lease = self._leases.setdefault(window.key, _Lease())
            lease.tokens = int(granted)
            lease.expires = now + window.window_ms / 1000
            lease.denied_until = 0.0
        return 0

    def _sweep(self, now: float) -> None:
        """Every SWEEP_EVERY hits drop leases past their window (keys may come from arguments)."""
        self._hits += 1
        if self._hits >= self.SWEEP_EVERY:
            self._hits = 0
            self._leases = {k: v for k, v in self._leases.items() if v.expires > now or v.denied_until > now}

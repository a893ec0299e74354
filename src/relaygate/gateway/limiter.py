"""Sliding-window rate limits: global limits for every request plus per-function limits.

Every window that applies to a request is checked before any is counted, so a request rejected
by one limit consumes none. Several windows on one key (10/s and 500/min) are separate logs.
The counting lives in a :class:`WindowStore` (memory here, Redis in :mod:`limiter_redis`);
when the store fails or is slow, ``fail_open`` decides.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from relaygate.gateway.request import CallerContext
from relaygate.gateway.response import GatewayError
from relaygate.gateway.selection import hash_key
from relaygate.protocol.gateway import codes
from relaygate.protocol.gateway.functions import FunctionSpec, key_text
from relaygate.protocol.gateway.options import ConfigError, RateLimit, parse_rate_limits

log = logging.getLogger(__name__)
_MAX_KEY_VALUE: Final = 200


@dataclass(frozen=True, slots=True)
class Window:
    """One sliding window to check and count: at most ``limit`` hits per ``window_ms`` under ``key``."""

    key: str
    limit: int
    window_ms: int


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    """The limiter's runtime configuration (what ``PUT /gateway/rate-limits`` replaces)."""

    global_limits: tuple[RateLimit, ...] = ()
    fail_open: bool = True
    timeout_ms: int = 250

    @classmethod
    def parse(cls, raw: object) -> LimiterConfig:
        """``{"global": [limit...], "fail_open": bool, "timeout_ms": int}``; raise :class:`ConfigError`."""
        if not isinstance(raw, Mapping) or not set(raw) <= {"global", "fail_open", "timeout_ms"}:
            raise ConfigError("rate-limit config is an object with global, fail_open and timeout_ms")
        fail_open = raw.get("fail_open", True)
        timeout_ms = raw.get("timeout_ms", 250)
        if not isinstance(fail_open, bool):
            raise ConfigError("fail_open must be a boolean")
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 1 <= timeout_ms <= 10_000:
            raise ConfigError("timeout_ms must be an integer in 1..10000")
        return cls(parse_rate_limits(raw.get("global", [])), fail_open, timeout_ms)

    def to_wire(self) -> dict[str, Any]:
        return {
            "global": [limit.to_wire() for limit in self.global_limits],
            "fail_open": self.fail_open,
            "timeout_ms": self.timeout_ms,
        }


class WindowStore(abc.ABC):
    @abc.abstractmethod
    async def hit(self, windows: Sequence[Window], *, count: bool = True) -> int:
        """Check all ``windows``; if each has room, count the request in all (unless not
        ``count``) and return 0, else count nothing and return the milliseconds until the
        fullest one has room."""


class MemoryWindowStore(WindowStore):
    """Sliding logs of monotonic timestamps, one per window key (single-node mode).

    Keys may come from request arguments (``arg:<name>`` limits), so a log is dropped once its
    newest hit is older than its own window: memory follows the keys active within their window.
    """

    SWEEP_EVERY: Final = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._spans: dict[str, int] = {}  # key -> its window_ms
        self._hits_since_sweep = 0

    def __len__(self) -> int:
        """How many window keys are kept."""
        return len(self._logs)

    async def hit(self, windows: Sequence[Window], *, count: bool = True) -> int:
        now = self._clock() * 1000
        wait = 0.0
        for window in windows:
            log_ = self._logs.get(window.key)
            if log_ is None:
                continue
            while log_ and log_[0] <= now - window.window_ms:
                log_.popleft()
            if len(log_) >= window.limit:
                wait = max(wait, log_[len(log_) - window.limit] + window.window_ms - now)
        if wait > 0:
            return max(1, int(wait + 0.999))
        if not count:
            return 0
        for window in windows:
            self._logs.setdefault(window.key, deque()).append(now)
            self._spans[window.key] = window.window_ms
        self._sweep(now)
        return 0

    def _sweep(self, now: float) -> None:
        """Every SWEEP_EVERY hits, drop the logs whose window has passed since their last hit."""
        self._hits_since_sweep += 1
        if self._hits_since_sweep < self.SWEEP_EVERY:
            return
        self._hits_since_sweep = 0
        spans = self._spans
        self._logs = {k: v for k, v in self._logs.items() if v and v[-1] > now - spans[k]}
        self._spans = {k: spans[k] for k in self._logs}


def _key_value(
    limit: RateLimit, caller: CallerContext, device_id: str | None, args: Mapping[str, Any]
) -> str | None:
    if limit.key == "user_id":
        value: Any = caller.user_id
    elif limit.key == "device_id":
        value = device_id
    elif limit.key == "ip_address":
        value = caller.ip_address
    else:
        value = args.get(limit.key[4:])
    if value is None:
        return None  # nothing to attribute the request to: the limit does not apply
    text = value if isinstance(value, str) else hash_key(value)
    if len(text) > _MAX_KEY_VALUE:
        text = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return text


class RateLimiter:
    def __init__(self, store: WindowStore | None = None, config: LimiterConfig | None = None) -> None:
        self.store = store or MemoryWindowStore()
        self.config = config or LimiterConfig()

    def configure(self, config: LimiterConfig) -> None:
        """Replace the configuration at runtime (already counted hits stay counted)."""
        self.config = config

    def applies(self, spec: FunctionSpec) -> bool:
        """Whether any limit could apply to a call of ``spec`` (else :meth:`check` is a no-op)."""
        return bool(self.config.global_limits or spec.rate_limits)

    def windows(
        self, spec: FunctionSpec, caller: CallerContext, device_id: str | None, args: Mapping[str, Any]
    ) -> list[Window]:
        out = []
        scoped = [("g", limit) for limit in self.config.global_limits]
        scoped += [(key_text(spec.key), limit) for limit in spec.rate_limits]
        for scope, limit in scoped:
            value = _key_value(limit, caller, device_id, args)
            if value is not None:
                key = f"{scope}|{limit.key}|{limit.window_ms}|{value}"
                out.append(Window(key, limit.max_requests, limit.window_ms))
        return out

    async def check(
        self,
        spec: FunctionSpec,
        caller: CallerContext,
        device_id: str | None,
        args: Mapping[str, Any],
        *,
        count: bool = True,
    ) -> None:
        """Count the request or raise ``rate_limited`` (with ``retry_after_ms``).

        With ``count=False`` only check: an invalid request learns it is limited but uses no quota.
        """
        windows = self.windows(spec, caller, device_id, args)
        if not windows:
            return
        config = self.config
        try:
            async with asyncio.timeout(config.timeout_ms / 1000):
                wait = await self.store.hit(windows, count=count)
        except Exception as exc:  # the store failed or was too slow: fail_open decides
            log.warning("rate limiter store failed: %s", type(exc).__name__)
            if config.fail_open:
                return
            raise GatewayError(codes.UNAVAILABLE, "the rate limiter is unavailable") from None
        if wait:
            raise GatewayError(codes.RATE_LIMITED, "rate limit exceeded", retry_after_ms=wait)

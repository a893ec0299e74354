"""Registry and rate-limit administration, the same for one node (memory) and a cluster (Redis).

The admin HTTP routes and CLI commands call these methods; in cluster mode each change is
written to Redis and reaches every gateway node at once through a change notice.
"""

from __future__ import annotations

import abc
from typing import Any

from relaygate.gateway.limiter import LimiterConfig, RateLimiter
from relaygate.gateway.registry import Registry
from relaygate.protocol.gateway.functions import FunctionKey


class GatewayAdmin(abc.ABC):
    def __init__(self, registry: Registry, limiter: RateLimiter) -> None:
        self.registry = registry
        self.limiter = limiter

    def functions(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """``{service: {request_type: [{version, enabled, response_type, nodes}]}}``."""
        return self.registry.listing()

    def rate_limits(self) -> LimiterConfig:
        return self.limiter.config

    @abc.abstractmethod
    async def services(self) -> list[dict[str, Any]]:
        """Each service with its ``config_version`` and nodes (name, alive, last_heartbeat ms)."""

    @abc.abstractmethod
    async def disable(self, key: FunctionKey) -> None:
        """Disable one version (``not_found`` if unknown)."""

    @abc.abstractmethod
    async def enable(self, key: FunctionKey) -> None: ...

    @abc.abstractmethod
    async def delete(self, key: FunctionKey) -> None: ...

    @abc.abstractmethod
    async def set_rate_limits(self, config: LimiterConfig) -> None:
        """Replace the whole limiter configuration on every node."""


class LocalAdmin(GatewayAdmin):
    """One node without Redis: only local functions, limits in memory."""

    async def services(self) -> list[dict[str, Any]]:
        return [
            {"service": name, "config_version": self.registry.config_version(name), "nodes": []}
            for name in sorted(self.registry.service_names())
        ]

    async def disable(self, key: FunctionKey) -> None:
        self.registry.disable(key)

    async def enable(self, key: FunctionKey) -> None:
        self.registry.enable(key)

    async def delete(self, key: FunctionKey) -> None:
        self.registry.delete(key)

    async def set_rate_limits(self, config: LimiterConfig) -> None:
        self.limiter.configure(config)

"""The API gateway: functions registered at runtime, called over a channel.

Use :class:`Gateway` (``start_request`` or ``handle_request`` / ``cancel`` / ``close_connection``) from the channel
layer with a :class:`CallerContext` built from the authenticated socket. In cluster mode a
:class:`RedisCluster` keeps the registry, node liveness and rate limits shared through Redis.
"""

from relaygate.gateway.admin import GatewayAdmin, LocalAdmin
from relaygate.gateway.channel import GatewayChannel
from relaygate.gateway.cluster import RedisAdmin, RedisCluster
from relaygate.gateway.config import FunctionConfig
from relaygate.gateway.gateway import Emit, Gateway
from relaygate.gateway.limiter import LimiterConfig, MemoryWindowStore, RateLimiter, Window, WindowStore
from relaygate.gateway.limiter_redis import LeasingWindowStore, RedisWindowStore
from relaygate.gateway.registry import Registry
from relaygate.gateway.request import CallerContext, GatewayRequest, decode_request
from relaygate.gateway.response import GatewayError, make_response
from relaygate.gateway.selection import NodeSelector, rendezvous
from relaygate.gateway.transport import NodeLost, RemoteCall, Transport
from relaygate.gateway.versions import resolve_version

__all__ = [
    "CallerContext",
    "Emit",
    "FunctionConfig",
    "Gateway",
    "GatewayAdmin",
    "GatewayChannel",
    "GatewayError",
    "GatewayRequest",
    "LeasingWindowStore",
    "LimiterConfig",
    "LocalAdmin",
    "MemoryWindowStore",
    "NodeLost",
    "NodeSelector",
    "RateLimiter",
    "RedisAdmin",
    "RedisCluster",
    "RedisWindowStore",
    "Registry",
    "RemoteCall",
    "Transport",
    "Window",
    "WindowStore",
    "decode_request",
    "make_response",
    "rendezvous",
    "resolve_version",
]

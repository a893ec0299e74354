"""Redis keys and the messages exchanged by gateway nodes and service nodes.

Layout (all keys under ``rg:gw:``):

- ``services`` hash: service -> ``{"config_version", "functions": [spec...]}`` (whole set, atomic)
- ``disabled`` set of function keys disabled by admins (applies to local functions too)
- ``nodes`` hash: node -> ``{"service", "config_version", "functions": [key...], "started"}``
- ``heartbeats`` hash: node -> last heartbeat in Redis server milliseconds
- ``ratelimits`` string: the limiter configuration; ``rev`` counter bumped on every change
- ``changes`` Pub/Sub channel: change notices (gateways re-read the registry)
- ``q:<node>`` list: calls for a service node (LPUSH by gateways, BRPOP by the node)
- ``ctl:<node>`` Pub/Sub channel: cancel and credit messages for a node
- ``r:<gateway>`` Pub/Sub channel: replies, chunks and stream ends for a gateway node
"""

from __future__ import annotations

from typing import Any, Final

import orjson

PREFIX: Final = "rg:gw:"
SERVICES: Final = PREFIX + "services"
DISABLED: Final = PREFIX + "disabled"
NODES: Final = PREFIX + "nodes"
HEARTBEATS: Final = PREFIX + "heartbeats"
RATE_LIMITS: Final = PREFIX + "ratelimits"
REV: Final = PREFIX + "rev"
CHANGES: Final = PREFIX + "changes"
RATE_PREFIX: Final = PREFIX + "rl:"

HEARTBEAT_INTERVAL: Final = 1.0
MISSED_HEARTBEATS: Final = 3
QUEUE_TTL_S: Final = 60

# Message types. Gateway -> node: CALL on the queue; CANCEL and CREDIT on the control channel.
CALL: Final = "call"
CANCEL: Final = "cancel"
CREDIT: Final = "credit"
# Node -> gateway, on the reply channel.
OK: Final = "ok"
ERROR: Final = "err"
CHUNK: Final = "chunk"
END: Final = "end"
NACK: Final = "nack"
"""The node did not run the call (shutting down): the gateway may try another node."""


def node_queue(node: str) -> str:
    return f"{PREFIX}q:{node}"


def node_control(node: str) -> str:
    return f"{PREFIX}ctl:{node}"


def gateway_replies(gateway: str) -> str:
    return f"{PREFIX}r:{gateway}"


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def decode(data: bytes | str) -> dict[str, Any] | None:
    """Decode one message; anything that is not a JSON object with a ``t`` is ``None``."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) and isinstance(message.get("t"), str) else None


# Atomic heartbeat: stamp with Redis' clock so that node clocks never matter.
HEARTBEAT_SCRIPT: Final = """
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ms)
return ms
"""

# Push a service's whole function set unless the same config_version is there (ARGV[3] = force).
PUSH_SCRIPT: Final = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and ARGV[3] ~= '1' then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and decoded['config_version'] == ARGV[4] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', KEYS[3], 'service')
return 1
"""

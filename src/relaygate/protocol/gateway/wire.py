"""Redis keys and the messages exchanged by gateway nodes and service nodes (wire format v2).

Enough to write a service node in another language. Every key starts with ``rg:gw:``; every
message is a UTF-8 JSON object with a string ``t`` (its type); unknown fields are ignored and
anything that is not such an object is dropped.

Keys
----
- ``services`` hash: service -> ``{"config_version", "functions": [spec...]}`` (whole set, atomic)
- ``disabled`` set of function keys (``service|request_type|version``, version empty for "every version") disabled by admins
- ``nodes`` hash: node -> ``{"service", "config_version", "functions": [key...], "draining", "started"}``
- ``heartbeats`` hash: node -> last heartbeat in Redis server milliseconds (``TIME``)
- ``ratelimits`` string: the limiter configuration; ``rev`` counter bumped on every change
- ``changes`` Pub/Sub channel: change notices (gateways re-read the registry)
- ``rl:<window key>`` sorted sets: the shared rate-limit windows (gateways only)
- ``q:<node>`` list: calls for a service node. Gateways ``LPUSH`` them, several per command
  (one ``LPUSH q:<node> c1 c2 ...`` plus ``EXPIRE q:<node> 60`` per node and event-loop turn);
  the node pops from the right, in batches (``BLMPOP 1 1 q:<node> RIGHT COUNT <free slots>``;
  ``BRPOP`` one at a time is also correct), so calls of one gateway keep their order.
- ``ctl:<node>`` Pub/Sub channel: ``cancel`` and ``credit`` messages for a node
- ``r:<gateway>`` Pub/Sub channel: replies, stream chunks and ends for a gateway node

Batches: a Pub/Sub payload on ``ctl:*`` or ``r:*`` is either one message object or a JSON array
of message objects, applied in array order (senders publish every message they have for one
channel in one event-loop turn as one array). A list element of ``q:*`` is always one call.

Messages
--------
Call (gateway -> ``q:<node>``)::

    {"t": "call", "id": <call id, unique per attempt family>, "gw": <gateway node name>,
     "svc": service, "fn": request_type, "v": version or null, "rt": response_type,
     "args": {...validated arguments...}, "credits": <int >= 0, stream chunks allowed before
     the first credit message>,
     "ctx": {"request_id", "user_id", "device_id", "user_roles": [...], "deadline": <unix s>}}

Control (gateway -> ``ctl:<node>``): ``{"t": "cancel", "id"}`` stops the call;
``{"t": "credit", "id", "n": k}`` lets a stream send ``k`` more chunks.

Replies (node -> ``r:<gw>``, the ``gw`` of the call): ``{"t": "ok", "id", "result"}``;
``{"t": "err", "id", "code", "message", "business": bool, "result"?}``; stream chunks
``{"t": "chunk", "id", "seq": 1.., "result"}`` then exactly one ``{"t": "end", "id"}`` or ``err``;
``{"t": "nack", "id"}`` when the node refuses a call without running it (draining): the gateway
may send it to another node.

Liveness: a node writes its record to ``nodes``, then stamps ``heartbeats`` every second with
Redis' clock (:data:`HEARTBEAT_SCRIPT`); a node whose stamp is older than 3 intervals is out of
selection and its in-flight calls fail (retried elsewhere when the function allows) at once.
A draining node sets ``"draining": true``, answers ``nack`` to what is still queued, then
deletes its ``nodes`` and ``heartbeats`` fields. After a (re)connect a node writes its record and
configuration again (:data:`PUSH_SCRIPT`) and publishes ``node`` on ``changes`` after ``INCR rev``.

Dedupe: a node remembers every call id for 60 s after it ends. A duplicate of a finished call
gets the stored final reply again, a duplicate of a running call is ignored; so a gateway's
retry never runs a function twice on one node. A gateway retries on another node only after
``nack``, a send failure or the node's liveness loss, never after a reply.
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


def encode_batch(messages: list[bytes]) -> bytes:
    """One Pub/Sub payload for encoded messages: the message itself, or a JSON array of them."""
    if len(messages) == 1:
        return messages[0]
    return b"[" + b",".join(messages) + b"]"


def decode_batch(data: bytes | str) -> list[dict[str, Any]]:
    """The messages of a Pub/Sub payload (one object or an array); malformed ones are dropped."""
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    items = decoded if isinstance(decoded, list) else [decoded]
    return [m for m in items if isinstance(m, dict) and isinstance(m.get("t"), str)]


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

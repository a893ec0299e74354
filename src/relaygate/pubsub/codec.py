"""Sans-I/O wire format of a broadcast on a Redis channel.

``version(1) kind(1) len(node)(1) node len(event)(2, big endian) event body``: kind ``j`` carries
a JSON body (the payload dict), kind ``b`` raw bytes (a binary payload). The node id lets the
publishing node drop its own echo. The topic travels as the Redis channel name.
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = 1
_JSON = ord("j")
_BINARY = ord("b")


class FrameError(ValueError):
    """A message on a broadcast channel that is not a frame of this format."""


def encode(node: bytes, event: str, payload: Any) -> bytes:
    """Raise TypeError for a payload that is neither bytes nor JSON-able, ValueError for oversize names."""
    if len(node) > 255:
        raise ValueError("node id longer than 255 bytes")
    event_bytes = event.encode()
    if len(event_bytes) > 0xFFFF:
        raise ValueError("event name longer than 65535 bytes")
    if isinstance(payload, bytes | bytearray | memoryview):
        kind, body = _BINARY, bytes(payload)
    else:
        kind, body = _JSON, orjson.dumps(payload)
    header = bytes((VERSION, kind, len(node))) + node + len(event_bytes).to_bytes(2, "big") + event_bytes
    return header + body


def decode(frame: bytes) -> tuple[bytes, str, Any]:
    """``(node, event, payload)``; FrameError for anything malformed."""
    try:
        version, kind, node_len = frame[0], frame[1], frame[2]
        node_end = 3 + node_len
        node = frame[3:node_end]
        event_len = int.from_bytes(frame[node_end : node_end + 2], "big")
        event_end = node_end + 2 + event_len
        if version != VERSION or len(node) != node_len or event_end > len(frame):
            raise FrameError("truncated or unknown frame")
        event = frame[node_end + 2 : event_end].decode()
        body = frame[event_end:]
        if kind == _BINARY:
            return node, event, body
        if kind == _JSON:
            return node, event, orjson.loads(body)
    except (IndexError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise FrameError(str(exc)) from None
    raise FrameError(f"unknown payload kind {kind}")

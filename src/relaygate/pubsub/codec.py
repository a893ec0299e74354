"""Sans-I/O wire format of a broadcast on a Redis channel.

Version 1: ``1 kind(1) len(node)(1) node len(event)(2, big endian) event body``. Kind ``j``
carries a JSON body (the payload dict), kind ``b`` raw bytes (a binary payload). The node id
lets the publishing node drop its own echo. The topic travels as the Redis channel name.

Version 2 is a broadcast on a topic with history: after the event comes ``len(position)(1)
position``. Its head (everything before the position) is built here and the rest is appended
inside Redis by the script that assigns the position (relaygate.history.redis), so that the
append and the publish are one atomic step.
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = 1
POSITIONED = 2
_JSON = ord("j")
_BINARY = ord("b")


class FrameError(ValueError):
    """A message on a broadcast channel that is not a frame of this format."""


def body(payload: Any) -> tuple[int, bytes]:
    """``(kind, body)`` of a payload; TypeError for one that is neither bytes nor JSON-able."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return _BINARY, bytes(payload)
    return _JSON, orjson.dumps(payload)


def head(version: int, kind: int, node: bytes, event: str) -> bytes:
    """ValueError for oversize names."""
    if len(node) > 255:
        raise ValueError("node id longer than 255 bytes")
    event_bytes = event.encode()
    if len(event_bytes) > 0xFFFF:
        raise ValueError("event name longer than 65535 bytes")
    return bytes((version, kind, len(node))) + node + len(event_bytes).to_bytes(2, "big") + event_bytes


def encode(node: bytes, event: str, payload: Any) -> bytes:
    """Raise TypeError for a payload that is neither bytes nor JSON-able, ValueError for oversize names."""
    kind, data = body(payload)
    return head(VERSION, kind, node, event) + data


def load(kind: int, data: bytes) -> Any:
    """The payload of a body of ``kind``; FrameError when it does not decode."""
    if kind == _BINARY:
        return data
    if kind == _JSON:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FrameError(str(exc)) from None
    raise FrameError(f"unknown payload kind {kind}")


def is_echo(frame: bytes, node: bytes) -> bool:
    """Whether ``frame`` is a plain (version 1) broadcast published by ``node``.

    Checked before :func:`decode`, so a node drops its own echo without parsing the payload.
    Positioned frames are never echoes: every node, the publisher too, delivers them in order."""
    end = 3 + len(node)
    return len(frame) >= end and frame[0] == VERSION and frame[2] == len(node) and frame[3:end] == node


def decode(frame: bytes) -> tuple[bytes, str, Any, str | None]:
    """``(node, event, payload, position)``, position None for version 1; FrameError for anything malformed."""
    try:
        version, kind, node_len = frame[0], frame[1], frame[2]
        node_end = 3 + node_len
        node = frame[3:node_end]
        event_len = int.from_bytes(frame[node_end : node_end + 2], "big")
        event_end = node_end + 2 + event_len
        if version not in (VERSION, POSITIONED) or len(node) != node_len or event_end > len(frame):
            raise FrameError("truncated or unknown frame")
        event = frame[node_end + 2 : event_end].decode()
        position = None
        if version == POSITIONED:
            position_end = event_end + 1 + frame[event_end]
            if position_end > len(frame):
                raise FrameError("truncated position")
            position = frame[event_end + 1 : position_end].decode()
            event_end = position_end
    except (IndexError, UnicodeDecodeError) as exc:
        raise FrameError(str(exc)) from None
    return node, event, load(kind, frame[event_end:]), position

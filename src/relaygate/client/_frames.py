"""Private frame codec of the client (V1/V2 JSON and V2 binary).

Kept private until `relaygate.protocol` ships the shared serializers; the client only needs the
client side of the wire: encode what a client sends, decode what a server sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

PUSH, REPLY, BROADCAST = 0, 1, 2


class FrameError(ValueError):
    """A server frame that cannot be decoded."""


@dataclass(frozen=True, slots=True)
class Message:
    """One Phoenix message; `payload` is bytes for binary frames (a reply's response is bytes)."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any


def encode(message: Message, vsn: str) -> str | bytes:
    """Encode a client message: V2 binary for a bytes payload, else V2 array or V1 object text."""
    if isinstance(message.payload, bytes | bytearray):
        if not vsn.startswith("2."):
            raise ValueError("binary payloads need the V2 serializer")
        return _encode_binary_push(message)
    if vsn.startswith("2."):
        frame: object = [message.join_ref, message.ref, message.topic, message.event, message.payload]
    else:
        frame = {
            "join_ref": message.join_ref,
            "ref": message.ref,
            "topic": message.topic,
            "event": message.event,
            "payload": message.payload,
        }
    return orjson.dumps(frame).decode()


def decode(data: str | bytes, vsn: str) -> Message:
    """Decode a server frame (text or binary); raise FrameError on malformed input."""
    if isinstance(data, bytes):
        return _decode_binary(data)
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"invalid JSON frame: {exc}") from exc
    if isinstance(frame, list) and len(frame) >= 5:
        join_ref, ref, topic, event, payload = frame[:5]
    elif isinstance(frame, dict) and {"topic", "event", "payload"} <= frame.keys():
        join_ref, ref = frame.get("join_ref"), frame.get("ref")
        topic, event, payload = frame["topic"], frame["event"], frame["payload"]
    else:
        raise FrameError("frame is neither a 5-element array nor a message object")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    if not _is_ref(join_ref) or not _is_ref(ref):
        raise FrameError("join_ref and ref must be strings or null")
    return Message(join_ref, ref, topic, event, payload)


def _is_ref(value: object) -> bool:
    return value is None or isinstance(value, str)


def _field(value: str | None, name: str) -> bytes:
    raw = (value or "").encode()
    if len(raw) > 255:
        raise ValueError(f"{name} is {len(raw)} bytes, binary frames allow at most 255")
    return raw


def _encode_binary_push(message: Message) -> bytes:
    fields = [
        _field(message.join_ref, "join_ref"),
        _field(message.ref, "ref"),
        _field(message.topic, "topic"),
        _field(message.event, "event"),
    ]
    header = bytes([PUSH, *(len(f) for f in fields)])
    return header + b"".join(fields) + bytes(message.payload)


def _decode_binary(data: bytes) -> Message:
    if not data:
        raise FrameError("empty binary frame")
    kind = data[0]
    if kind == PUSH:
        join_ref, topic, event, rest = _split(data, 3)
        return Message(join_ref or None, None, topic, event, rest)
    if kind == REPLY:
        join_ref, ref, topic, status, rest = _split(data, 4)
        return Message(
            join_ref or None, ref or None, topic, "phx_reply", {"status": status, "response": rest}
        )
    if kind == BROADCAST:
        topic, event, rest = _split(data, 2)
        return Message(None, None, topic, event, rest)
    raise FrameError(f"unknown binary frame kind {kind}")


def _split(data: bytes, count: int) -> tuple[Any, ...]:
    """Split `count` length-prefixed UTF-8 fields after the kind byte; return them and the data."""
    if len(data) < 1 + count:
        raise FrameError("truncated binary header")
    lengths = data[1 : 1 + count]
    offset = 1 + count
    fields: list[str] = []
    for length in lengths:
        chunk = data[offset : offset + length]
        if len(chunk) != length:
            raise FrameError("truncated binary header")
        try:
            fields.append(chunk.decode())
        except UnicodeDecodeError as exc:
            raise FrameError("binary header field is not UTF-8") from exc
        offset += length
    return (*fields, data[offset:])

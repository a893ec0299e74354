"""V1 JSON, V2 JSON and V2 binary frame codecs (phoenix-protocol.md section 2).

Decoding never raises: malformed input becomes a :class:`ProtocolError` carrying the close code.
Encoding server output raises :class:`EncodeError`, because bad output is an application bug.
"""

from __future__ import annotations

import abc
from typing import Any, Final

import orjson

from relaygate.protocol.frames import (
    CLOSE,
    ERROR,
    INVALID_DATA,
    JOIN,
    REPLY,
    UNSUPPORTED_DATA,
    EncodeError,
    Frame,
    Message,
    ProtocolError,
)
from relaygate.protocol.websocket import _TEXT_HEADERS, frame_message, text_frame

_PUSH: Final = 0
_REPLY: Final = 1
_BROADCAST: Final = 2
_EMPTY: Final[dict[str, Any]] = {}
_CRASH: Final = {"reason": "channel_crash"}


def _dumps(value: object) -> str:
    return _dumps_bytes(value).decode()


def _dumps_bytes(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise EncodeError(f"payload is not JSON-serializable: {exc}") from None


def _loads(data: str | bytes) -> Any:
    """Parse JSON; returns the ProtocolError singleton-like value on failure."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _NOT_JSON


_NOT_JSON: Final = ProtocolError(INVALID_DATA, "frame is not valid JSON")


def _field(value: str | None) -> bytes:
    """A binary header field: UTF-8, at most 255 bytes, ``None`` as the empty string."""
    if not value:
        return b""
    encoded = value.encode()
    if len(encoded) > 255:
        raise EncodeError("binary frame header fields are limited to 255 bytes")
    return encoded


def _valid(join_ref: object, ref: object, topic: object, event: object) -> bool:
    return (
        (join_ref is None or type(join_ref) is str)
        and (ref is None or type(ref) is str)
        and type(topic) is str
        and type(event) is str
    )


class Serializer(abc.ABC):
    """Encodes server frames and decodes client frames for one protocol version."""

    vsn: str

    @abc.abstractmethod
    def decode(self, data: str | bytes) -> Message | ProtocolError:
        """Decode one client frame (``bytes`` = binary opcode)."""

    def decode_text(self, data: bytes) -> list[Any] | None:
        """The fields ``[join_ref, ref, topic, event, payload]`` of a well-formed text frame given
        as its UTF-8 bytes (the runtime's fast path: no ``str``, no :class:`Message`), or None
        when the frame must go through :meth:`decode` (malformed, another layout: any doubt)."""
        return None

    @abc.abstractmethod
    def encode(self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any) -> Frame:
        """Encode a JSON (or, where supported, binary) message frame."""

    @abc.abstractmethod
    def reply(self, join_ref: str | None, ref: str | None, topic: str, status: str, response: Any) -> Frame:
        """``phx_reply`` with ``{"status", "response"}``; a ``bytes`` response gives a binary reply."""

    def push(self, join_ref: str | None, topic: str, event: str, payload: Any) -> Frame:
        """A channel push: ``[JR, null, topic, event, payload]``."""
        return self.encode(join_ref, None, topic, event, payload)

    def broadcast(self, topic: str, event: str, payload: Any, ref: str | None = None) -> Frame:
        """A fastlaned broadcast: ``[null, ref, topic, event, payload]``. ``ref`` is null, or a
        string the sender chose (a history position); binary broadcasts have no ref slot."""
        if isinstance(payload, bytes):
            ref = None
        return self.encode(None, ref, topic, event, payload)

    def reply_frame(
        self, join_ref: str | None, ref: str | None, topic: str, status: str, response: Any
    ) -> bytes:
        """:meth:`reply` as one complete WebSocket frame (what a wire transport writes)."""
        return frame_message(self.reply(join_ref, ref, topic, status, response))

    def broadcast_frame(self, topic: str, event: str, payload: Any, ref: str | None = None) -> bytes:
        """:meth:`broadcast` as one complete WebSocket frame."""
        return frame_message(self.broadcast(topic, event, payload, ref))

    def close(self, join_ref: str | None, topic: str) -> Frame:
        """``phx_close`` with ref = join_ref."""
        return self.encode(join_ref, join_ref, topic, CLOSE, _EMPTY)

    def error(self, join_ref: str | None, topic: str) -> Frame:
        """``phx_error`` after a channel crash, with ref = join_ref."""
        return self.encode(join_ref, join_ref, topic, ERROR, _CRASH)


class V2Serializer(Serializer):
    """``[join_ref, ref, topic, event, payload]`` text frames plus the binary layouts of section 2.3."""

    vsn = "2.0.0"

    def decode(self, data: str | bytes) -> Message | ProtocolError:
        if type(data) is not str:
            return self._decode_binary(data)  # type: ignore[arg-type]
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return _NOT_JSON
        if type(value) is not list or len(value) < 5:
            return ProtocolError(INVALID_DATA, "expected a 5-element array")
        join_ref, ref, topic, event, payload = value[0], value[1], value[2], value[3], value[4]
        if (
            (join_ref is None or type(join_ref) is str)
            and (ref is None or type(ref) is str)
            and type(topic) is str
            and type(event) is str
        ):
            return Message(join_ref, ref, topic, event, payload)
        return ProtocolError(INVALID_DATA, "join_ref/ref must be strings or null, topic/event strings")

    def decode_text(self, data: bytes) -> list[Any] | None:
        try:
            value = orjson.loads(data)  # checks the UTF-8 too
        except orjson.JSONDecodeError:
            return None
        if type(value) is list and len(value) == 5:
            join_ref, ref, topic, event, _ = value
            if (
                type(topic) is str
                and type(event) is str
                and (ref is None or type(ref) is str)
                and (join_ref is None or type(join_ref) is str)
            ):
                return value
        return None

    @staticmethod
    def _decode_binary(data: bytes) -> Message | ProtocolError:
        if not data or data[0] != _PUSH:
            return ProtocolError(UNSUPPORTED_DATA, "client binary frames must be pushes (kind 0)")
        if len(data) < 5:
            return ProtocolError(INVALID_DATA, "truncated binary header")
        join_ref_end = 5 + data[1]
        ref_end = join_ref_end + data[2]
        topic_end = ref_end + data[3]
        event_end = topic_end + data[4]
        if event_end > len(data):
            return ProtocolError(INVALID_DATA, "binary header lengths exceed the frame")
        try:
            join_ref = data[5:join_ref_end].decode()
            ref = data[join_ref_end:ref_end].decode()
            topic = data[ref_end:topic_end].decode()
            event = data[topic_end:event_end].decode()
        except UnicodeDecodeError:
            return ProtocolError(INVALID_DATA, "binary header fields must be UTF-8")
        return Message(join_ref or None, ref or None, topic, event, data[event_end:])

    def encode(self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any) -> Frame:
        if isinstance(payload, bytes):
            if join_ref is None and ref is None:
                t, e = _field(topic), _field(event)
                return b"".join((bytes((_BROADCAST, len(t), len(e))), t, e, payload))
            j, t, e = _field(join_ref), _field(topic), _field(event)
            return b"".join((bytes((_PUSH, len(j), len(t), len(e))), j, t, e, payload))
        return _dumps((join_ref, ref, topic, event, payload))

    def reply(self, join_ref: str | None, ref: str | None, topic: str, status: str, response: Any) -> Frame:
        if isinstance(response, bytes):
            j, r, t, s = _field(join_ref), _field(ref), _field(topic), _field(status)
            return b"".join((bytes((_REPLY, len(j), len(r), len(t), len(s))), j, r, t, s, response))
        return _dumps((join_ref, ref, topic, REPLY, {"status": status, "response": response}))

    def reply_frame(
        self, join_ref: str | None, ref: str | None, topic: str, status: str, response: Any
    ) -> bytes:
        if isinstance(response, bytes):
            return frame_message(self.reply(join_ref, ref, topic, status, response))
        try:  # _dumps_bytes and text_frame inlined: one is built per answered push
            data = orjson.dumps((join_ref, ref, topic, REPLY, {"status": status, "response": response}))
        except TypeError as exc:
            raise EncodeError(f"payload is not JSON-serializable: {exc}") from None
        size = len(data)
        return _TEXT_HEADERS[size] + data if size < 126 else text_frame(data)

    def broadcast_frame(self, topic: str, event: str, payload: Any, ref: str | None = None) -> bytes:
        if isinstance(payload, bytes):
            return frame_message(self.broadcast(topic, event, payload, ref))
        return text_frame(_dumps_bytes((None, ref, topic, event, payload)))

    # Client side (used by relaygate.client and the in-process test helper).

    def encode_client(self, message: Message) -> Frame:
        """Encode a client->server frame; a ``bytes`` payload gives a kind-0 binary push."""
        if isinstance(message.payload, bytes):
            fields = [
                _field(message.join_ref),
                _field(message.ref),
                _field(message.topic),
                _field(message.event),
            ]
            header = bytes((_PUSH, *(len(f) for f in fields)))
            return b"".join((header, *fields, message.payload))
        return _dumps((message.join_ref, message.ref, message.topic, message.event, message.payload))

    def decode_server(self, data: str | bytes) -> Message | ProtocolError:
        """Decode a server->client frame; binary replies become ``{"status", "response": bytes}``."""
        if isinstance(data, str):
            return self.decode(data)
        if len(data) < 3 or data[0] not in (_PUSH, _REPLY, _BROADCAST):
            return ProtocolError(UNSUPPORTED_DATA, "unknown binary frame kind")
        kind = data[0]
        counts = {_PUSH: 3, _REPLY: 4, _BROADCAST: 2}[kind]
        if len(data) < 1 + counts:
            return ProtocolError(INVALID_DATA, "truncated binary header")
        fields: list[str] = []
        pos = 1 + counts
        for length in data[1 : 1 + counts]:
            if pos + length > len(data):
                return ProtocolError(INVALID_DATA, "binary header lengths exceed the frame")
            try:
                fields.append(data[pos : pos + length].decode())
            except UnicodeDecodeError:
                return ProtocolError(INVALID_DATA, "binary header fields must be UTF-8")
            pos += length
        body = data[pos:]
        if kind == _PUSH:
            return Message(fields[0] or None, None, fields[1], fields[2], body)
        if kind == _REPLY:
            return Message(
                fields[0] or None,
                fields[1] or None,
                fields[2],
                REPLY,
                {"status": fields[3], "response": body},
            )
        return Message(None, None, fields[0], fields[1], body)


class V1Serializer(Serializer):
    """``{"topic", "event", "payload", "ref"}`` objects; never sends join_ref, has no binary frames."""

    vsn = "1.0.0"

    def decode(self, data: str | bytes) -> Message | ProtocolError:
        if isinstance(data, bytes):
            return ProtocolError(UNSUPPORTED_DATA, "binary frames need vsn 2.0.0")
        value = _loads(data)
        if type(value) is not dict:
            return value if value is _NOT_JSON else ProtocolError(INVALID_DATA, "expected a JSON object")
        try:
            topic, event, payload, ref = value["topic"], value["event"], value["payload"], value["ref"]
        except KeyError as exc:
            return ProtocolError(INVALID_DATA, f"missing key {exc.args[0]!r}")
        join_ref = value.get("join_ref")
        if not _valid(join_ref, ref, topic, event):
            return ProtocolError(INVALID_DATA, "join_ref/ref must be strings or null, topic/event strings")
        if join_ref is None and event == JOIN:
            join_ref = ref  # a V1 join without join_ref uses its ref as the channel's join_ref
        return Message(join_ref, ref, topic, event, payload)

    def encode(self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any) -> Frame:
        if isinstance(payload, bytes):
            raise EncodeError("binary payloads need vsn 2.0.0")
        return _dumps({"topic": topic, "event": event, "payload": payload, "ref": ref})

    def reply(self, join_ref: str | None, ref: str | None, topic: str, status: str, response: Any) -> Frame:
        return self.encode(join_ref, ref, topic, REPLY, {"status": status, "response": response})


V1 = V1Serializer()
V2 = V2Serializer()

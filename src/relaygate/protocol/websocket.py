"""RFC 6455, server side, free of I/O: the opening handshake, frame encoding and an incremental parser.

Server frames are never masked, so a message's complete frame (header + payload) is the same
bytes for every client: the runtime builds it once per broadcast and writes it to each socket.
Client input never raises: malformed frames become a :class:`ProtocolError` with the close code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from relaygate.protocol.frames import INVALID_DATA, MESSAGE_TOO_BIG, Frame, ProtocolError

OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

PROTOCOL_ERROR: Final = 1002
NO_STATUS: Final = 1005

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT_HEADERS: Final = [bytes((0x80 | OP_TEXT, n)) for n in range(126)]
_BINARY_HEADERS: Final = [bytes((0x80 | OP_BINARY, n)) for n in range(126)]


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame."""
    size = len(payload)
    first = 0x80 | opcode
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + payload


def frame_message(frame: Frame) -> bytes:
    """A protocol frame on the wire: ``str`` as a text frame, ``bytes`` as a binary frame."""
    if type(frame) is str:
        data = frame.encode()
        if len(data) < 126:
            return _TEXT_HEADERS[len(data)] + data
        return encode_frame(OP_TEXT, data)
    data = frame if isinstance(frame, bytes) else frame.encode()
    if len(data) < 126:
        return _BINARY_HEADERS[len(data)] + data
    return encode_frame(OP_BINARY, data)


def text_frame(data: bytes) -> bytes:
    """A text frame of UTF-8 ``data`` (JSON as orjson writes it: no decode and encode again)."""
    size = len(data)
    if size < 126:
        return _TEXT_HEADERS[size] + data
    return encode_frame(OP_TEXT, data)


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason is cut to fit the 125-byte control payload."""
    return encode_frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])


def _unmask_int(data: bytes | bytearray | memoryview, mask: bytes | bytearray) -> bytes:
    """XOR with the repeated 4-byte key, as one big-integer operation (no Python loop)."""
    size = len(data)
    if not size:
        return b""
    key = (mask * ((size >> 2) + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


try:  # the C helper of `websockets` (a dependency): ~5x faster on a small frame
    from websockets.speedups import apply_mask as _unmask
except ImportError:  # pragma: no cover - a build of websockets without its C extension
    _unmask = _unmask_int


@dataclass(frozen=True, slots=True)
class Control:
    """A ping, pong or close frame from the client. ``code`` is set for close (1005 when absent)."""

    opcode: int
    payload: bytes
    code: int = NO_STATUS


Event = str | bytes | Control | ProtocolError
"""What :meth:`FrameParser.feed` yields: a text message, a binary message, a control frame, or
an error (always last: the connection must be closed with its code)."""


class FrameParser:
    """Incremental parser of client frames: masked, possibly fragmented, at most ``max_size`` per message."""

    __slots__ = ("_buffer", "_failed", "_fragments", "_opcode", "_size", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = b""
        self._fragments: list[bytes] | None = None
        self._opcode = 0
        self._size = 0
        self._failed = False

    def whole_text(self, data: bytes) -> bytes | None:
        """The unmasked payload when ``data`` is exactly one complete, final text frame of less
        than 64 KiB and nothing is pending: the common read, without a list or a ``str``. Its
        UTF-8 is not checked here (the JSON decoder does). None: :meth:`feed` it (the parser
        state is untouched either way)."""
        size = len(data)
        if size < 6 or data[0] != 0x81 or self._buffer or self._fragments is not None or self._failed:
            return None
        if size < 132:  # a 7-bit length (0-125)
            if data[1] == 0x80 | (size - 6) and size - 6 <= self.max_size:
                return _unmask(data[6:], data[2:6])
        elif data[1] == 0xFE and (data[2] << 8 | data[3]) == size - 8 and size - 8 <= self.max_size:
            return _unmask(data[8:], data[4:8])  # a 16-bit length
        return None

    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        if not self._buffer and self._fragments is None:
            # The common read: exactly one small, complete, final text or binary frame.
            size = len(data)
            if 6 <= size < 132:
                first = data[0]
                if data[1] == 0x80 | (size - 6) and size - 6 <= self.max_size:
                    if first == 0x81:
                        try:
                            return [_unmask(data[6:], data[2:6]).decode()]
                        except UnicodeDecodeError:
                            return self._fail([], _NOT_UTF8)
                    if first == 0x82:
                        return [_unmask(data[6:], data[2:6])]
        buffer = self._buffer + data if self._buffer else data
        events: list[Event] = []
        end = len(buffer)
        pos = 0
        while end - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            length = second & 0x7F
            head = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buffer[head : head + 2], "big")
                head += 2
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buffer[head : head + 8], "big")
                head += 8
            error = self._check(first, second, length)
            if error is not None:
                return self._fail(events, error)
            stop = head + 4 + length
            if stop > end:
                break
            payload = _unmask(buffer[head + 4 : stop], buffer[head : head + 4])
            pos = stop
            event = self._frame(first, payload)
            if event is not None:
                if type(event) is ProtocolError:
                    return self._fail(events, event)
                events.append(event)
        self._buffer = buffer[pos:] if pos < end else b""
        return events

    def _check(self, first: int, second: int, length: int) -> ProtocolError | None:
        """Header checks, done before waiting for the payload (a huge declared size is refused at once)."""
        if first & 0x70:
            return ProtocolError(PROTOCOL_ERROR, "reserved bits set")
        if not second & 0x80:
            return ProtocolError(PROTOCOL_ERROR, "client frames must be masked")
        opcode = first & 0x0F
        if opcode >= 8:
            if not first & 0x80 or length > 125:
                return ProtocolError(PROTOCOL_ERROR, "bad control frame")
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                return ProtocolError(PROTOCOL_ERROR, "unknown opcode")
        elif opcode > OP_BINARY:
            return ProtocolError(PROTOCOL_ERROR, "unknown opcode")
        elif self._size + length > self.max_size:
            return ProtocolError(MESSAGE_TOO_BIG, "frame too large")
        return None

    def _frame(self, first: int, payload: bytes) -> Event | None:
        opcode = first & 0x0F
        if opcode >= 8:
            if opcode != OP_CLOSE:
                return Control(opcode, payload)
            return _close(payload)
        final = first & 0x80
        if opcode == OP_CONTINUATION:
            fragments = self._fragments
            if fragments is None:
                return ProtocolError(PROTOCOL_ERROR, "continuation without a message")
            fragments.append(payload)
            self._size += len(payload)
            if not final:
                return None
            self._fragments, self._size = None, 0
            return _message(self._opcode, b"".join(fragments))
        if self._fragments is not None:
            return ProtocolError(PROTOCOL_ERROR, "new message inside a fragmented one")
        if final:
            return _message(opcode, payload)
        self._opcode, self._fragments, self._size = opcode, [payload], len(payload)
        return None

    def _fail(self, events: list[Event], error: ProtocolError) -> list[Event]:
        self._failed = True
        self._buffer = b""
        self._fragments = None
        events.append(error)
        return events


_NOT_UTF8: Final = ProtocolError(INVALID_DATA, "text frame is not UTF-8")


def _message(opcode: int, payload: bytes) -> str | bytes | ProtocolError:
    if opcode == OP_BINARY:
        return payload
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return _NOT_UTF8


def _close(payload: bytes) -> Control | ProtocolError:
    if not payload:
        return Control(OP_CLOSE, payload)
    if len(payload) == 1:
        return ProtocolError(PROTOCOL_ERROR, "close frame with a 1-byte payload")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        return ProtocolError(INVALID_DATA, "close reason is not UTF-8")
    return Control(OP_CLOSE, payload, int.from_bytes(payload[:2], "big"))


@dataclass(slots=True)
class Upgrade:
    """A valid WebSocket upgrade request. Header names are lower case; repeats are joined with ``, ``."""

    path: str
    query: str
    headers: dict[str, str]
    key: str
    subprotocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HandshakeError:
    """Refuse the upgrade with this HTTP status."""

    status: int
    reason: str
    http: bool = False
    """Not a WebSocket upgrade at all (another method, no ``Upgrade: websocket``, unparseable):
    a server that also speaks HTTP lets its HTTP stack answer instead."""


_BAD_REQUEST_LINE: Final = HandshakeError(400, "bad request line", http=True)
_BAD_HEADER_LINE: Final = HandshakeError(400, "bad header line", http=True)
_NOT_AN_UPGRADE: Final = HandshakeError(400, "not a WebSocket upgrade", http=True)
_BAD_VERSION: Final = HandshakeError(426, "unsupported WebSocket version")
_BAD_KEY: Final = HandshakeError(400, "bad Sec-WebSocket-Key")


def parse_upgrade(request: bytes) -> Upgrade | HandshakeError:
    """Parse the request line and headers of an upgrade (the bytes up to the blank line)."""
    head, _, _ = request.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/1."):
        return _BAD_REQUEST_LINE
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return _BAD_HEADER_LINE
        name = name.strip().lower()
        if name in headers:
            headers[name] = f"{headers[name]}, {value.strip()}"
        else:
            headers[name] = value.strip()
    if (
        "upgrade" not in headers.get("connection", "").lower()
        or headers.get("upgrade", "").lower() != "websocket"
    ):
        return _NOT_AN_UPGRADE
    if headers.get("sec-websocket-version") != "13":
        return _BAD_VERSION
    key = headers.get("sec-websocket-key", "")
    # 16 bytes in base64: 22 characters and "==" (the strict decode refuses any other alphabet)
    if len(key) != 24 or key[22:] != "==":
        return _BAD_KEY
    try:
        binascii.a2b_base64(key, strict_mode=True)
    except binascii.Error:
        return _BAD_KEY
    raw_path, _, query = parts[1].partition("?")
    offered = headers.get("sec-websocket-protocol")
    subprotocols = tuple(entry.strip() for entry in offered.split(",") if entry.strip()) if offered else ()
    return Upgrade(unquote(raw_path) if "%" in raw_path else raw_path, query, headers, key, subprotocols)


def accept_response(key: str, subprotocol: str | None, extra: bytes = b"") -> bytes:
    """The 101 answer; ``extra`` is ready-made header lines (each ending in CRLF)."""
    digest = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())  # noqa: S324 - RFC 6455
    protocol = b"" if subprotocol is None else b"Sec-WebSocket-Protocol: " + subprotocol.encode() + b"\r\n"
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + digest + b"\r\n" + protocol + extra + b"\r\n"
    )


_PHRASES: Final = {
    400: "Bad Request",
    403: "Forbidden",
    426: "Upgrade Required",
    500: "Internal Server Error",
}


def reject_response(status: int) -> bytes:
    """An empty-bodied refusal that closes the connection (426 names the version we speak)."""
    version = b"Sec-WebSocket-Version: 13\r\n" if status == 426 else b""
    return (
        f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}\r\n".encode()
        + version
        + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )

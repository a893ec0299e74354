"""RFC 6455 server side, sans-I/O: handshake, frame encoding, incremental parsing of client frames."""

from __future__ import annotations

import base64
import os

import pytest
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.streams import StreamReader

from relaygate.protocol import ProtocolError
from relaygate.protocol.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    Control,
    FrameParser,
    HandshakeError,
    Upgrade,
    _unmask,
    _unmask_int,
    accept_response,
    close_frame,
    frame_message,
    parse_upgrade,
    reject_response,
)


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    """A client frame built by hand (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, (0x80 if mask else 0) | size))
    elif size < 65536:
        header = bytes((first, (0x80 if mask else 0) | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, (0x80 if mask else 0) | 127)) + size.to_bytes(8, "big")
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse_server(data: bytes) -> WsFrame:
    """Decode a server frame with the websockets library (an independent implementation)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = WsFrame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: WsFrame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_frame_message_round_trips_through_websockets(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)
    frame = parse_server(frame_message(text))
    assert frame.opcode == Opcode.TEXT and frame.fin and frame.data.decode() == text
    data = os.urandom(size)
    frame = parse_server(frame_message(data))
    assert frame.opcode == Opcode.BINARY and bytes(frame.data) == data


def test_close_frame_carries_code_and_reason() -> None:
    frame = parse_server(close_frame(1008, "slow consumer"))
    assert frame.opcode == Opcode.CLOSE and frame.data == (1008).to_bytes(2, "big") + b"slow consumer"


@pytest.mark.parametrize("size", [0, 5, 126, 70000])
def test_parser_unmasks_text_and_binary(size: int) -> None:
    parser = FrameParser(1 << 20)
    text = "x" * size
    data = os.urandom(size)
    assert parser.feed(client_frame(OP_TEXT, text.encode()) + client_frame(OP_BINARY, data)) == [text, data]


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 1000])
def test_the_pure_python_unmask_equals_the_c_one(size: int) -> None:
    data, mask = os.urandom(size), os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert _unmask_int(data, mask) == expected == _unmask(data, mask)


def test_parser_resumes_across_arbitrary_splits() -> None:
    wire = client_frame(OP_TEXT, b"hello") + client_frame(OP_TEXT, b"x" * 300) + client_frame(OP_PING, b"p")
    parser = FrameParser(1 << 20)
    events = []
    for byte in wire:
        events.extend(parser.feed(bytes((byte,))))
    assert events == ["hello", "x" * 300, Control(OP_PING, b"p")]


def test_fragments_are_joined_and_control_frames_may_interleave() -> None:
    parser = FrameParser(1 << 20)
    wire = (
        client_frame(OP_TEXT, b"ab", fin=False)
        + client_frame(OP_PING, b"")
        + client_frame(0, b"cd", fin=False)
        + client_frame(0, b"ef")
    )
    assert parser.feed(wire) == [Control(OP_PING, b""), "abcdef"]


def test_close_frame_code_is_parsed() -> None:
    parser = FrameParser(100)
    assert parser.feed(client_frame(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye")) == [
        Control(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye", 1000)
    ]
    assert parser.feed(client_frame(OP_CLOSE, b"")) == [Control(OP_CLOSE, b"", 1005)]


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (client_frame(OP_TEXT, b"hi", mask=False), 1002),
        (client_frame(OP_TEXT, b"hi", rsv=0x40), 1002),
        (client_frame(3, b"hi"), 1002),
        (client_frame(OP_PING, b"x" * 126), 1002),
        (client_frame(OP_PING, b"", fin=False), 1002),
        (client_frame(0, b"orphan"), 1002),
        (client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_TEXT, b"b"), 1002),
        (client_frame(OP_TEXT, b"\xff\xfe"), 1007),
        (client_frame(OP_CLOSE, b"\x03"), 1002),
        (client_frame(OP_TEXT, b"x" * 101), 1009),
        (client_frame(OP_TEXT, b"x" * 60, fin=False) + client_frame(0, b"x" * 60), 1009),
    ],
)
def test_malformed_input_is_an_error_value_with_its_close_code(wire: bytes, code: int) -> None:
    parser = FrameParser(100)
    events = parser.feed(wire)
    assert isinstance(events[-1], ProtocolError) and events[-1].code == code
    assert parser.feed(client_frame(OP_TEXT, b"later")) == []  # a failed parser stays failed


def test_oversize_is_refused_from_the_header_alone() -> None:
    header = bytes((0x81, 0x80 | 127)) + (1 << 40).to_bytes(8, "big")
    events = FrameParser(1 << 20).feed(header)
    assert isinstance(events[0], ProtocolError) and events[0].code == 1009


KEY = base64.b64encode(b"0123456789abcdef").decode()


def request(*headers: str, line: str = "GET /socket/websocket?vsn=2.0.0 HTTP/1.1") -> bytes:
    base = ["Host: h", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}"]
    return "\r\n".join([line, *base, *headers, "", ""]).encode()


def test_parse_upgrade_reads_path_query_headers_and_subprotocols() -> None:
    upgrade = parse_upgrade(
        request(
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: phoenix, base64url.bearer.phx.dA",
            "Origin: http://o",
            "X-A: 1",
            "x-a: 2",
        )
    )
    assert isinstance(upgrade, Upgrade)
    assert upgrade.path == "/socket/websocket" and upgrade.query == "vsn=2.0.0"
    assert upgrade.subprotocols == ("phoenix", "base64url.bearer.phx.dA")
    assert upgrade.headers["origin"] == "http://o" and upgrade.headers["x-a"] == "1, 2"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request(), 426),
        (request("Sec-WebSocket-Version: 8"), 426),
        (request("Sec-WebSocket-Version: 13", line="POST /socket/websocket HTTP/1.1"), 400),
        (request("Sec-WebSocket-Version: 13").replace(KEY.encode(), b"short"), 400),
        (request("Sec-WebSocket-Version: 13", "broken header line"), 400),
    ],
)
def test_bad_upgrades_are_refused_with_a_status(raw: bytes, status: int) -> None:
    result = parse_upgrade(raw)
    assert isinstance(result, HandshakeError) and result.status == status


def test_accept_response_has_the_rfc_accept_key() -> None:
    # RFC 6455 section 1.3's example key and answer
    response = accept_response("dGhlIHNhbXBsZSBub25jZQ==", "phoenix")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert response.startswith(b"HTTP/1.1 101 ") and response.endswith(
        b"Sec-WebSocket-Protocol: phoenix\r\n\r\n"
    )


def test_reject_response_closes_and_426_names_the_version() -> None:
    assert reject_response(403).startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Connection: close" in reject_response(403)
    assert b"Sec-WebSocket-Version: 13" in reject_response(426)


def _whole_text_cases() -> list[bytes]:
    text = client_frame(OP_TEXT, b"x" * 125)
    return [
        client_frame(OP_TEXT, b""),
        client_frame(OP_TEXT, b"hello"),
        text,
        client_frame(OP_TEXT, b"y" * 126),  # 16-bit length
        client_frame(OP_TEXT, "é".encode() * 3000),
        client_frame(OP_TEXT, b"\xff\xfe"),  # not UTF-8: whole_text leaves that to the decoder
        client_frame(OP_TEXT, b"z" * 70000),  # 64-bit length: never the fast path
        client_frame(OP_BINARY, b"bin"),
        client_frame(OP_PING, b"p"),
        client_frame(OP_TEXT, b"part", fin=False),
        client_frame(OP_TEXT, b"hi", mask=False),
        client_frame(OP_TEXT, b"hi", rsv=0x40),
        text[:-1],  # incomplete
        text + client_frame(OP_TEXT, b"next"),  # two frames
        text[:1],
    ]


@pytest.mark.parametrize("wire", _whole_text_cases())
@pytest.mark.parametrize("max_size", [1 << 20, 100])
def test_whole_text_is_feeds_single_text_frame_or_nothing(wire: bytes, max_size: int) -> None:
    """The fast path's payload is what feed would yield (one text message, or the UTF-8 error
    when it is not UTF-8); when it declines, the parser is untouched."""
    fast, general = FrameParser(max_size), FrameParser(max_size)
    payload = fast.whole_text(wire)
    events = general.feed(wire)
    if payload is None:
        assert fast.feed(wire) == events
        return
    try:
        assert events == [payload.decode()]
    except UnicodeDecodeError:
        assert events == [ProtocolError(1007, "text frame is not UTF-8")]
    assert fast.feed(b"") == []  # nothing left pending


@pytest.mark.parametrize("size", [0, 125, 126, 65535])
def test_whole_text_takes_7_and_16_bit_lengths(size: int) -> None:
    assert FrameParser(1 << 20).whole_text(client_frame(OP_TEXT, b"q" * size)) == b"q" * size


def test_whole_text_declines_while_a_frame_is_pending() -> None:
    parser = FrameParser(1 << 20)
    first = client_frame(OP_TEXT, b"hello")
    assert parser.feed(first[:3]) == []
    assert parser.whole_text(client_frame(OP_TEXT, b"a")) is None
    parser = FrameParser(1 << 20)
    assert parser.feed(client_frame(OP_TEXT, b"a", fin=False)) == []
    assert parser.whole_text(client_frame(OP_TEXT, b"b")) is None
    parser = FrameParser(1 << 20)
    parser.feed(client_frame(OP_TEXT, b"hi", mask=False))  # failed
    assert parser.whole_text(client_frame(OP_TEXT, b"b")) is None

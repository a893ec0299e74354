from __future__ import annotations

import pytest

from relaygate.pubsub import codec


@pytest.mark.parametrize(
    "payload", [{"body": "hé", "n": [1, 2.5, None, True]}, {}, b"\x00\x01\xff", b"", bytearray(b"ab")]
)
def test_round_trip(payload: object) -> None:
    frame = codec.encode(b"node-1:ab12", "message:new é", payload)
    node, event, decoded, position = codec.decode(frame)
    assert position is None
    assert (node, event) == (b"node-1:ab12", "message:new é")
    assert decoded == (bytes(payload) if isinstance(payload, bytearray) else payload)
    assert type(decoded) is (bytes if isinstance(payload, bytes | bytearray) else dict)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x01",
        b"\x03j\x00\x00\x00",  # unknown version
        b"\x02j\x00\x00\x00",  # positioned without its position
        b"\x02j\x00\x00\x00\x05ab",  # position shorter than announced
        b"\x01j\x05ab",  # node shorter than announced
        b"\x01j\x00\x00\x09ab",  # event shorter than announced
        b"\x01x\x00\x00\x00",  # unknown kind
        b"\x01j\x00\x00\x00{nope",  # bad JSON
        b"\x01j\x00\x00\x02\xff\xfe{}",  # event not UTF-8
    ],
)
def test_malformed_frames_are_frame_errors(frame: bytes) -> None:
    with pytest.raises(codec.FrameError):
        codec.decode(frame)


def test_unencodable_payload_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        codec.encode(b"n", "e", {"x": object()})


def test_oversize_names_are_value_errors() -> None:
    with pytest.raises(ValueError, match="node"):
        codec.encode(b"n" * 256, "e", {})
    with pytest.raises(ValueError, match="event"):
        codec.encode(b"n", "e" * 70_000, {})


def test_positioned_frame_is_the_head_then_the_position_then_the_body() -> None:
    """What the history script publishes: head + len(position) + position + body."""
    kind, data = codec.body({"a": 1})
    frame = codec.head(codec.POSITIONED, kind, b"n1/7", "message:new") + b"\x04e1:9" + data
    assert codec.decode(frame) == (b"n1/7", "message:new", {"a": 1}, "e1:9")


def test_an_echo_is_recognised_without_decoding_the_payload() -> None:
    own = codec.encode(b"node-1:ab12", "e", {"n": 1})
    assert codec.is_echo(own, b"node-1:ab12")
    assert not codec.is_echo(own, b"node-1:ab1")  # a prefix of our id is another node
    assert not codec.is_echo(codec.encode(b"node-2:cd34", "e", {}), b"node-1:ab12")
    assert not codec.is_echo(b"\x01j", b"node-1:ab12")  # truncated: left to decode() to reject
    assert codec.is_echo(own[:-3] + b"{no", b"node-1:ab12")  # the payload is never parsed
    positioned = bytes([codec.POSITIONED]) + own[1:]
    assert not codec.is_echo(positioned, b"node-1:ab12")  # every node delivers positioned frames

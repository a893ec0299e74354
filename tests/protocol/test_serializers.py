"""Codec tests: V2 JSON/binary and V1 JSON, server and client directions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.protocol import V1, V2, EncodeError, Message, ProtocolError, Serializer
from relaygate.protocol.websocket import frame_message


def test_v2_decode_text_ignores_extra_elements() -> None:
    assert V2.decode('["3","4","room:1","ping",{"n":1},"extra"]') == Message(
        "3", "4", "room:1", "ping", {"n": 1}
    )


def test_v2_decode_accepts_null_refs_and_any_payload() -> None:
    assert V2.decode('[null,null,"t","e",[1]]') == Message(None, None, "t", "e", [1])


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", 1007),
        ("", 1007),
        ('{"topic":"t"}', 1007),
        ('["1","2","t","e"]', 1007),
        ('[1,"2","t","e",{}]', 1007),
        ('["1",2,"t","e",{}]', 1007),
        ('["1","2",null,"e",{}]', 1007),
        ('["1","2","t",5,{}]', 1007),
    ],
)
def test_v2_decode_malformed_text(frame: str, code: int) -> None:
    result = V2.decode(frame)
    assert isinstance(result, ProtocolError)
    assert result.code == code


def test_v2_decode_binary_push_observed_frame() -> None:
    frame = bytes([0, 1, 2, 6, 3]) + b"6" + b"14" + b"room:1" + b"bin" + bytes([1, 2, 3])
    assert V2.decode(frame) == Message("6", "14", "room:1", "bin", b"\x01\x02\x03")


def test_v2_decode_binary_empty_refs_become_null() -> None:
    frame = bytes([0, 0, 0, 1, 1]) + b"t" + b"e"
    assert V2.decode(frame) == Message(None, None, "t", "e", b"")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"", 1003),
        (bytes([1, 0, 0, 1, 1]) + b"te", 1003),
        (bytes([2, 1, 1]) + b"te", 1003),
        (bytes([9]), 1003),
        (bytes([0, 1, 1]), 1007),
        (bytes([0, 1, 1, 6, 3]) + b"34room", 1007),
        (bytes([0, 0, 0, 1, 1]) + b"\xff" + b"e", 1007),
    ],
)
def test_v2_decode_malformed_binary(frame: bytes, code: int) -> None:
    result = V2.decode(frame)
    assert isinstance(result, ProtocolError)
    assert result.code == code


def test_v2_encode_text_shapes() -> None:
    assert orjson.loads(V2.reply("3", "4", "room:1", "ok", {"n": 1})) == [
        "3",
        "4",
        "room:1",
        "phx_reply",
        {"status": "ok", "response": {"n": 1}},
    ]
    assert orjson.loads(V2.push("3", "room:1", "joined", {})) == ["3", None, "room:1", "joined", {}]
    assert orjson.loads(V2.broadcast("room:1", "e", {})) == [None, None, "room:1", "e", {}]
    assert orjson.loads(V2.close("3", "room:1")) == ["3", "3", "room:1", "phx_close", {}]
    assert orjson.loads(V2.error("3", "room:1")) == [
        "3",
        "3",
        "room:1",
        "phx_error",
        {"reason": "channel_crash"},
    ]


def test_v2_encode_binary_reply_scenario_38() -> None:
    frame = V2.reply("3", "4", "room:1", "ok", b"\x01\x02\x03\x04")
    assert frame == bytes([1, 1, 1, 6, 2]) + b"34room:1ok" + bytes([1, 2, 3, 4])


def test_v2_encode_binary_push_scenario_39() -> None:
    assert V2.push("3", "room:1", "bin_push", b"\x00\x01") == bytes([0, 1, 6, 8]) + b"3room:1bin_push\x00\x01"


def test_v2_encode_binary_broadcast_scenario_40() -> None:
    assert V2.broadcast("room:1", "b", b"\x09\x09") == bytes([2, 6, 1]) + b"room:1b\x09\x09"


def test_encode_rejects_oversize_header_and_unserializable_payloads() -> None:
    with pytest.raises(EncodeError):
        V2.push("3", "t" * 256, "e", b"x")
    with pytest.raises(EncodeError):
        V2.push("3", "t", "e", {"x": object()})
    with pytest.raises(EncodeError):
        V1.push("3", "t", "e", b"x")


def test_v1_decode_and_join_ref_defaults_to_ref_for_joins() -> None:
    join = V1.decode('{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}')
    assert join == Message("1", "1", "room:1", "phx_join", {})
    push = V1.decode('{"topic":"room:1","event":"x","payload":{},"ref":"2","join_ref":"1"}')
    assert push == Message("1", "2", "room:1", "x", {})
    assert V1.decode('{"topic":"room:1","event":"x","payload":{},"ref":null}') == Message(
        None, None, "room:1", "x", {}
    )


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00", 1003),
        ("nope", 1007),
        ('["a"]', 1007),
        ('{"topic":"t","event":"e","payload":{}}', 1007),
        ('{"topic":1,"event":"e","payload":{},"ref":null}', 1007),
    ],
)
def test_v1_decode_malformed(frame: str | bytes, code: int) -> None:
    result = V1.decode(frame)
    assert isinstance(result, ProtocolError)
    assert result.code == code


def test_v1_encode_never_sends_join_ref() -> None:
    assert orjson.loads(V1.reply("1", "1", "room:1", "ok", {})) == {
        "topic": "room:1",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": "1",
    }
    assert orjson.loads(V1.broadcast("room:1", "e", {"a": 1})) == {
        "topic": "room:1",
        "event": "e",
        "payload": {"a": 1},
        "ref": None,
    }
    assert orjson.loads(V1.close("1", "room:1")) == {
        "topic": "room:1",
        "event": "phx_close",
        "payload": {},
        "ref": "1",
    }


def test_v2_client_round_trip() -> None:
    text = V2.encode_client(Message("3", "4", "room:1", "ping", {"a": 1}))
    assert V2.decode(text) == Message("3", "4", "room:1", "ping", {"a": 1})
    binary = V2.encode_client(Message("3", "4", "room:1", "bin", b"\x01\x02"))
    assert binary == bytes([0, 1, 1, 6, 3]) + b"34room:1bin\x01\x02"
    assert V2.decode(binary) == Message("3", "4", "room:1", "bin", b"\x01\x02")


def test_v2_client_decodes_server_frames() -> None:
    assert V2.decode_server(V2.reply("3", "4", "room:1", "ok", b"\x01")) == Message(
        "3", "4", "room:1", "phx_reply", {"status": "ok", "response": b"\x01"}
    )
    assert V2.decode_server(V2.reply(None, "4", "room:1", "ok", b"")) == Message(
        None, "4", "room:1", "phx_reply", {"status": "ok", "response": b""}
    )
    assert V2.decode_server(V2.push("3", "room:1", "p", b"\x02")) == Message(
        "3", None, "room:1", "p", b"\x02"
    )
    assert V2.decode_server(V2.broadcast("room:1", "b", b"\x09")) == Message(
        None, None, "room:1", "b", b"\x09"
    )
    assert V2.decode_server(V2.push("3", "room:1", "p", {})) == Message("3", None, "room:1", "p", {})


@pytest.mark.parametrize(
    "frame",
    [b"\x07\x00\x00", b"\x02", b"\x02\x05\x01ab", b"\x02\x01\x01\xff\x65", b"\x01\x01\x01"],
)
def test_v2_client_rejects_malformed_server_frames(frame: bytes) -> None:
    assert isinstance(V2.decode_server(frame), ProtocolError)


@pytest.mark.parametrize("serializer", [V1, V2])
@pytest.mark.parametrize("response", [{}, {"n": "é" * 100}, {"big": "x" * 70_000}, b"\x00\x01"])
def test_wire_frames_are_the_framed_protocol_frames(serializer: Serializer, response: Any) -> None:
    """``reply_frame``/``broadcast_frame`` skip the str round trip but write the same bytes."""
    if isinstance(response, bytes) and serializer is V1:
        with pytest.raises(EncodeError):
            serializer.reply_frame("1", "2", "room:1", "ok", response)
        return
    assert serializer.reply_frame("1", "2", "room:1", "ok", response) == frame_message(
        serializer.reply("1", "2", "room:1", "ok", response)
    )
    assert serializer.broadcast_frame("room:1", "new", response, "7-1") == frame_message(
        serializer.broadcast("room:1", "new", response, "7-1")
    )


def test_unencodable_wire_frames_raise_encode_error() -> None:
    with pytest.raises(EncodeError):
        V2.reply_frame("1", "2", "room:1", "ok", {"x": object()})
    with pytest.raises(EncodeError):
        V2.broadcast_frame("room:1", "new", {"x": {1, 2}})


@pytest.mark.parametrize(
    "frame",
    [
        '["3","4","room:1","ping",{"n":1}]',
        '[null,null,"t","e",[1]]',
        '["3","4","room:1","ping",{"n":1},"extra"]',
        "not json",
        "",
        '{"topic":"t"}',
        '["1","2","t","e"]',
        '[1,"2","t","e",{}]',
        '["1",2,"t","e",{}]',
        '["1","2",null,"e",{}]',
        '["1","2","t",5,{}]',
    ],
)
def test_v2_decode_text_is_decode_or_nothing(frame: str) -> None:
    """The fast decode gives decode's fields exactly, or declines (then decode decides)."""
    fields = V2.decode_text(frame.encode())
    if fields is not None:
        assert V2.decode(frame) == Message(*fields)
    else:
        assert frame == '["3","4","room:1","ping",{"n":1},"extra"]' or isinstance(
            V2.decode(frame), ProtocolError
        )


def test_decode_text_declines_bad_utf8_and_other_serializers() -> None:
    assert V2.decode_text(b'["1","2","t","\xff",{}]') is None
    assert V1.decode_text(b'{"topic":"t","event":"e","payload":{},"ref":"1"}') is None

"""The client's frame codec: what it sends and how it reads server frames."""

from __future__ import annotations

import json

import pytest

from relaygate.client._frames import FrameError, Message, decode, encode


def test_v2_text_push_is_a_five_element_array() -> None:
    data = encode(Message("3", "4", "room:1", "ping", {"n": 1}), "2.0.0")
    assert json.loads(data) == ["3", "4", "room:1", "ping", {"n": 1}]


def test_v1_push_is_an_object() -> None:
    data = encode(Message("1", "1", "room:1", "phx_join", {}), "1.0.0")
    assert json.loads(data) == {
        "join_ref": "1",
        "ref": "1",
        "topic": "room:1",
        "event": "phx_join",
        "payload": {},
    }


def test_binary_push_layout_matches_phoenix_js() -> None:
    # Observed from phoenix.js: 00 01 02 06 03 "6" "14" "room:1" "bin" 01 02 03
    data = encode(Message("6", "14", "room:1", "bin", b"\x01\x02\x03"), "2.0.0")
    assert data == b"\x00\x01\x02\x06\x03" + b"614room:1bin" + b"\x01\x02\x03"


def test_binary_push_needs_v2_and_short_fields() -> None:
    with pytest.raises(ValueError, match="V2"):
        encode(Message("1", "2", "t", "e", b"x"), "1.0.0")
    with pytest.raises(ValueError, match="255"):
        encode(Message("1", "2", "t" * 256, "e", b"x"), "2.0.0")


def test_decode_v2_text_ignores_extra_elements() -> None:
    msg = decode('["3", null, "room:1", "joined", {"a": 1}, "extra"]', "2.0.0")
    assert msg == Message("3", None, "room:1", "joined", {"a": 1})


def test_decode_v1_object_without_join_ref() -> None:
    msg = decode(
        '{"topic":"room:1","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"1"}', "1.0.0"
    )
    assert msg == Message(None, "1", "room:1", "phx_reply", {"status": "ok", "response": {}})


def test_decode_binary_reply_push_and_broadcast() -> None:
    reply = decode(b"\x01\x01\x01\x06\x02" + b"34room:1ok" + b"\x01\x02\x03\x04", "2.0.0")
    assert reply == Message(
        "3", "4", "room:1", "phx_reply", {"status": "ok", "response": b"\x01\x02\x03\x04"}
    )
    push = decode(b"\x00\x01\x06\x08" + b"3room:1bin_push" + b"\x00\x01", "2.0.0")
    assert push == Message("3", None, "room:1", "bin_push", b"\x00\x01")
    broadcast = decode(b"\x02\x06\x01" + b"room:1b" + b"\x09\x09", "2.0.0")
    assert broadcast == Message(None, None, "room:1", "b", b"\x09\x09")


def test_empty_join_ref_in_binary_frames_is_null() -> None:
    push = decode(b"\x00\x00\x01\x01" + b"te" + b"", "2.0.0")
    assert push.join_ref is None


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[1, 2]",
        '["1", "2", 3, "e", {}]',
        '[1, "2", "t", "e", {}]',
        '{"topic": "t"}',
        b"",
        b"\x07abc",
        b"\x02\x09\x01room",
        b"\x02\x01\x01\xff\xfe",
    ],
)
def test_malformed_frames_raise_frame_error(data: str | bytes) -> None:
    with pytest.raises(FrameError):
        decode(data, "2.0.0")

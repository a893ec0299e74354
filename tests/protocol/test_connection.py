"""Routing state machine (section 3): frames in, actions and frames out, no I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.protocol import (
    V1,
    V2,
    ChannelEntry,
    Connection,
    Deliver,
    Join,
    Leave,
    Message,
    ProtocolError,
    Router,
    Send,
)


class Chan(ChannelEntry):
    __slots__ = ("route",)

    def __init__(self, message: Message, route: str) -> None:
        super().__init__(message.topic, message.join_ref)
        self.route = route


def make(
    max_channels: int = 100, serializer: Any = V2, max_frame_size: int = 1 << 20
) -> Connection[str, Chan]:
    router: Router[str] = Router()
    router.add("room:*", "rooms")
    router.add("exact", "exact")
    return Connection(serializer, router, Chan, max_channels=max_channels, max_frame_size=max_frame_size)


def frame(*items: Any) -> str:
    return orjson.dumps(list(items)).decode()


def sent(action: object) -> Any:
    assert isinstance(action, Send), action
    assert isinstance(action.frame, str)
    return orjson.loads(action.frame)


def join(conn: Connection[str, Chan], topic: str = "room:1", jr: str = "3") -> Chan:
    action = conn.receive(frame(jr, jr, topic, "phx_join", {"a": 1}))
    assert isinstance(action, Join)
    assert action.message.payload == {"a": 1}
    return action.channel


def test_heartbeat_with_no_channels_scenario_7() -> None:
    assert sent(make().receive(frame(None, "5", "phoenix", "heartbeat", {}))) == [
        None,
        "5",
        "phoenix",
        "phx_reply",
        {"status": "ok", "response": {}},
    ]


def test_other_events_on_phoenix_topic_are_unmatched() -> None:
    conn = make()
    assert sent(conn.receive(frame("1", "1", "phoenix", "phx_join", {})))[4]["response"] == {
        "reason": "unmatched topic"
    }


def test_join_registers_then_ok_reply_scenario_8() -> None:
    conn = make()
    chan = join(conn)
    assert chan.route == "rooms"
    assert conn.channels == {"room:1": chan}
    reply = conn.joined(chan, "3", {})
    assert isinstance(reply, str)
    assert orjson.loads(reply) == ["3", "3", "room:1", "phx_reply", {"status": "ok", "response": {}}]


def test_join_refused_forgets_channel_then_push_is_unmatched_scenario_11() -> None:
    conn = make()
    chan = join(conn, "room:deny")
    refusal = conn.refused(chan, "3", "error", {"reason": "unauthorized"})
    assert orjson.loads(refusal) == [
        "3",
        "3",
        "room:deny",
        "phx_reply",
        {"status": "error", "response": {"reason": "unauthorized"}},
    ]
    assert conn.channels == {}
    assert sent(conn.receive(frame("3", "4", "room:deny", "x", {})))[0] is None


def test_join_crash_reply_scenario_12() -> None:
    conn = make()
    chan = join(conn, "room:boom")
    assert orjson.loads(conn.join_crashed(chan, "3"))[4] == {
        "status": "error",
        "response": {"reason": "join crashed"},
    }


def test_unmatched_join_has_null_join_ref_scenario_13() -> None:
    assert sent(make().receive(frame("3", "3", "nope", "phx_join", {}))) == [
        None,
        "3",
        "nope",
        "phx_reply",
        {"status": "error", "response": {"reason": "unmatched topic"}},
    ]


def test_exact_route() -> None:
    assert join(make(), "exact").route == "exact"


def test_push_to_joined_topic_is_delivered_scenario_14() -> None:
    conn = make()
    chan = join(conn)
    action = conn.receive(frame("3", "4", "room:1", "ping", {"n": 1}))
    assert action == Deliver(chan, Message("3", "4", "room:1", "ping", {"n": 1}))


def test_push_to_never_joined_topic_scenario_18() -> None:
    assert sent(make().receive(frame("9", "4", "room:x", "new_msg", {}))) == [
        None,
        "4",
        "room:x",
        "phx_reply",
        {"status": "error", "response": {"reason": "unmatched topic"}},
    ]


def test_leave_then_close_then_unmatched_scenarios_25_26() -> None:
    conn = make()
    chan = join(conn)
    action = conn.receive(frame("3", "5", "room:1", "phx_leave", {}))
    assert action == Leave(chan, Message("3", "5", "room:1", "phx_leave", {}))
    assert chan.leaving
    # anything after the leave, including a second leave, is dropped until the channel is gone
    assert conn.receive(frame("3", "6", "room:1", "x", {})) is None
    assert conn.receive(frame("3", "7", "room:1", "phx_leave", {})) is None
    close = conn.closed(chan)
    assert close is not None
    assert orjson.loads(close) == ["3", "3", "room:1", "phx_close", {}]
    assert conn.closed(chan) is None
    assert sent(conn.receive(frame("3", "6", "room:1", "x", {})))[4]["response"] == {
        "reason": "unmatched topic"
    }


def test_leave_unjoined_topic_echoes_join_ref_scenario_27() -> None:
    assert sent(make().receive(frame("7", "7", "room:z", "phx_leave", {}))) == [
        "7",
        "7",
        "room:z",
        "phx_reply",
        {"status": "ok", "response": {}},
    ]


def test_stop_and_crash_frames_scenarios_28_30() -> None:
    conn = make()
    chan = join(conn)
    close = conn.closed(chan)
    assert close is not None
    assert orjson.loads(close) == ["3", "3", "room:1", "phx_close", {}]
    chan = join(conn, jr="5")
    error = conn.crashed(chan)
    assert error is not None
    assert orjson.loads(error) == ["5", "5", "room:1", "phx_error", {"reason": "channel_crash"}]
    assert conn.crashed(chan) is None
    assert sent(conn.receive(frame("5", "6", "room:1", "x", {})))[0] is None


def test_duplicate_join_replaces_channel_scenario_31() -> None:
    conn = make()
    old = join(conn, jr="3")
    action = conn.receive(frame("8", "8", "room:1", "phx_join", {}))
    assert isinstance(action, Join)
    assert action.replaced is old
    assert isinstance(action.replaced_close, str)
    assert orjson.loads(action.replaced_close) == ["3", "3", "room:1", "phx_close", {}]
    assert conn.channels == {"room:1": action.channel}
    assert action.channel.join_ref == "8"
    # the old channel's late results are dropped: no reply for a replaced join, no second close
    assert conn.joined(old, "3", {}) is None
    assert conn.closed(old) is None
    assert conn.is_current(action.channel)


def test_stale_join_ref_is_ignored_scenario_32() -> None:
    conn = make()
    chan = join(conn, jr="8")
    assert conn.receive(frame("3", "9", "room:1", "ping", {})) is None
    assert conn.receive(frame("3", "9", "room:1", "phx_leave", {})) is None
    assert not chan.leaving


def test_null_join_ref_is_accepted_scenario_33() -> None:
    conn = make()
    chan = join(conn, jr="8")
    assert conn.receive(frame(None, "9", "room:1", "ping", {})) == Deliver(
        chan, Message(None, "9", "room:1", "ping", {})
    )
    assert isinstance(conn.receive(frame(None, "10", "room:1", "phx_leave", {})), Leave)


def test_v1_connection_scenario_34() -> None:
    conn = make(serializer=V1)
    action = conn.receive('{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}')
    assert isinstance(action, Join)
    reply = conn.joined(action.channel, "1", {})
    assert reply is not None
    assert orjson.loads(reply) == {
        "topic": "room:1",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": "1",
    }


def test_max_channels_scenario_35() -> None:
    conn = make(max_channels=1)
    join(conn, "room:1")
    assert sent(conn.receive(frame("4", "4", "room:2", "phx_join", {}))) == [
        "4",
        "4",
        "room:2",
        "phx_reply",
        {"status": "error", "response": {"reason": "too many channels joined"}},
    ]
    # a duplicate join of the joined topic is not blocked by the limit
    assert isinstance(conn.receive(frame("5", "5", "room:1", "phx_join", {})), Join)


def test_join_timeout_recovery_scenario_47() -> None:
    """Leave for a still-pending join, then a fresh join: both are routed to the channel in order."""
    conn = make()
    pending = join(conn, "room:slow", "11")
    assert isinstance(conn.receive(frame("11", "12", "room:slow", "phx_leave", {})), Leave)
    action = conn.receive(frame("13", "13", "room:slow", "phx_join", {}))
    assert isinstance(action, Join)
    assert action.replaced is pending


def test_messages_queued_behind_a_failed_join() -> None:
    conn = make()
    assert conn.unjoined(Message("3", "4", "room:1", "phx_leave", {})) == V2.reply(
        "3", "4", "room:1", "ok", {}
    )
    assert conn.unjoined(Message("3", "4", "room:1", "x", {})) == conn.unmatched(
        Message("3", "4", "room:1", "x", {})
    )
    assert conn.unjoined(Message("3", "3", "room:1", "phx_join", {})) is None


@pytest.mark.parametrize("data", ["x" * 101, "é" * 60, b"\x00" * 101])
def test_oversize_frames_close_1009(data: str | bytes) -> None:
    result = make(max_frame_size=100).receive(data)
    assert result == ProtocolError(1009, "frame too large")


def test_frame_at_the_limit_in_multibyte_characters_is_accepted() -> None:
    conn = make(max_frame_size=100)
    text = frame(None, "1", "phoenix", "heartbeat", {"p": "é" * 20})
    assert 25 < len(text) <= 100 and len(text.encode()) <= 100
    assert isinstance(conn.receive(text), Send)


def test_malformed_frames_become_protocol_errors() -> None:
    conn = make()
    assert conn.receive("{bad") == ProtocolError(1007, "frame is not valid JSON")
    result = conn.receive(b"\x01\x00\x00\x01\x01te")
    assert isinstance(result, ProtocolError) and result.code == 1003


def test_receive_push_is_receives_deliver_or_nothing() -> None:
    """The fast route gives the channel and fields of exactly the frames receive delivers;
    everything else (joins, leaves, heartbeats, stale join_refs, unjoined topics, errors) is
    declined untouched, and receive then decides as before."""
    conn = make()
    chan = join(conn, "room:1", jr="3")
    leaving = join(conn, "room:2", jr="5")
    conn.receive(frame("5", "6", "room:2", "phx_leave", {}))
    assert leaving.leaving
    frames = [
        frame("3", "4", "room:1", "ping", {"n": 1}),
        frame(None, "4", "room:1", "ping", []),
        frame("3", None, "room:1", "phx_other", 1),
        frame("2", "4", "room:1", "ping", {}),  # stale join_ref
        frame("3", "4", "room:1", "phx_join", {}),
        frame("3", "4", "room:1", "phx_leave", {}),
        frame("5", "7", "room:2", "ping", {}),  # leaving
        frame("9", "4", "room:x", "ping", {}),  # never joined
        frame(None, "1", "phoenix", "heartbeat", {}),
        frame("3", "4", "room:1"),
        "not json",
    ]
    taken = 0
    for text in frames:
        push = conn.receive_push(text.encode())
        before = dict(conn.channels)
        if push is not None:
            taken += 1
            assert push[0] is chan
            assert conn.receive(text) == Deliver(chan, Message(*push[1]))
        else:
            assert type(conn.receive(text)) is not Deliver
            conn.channels = before  # undo what receive did (a join replaces, a leave marks)
            chan.leaving = False
    assert taken == 3


def test_receive_push_leaves_large_frames_to_receive() -> None:
    conn = make(max_frame_size=400)
    join(conn, "room:1", jr="3")
    assert conn.receive_push(frame("3", "4", "room:1", "ping", "x" * 50).encode()) is not None
    assert conn.receive_push(frame("3", "4", "room:1", "ping", "x" * 100).encode()) is None

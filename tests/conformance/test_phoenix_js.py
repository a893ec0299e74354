"""phoenix-protocol.md section 11 scenarios, as the official phoenix.js 1.8.16 client observes them.

Each test runs tests/conformance/driver.mjs under Node against the conformance app (app.py)
served by uvicorn, then checks the client's observations and what the server recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("relaygate.channels")

from tests.conformance.node import Observation, frames, run_driver, select, sent
from tests.conformance.proxy import HeartbeatDropProxy

pytestmark = pytest.mark.node

NO_RETRY = {"rejoinAfterMs": [60000], "reconnectAfterMs": [60000]}


def join(
    chan: str, topic: str, params: dict[str, Any] | None = None, socket: str = "main"
) -> list[dict[str, Any]]:
    return [
        {"op": "channel", "chan": chan, "topic": topic, "params": params or {}, "socket": socket},
        {"op": "join", "chan": chan},
        {"op": "until", "match": {"type": "join", "chan": chan}},
    ]


def push(chan: str, event: str, payload: Any = None, timeout: int | None = None) -> list[dict[str, Any]]:
    step: dict[str, Any] = {"op": "push", "chan": chan, "event": event, "payload": payload or {}}
    if timeout is not None:
        step["timeout"] = timeout
    return [step, {"op": "until", "match": {"type": "push", "chan": chan, "event": event}}]


async def run(url: str, steps: list[dict[str, Any]], **socket: Any) -> list[Observation]:
    return await run_driver(url, [{"op": "connect"}, *steps], {**NO_RETRY, **socket})


def only(observations: list[Observation], **fields: Any) -> Observation:
    found = select(observations, **fields)
    assert len(found) == 1, (fields, found)
    return found[0]


def join_ref_of(observations: list[Observation], topic: str, nth: int = 0) -> str:
    return str(sent(observations, topic=topic, event="phx_join")[nth]["join_ref"])


def reply_to(observations: list[Observation], ref: str) -> Observation:
    return only(observations, type="frame", event="phx_reply", ref=ref)


@pytest.fixture
async def proxy(server_url: str) -> AsyncIterator[HeartbeatDropProxy]:
    relay = HeartbeatDropProxy(server_url.removesuffix("/socket"))
    await relay.start()
    yield relay
    await relay.stop()


# -- connection ------------------------------------------------------------------------------------


async def test_04_connect_refused_errors_and_retries(server_url: str) -> None:
    steps = [
        {"op": "channel", "chan": "c", "topic": "room:1"},
        {"op": "join", "chan": "c"},
        {"op": "until", "match": {"type": "error"}, "count": 3},
        {"op": "disconnect"},
    ]
    obs = await run_driver(
        server_url, [{"op": "connect"}, *steps], {"params": {"token": "bad"}, "reconnectAfterMs": [10, 50]}
    )
    errors = select(obs, type="error")
    assert all("403" in e["message"] for e in errors), errors
    assert select(obs, type="close")[0]["code"] == 1006
    assert not select(obs, type="open")
    assert {"source": "transport", "reason": "connection_error"} in [
        e["reason"] for e in select(obs, type="chan_error")
    ]


async def test_06_auth_token_reaches_connect_info(server_url: str) -> None:
    obs = await run(server_url, join("c", "room:info"), authToken="secret", params={"a": "1"})
    reply = only(obs, type="join", chan="c")
    assert reply["status"] == "ok"
    assert reply["response"] == {"params": {"a": "1", "vsn": "2.0.0"}, "auth_token": "secret"}


async def test_07_heartbeat_is_answered_without_channels(server_url: str) -> None:
    obs = await run(
        server_url, [{"op": "until", "match": {"type": "frame", "topic": "phoenix"}}], heartbeatIntervalMs=100
    )
    heartbeat = sent(obs, topic="phoenix")[0]
    assert (heartbeat["join_ref"], heartbeat["event"], heartbeat["payload"]) == (None, "heartbeat", {})
    answer = frames(obs, topic="phoenix")[0]
    assert answer["join_ref"] is None and answer["ref"] == heartbeat["ref"]
    assert (answer["event"], answer["payload"]) == ("phx_reply", {"status": "ok", "response": {}})


# -- joins -------------------------------------------------------------------------------------------


async def test_08_join_ok(server_url: str, clean_log: list[Any]) -> None:
    obs = await run(server_url, join("c", "room:lobby", {"a": 1}))
    jr = join_ref_of(obs, "room:lobby")
    assert only(obs, type="sent", event="phx_join")["ref"] == jr
    answer = reply_to(obs, jr)
    assert answer["join_ref"] == jr and answer["payload"] == {"status": "ok", "response": {}}
    assert only(obs, type="join", chan="c")["status"] == "ok"
    assert ("join", "room:lobby", {"a": 1}, jr) in clean_log


async def test_09_join_ok_with_reply(server_url: str) -> None:
    obs = await run(server_url, join("c", "room:hello"))
    assert only(obs, type="join", chan="c")["response"] == {"hello": "x"}


async def test_11_join_refused_then_push_is_unmatched(server_url: str) -> None:
    raw = {"topic": "room:deny", "event": "x", "payload": {}, "ref": "901", "join_ref": None}
    steps = [
        *join("c", "room:deny"),
        {"op": "raw", "message": raw},
        {"op": "until", "match": {"type": "frame", "ref": "901"}},
    ]
    obs = await run(server_url, steps)
    result = only(obs, type="join", chan="c")
    assert (result["status"], result["response"]) == ("error", {"reason": "unauthorized"})
    jr = join_ref_of(obs, "room:deny")
    assert reply_to(obs, jr)["join_ref"] == jr
    unmatched = reply_to(obs, "901")
    assert unmatched["join_ref"] is None
    assert unmatched["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_13_unmatched_topic_join(server_url: str) -> None:
    obs = await run(server_url, join("c", "nope"))
    jr = join_ref_of(obs, "nope")
    answer = reply_to(obs, jr)
    assert answer["join_ref"] is None
    assert answer["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert only(obs, type="join", chan="c")["status"] == "error", "phoenix.js matches it by ref"


# -- replies and pushes ------------------------------------------------------------------------------


async def test_14_reply_ok(server_url: str) -> None:
    obs = await run(server_url, [*join("c", "room:1"), *push("c", "ping", {"n": 1})])
    result = only(obs, type="push", event="ping")
    assert (result["status"], result["response"]) == ("ok", {"n": 1})
    request = only(obs, type="sent", event="ping")
    answer = reply_to(obs, request["ref"])
    assert answer["join_ref"] == request["join_ref"] == join_ref_of(obs, "room:1")


async def test_16_reply_error(server_url: str) -> None:
    obs = await run(server_url, [*join("c", "room:1"), *push("c", "fail")])
    result = only(obs, type="push", event="fail")
    assert (result["status"], result["response"]) == ("error", {"why": "nope"})


async def test_17_noreply_times_out(server_url: str, clean_log: list[Any]) -> None:
    obs = await run(server_url, [*join("c", "room:1"), *push("c", "noreply", timeout=300)])
    assert only(obs, type="push", event="noreply")["status"] == "timeout"
    request = only(obs, type="sent", event="noreply")
    assert not select(obs, type="frame", ref=request["ref"])
    assert ("handle_in", "room:1", "noreply", {}) in clean_log


async def test_18_push_to_a_never_joined_topic(server_url: str) -> None:
    raw = {"topic": "room:x", "event": "new_msg", "payload": {}, "ref": "902", "join_ref": "9"}
    obs = await run(
        server_url, [{"op": "raw", "message": raw}, {"op": "until", "match": {"type": "frame", "ref": "902"}}]
    )
    answer = reply_to(obs, "902")
    assert answer["join_ref"] is None and answer["topic"] == "room:x"
    assert answer["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_19_server_push_after_join(server_url: str) -> None:
    steps = [*join("c", "room:pushy"), {"op": "until", "match": {"type": "event", "event": "joined"}}]
    obs = await run(server_url, steps)
    pushed = only(obs, type="frame", event="joined")
    assert pushed["join_ref"] == join_ref_of(obs, "room:pushy") and pushed["ref"] is None
    assert pushed["payload"] == {"topic": "room:pushy"}
    assert pushed["seq"] > reply_to(obs, join_ref_of(obs, "room:pushy"))["seq"]


# -- broadcasts --------------------------------------------------------------------------------------


def two_sockets(topic: str) -> list[dict[str, Any]]:
    return [
        {"op": "socket", "socket": "b", "opts": {**NO_RETRY, "params": {"user_id": "b"}}},
        {"op": "connect", "socket": "b"},
        *join("a", topic),
        *join("b", topic, socket="b"),
    ]


async def test_20_broadcast_reaches_all_including_sender(server_url: str) -> None:
    body = {"event": "new_msg", "payload": {"body": "hi"}}
    steps = [
        *two_sockets("room:bc"),
        *push("a", "broadcast", body),
        {"op": "until", "match": {"type": "event", "event": "new_msg"}, "count": 2},
    ]
    obs = await run(server_url, steps, params={"user_id": "a"})
    assert only(obs, type="push", event="broadcast")["status"] == "ok"
    for name in ("main", "b"):
        frame = only(obs, type="frame", socket=name, event="new_msg")
        assert (frame["join_ref"], frame["ref"], frame["payload"]) == (None, None, {"body": "hi"})


async def test_21_broadcast_from_skips_the_sender(server_url: str) -> None:
    body = {"event": "new_msg", "payload": {"body": "hi"}}
    steps = [
        *two_sockets("room:bf"),
        *push("a", "broadcast_from", body),
        {"op": "until", "match": {"type": "event", "chan": "b", "event": "new_msg"}},
        *push("a", "ping"),
    ]
    obs = await run(server_url, steps, params={"user_id": "a"})
    assert only(obs, type="frame", socket="b", event="new_msg")["join_ref"] is None
    assert not select(obs, type="frame", socket="main", event="new_msg")


async def test_22_intercepted_broadcast_is_pushed_per_socket(server_url: str) -> None:
    body = {"event": "intercepted", "payload": {"body": "hi"}}
    steps = [
        *two_sockets("room:ic"),
        *push("a", "broadcast", body),
        {"op": "until", "match": {"type": "event", "event": "intercepted"}, "count": 2},
    ]
    obs = await run(server_url, steps, params={"user_id": "a"})
    for name, user in (("main", "a"), ("b", "b")):
        frame = only(obs, type="frame", socket=name, event="intercepted")
        own_jr = only(obs, type="sent", socket=name, event="phx_join")["join_ref"]
        assert (frame["join_ref"], frame["ref"]) == (own_jr, None)
        assert frame["payload"] == {"body": "hi", "seen_by": user}


# -- leave, stop, crash ------------------------------------------------------------------------------


async def test_25_leave(server_url: str, clean_log: list[Any]) -> None:
    steps = [
        *join("c", "room:1"),
        {"op": "leave", "chan": "c"},
        {"op": "until", "match": {"type": "frame", "event": "phx_close"}},
    ]
    obs = await run(server_url, steps)
    jr = join_ref_of(obs, "room:1")
    leave = only(obs, type="sent", event="phx_leave")
    assert leave["join_ref"] == jr and leave["ref"] != jr
    assert only(obs, type="leave", chan="c")["status"] == "ok"
    answer = reply_to(obs, leave["ref"])
    assert answer["join_ref"] == jr and answer["payload"] == {"status": "ok", "response": {}}
    close = only(obs, type="frame", event="phx_close")
    assert (close["join_ref"], close["ref"], close["payload"]) == (jr, jr, {})
    assert close["seq"] > answer["seq"]
    assert ("terminate", "room:1", jr, "left") in clean_log


async def test_28_server_stop_closes_without_rejoin(server_url: str, clean_log: list[Any]) -> None:
    steps = [
        *join("c", "room:1"),
        {"op": "push", "chan": "c", "event": "stop", "timeout": 2000},
        {"op": "until", "match": {"type": "chan_close", "chan": "c"}},
        {"op": "sleep", "ms": 300},
    ]
    obs = await run_driver(server_url, [{"op": "connect"}, *steps], {"rejoinAfterMs": [50]})
    jr = join_ref_of(obs, "room:1")
    close = only(obs, type="frame", event="phx_close")
    assert (close["join_ref"], close["ref"], close["payload"]) == (jr, jr, {})
    assert len(sent(obs, event="phx_join")) == 1, "no rejoin after a server close"
    assert ("terminate", "room:1", jr, "normal") in clean_log


async def test_29_stop_with_reply(server_url: str) -> None:
    steps = [*join("c", "room:1"), *push("c", "stop_reply"), {"op": "until", "match": {"type": "chan_close"}}]
    obs = await run(server_url, steps)
    jr = join_ref_of(obs, "room:1")
    request = only(obs, type="sent", event="stop_reply")
    answer = reply_to(obs, request["ref"])
    close = only(obs, type="frame", event="phx_close")
    assert answer["payload"] == {"status": "ok", "response": {}} and answer["join_ref"] == jr
    assert (close["join_ref"], close["ref"]) == (jr, jr) and close["seq"] > answer["seq"]
    assert only(obs, type="push", event="stop_reply")["status"] == "ok"


async def test_30_crash_errors_then_rejoins(server_url: str, clean_log: list[Any]) -> None:
    steps = [
        *join("c", "room:1"),
        {"op": "push", "chan": "c", "event": "crash", "timeout": 2000},
        {"op": "until", "match": {"type": "frame", "event": "phx_error"}},
        {
            "op": "raw",
            "message": {"topic": "room:1", "event": "ping", "payload": {}, "ref": "903", "join_ref": None},
        },
        {"op": "until", "match": {"type": "frame", "ref": "903"}},
        {"op": "until", "match": {"type": "join", "chan": "c"}, "count": 2},
    ]
    obs = await run_driver(server_url, [{"op": "connect"}, *steps], {"rejoinAfterMs": [300]})
    first, second = join_ref_of(obs, "room:1", 0), join_ref_of(obs, "room:1", 1)
    error = only(obs, type="frame", event="phx_error")
    assert (error["join_ref"], error["ref"], error["payload"]) == (first, first, {"reason": "channel_crash"})
    assert reply_to(obs, "903")["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert second != first
    assert [j["status"] for j in select(obs, type="join", chan="c")] == ["ok", "ok"]
    assert ("terminate", "room:1", first, "crash") in clean_log


async def test_31_duplicate_join_replaces_the_channel(server_url: str, clean_log: list[Any]) -> None:
    dup = {"topic": "room:dup", "event": "phx_join", "payload": {}, "ref": "908", "join_ref": "908"}
    steps = [
        *join("c", "room:dup"),
        {"op": "raw", "message": dup},
        {"op": "until", "match": {"type": "frame", "event": "phx_close"}},
        {"op": "until", "match": {"type": "frame", "ref": "908"}},
        {
            "op": "raw",
            "message": {
                "topic": "room:dup",
                "event": "broadcast",
                "ref": "909",
                "join_ref": "908",
                "payload": {"event": "once", "payload": {}},
            },
        },
        {"op": "until", "match": {"type": "frame", "ref": "909"}},
        {"op": "until", "match": {"type": "frame", "event": "once"}},
        {"op": "sleep", "ms": 200},
    ]
    obs = await run(server_url, steps)
    old = join_ref_of(obs, "room:dup")
    answer = reply_to(obs, "908")
    assert answer["join_ref"] == "908" and answer["payload"]["status"] == "ok"
    close = only(obs, type="frame", event="phx_close")
    assert (close["join_ref"], close["ref"]) == (old, old)
    assert len(frames(obs, event="once")) == 1, "exactly one channel stays subscribed"
    assert ("terminate", "room:dup", old, "duplicate_join") in clean_log


async def test_32_stale_join_ref_is_ignored(server_url: str, clean_log: list[Any]) -> None:
    stale_ping = {
        "topic": "room:1",
        "event": "ping",
        "payload": {"stale": 1},
        "ref": "904",
        "join_ref": "stale",
    }
    stale_leave = {"topic": "room:1", "event": "phx_leave", "payload": {}, "ref": "905", "join_ref": "stale"}
    steps = [
        *join("c", "room:1"),
        {"op": "raw", "message": stale_ping},
        {"op": "raw", "message": stale_leave},
        *push("c", "ping", {"fresh": 1}),
        {"op": "sleep", "ms": 300},
    ]
    obs = await run(server_url, steps)
    assert not select(obs, type="frame", ref="904") and not select(obs, type="frame", ref="905")
    assert only(obs, type="push", event="ping")["response"] == {"fresh": 1}, "the channel stays joined"
    assert not any(
        entry[:3] == ("handle_in", "room:1", "ping") and entry[3] == {"stale": 1} for entry in clean_log
    )
    assert not select(obs, type="frame", event="phx_close")


async def test_36_forced_disconnect_closes_1001(server_url: str, clean_log: list[Any]) -> None:
    steps = [
        *join("a1", "room:fd1"),
        *join("a2", "room:fd2"),
        {"op": "socket", "socket": "b", "opts": {**NO_RETRY, "params": {"user_id": "2"}}},
        {"op": "connect", "socket": "b"},
        *join("b", "room:fd1", socket="b"),
        *push("b", "disconnect", {"id": "user:1"}),
        {"op": "until", "match": {"type": "close", "socket": "main"}},
        *push("b", "ping", {"still": "here"}),
    ]
    obs = await run(server_url, steps, params={"user_id": "1"})
    close = only(obs, type="close", socket="main")
    assert close["code"] == 1001
    before_close = [o for o in obs if o["seq"] < close["seq"] and o.get("socket") == "main"]
    assert not [o for o in before_close if o["type"] == "frame" and o["event"] in ("phx_close", "phx_error")]
    assert only(obs, type="push", event="ping")["response"] == {"still": "here"}
    assert not select(obs, type="close", socket="b")
    reasons = {entry[1]: entry[3] for entry in clean_log if entry[0] == "terminate"}
    assert reasons.get("room:fd1") in ("disconnected", "closed") and reasons.get("room:fd2") in (
        "disconnected",
        "closed",
    )


# -- binary frames -----------------------------------------------------------------------------------


async def test_38_binary_push_and_binary_reply(server_url: str) -> None:
    obs = await run(server_url, [*join("c", "room:1"), *push("c", "bin", {"$bytes": [1, 2]})])
    assert only(obs, type="sent", event="bin")["payload"] == {"$bytes": [1, 2]}
    result = only(obs, type="push", event="bin")
    assert (result["status"], result["response"]) == ("ok", {"$bytes": [1, 2, 3, 4]})


async def test_39_binary_server_push(server_url: str) -> None:
    steps = [
        *join("c", "room:1"),
        *push("c", "bin_push"),
        {"op": "until", "match": {"type": "event", "event": "bin_push"}},
    ]
    obs = await run(server_url, steps)
    frame = only(obs, type="frame", event="bin_push")
    assert (frame["join_ref"], frame["ref"], frame["payload"]) == (
        join_ref_of(obs, "room:1"),
        None,
        {"$bytes": [0, 1]},
    )


async def test_40_binary_broadcast(server_url: str) -> None:
    steps = [
        *join("c", "room:1"),
        *push("c", "bin_broadcast"),
        {"op": "until", "match": {"type": "event", "event": "b"}},
    ]
    obs = await run(server_url, steps)
    frame = only(obs, type="frame", event="b")
    assert (frame["join_ref"], frame["ref"], frame["topic"], frame["payload"]) == (
        None,
        None,
        "room:1",
        {"$bytes": [9, 9]},
    )


# -- client recovery behaviours ----------------------------------------------------------------------


async def test_46_refused_join_is_retried_with_new_join_refs(server_url: str) -> None:
    steps = [
        {"op": "channel", "chan": "c", "topic": "room:deny"},
        {"op": "join", "chan": "c"},
        {"op": "until", "match": {"type": "join", "chan": "c"}, "count": 3},
        {"op": "leave", "chan": "c"},
    ]
    obs = await run_driver(server_url, [{"op": "connect"}, *steps], {"rejoinAfterMs": [50, 100, 150]})
    joins = sent(obs, event="phx_join")
    assert len(joins) >= 3 and len({j["join_ref"] for j in joins}) == len(joins)
    results = select(obs, type="join", chan="c")
    assert {(r["status"], str(r["response"])) for r in results} == {
        ("error", str({"reason": "unauthorized"}))
    }


async def test_47_join_timeout_recovery(server_url: str) -> None:
    steps = [
        {"op": "channel", "chan": "c", "topic": "room:slow", "params": {"hold": "t47", "ms": 600}},
        {"op": "join", "chan": "c", "timeout": 300},
        {"op": "until", "match": {"type": "join", "chan": "c", "status": "ok"}, "timeout": 8000},
        *push("c", "ping", {"after": "recovery"}),
    ]
    obs = await run_driver(server_url, [{"op": "connect"}, *steps], {"rejoinAfterMs": [50]})
    statuses = [r["status"] for r in select(obs, type="join", chan="c")]
    assert statuses[0] == "timeout" and statuses[-1] == "ok"
    first = join_ref_of(obs, "room:slow", 0)
    leave = sent(obs, event="phx_leave")[0]
    assert leave["join_ref"] == first and leave["ref"] != first
    assert reply_to(obs, leave["ref"])["payload"]["status"] == "ok"
    assert only(obs, type="push", event="ping")["response"] == {"after": "recovery"}


async def test_48_heartbeat_miss_reconnects_and_rejoins(
    proxy: HeartbeatDropProxy, clean_log: list[Any]
) -> None:
    steps = [
        *join("c", "room:hb"),
        {"op": "until", "match": {"type": "join", "chan": "c"}, "count": 2, "timeout": 8000},
    ]
    obs = await run_driver(
        proxy.url + "/socket",
        [{"op": "connect"}, *steps],
        {"heartbeatIntervalMs": 200, "reconnectAfterMs": [50]},
    )
    first, second = join_ref_of(obs, "room:hb", 0), join_ref_of(obs, "room:hb", 1)
    assert first != second and [r["status"] for r in select(obs, type="join", chan="c")] == ["ok", "ok"]
    assert proxy.connections >= 2
    assert proxy.client_closes[0] == (1000, "heartbeat timeout")
    assert [e for e in clean_log if e[0] == "join"] == [
        ("join", "room:hb", {}, first),
        ("join", "room:hb", {}, second),
    ]


async def test_49_long_poll_join_and_push(server_url: str) -> None:
    steps = [
        {"op": "until", "match": {"type": "open"}},
        *join("c", "room:lp"),
        *push("c", "ping", {"via": "longpoll"}),
    ]
    obs = await run(server_url, steps, transport="longpoll")
    assert only(obs, type="join", chan="c")["status"] == "ok"
    assert only(obs, type="push", event="ping")["response"] == {"via": "longpoll"}
    jr = select(obs, type="frame", event="phx_reply")[0]["join_ref"]
    assert jr is not None

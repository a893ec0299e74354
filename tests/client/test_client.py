"""The asyncio client against a scripted real WebSocket server: frames sent and reactions."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest

from relaygate.client import (
    ChannelClosed,
    ChannelState,
    Client,
    ConnectError,
    PushError,
    PushTimeout,
)
from tests.client.scripted import Conn, ScriptedServer, eventually

WAIT = 5.0


async def connected(server: ScriptedServer, client: Client) -> Conn:
    await client.connect()
    return await server.next_connection()


async def joined(conn: Conn, client: Client, topic: str = "room:1", **params: Any) -> tuple[Any, list[Any]]:
    chan = client.channel(topic, params)
    join = asyncio.create_task(chan.join())
    frame = await conn.accept_join(topic)
    await asyncio.wait_for(join, WAIT)
    return chan, frame


async def test_url_has_params_then_vsn(server: ScriptedServer, make_client: Callable[..., Client]) -> None:
    client = make_client(params={"token": "a b", "nested": {"a": 1}})
    conn = await connected(server, client)
    assert conn.path == "/socket/websocket?token=a%20b&nested%5Ba%5D=1&vsn=2.0.0"


async def test_auth_token_goes_in_the_subprotocol_header(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    conn = await connected(server, make_client(auth_token="secret"))
    assert conn.headers["Sec-WebSocket-Protocol"] == "phoenix, base64url.bearer.phx.c2VjcmV0"
    assert base64.b64decode("c2VjcmV0") == b"secret"


async def test_refused_upgrade_raises_connect_error_with_status(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    server.refuse_status = 403
    with pytest.raises(ConnectError) as info:
        await make_client().connect()
    assert info.value.status == 403


async def test_join_sends_join_ref_equal_to_ref_and_returns_the_response(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan = client.channel("room:lobby", {"device": "d1"})
    join = asyncio.create_task(chan.join())
    frame = await conn.recv()
    assert frame[0] == frame[1] and isinstance(frame[0], str)
    assert frame[2:] == ["room:lobby", "phx_join", {"device": "d1"}]
    await conn.reply(frame, "ok", {"hello": "x"})
    assert await asyncio.wait_for(join, WAIT) == {"hello": "x"}
    assert chan.state is ChannelState.JOINED and chan.join_ref == frame[0]


async def test_refused_first_join_raises_and_closes_the_channel(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan = client.channel("room:deny")
    join = asyncio.create_task(chan.join())
    await conn.reply(await conn.recv(), "error", {"reason": "unauthorized"})
    with pytest.raises(PushError) as info:
        await asyncio.wait_for(join, WAIT)
    assert (info.value.status, info.value.response) == ("error", {"reason": "unauthorized"})
    assert chan.state is ChannelState.CLOSED
    await conn.no_frame()


async def test_replies_are_matched_by_ref_in_any_order(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    first = asyncio.create_task(chan.push("ping", {"n": 1}))
    second = asyncio.create_task(chan.push("ping", {"n": 2}))
    f1, f2 = await conn.recv(), await conn.recv()
    assert f1[0] == f2[0] == join[0] and f1[1] != f2[1]
    assert [f1[4], f2[4]] == [{"n": 1}, {"n": 2}]
    await conn.reply(f2, "ok", {"r": 2})
    await conn.reply(f1, "error", {"why": "nope"})
    assert await asyncio.wait_for(second, WAIT) == {"r": 2}
    with pytest.raises(PushError) as info:
        await asyncio.wait_for(first, WAIT)
    assert info.value.response == {"why": "nope"}


async def test_push_without_reply_times_out(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, _ = await joined(conn, client)
    with pytest.raises(PushTimeout):
        await chan.push("noreply", {}, timeout=0.2)


async def test_frames_with_a_stale_join_ref_are_dropped(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    seen: list[Any] = []
    chan.on("news", seen.append)
    push = asyncio.create_task(chan.push("ping", {}))
    frame = await conn.recv()
    await conn.send(["stale", None, "room:1", "news", {"n": 0}])
    await conn.send(["stale", frame[1], "room:1", "phx_reply", {"status": "ok", "response": {"stale": True}}])
    await conn.send([None, None, "room:1", "news", {"n": 1}])
    await conn.send([join[0], None, "room:1", "news", {"n": 2}])
    await conn.send([None, None, "room:other", "news", {"n": 3}])
    await conn.reply(frame, "ok", {"fresh": True})
    assert await asyncio.wait_for(push, WAIT) == {"fresh": True}
    assert seen == [{"n": 1}, {"n": 2}]


async def test_next_event_returns_buffered_then_awaited_events(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    await conn.send([join[0], None, "room:1", "joined", {"n": 1}])
    assert await chan.next_event("joined", timeout=WAIT) == {"n": 1}
    waiting = asyncio.create_task(chan.next_event("later", timeout=WAIT))
    await conn.send([None, None, "room:1", "later", {"n": 2}])
    assert await waiting == {"n": 2}
    with pytest.raises(PushTimeout):
        await chan.next_event("never", timeout=0.1)


async def test_binary_push_reply_and_server_frames(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    jr = join[0].encode()
    push = asyncio.create_task(chan.push("bin", b"\x01\x02"))
    frame = await conn.recv()
    assert isinstance(frame, bytes)
    ref = frame[5 + len(jr) : 5 + len(jr) + frame[2]]
    assert frame[:5] == bytes([0, len(jr), len(ref), 6, 3])
    assert frame[5:] == jr + ref + b"room:1bin\x01\x02"
    reply = bytes([1, len(jr), len(ref), 6, 2]) + jr + ref + b"room:1ok" + b"\x01\x02\x03\x04"
    await conn.send(reply)
    assert await asyncio.wait_for(push, WAIT) == b"\x01\x02\x03\x04"
    await conn.send(bytes([0, len(jr), 6, 8]) + jr + b"room:1bin_push\x00\x01")
    await conn.send(bytes([2, 6, 1]) + b"room:1b\x09\x09")
    assert await chan.next_event("bin_push", timeout=WAIT) == b"\x00\x01"
    assert await chan.next_event("b", timeout=WAIT) == b"\x09\x09"


async def test_pushes_before_the_join_reply_are_buffered(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan = client.channel("room:1")
    join = asyncio.create_task(chan.join())
    join_frame = await conn.recv()
    push = asyncio.create_task(chan.push("early", {}))
    await conn.no_frame(0.1)
    await conn.reply(join_frame)
    await asyncio.wait_for(join, WAIT)
    frame = await conn.recv()
    assert frame[0] == join_frame[0] and frame[3] == "early"
    await conn.reply(frame)
    assert await asyncio.wait_for(push, WAIT) == {}


async def test_leave_sends_phx_leave_and_closes_at_once(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    await chan.leave()
    assert chan.state is ChannelState.CLOSED
    frame = await conn.recv()
    assert frame[0] == join[0] and frame[2:] == ["room:1", "phx_leave", {}]
    with pytest.raises(RuntimeError):
        await chan.join()


async def test_server_phx_close_closes_the_channel_without_rejoin(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(rejoin_after=lambda _tries: 0.05)
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    await conn.send([join[0], join[0], "room:1", "phx_close", {}])
    assert await chan.next_event("phx_close", timeout=WAIT) == {}
    assert chan.state is ChannelState.CLOSED
    await conn.no_frame()


async def test_phx_error_rejoins_with_a_new_join_ref(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    tries: list[int] = []
    client = make_client(rejoin_after=lambda n: tries.append(n) or 0.05)
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    await conn.send([join[0], join[0], "room:1", "phx_error", {"reason": "channel_crash"}])
    assert await chan.next_event("phx_error", timeout=WAIT) == {"reason": "channel_crash"}
    rejoin = await conn.recv()
    assert rejoin[2:4] == ["room:1", "phx_join"] and rejoin[0] == rejoin[1] != join[0]
    await conn.reply(rejoin, "error", {"reason": "later"})
    again = await conn.recv()
    assert again[3] == "phx_join" and again[0] not in (join[0], rejoin[0])
    await conn.reply(again)
    await eventually(lambda: chan.state is ChannelState.JOINED)
    assert tries == [1, 2] and chan.join_ref == again[0]


async def test_join_timeout_sends_leave_with_the_old_join_ref(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan = client.channel("room:slow")
    with pytest.raises(PushTimeout):
        await chan.join(timeout=0.2)
    join = await conn.recv()
    leave = await conn.recv()
    assert leave[0] == join[0] and leave[1] != join[1] and leave[3] == "phx_leave"
    assert chan.state is ChannelState.CLOSED


async def test_missed_heartbeat_closes_reconnects_and_rejoins(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(heartbeat_interval=0.2, reconnect_after=lambda _tries: 0.01)
    server.auto_heartbeat = False
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    errors: list[Any] = []
    chan.on("phx_error", errors.append)
    await asyncio.wait_for(conn.closed.wait(), WAIT)
    assert conn.ws.close_code == 1000 and conn.ws.close_reason == "heartbeat timeout"
    assert len(conn.heartbeats) == 1 and conn.heartbeats[0][0] is None
    assert conn.heartbeats[0][2:] == ["phoenix", "heartbeat", {}]
    server.auto_heartbeat = True
    second = await server.next_connection()
    rejoin = await second.accept_join("room:1")
    assert rejoin[0] != join[0]
    assert errors == [{"source": "transport", "reason": "heartbeat_timeout"}]
    push = asyncio.create_task(chan.push("ping", {}))
    frame = await second.recv()
    assert frame[0] == rejoin[0]
    await second.reply(frame)
    await asyncio.wait_for(push, WAIT)


async def test_answered_heartbeats_keep_the_connection(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(heartbeat_interval=0.05)
    conn = await connected(server, client)
    await eventually(lambda: len(conn.heartbeats) >= 3)
    assert len({hb[1] for hb in conn.heartbeats}) == len(conn.heartbeats)
    assert not conn.closed.is_set() and client.is_connected


async def test_reconnect_backoff_after_server_close(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    tries: list[int] = []
    closes: list[int | None] = []
    client = make_client(reconnect_after=lambda n: tries.append(n) or 0.01)
    client.on_close(lambda code, _reason: closes.append(code))
    conn = await connected(server, client)
    _chan, join = await joined(conn, client)
    server.refuse_status = 403
    await conn.ws.close(1001)
    await eventually(lambda: len(tries) >= 4)
    assert tries[:4] == [1, 2, 3, 4], "each failed attempt waits the next backoff step"
    server.refuse_status = None
    second = await server.next_connection()
    rejoin = await second.accept_join("room:1")
    assert rejoin[0] != join[0]
    assert closes[0] == 1001
    await second.ws.close(1000)
    third = await server.next_connection()
    await third.accept_join("room:1")
    assert tries[-1] == 1, "a successful open resets the backoff"


async def test_second_channel_object_leaves_the_first(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    first, join = await joined(conn, client)
    second = client.channel("room:1")
    task = asyncio.create_task(second.join())
    leave, new_join = await conn.recv(), await conn.recv()
    assert leave[0] == join[0] and leave[3] == "phx_leave"
    assert new_join[3] == "phx_join" and new_join[0] != join[0]
    await conn.reply(new_join)
    await asyncio.wait_for(task, WAIT)
    assert first.state is ChannelState.CLOSED


async def test_close_fails_pending_work_and_stops_reconnecting(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, _ = await joined(conn, client)
    push = asyncio.create_task(chan.push("noreply", {}))
    await conn.recv()
    await client.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(push, WAIT)
    assert conn.ws.close_code == 1000
    with pytest.raises(TimeoutError):
        await server.next_connection(timeout=0.3)


async def test_v1_client_speaks_objects(server: ScriptedServer, make_client: Callable[..., Client]) -> None:
    client = make_client(vsn="1.0.0")
    conn = await connected(server, client)
    assert conn.path.endswith("vsn=1.0.0")
    chan = client.channel("room:1")
    join = asyncio.create_task(chan.join())
    frame = await conn.recv()
    assert frame == {
        "ref": frame["ref"],
        "topic": "room:1",
        "event": "phx_join",
        "payload": {},
    }
    reply = {
        "topic": "room:1",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": frame["ref"],
    }
    await conn.send(reply)
    await asyncio.wait_for(join, WAIT)
    await conn.send({"topic": "room:1", "event": "news", "payload": {"a": 1}, "ref": None})
    assert await chan.next_event("news", timeout=WAIT) == {"a": 1}
    with pytest.raises(ValueError, match=r"vsn 2\.0\.0"):
        await chan.push("bin", b"\x01")


async def test_malformed_server_frames_are_dropped(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    conn = await connected(server, client)
    chan, join = await joined(conn, client)
    await conn.ws.send("not json")
    await conn.ws.send(b"\x07junk")
    await conn.send([join[0], None, "room:1", "after", {}])
    assert await chan.next_event("after", timeout=WAIT) == {}
    assert client.is_connected


async def test_connect_raises_when_the_auth_token_callable_fails(make_client: Callable[..., Client]) -> None:
    def token() -> str:
        raise LookupError("no token stored")

    with pytest.raises(ConnectError) as info:
        await asyncio.wait_for(make_client(auth_token=token).connect(), WAIT)
    assert isinstance(info.value.__cause__, LookupError)


async def test_connect_raises_on_an_unusable_url() -> None:
    client = Client("http://127.0.0.1:1/socket")  # not a ws:// URL
    with pytest.raises(ConnectError):
        await asyncio.wait_for(client.connect(), WAIT)
    await client.close()

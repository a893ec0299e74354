"""Wire-level scenarios (phoenix-protocol.md section 11) against uvicorn with raw frames."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from relaygate.channels import Endpoint
from tests.channels.support import EndpointFactory, RoomChannel, serve


@pytest.fixture(params=["wire", "asgi"])
async def server(
    make_endpoint: EndpointFactory, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Endpoint, str]]:
    """Relaygate's own WebSocket transport, and the ASGI one (any ASGI server)."""
    endpoint = make_endpoint()
    async with serve(endpoint, wire=request.param == "wire") as url:
        yield endpoint, url


def open_ws(url: str, query: str = "vsn=2.0.0", **options: Any) -> Any:
    return connect(f"{url}/socket/websocket?{query}", open_timeout=5, close_timeout=2, **options)


async def send(ws: ClientConnection, *items: Any) -> None:
    await ws.send(orjson.dumps(list(items)).decode())


async def recv(ws: ClientConnection, within: float = 2.0) -> Any:
    data = await asyncio.wait_for(ws.recv(), within)
    return data if isinstance(data, bytes) else orjson.loads(data)


async def no_frame(ws: ClientConnection, within: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        frame = await asyncio.wait_for(ws.recv(), within)
        pytest.fail(f"unexpected frame {frame!r}")


async def closed_with(ws: ClientConnection, within: float = 3.0) -> int | None:
    """Read until the server closes; returns the close code."""
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    return ws.close_code


async def join(ws: ClientConnection, topic: str, jr: str = "3", payload: Any = None) -> None:
    await send(ws, jr, jr, topic, "phx_join", payload or {})
    assert await recv(ws) == [jr, jr, topic, "phx_reply", {"status": "ok", "response": {}}]


async def refused_status(url: str, query: str, **options: Any) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as info:
        async with open_ws(url, query, **options):
            pass
    return info.value.response.status_code, info.value.response.body


OK: dict[str, Any] = {"status": "ok", "response": {}}
UNMATCHED: dict[str, Any] = {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_upgrade_sends_nothing_first_scenario_1(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as ws:
        await no_frame(ws)


@pytest.mark.parametrize("query", ["vsn=3.0.0", "vsn=abc", "vsn%5Ba%5D=1"])
async def test_bad_vsn_is_403_scenario_2(server: tuple[Endpoint, str], query: str) -> None:
    assert await refused_status(server[1], query) == (403, b"")


async def test_connect_refused_is_403_scenario_4(server: tuple[Endpoint, str]) -> None:
    assert await refused_status(server[1], "token=deny&vsn=2.0.0") == (403, b"")


async def test_plain_http_on_the_websocket_path_is_400(server: tuple[Endpoint, str]) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(server[1].replace("ws://", "http://") + "/socket/websocket")
    assert response.status_code == 400


async def test_origin_check_scenario_5(make_endpoint: EndpointFactory) -> None:
    async with serve(make_endpoint(check_origin=["https://good.com"])) as url:
        assert (await refused_status(url, "vsn=2.0.0", origin="http://evil.com"))[0] == 403
        async with open_ws(url, origin="https://good.com") as ws:
            await join(ws, "room:1")
        async with open_ws(url) as ws:  # no Origin header
            await join(ws, "room:1")


async def test_auth_token_subprotocol_scenario_6(server: tuple[Endpoint, str]) -> None:
    token = base64.b64encode(b"secret").decode().rstrip("=")
    async with open_ws(server[1], subprotocols=["phoenix", f"base64url.bearer.phx.{token}"]) as ws:
        assert ws.subprotocol == "phoenix"
        await send(ws, "3", "3", "room:info", "phx_join", {})
        reply = await recv(ws)
        assert reply[4]["response"]["auth_token"] == "secret"
    assert (await refused_status(server[1], "vsn=2.0.0", subprotocols=["phoenix", "base64url.bearer.phx.A"]))[
        0
    ] == 403


async def test_heartbeat_join_reply_unmatched_scenarios_7_8_13_14_18(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as ws:
        await send(ws, None, "5", "phoenix", "heartbeat", {})
        assert await recv(ws) == [None, "5", "phoenix", "phx_reply", OK]
        await join(ws, "room:lobby")
        await send(ws, "3", "3", "nope", "phx_join", {})
        assert await recv(ws) == [None, "3", "nope", "phx_reply", UNMATCHED]
        await send(ws, "3", "4", "room:lobby", "ping", {"n": 1})
        assert await recv(ws) == ["3", "4", "room:lobby", "phx_reply", {"status": "ok", "response": {"n": 1}}]
        await send(ws, "9", "4", "room:x", "new_msg", {})
        assert await recv(ws) == [None, "4", "room:x", "phx_reply", UNMATCHED]


async def test_slow_join_does_not_block_heartbeats(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as ws:
        await send(ws, "3", "3", "room:slow", "phx_join", {"sleep": 0.5})
        await send(ws, None, "4", "phoenix", "heartbeat", {})
        assert await recv(ws) == [None, "4", "phoenix", "phx_reply", OK]
        assert await recv(ws) == ["3", "3", "room:slow", "phx_reply", OK]


async def test_broadcasts_scenarios_20_21_22_24(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    async with open_ws(url) as a, open_ws(url) as b, open_ws(url) as c:
        await join(a, "room:1", "3")
        await join(b, "room:1", "7")
        await join(c, "room:2", "3")
        await send(a, "3", "4", "room:1", "bcast", {"m": 1})
        frames = [await recv(a), await recv(a)]
        assert ["3", "4", "room:1", "phx_reply", OK] in frames
        assert [None, None, "room:1", "new_msg", {"m": 1}] in frames
        assert await recv(b) == [None, None, "room:1", "new_msg", {"m": 1}]
        await send(a, "3", "5", "room:1", "bcast_from", {"m": 2})
        assert await recv(a) == ["3", "5", "room:1", "phx_reply", OK]
        assert await recv(b) == [None, None, "room:1", "new_msg", {"m": 2}]
        await send(a, "3", "6", "room:1", "intercept", {"m": 3})
        frames = [await recv(a), await recv(a)]
        assert ["3", None, "room:1", "intercepted", {"m": 3, "field": "3"}] in frames
        assert await recv(b) == ["7", None, "room:1", "intercepted", {"m": 3, "field": "7"}]
        await endpoint.broadcast("room:1", "e", {})
        assert await recv(a) == [None, None, "room:1", "e", {}]
        assert await recv(b) == [None, None, "room:1", "e", {}]
        await no_frame(a, 0.1)
        await no_frame(c, 0.1)


async def test_leave_scenario_25(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as ws:
        await join(ws, "room:1")
        await send(ws, "3", "5", "room:1", "phx_leave", {})
        assert await recv(ws) == ["3", "5", "room:1", "phx_reply", OK]
        assert await recv(ws) == ["3", "3", "room:1", "phx_close", {}]
        await send(ws, "3", "6", "room:1", "x", {})
        assert await recv(ws) == [None, "6", "room:1", "phx_reply", UNMATCHED]
    assert RoomChannel.terminated == [("room:1", "left")]


async def test_stop_and_crash_scenarios_28_30(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as ws:
        await join(ws, "room:1")
        await send(ws, "3", "4", "room:1", "stop", {})
        assert await recv(ws) == ["3", "3", "room:1", "phx_close", {}]
        await join(ws, "room:1", "5")
        await send(ws, "5", "6", "room:1", "boom", {})
        assert await recv(ws) == ["5", "5", "room:1", "phx_error", {"reason": "channel_crash"}]
        await send(ws, "5", "7", "room:1", "ping", {})
        assert await recv(ws) == [None, "7", "room:1", "phx_reply", UNMATCHED]
        await join(ws, "room:1", "8")  # the client's rejoin is accepted


async def test_crash_isolation(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as a, open_ws(server[1]) as b:
        await join(a, "room:1")
        await join(a, "room:2", "4")
        await join(b, "room:1")
        await send(a, "3", "5", "room:1", "boom", {})
        assert await recv(a) == ["3", "3", "room:1", "phx_error", {"reason": "channel_crash"}]
        await send(a, "4", "6", "room:2", "ping", {"still": "here"})
        assert await recv(a) == [
            "4",
            "6",
            "room:2",
            "phx_reply",
            {"status": "ok", "response": {"still": "here"}},
        ]
        await send(b, "3", "7", "room:1", "ping", {})
        assert await recv(b) == ["3", "7", "room:1", "phx_reply", OK]


async def test_duplicate_join_scenario_31(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    async with open_ws(url) as ws:
        await join(ws, "room:1", "3")
        await send(ws, "8", "8", "room:1", "phx_join", {})
        frames = [await recv(ws), await recv(ws)]
        assert ["8", "8", "room:1", "phx_reply", OK] in frames
        assert ["3", "3", "room:1", "phx_close", {}] in frames
        await endpoint.broadcast("room:1", "once", {})
        assert await recv(ws) == [None, None, "room:1", "once", {}]
        await no_frame(ws, 0.1)
    assert ("room:1", "duplicate_join") in RoomChannel.terminated


async def test_stale_and_null_join_ref_scenarios_32_33(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as ws:
        await join(ws, "room:1", "8")
        await send(ws, "3", "9", "room:1", "ping", {})
        await send(ws, "3", "10", "room:1", "phx_leave", {})
        await no_frame(ws)
        await send(ws, None, "9", "room:1", "ping", {})
        assert await recv(ws) == ["8", "9", "room:1", "phx_reply", OK]


async def test_v1_frames_scenarios_3_34(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    for query in ("", "vsn=1.0.0"):
        async with open_ws(url, query) as ws:
            await ws.send('{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}')
            assert await recv(ws) == {"topic": "room:1", "event": "phx_reply", "payload": OK, "ref": "1"}
            await endpoint.broadcast("room:1", "e", {"a": 1})
            assert await recv(ws) == {"topic": "room:1", "event": "e", "payload": {"a": 1}, "ref": None}


async def test_forced_disconnect_scenario_36(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    async with open_ws(url, "user=1&vsn=2.0.0") as a, open_ws(url, "user=1&vsn=2.0.0") as b:
        async with open_ws(url, "user=2&vsn=2.0.0") as other:
            for ws in (a, b):
                await join(ws, "room:1")
                await join(ws, "room:2")
            await endpoint.disconnect("user:1")
            assert await closed_with(a) == 1001
            assert await closed_with(b) == 1001
            await send(other, None, "1", "phoenix", "heartbeat", {})
            assert await recv(other) == [None, "1", "phoenix", "phx_reply", OK]
    async with asyncio.timeout(10):  # terminate callbacks run after the close frames went out
        while len(RoomChannel.terminated) < 4:
            await asyncio.sleep(0.01)
    assert (
        sorted(RoomChannel.terminated) == [("room:1", "disconnected")] * 2 + [("room:2", "disconnected")] * 2
    )


async def test_idle_timeout_scenario_37(make_endpoint: EndpointFactory) -> None:
    async with serve(make_endpoint(idle_timeout=0.2)) as url:
        async with open_ws(url) as ws:
            for n in range(5):
                await send(ws, None, str(n), "phoenix", "heartbeat", {})
                assert (await recv(ws))[1] == str(n)
                await asyncio.sleep(0.1)
            assert await closed_with(ws, 2.0) == 1001


async def test_binary_frames_scenarios_38_39_40(server: tuple[Endpoint, str]) -> None:
    async with open_ws(server[1]) as ws:
        await join(ws, "room:1", "3")
        await ws.send(bytes([0, 1, 1, 6, 3]) + b"34room:1bin" + bytes([1, 2]))
        assert await recv(ws) == bytes([1, 1, 1, 6, 2]) + b"34room:1ok" + bytes([1, 2, 3, 4])
        await send(ws, "3", "5", "room:1", "bin_push", {})
        assert await recv(ws) == bytes([0, 1, 6, 8]) + b"3room:1bin_push" + bytes([0, 1])
        await send(ws, "3", "6", "room:1", "bin_bcast", {})
        assert await recv(ws) == bytes([2, 6, 1]) + b"room:1b" + bytes([9, 9])


@pytest.mark.parametrize(
    ("frame", "code"),
    [("not json", 1007), ('["1","2"]', 1007), (bytes([1, 0, 0, 1, 1]) + b"te", 1003)],
)
async def test_malformed_frames_close_the_connection(
    server: tuple[Endpoint, str], frame: Any, code: int
) -> None:
    async with open_ws(server[1]) as ws:
        await ws.send(frame)
        assert await closed_with(ws) == code


async def test_oversize_frame_closes_1009(make_endpoint: EndpointFactory) -> None:
    async with serve(make_endpoint(max_frame_size=1000)) as url, open_ws(url) as ws:
        await send(ws, None, "1", "phoenix", "heartbeat", {"pad": "x" * 2000})
        assert await closed_with(ws) == 1009


async def test_max_channels_on_the_wire(make_endpoint: EndpointFactory) -> None:
    async with serve(make_endpoint(max_channels=1)) as url, open_ws(url) as ws:
        await join(ws, "room:1")
        await send(ws, "4", "4", "room:2", "phx_join", {})
        reply = {"status": "error", "response": {"reason": "too many channels joined"}}
        assert await recv(ws) == ["4", "4", "room:2", "phx_reply", reply]


async def test_slow_consumer_is_closed_1008_without_slowing_others(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint(max_queue_bytes=1 << 20)
    payload = {"pad": base64.b64encode(os.urandom(45_000)).decode()}  # 60 KB, incompressible
    async with serve(endpoint) as url, open_ws(url, max_queue=1) as slow, open_ws(url) as fast:
        await join(slow, "room:1")
        await join(fast, "room:1")
        received = 0
        for _ in range(2000):  # bounded: ~120 MB at most before the slow socket must be cut
            await endpoint.broadcast("room:1", "big", payload)
            await recv(fast)
            received += 1
            if endpoint.slow_consumers:
                break
        assert endpoint.slow_consumers == 1
        assert await closed_with(slow, 10.0) == 1008
        await endpoint.broadcast("room:1", "after", {})
        assert (await recv(fast))[3] == "after"
        assert received > 1


async def test_drain_closes_1012_and_refuses_new_connections(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    async with serve(endpoint) as url:
        async with open_ws(url) as a, open_ws(url) as b:
            await join(a, "room:1")
            await endpoint.drain(grace=5)
            assert await closed_with(a) == 1012
            assert await closed_with(b) == 1012
        assert endpoint.sessions == set()
        assert (await refused_status(url, "vsn=2.0.0"))[0] == 403
    assert RoomChannel.terminated == [("room:1", "shutdown")]


async def test_binary_broadcast_is_skipped_for_v1_sockets(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    async with open_ws(url, "vsn=1.0.0") as v1, open_ws(url) as v2:
        await v1.send('{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}')
        assert (await recv(v1))["payload"] == OK
        await join(v2, "room:1")
        await endpoint.broadcast("room:1", "b", b"\x01")
        await endpoint.broadcast("room:1", "t", {})
        assert await recv(v2) == bytes([2, 6, 1]) + b"room:1b\x01"
        assert await recv(v2) == [None, None, "room:1", "t", {}]
        assert (await recv(v1))["event"] == "t"


async def test_wrap_dispatches_websockets_first_and_delegates_the_rest(
    make_endpoint: EndpointFactory,
) -> None:
    async with serve(make_endpoint(), wrap=True) as url:
        async with open_ws(url) as ws:
            await join(ws, "room:1")
        assert await refused_status(url, "vsn=3.0.0") == (403, b"")
        async with httpx.AsyncClient() as http:
            base = url.replace("ws://", "http://")
            assert (await http.get(base + "/socket/websocket")).status_code == 400  # delegated to the app
            assert (await http.get(base + "/nothing")).status_code == 404
        with pytest.raises(InvalidStatus):
            async with connect(url + "/elsewhere", open_timeout=5):
                pass


@pytest.mark.parametrize("wrapped", [True, False])
async def test_handshake_headers_are_released_only_where_the_scope_is_the_servers_alone(
    make_endpoint: EndpointFactory, wrapped: bool
) -> None:
    endpoint = make_endpoint()
    inner: Any = None

    async def framework(scope: Any, receive: Any, send: Any) -> None:
        nonlocal inner
        inner = scope  # a framework route would run here; with wrap it never sees the socket
        for route in endpoint.routes():
            if getattr(route, "path", None) == "/socket/websocket" and hasattr(route, "app"):
                await route.app(scope, receive, send)
                return

    app = endpoint.wrap(framework) if wrapped else framework
    scope = {
        "type": "websocket",
        "path": "/socket/websocket",
        "query_string": b"vsn=2.0.0",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 5000),
    }
    events = iter([{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}])
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        return next(events)

    async def send_message(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send_message)
    assert sent[0]["type"] == "websocket.accept"
    assert scope["headers"] == ([] if wrapped else [(b"host", b"127.0.0.1")])
    assert (inner is None) is wrapped

"""The wire path: a broadcast framed once for every socket, coalesced writes, slow consumers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from relaygate.channels import Endpoint, Session
from relaygate.protocol import V1, V2, Frame, Serializer
from relaygate.protocol.websocket import frame_message
from relaygate.pubsub import Broadcast, MemoryPubSub
from tests.channels.support import EndpointFactory, make_socket, serve


class WireRecorder:
    """A wire transport (takes WebSocket frame bytes) that records every write call."""

    wire = True

    def __init__(self) -> None:
        self.writes: list[list[Frame]] = []

    def write(self, frames: list[Frame]) -> None:
        self.writes.append(list(frames))

    def close(self, code: int, reason: str) -> None:
        return None


async def joined_sessions(
    endpoint: Endpoint, count: int, serializer: Serializer = V2
) -> list[tuple[Session, WireRecorder]]:
    sessions = []
    for _ in range(count):
        transport = WireRecorder()
        session = Session(endpoint, make_socket(), serializer, {"user_id": None}, None, None, transport)
        await session.start()
        join = (
            '["1","1","room:1","phx_join",{}]'
            if serializer is V2
            else '{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}'
        )
        session.feed(join)
        sessions.append((session, transport))
    async with asyncio.timeout(5):
        while not all(t.writes for _, t in sessions):
            await asyncio.sleep(0)
    return sessions


async def test_a_broadcast_is_framed_once_and_the_same_bytes_reach_every_socket() -> None:
    endpoint = Endpoint(MemoryPubSub())
    v2 = await joined_sessions(endpoint, 3)
    v1 = await joined_sessions(endpoint, 2, V1)
    await endpoint.broadcast("room:1", "new", {"body": "hi"})
    await asyncio.sleep(0)
    v2_frames = [t.writes[-1] for _, t in v2]
    v1_frames = [t.writes[-1] for _, t in v1]
    assert all(len(w) == 1 for w in v2_frames + v1_frames)
    assert v2_frames[0][0] == frame_message(V2.broadcast("room:1", "new", {"body": "hi"}))
    assert all(w[0] is v2_frames[0][0] for w in v2_frames)  # one bytes object for every V2 socket
    assert all(w[0] is v1_frames[0][0] for w in v1_frames)
    for session, _ in v2 + v1:
        await session.finish()


async def test_frames_to_one_socket_in_one_iteration_leave_in_order_in_one_write() -> None:
    endpoint = Endpoint(MemoryPubSub())
    [(session, transport)] = await joined_sessions(endpoint, 1)
    before = len(transport.writes)
    for n in range(5):
        await endpoint.broadcast("room:1", "n", {"n": n})  # MemoryPubSub never suspends
        session.feed(f'[null,"h{n}","phoenix","heartbeat",{{}}]')
    await asyncio.sleep(0)
    assert len(transport.writes) == before + 1
    frames = transport.writes[-1]
    expected = []
    for n in range(5):
        expected.append(frame_message(V2.broadcast("room:1", "n", {"n": n})))
        expected.append(frame_message(V2.reply(None, f"h{n}", "phoenix", "ok", {})))
    assert frames == expected
    await session.finish()


async def test_a_broadcast_may_carry_a_ref_for_history() -> None:
    endpoint = Endpoint(MemoryPubSub())
    [(v2, t2)] = await joined_sessions(endpoint, 1)
    [(v1, t1)] = await joined_sessions(endpoint, 1, V1)
    endpoint.pubsub.dispatch(Broadcast("room:1", "new", {"a": 1}, ref="17-0"))
    await asyncio.sleep(0)
    assert t2.writes[-1] == [frame_message(orjson.dumps([None, "17-0", "room:1", "new", {"a": 1}]).decode())]
    v1_frame: Any = orjson.loads(t1.writes[-1][0][2:])
    assert v1_frame == {"topic": "room:1", "event": "new", "payload": {"a": 1}, "ref": "17-0"}
    await v2.finish()
    await v1.finish()


async def test_frames_arrive_in_order_over_a_real_socket(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    async with serve(endpoint) as url, connect(f"{url}/socket/websocket?vsn=2.0.0") as ws:
        await ws.send('["1","1","room:1","phx_join",{}]')
        assert orjson.loads(await ws.recv())[3] == "phx_reply"
        for n in range(200):
            await endpoint.broadcast("room:1", "n", {"n": n})
        received = [orjson.loads(await asyncio.wait_for(ws.recv(), 5))[4]["n"] for _ in range(200)]
        assert received == list(range(200))


async def _exchange(url: str, *pieces: bytes, until: bytes = b"\r\n\r\n") -> bytes:
    """Send ``pieces`` one write at a time (each drained before the next) and read up to ``until``."""
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        return await asyncio.wait_for(reader.readuntil(until), 5)
    finally:
        writer.close()


UPGRADE = (
    b"GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_an_upgrade_split_across_reads_is_served_by_the_front_protocol(
    make_endpoint: EndpointFactory,
) -> None:
    async with serve(make_endpoint()) as url:
        head = await _exchange(url, UPGRADE[:1], UPGRADE[1:17], UPGRADE[17:40], UPGRADE[40:])
    assert head.startswith(b"HTTP/1.1 101 ") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head


async def test_the_front_protocol_hands_every_other_connection_to_http(
    make_endpoint: EndpointFactory,
) -> None:
    async with serve(make_endpoint(), wrap=True) as url:
        base = url.replace("ws://", "http://")
        async with httpx.AsyncClient() as http:
            assert (await http.get(base + "/nothing")).status_code == 404
            assert (await http.post(base + "/socket/websocket", content=b"x" * 100_000)).status_code == 400
            assert (await http.get(base + "/socket/websocket")).status_code == 400  # GET, not an upgrade
        # A keep-alive connection that upgrades after a plain request: uvicorn parses the second
        # request and hands it to the endpoint's WebSocket protocol.
        plain = b"GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n"
        head = await _exchange(url, plain + UPGRADE, until=b"Sec-WebSocket-Accept")
        assert head.startswith(b"HTTP/1.1 404 ") and b"HTTP/1.1 101 " in head
        # A version the endpoint does not speak is still refused by the endpoint itself.
        old = UPGRADE.replace(b"Version: 13", b"Version: 8")
        assert (await _exchange(url, old)).startswith(b"HTTP/1.1 426 ")


class FakeTransport:
    """Records what a protocol writes and which protocol the transport was handed to."""

    def __init__(self) -> None:
        self.written = b""
        self.protocol: Any = None
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


class FakeHttp(asyncio.Protocol):
    """Stands in for uvicorn's HTTP protocol: remembers what it was given."""

    def __init__(self, **options: Any) -> None:
        self.received = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data


class ServerState:
    def __init__(self) -> None:
        self.connections: set[Any] = set()
        self.tasks: set[Any] = set()
        self.default_headers: list[tuple[bytes, bytes]] = []


def front(endpoint: Endpoint, *pieces: bytes) -> tuple[Any, FakeTransport, ServerState]:
    state = ServerState()
    protocol = endpoint.http_protocol(FakeHttp)(config=None, server_state=state, app_state={})
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for piece in pieces:  # as a transport does: to the protocol it has now
        (transport.protocol or protocol).data_received(piece)
    return protocol, transport, state


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /socket/websocket HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
        b"GET /other HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /socket/websocket HTTP/1.1\r\nHost: h\r\n\r\n",  # on our path, but not an upgrade
        UPGRADE.replace(b"/socket/websocket", b"/elsewhere"),  # another WebSocket route of the app
        b"\x16\x03\x01garbage",
    ],
)
async def test_front_hands_anything_but_an_upgrade_of_its_paths_to_http_untouched(
    make_endpoint: EndpointFactory, request_bytes: bytes
) -> None:
    endpoint = make_endpoint()
    for split in (len(request_bytes), 1, 3, 20):
        _, transport, state = front(endpoint, request_bytes[:split], request_bytes[split:])
        http = transport.protocol
        assert isinstance(http, FakeHttp) and http.transport is transport
        assert http.received == request_bytes and transport.written == b""
        assert not state.connections  # the HTTP protocol registers itself with uvicorn


async def test_front_answers_an_upgrade_of_its_paths_however_it_is_split(
    make_endpoint: EndpointFactory,
) -> None:
    endpoint = make_endpoint()
    for split in (1, 3, 16, 60, len(UPGRADE) - 1):
        protocol, transport, state = front(endpoint, UPGRADE[:split], UPGRADE[split:])
        async with asyncio.timeout(5):
            while not transport.written:
                await asyncio.sleep(0)
        assert transport.protocol is None and state.connections == {protocol}
        assert transport.written.startswith(b"HTTP/1.1 101 ")
        protocol.connection_lost(None)
    bad_key = UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short")
    _, transport, _ = front(endpoint, bad_key)
    assert transport.protocol is None and transport.written.startswith(b"HTTP/1.1 400 ")

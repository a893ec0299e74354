"""The wire path: a broadcast framed once for every socket, coalesced writes, slow consumers."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
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

"""ChannelSocket's inbox: one callback at a time per channel, each in a task of its own.

Where asyncio starts tasks eagerly (3.12+), a push runs before ``Session.feed`` returns; these
tests pin what must hold either way.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from relaygate.channels import Channel, ChannelSocket, Endpoint, Reply, Session, Socket
from relaygate.protocol import V2, Frame
from relaygate.pubsub import MemoryPubSub


class RecordingTransport:
    wire = False

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []

    def write(self, frames: list[Frame]) -> None:
        self.frames.extend(json.loads(frame) for frame in frames)

    def close(self, code: int, reason: str) -> None:
        return None


class OrderChannel(Channel):
    """Fails loudly if two callbacks of one channel overlap; queues info to itself from handle_in."""

    def __init__(self) -> None:
        self.busy: set[int] = set()
        self.overlaps = 0
        self.gate = asyncio.Event()

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        return Reply.ok()

    async def _enter(self, socket: ChannelSocket) -> None:
        if id(socket) in self.busy:
            self.overlaps += 1
        self.busy.add(id(socket))

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        await self._enter(socket)
        try:
            socket.send_info(event)
            if event == "wait":
                task = asyncio.current_task()
                async with asyncio.timeout(5):  # must target this callback's task, never the reader's
                    await self.gate.wait()
                assert asyncio.current_task() is task
            await socket.push("in", {"e": event})
            return Reply.ok({"e": event})
        finally:
            self.busy.discard(id(socket))

    async def handle_info(self, message: Any, socket: ChannelSocket) -> None:
        await self._enter(socket)
        self.busy.discard(id(socket))
        await socket.push("info", {"e": message})


async def joined(channel: OrderChannel) -> tuple[Session, RecordingTransport]:
    socket = Socket("/socket")
    socket.channel("order:*", channel)
    endpoint = Endpoint(MemoryPubSub(), idle_timeout=None)
    transport = RecordingTransport()
    session = Session(endpoint, socket, V2, {}, None, None, transport)
    await session.start()
    session.feed(json.dumps(["1", "1", "order:a", "phx_join", {}]))
    await until(lambda: len(transport.frames) == 1)
    return session, transport


async def until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


def events(transport: RecordingTransport) -> list[tuple[str, Any]]:
    return [
        (frame[3], frame[4].get("e", frame[4].get("response", {}).get("e"))) for frame in transport.frames[1:]
    ]


def assert_ordered(seen: list[tuple[str, Any]], pushed: list[str]) -> None:
    """Pushes are handled in arrival order, and each info after the push that queued it."""
    for kind in ("in", "phx_reply", "info"):
        assert [e for k, e in seen if k == kind] == pushed
    for event in pushed:
        assert seen.index(("in", event)) < seen.index(("phx_reply", event)) < seen.index(("info", event))


async def test_callbacks_of_one_channel_never_overlap_and_keep_order() -> None:
    channel = OrderChannel()
    session, transport = await joined(channel)
    for event in ("a", "b", "c"):
        session.feed(json.dumps(["1", event, "order:a", event, {}]))
    await until(lambda: len(transport.frames) == 10)
    assert channel.overlaps == 0
    assert_ordered(events(transport), ["a", "b", "c"])
    await session.finish()


async def test_suspended_callback_blocks_neither_the_reader_nor_other_frames() -> None:
    channel = OrderChannel()
    session, transport = await joined(channel)
    session.feed(json.dumps(["1", "w", "order:a", "wait", {}]))
    session.feed(json.dumps([None, "hb", "phoenix", "heartbeat", {}]))
    session.feed(json.dumps(["1", "x", "order:a", "x", {}]))
    await until(lambda: len(transport.frames) == 2)
    assert transport.frames[1][2] == "phoenix"  # answered while the channel waits
    channel.gate.set()
    await until(lambda: len(transport.frames) == 8)
    assert_ordered(events(transport)[1:], ["wait", "x"])
    assert channel.overlaps == 0
    await session.finish()

"""A ``handle_in`` that is a plain function: answered at once when the channel is idle, in order always.

The session is driven sans-I/O: ``feed`` a frame, then ``flush`` by hand; a reply present right
after the flush, with no await in between, was built without a task.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

import pytest

from relaygate.channels import Channel, ChannelSocket, Endpoint, Reply, ReplyRef, Session, Socket, Stop
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


class SyncChannel(Channel):
    """``ping`` answers at once; ``slow`` returns a coroutine that waits for ``gate``."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.joining = asyncio.Event()
        self.ended: list[str] = []
        self.refs: list[ReplyRef] = []

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        if payload.get("hold"):
            await self.joining.wait()
        return Reply.ok()

    def handle_in(
        self, event: str, payload: Any, socket: ChannelSocket
    ) -> Reply | Stop | Awaitable[Reply | Stop | None] | None:
        if event == "ping":
            return Reply.ok(payload)
        if event == "ref":
            self.refs.append(socket.reply_ref())
            return None
        if event == "slow":
            return self._slow(payload, socket)
        if event == "stop":
            return Stop("normal", Reply.ok({"bye": True}))
        if event == "raise":
            raise RuntimeError("handler bug")
        return "not a reply"  # type: ignore[return-value]

    async def _slow(self, payload: Any, socket: ChannelSocket) -> Reply:
        assert socket.reply_ref().ref == "s"  # the push's ref is still known after the first await
        await self.gate.wait()
        return Reply.ok(payload)

    async def terminate(self, reason: str, socket: ChannelSocket) -> None:
        self.ended.append(reason)


async def joined(
    channel: SyncChannel, join_payload: dict[str, Any] | None = None
) -> tuple[Session, RecordingTransport]:
    socket = Socket("/socket")
    socket.channel("sync:*", channel)
    endpoint = Endpoint(MemoryPubSub(), idle_timeout=None)
    transport = RecordingTransport()
    session = Session(endpoint, socket, V2, {}, None, None, transport)
    await session.start()
    session.feed(json.dumps(["1", "1", "sync:a", "phx_join", join_payload or {}]))
    if not (join_payload or {}).get("hold"):
        await until(lambda: len(transport.frames) == 1)
    return session, transport


async def until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


def push(session: Session, ref: str, event: str, payload: Any = None) -> None:
    session.feed(json.dumps(["1", ref, "sync:a", event, {} if payload is None else payload]))


async def test_a_sync_reply_is_queued_before_feed_returns() -> None:
    session, transport = await joined(SyncChannel())
    push(session, "2", "ping", {"n": 7})
    session.flush()  # no await since the feed: no task ran
    assert transport.frames[1] == ["1", "2", "sync:a", "phx_reply", {"status": "ok", "response": {"n": 7}}]
    await session.finish()


async def test_reply_ref_is_known_inside_a_sync_handler() -> None:
    channel = SyncChannel()
    session, _ = await joined(channel)
    push(session, "9", "ref")
    assert channel.refs == [ReplyRef("1", "9", "sync:a")]
    await session.finish()


async def test_a_returned_coroutine_keeps_later_pushes_behind_it() -> None:
    channel = SyncChannel()
    session, transport = await joined(channel)
    push(session, "s", "slow", {"n": 1})
    push(session, "p", "ping", {"n": 2})  # the channel is busy: queued, not answered at once
    session.flush()
    await asyncio.sleep(0)
    assert len(transport.frames) == 1
    channel.gate.set()
    await until(lambda: len(transport.frames) == 3)
    assert [frame[1] for frame in transport.frames[1:]] == ["s", "p"]
    await session.finish()


async def test_pushes_during_the_join_are_answered_after_its_reply() -> None:
    channel = SyncChannel()
    session, transport = await joined(channel, {"hold": True})
    push(session, "2", "ping")
    push(session, "3", "ping")
    await asyncio.sleep(0)
    channel.joining.set()
    await until(lambda: len(transport.frames) == 3)
    assert [frame[1] for frame in transport.frames] == ["1", "2", "3"]
    await session.finish()


async def test_a_sync_stop_replies_then_closes_and_terminates_once() -> None:
    channel = SyncChannel()
    session, transport = await joined(channel)
    push(session, "2", "stop")
    push(session, "3", "ping")  # the channel is gone: unmatched topic
    await until(lambda: len(transport.frames) == 4)
    reply, unmatched, close = transport.frames[1:]
    assert reply == ["1", "2", "sync:a", "phx_reply", {"status": "ok", "response": {"bye": True}}]
    assert unmatched[1] == "3" and unmatched[4]["status"] == "error"
    assert close == ["1", "1", "sync:a", "phx_close", {}]
    assert channel.ended == ["normal"]
    await session.finish()
    assert channel.ended == ["normal"]


@pytest.mark.parametrize("event", ["raise", "bad"])
async def test_a_sync_handler_that_raises_or_returns_garbage_crashes_the_channel(
    event: str, caplog: pytest.LogCaptureFixture
) -> None:
    channel = SyncChannel()
    session, transport = await joined(channel)
    with caplog.at_level(logging.ERROR, "relaygate.channels"):
        push(session, "2", event)
        await until(lambda: len(transport.frames) == 2)
    assert transport.frames[1] == ["1", "1", "sync:a", "phx_error", {"reason": "channel_crash"}]
    assert channel.ended == ["crash"]
    assert "channel sync:a crashed" in caplog.text
    await session.finish()

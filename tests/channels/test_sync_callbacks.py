"""Callbacks that are plain functions: ``join`` and ``handle_in`` answered without a task when
nothing must wait, in order always.

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
from relaygate.history import Keep
from relaygate.protocol import V2
from relaygate.pubsub import MemoryPubSub
from tests.channels.test_channel_socket import RecordingTransport, until


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


FEED = ["feed"]


@pytest.fixture(autouse=True, params=["feed", "feed_text"])
def feeding(request: pytest.FixtureRequest) -> None:
    """Every test twice: pushes fed as ``str`` (``feed``), and as the wire transport feeds them
    (``feed_text`` with the frame's bytes, ``feed`` only for what the fast path declines)."""
    FEED[0] = request.param


def push(session: Session, ref: str, event: str, payload: Any = None) -> None:
    text = json.dumps(["1", ref, "sync:a", event, {} if payload is None else payload])
    if FEED[0] == "feed" or not session.feed_text(text.encode()):
        session.feed(text)


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


class SyncJoinChannel(Channel):
    """A plain-function join: ``refuse`` and ``raise`` in the payload, ``info`` queues handle_info."""

    def __init__(self) -> None:
        self.infos: list[Any] = []

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        if payload.get("raise"):
            raise RuntimeError("join bug")
        if payload.get("refuse"):
            return Reply.error({"reason": "no"})
        if payload.get("info"):
            socket.send_info("after join")
        return Reply.ok({"joined": topic})

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        return Reply.ok(payload)

    async def handle_info(self, message: Any, socket: ChannelSocket) -> None:
        self.infos.append(message)
        await socket.push("info", {"m": message})


class ConfirmingPubSub(MemoryPubSub):
    """A subscribe that waits (as a cluster adapter waits for its confirmation)."""

    def __init__(self) -> None:
        super().__init__()
        self.confirm = asyncio.Event()

    async def subscribe(self, topic: str, subscriber: Any) -> None:
        await super().subscribe(topic, subscriber)
        await self.confirm.wait()


def session_of(
    channel: Channel, pubsub: MemoryPubSub | None = None, history: bool = False
) -> tuple[Session, RecordingTransport]:
    socket = Socket("/socket")
    socket.channel("sync:*", channel, history=Keep(10, 60) if history else None)
    endpoint = Endpoint(pubsub or MemoryPubSub(), idle_timeout=None)
    endpoint.add_socket(socket)
    transport = RecordingTransport()
    return Session(endpoint, socket, V2, {}, None, None, transport), transport


def join(session: Session, payload: dict[str, Any]) -> None:
    session.feed(json.dumps(["1", "1", "sync:a", "phx_join", payload]))


async def test_a_sync_join_is_answered_and_subscribed_before_feed_returns() -> None:
    session, transport = session_of(SyncJoinChannel())
    await session.start()
    join(session, {})
    await session.endpoint.broadcast("sync:a", "news", {"n": 1})
    session.flush()  # no await since the feed but the broadcast's: no task ran the join
    assert transport.frames == [
        ["1", "1", "sync:a", "phx_reply", {"status": "ok", "response": {"joined": "sync:a"}}],
        [None, None, "sync:a", "news", {"n": 1}],
    ]
    await session.finish()


async def test_what_a_sync_join_queues_runs_after_its_reply() -> None:
    channel = SyncJoinChannel()
    session, transport = session_of(channel)
    await session.start()
    join(session, {"info": True})
    push(session, "2", "echo", {"e": 1})
    await until(lambda: len(transport.frames) == 3)
    assert [frame[3] for frame in transport.frames] == ["phx_reply", "info", "phx_reply"]
    assert channel.infos == ["after join"]
    await session.finish()


async def test_a_sync_refusal_answers_at_once_and_forgets_the_channel() -> None:
    session, transport = session_of(SyncJoinChannel())
    await session.start()
    join(session, {"refuse": True})
    push(session, "2", "echo")
    session.flush()
    assert transport.frames[0] == [
        "1",
        "1",
        "sync:a",
        "phx_reply",
        {"status": "error", "response": {"reason": "no"}},
    ]
    assert transport.frames[1][4] == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert session.endpoint.pubsub.subscriber_count("sync:a") == 0
    await session.finish()


async def test_a_sync_join_that_raises_is_answered_join_crashed(caplog: pytest.LogCaptureFixture) -> None:
    session, transport = session_of(SyncJoinChannel())
    await session.start()
    with caplog.at_level(logging.ERROR, "relaygate.channels"):
        join(session, {"raise": True})
    session.flush()
    assert transport.frames == [
        ["1", "1", "sync:a", "phx_reply", {"status": "error", "response": {"reason": "join crashed"}}]
    ]
    assert "join of sync:a crashed" in caplog.text
    await session.finish()


async def test_a_sync_join_waits_for_a_subscription_that_must_be_confirmed() -> None:
    pubsub = ConfirmingPubSub()
    session, transport = session_of(SyncJoinChannel(), pubsub)
    await session.start()
    join(session, {"info": True})
    push(session, "2", "echo")
    await asyncio.sleep(0)
    session.flush()
    assert transport.frames == []  # not joined before the subscription is confirmed
    pubsub.confirm.set()
    await until(lambda: len(transport.frames) == 3)
    assert [frame[3] for frame in transport.frames] == ["phx_reply", "info", "phx_reply"]
    assert transport.frames[0][4]["response"] == {"joined": "sync:a"}
    await session.finish()


async def test_a_sync_join_on_a_history_topic_reads_it_and_answers_its_position() -> None:
    session, transport = session_of(SyncJoinChannel(), history=True)
    await session.start()
    await session.endpoint.broadcast("sync:a", "old", {"n": 1})
    join(session, {"since": "x"})
    await until(lambda: len(transport.frames) == 1)
    response = transport.frames[0][4]["response"]
    assert response["joined"] == "sync:a" and "position" in response and response["recovered"] is False
    await session.finish()


async def test_feed_text_takes_pushes_to_joined_channels_only() -> None:
    session, transport = await joined(SyncChannel())
    assert session.feed_text(json.dumps(["1", "2", "sync:a", "ping", {"n": 1}]).encode())
    assert not session.feed_text(json.dumps([None, "3", "phoenix", "heartbeat", {}]).encode())
    assert not session.feed_text(json.dumps(["4", "4", "sync:b", "phx_join", {}]).encode())
    assert not session.feed_text(b"not json")
    session.flush()
    assert transport.frames[1:] == [["1", "2", "sync:a", "phx_reply", {"status": "ok", "response": {"n": 1}}]]
    await session.finish()

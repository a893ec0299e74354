"""A ``handle_info`` that is a plain function: what a join or push called at once queued runs
at once too (no task), in order, and the usual after-join step (track, push ``presence_state``)
leaves with the join reply. A leave of an idle channel ends it at once when nothing in its
cleanup must wait.

Driven sans-I/O as in ``test_sync_callbacks``: ``feed``, then ``flush`` by hand; frames present
right after the flush, with no await in between, were produced without a task.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

import pytest

from relaygate.channels import Channel, ChannelSocket, Endpoint, Reply, Session, Socket, Stop
from relaygate.presence import MemoryPresence
from relaygate.protocol import V2
from relaygate.pubsub import MemoryPubSub, PubSub
from tests.channels.test_channel_socket import until


class WriteRecorder:
    """A transport that keeps each write (one list of frames per call)."""

    wire = False

    def __init__(self) -> None:
        self.writes: list[list[list[Any]]] = []

    @property
    def frames(self) -> list[list[Any]]:
        return [frame for write in self.writes for frame in write]

    def write(self, frames: list[Any]) -> None:
        self.writes.append([json.loads(frame) for frame in frames])

    def close(self, code: int, reason: str) -> None:
        return None


class InfoChannel(Channel):
    """Plain join and handle_in that queue ``send_info``; a plain handle_info whose behaviour
    the message picks: push, track, stop, raise, or return a coroutine waiting for ``gate``."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.ended: list[str] = []

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        for message in payload.get("infos", ()):
            socket.send_info(message)
        return Reply.ok()

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        socket.send_info(payload["info"])
        return Reply.ok()

    def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | Awaitable[None] | None:
        if message == "track":
            socket.track_now(str(socket.assigns["user"]), {"at": 1})
            socket.push_now("presence_state", socket.endpoint.require_presence().state(socket.topic))
        elif message == "stop":
            return Stop("normal")
        elif message == "raise":
            raise RuntimeError("info bug")
        elif message == "wait":
            return self._wait(socket)
        else:
            socket.push_now("info", {"m": message})
        return None

    async def _wait(self, socket: ChannelSocket) -> None:
        await self.gate.wait()
        await socket.push("info", {"m": "waited"})

    async def terminate(self, reason: str, socket: ChannelSocket) -> None:
        self.ended.append(reason)


async def started(
    channel: Channel, user: str = "u1", pubsub: PubSub | None = None
) -> tuple[Session, WriteRecorder, Endpoint]:
    pubsub = pubsub or MemoryPubSub()
    socket = Socket("/socket")
    socket.channel("info:*", channel)
    endpoint = Endpoint(pubsub, MemoryPresence(pubsub), idle_timeout=None)
    endpoint.add_socket(socket)
    transport = WriteRecorder()
    session = Session(endpoint, socket, V2, {"user": user}, None, None, transport)
    await session.start()
    return session, transport, endpoint


def join(session: Session, *infos: str) -> None:
    session.feed(json.dumps(["1", "1", "info:a", "phx_join", {"infos": list(infos)}]))


def events(transport: WriteRecorder) -> list[str]:
    return [frame[3] for frame in transport.frames]


async def test_infos_queued_by_a_sync_join_run_at_once_in_order_with_the_reply() -> None:
    session, transport, _ = await started(InfoChannel())
    join(session, "one", "two")
    session.flush()  # no await since the feed: no task ran the infos
    assert len(transport.writes) == 1  # the reply and the pushes in one write
    assert [(f[3], f[4].get("m")) for f in transport.frames] == [
        ("phx_reply", None),
        ("info", "one"),
        ("info", "two"),
    ]
    await session.finish()


async def test_track_and_presence_state_leave_with_the_join_reply() -> None:
    session, transport, endpoint = await started(InfoChannel())
    join(session, "track")
    session.flush()
    assert events(transport) == ["phx_reply", "presence_state"]
    assert len(transport.writes) == 1
    state = transport.frames[1][4]
    assert state == endpoint.require_presence().list("info:a")
    assert list(state) == ["u1"] and state["u1"]["metas"][0]["at"] == 1
    await session.finish()
    assert endpoint.require_presence().list("info:a") == {}  # released with the channel


async def test_an_info_queued_by_a_sync_push_runs_before_the_next_push() -> None:
    session, transport, _ = await started(InfoChannel())
    join(session)
    session.feed(json.dumps(["1", "2", "info:a", "go", {"info": "pushed"}]))
    session.feed(json.dumps(["1", "3", "info:a", "go", {"info": "again"}]))
    session.flush()
    assert [(f[3], f[4].get("m")) for f in transport.frames] == [
        ("phx_reply", None),
        ("phx_reply", None),
        ("info", "pushed"),
        ("phx_reply", None),
        ("info", "again"),
    ]
    await session.finish()


async def test_a_returned_coroutine_runs_in_the_inbox_ahead_of_later_infos() -> None:
    channel = InfoChannel()
    session, transport, _ = await started(channel)
    join(session, "wait", "after")
    session.flush()
    assert events(transport) == ["phx_reply"]  # "after" waits behind the coroutine
    channel.gate.set()
    await until(lambda: len(transport.frames) == 3)
    assert [f[4].get("m") for f in transport.frames[1:]] == ["waited", "after"]
    await session.finish()


async def test_a_sync_stop_closes_the_channel_after_the_reply() -> None:
    channel = InfoChannel()
    session, transport, _ = await started(channel)
    join(session, "stop", "never")
    await until(lambda: len(transport.frames) == 2)
    assert events(transport) == ["phx_reply", "phx_close"]
    assert channel.ended == ["normal"]
    await session.finish()


async def test_a_sync_info_that_raises_crashes_only_its_channel(caplog: pytest.LogCaptureFixture) -> None:
    channel = InfoChannel()
    session, transport, _ = await started(channel)
    with caplog.at_level(logging.ERROR, "relaygate.channels"):
        join(session, "raise", "never")
        await until(lambda: len(transport.frames) == 2)
    assert events(transport) == ["phx_reply", "phx_error"]
    assert channel.ended == ["crash"]
    assert "channel info:a crashed" in caplog.text
    session.feed(json.dumps(["1", "5", "info:b", "phx_join", {}]))  # the connection lives on
    await until(lambda: len(transport.frames) == 3)
    assert transport.frames[2][4]["status"] == "ok"
    await session.finish()


async def test_an_async_handle_info_still_runs_in_the_task() -> None:
    class AsyncInfo(InfoChannel):
        async def handle_info(self, message: Any, socket: ChannelSocket) -> None:  # type: ignore[override]
            await asyncio.sleep(0)
            await socket.push("info", {"m": message})

    session, transport, _ = await started(AsyncInfo())
    join(session, "one")
    session.flush()
    assert events(transport) == ["phx_reply"]
    await until(lambda: len(transport.frames) == 2)
    assert transport.frames[1][4] == {"m": "one"}
    await session.finish()


class PlainEnd(InfoChannel):
    def terminate(self, reason: str, socket: ChannelSocket) -> None:  # type: ignore[override]
        self.ended.append(reason)


def leave(session: Session) -> None:
    session.feed(json.dumps(["1", "9", "info:a", "phx_leave", {}]))


async def test_a_leave_ends_an_idle_channel_before_feed_returns() -> None:
    channel = PlainEnd()
    session, transport, endpoint = await started(channel)
    join(session, "track")
    session.flush()
    leave(session)
    session.flush()  # no await since the feed: no task ran the leave
    assert events(transport)[2:] == ["phx_reply", "phx_close"]
    assert len(transport.writes) == 2  # the reply and the close in one write
    assert transport.frames[2][1] == "9" and transport.frames[2][4]["status"] == "ok"
    assert channel.ended == ["left"]
    assert endpoint.require_presence().list("info:a") == {}  # released at once
    assert endpoint.pubsub.subscriber_count("info:a") == 0
    join(session)  # the topic can be joined again at once
    session.flush()
    assert events(transport)[-1] == "phx_reply" and transport.frames[-1][4]["status"] == "ok"
    await session.finish()


async def test_an_async_terminate_runs_in_a_task_before_the_close() -> None:
    channel = InfoChannel()  # async terminate
    session, transport, endpoint = await started(channel)
    join(session, "track")
    leave(session)
    session.flush()
    assert events(transport) == ["phx_reply", "presence_state", "phx_reply"]  # the leave's reply at once
    await until(lambda: len(transport.frames) == 4)
    assert events(transport)[3] == "phx_close"
    assert channel.ended == ["left"]
    assert endpoint.require_presence().list("info:a") == {}
    await session.finish()


class WaitingUnsubscribe(MemoryPubSub):
    """An unsubscribe that must be awaited (as a cluster adapter's last one)."""

    async def unsubscribe(self, topic: str, subscriber: object) -> None:
        await asyncio.sleep(0)
        await super().unsubscribe(topic, subscriber)  # type: ignore[arg-type]


async def test_a_leave_whose_unsubscribe_must_wait_goes_through_the_task() -> None:
    channel = PlainEnd()
    session, transport, endpoint = await started(channel, pubsub=WaitingUnsubscribe())
    join(session)
    leave(session)
    session.flush()
    assert events(transport) == ["phx_reply"]  # the leave waits for its task
    await until(lambda: len(transport.frames) == 3)
    assert events(transport)[1:] == ["phx_reply", "phx_close"]
    assert channel.ended == ["left"]
    assert endpoint.pubsub.subscriber_count("info:a") == 0
    await session.finish()

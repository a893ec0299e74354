"""The Flusher: each queued session flushed once, in order, a bounded number per loop iteration."""

from __future__ import annotations

import asyncio

import pytest

from relaygate.channels import Endpoint, Session, outbound
from relaygate.channels.outbound import Flusher
from relaygate.protocol import V2
from relaygate.pubsub import MemoryPubSub
from tests.channels.support import make_socket
from tests.channels.test_session import RecordingTransport


class Counted:
    def __init__(self, name: int, log: list[int]) -> None:
        self.name = name
        self.log = log

    def flush(self) -> int:
        self.log.append(self.name)
        return 1


async def test_a_long_queue_is_flushed_a_chunk_per_iteration_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbound, "FLUSH_CHUNK", 10)
    flusher = Flusher()
    log: list[int] = []
    for name in range(25):
        flusher.add(Counted(name, log))
    await asyncio.sleep(0)
    assert log == list(range(10))
    await asyncio.sleep(0)
    assert log == list(range(20))
    await asyncio.sleep(0)
    assert log == list(range(25))
    flusher.add(Counted(99, log))  # the queue is empty again: a new callback is scheduled
    await asyncio.sleep(0)
    assert log == [*range(25), 99]


async def test_frames_queued_while_a_session_waits_for_its_chunk_join_its_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbound, "FLUSH_CHUNK", 1)
    first, second = RecordingTransport(), RecordingTransport()
    endpoint = Endpoint(MemoryPubSub())
    one, two = (
        Session(endpoint, make_socket(), V2, {"user_id": None}, None, None, t) for t in (first, second)
    )
    await one.start()
    await two.start()
    one.send("a1")
    two.send("b1")
    await asyncio.sleep(0)  # the first chunk: session one only
    assert first.writes == [["a1"]] and second.writes == []
    one.send("a2")
    two.send("b2")
    await asyncio.sleep(0)  # session two's turn: both of its frames in one write
    assert second.writes == [["b1", "b2"]]
    await asyncio.sleep(0)
    assert first.writes == [["a1"], ["a2"]]
    await one.finish()
    await two.finish()

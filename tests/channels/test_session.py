"""Session outbound path: coalesced flushes, pause/resume bounds, failing transports (no network)."""

from __future__ import annotations

import asyncio

from relaygate.channels import Endpoint, Session
from relaygate.protocol import V2, Frame
from relaygate.pubsub import MemoryPubSub
from relaygate.telemetry.metrics import REGISTRY
from tests.channels.support import make_socket


class RecordingTransport:
    """Records each write call (a list of frames) and the close."""

    wire = False

    def __init__(self) -> None:
        self.writes: list[list[Frame]] = []
        self.closed: tuple[int, str] | None = None

    @property
    def frames(self) -> list[Frame]:
        return [frame for write in self.writes for frame in write]

    def write(self, frames: list[Frame]) -> None:
        self.writes.append(list(frames))

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class FailingTransport(RecordingTransport):
    def write(self, frames: list[Frame]) -> None:
        raise ConnectionResetError("gone")


async def session_with(transport: RecordingTransport, **options: int) -> tuple[Endpoint, Session]:
    endpoint = Endpoint(MemoryPubSub(), **options)  # type: ignore[arg-type]
    session = Session(endpoint, make_socket(), V2, {"user_id": None}, None, None, transport)
    await session.start()
    return endpoint, session


async def test_frames_of_one_iteration_leave_in_order_in_one_write() -> None:
    transport = RecordingTransport()
    _, session = await session_with(transport)
    for frame in ("a", "b", "c"):
        session.send(frame)
    assert transport.writes == []  # nothing is written before the flush
    await asyncio.sleep(0)
    assert transport.writes == [["a", "b", "c"]]
    session.send("d")
    await asyncio.sleep(0)
    assert transport.writes == [["a", "b", "c"], ["d"]]
    await session.finish()


async def test_paused_transport_queues_then_resumes_in_order() -> None:
    transport = RecordingTransport()
    _, session = await session_with(transport)
    session.pause_writing()
    for frame in ("a", "b"):
        session.send(frame)
    await asyncio.sleep(0.01)
    assert transport.writes == []
    session.resume_writing()
    session.send("c")
    await asyncio.sleep(0)
    assert transport.frames == ["a", "b", "c"]
    await session.finish()


async def test_queue_bound_while_paused_closes_slow_consumer_1008() -> None:
    transport = RecordingTransport()
    endpoint, session = await session_with(transport, max_queue_frames=3)
    session.send("0")
    await asyncio.sleep(0)
    session.pause_writing()
    for n in range(1, 6):
        session.send(str(n))
    assert endpoint.slow_consumers == 1 and session.closing
    await asyncio.sleep(0)
    assert transport.closed == (1008, "slow consumer")  # sent even though the transport is paused
    assert transport.frames == ["0"]  # the queued ones were dropped
    await session.finish()


async def test_close_follows_the_queued_frames() -> None:
    transport = RecordingTransport()
    _, session = await session_with(transport)
    session.send("a")
    session.drain()
    session.send("b")  # after the close: dropped
    await asyncio.sleep(0)
    assert transport.frames == ["a"] and transport.closed == (1012, "server restart")
    await session.finish()


async def test_finish_drops_what_is_queued() -> None:
    transport = RecordingTransport()
    endpoint, session = await session_with(transport)
    session.send("a")
    await session.finish()
    await session.finish()  # idempotent
    await asyncio.sleep(0)
    assert endpoint.sessions == set() and transport.writes == [] and transport.closed is None


async def test_failing_transport_stops_sending() -> None:
    transport = FailingTransport()
    _, session = await session_with(transport)
    session.send("a")
    await asyncio.sleep(0)
    assert session.closing
    session.send("b")
    await session.finish()


async def test_received_frames_are_all_counted_once_the_connection_closes() -> None:
    def counted() -> float:
        return REGISTRY.get_sample_value("relaygate_channel_messages_total", {"direction": "in"}) or 0.0

    _, session = await session_with(RecordingTransport())
    before = counted()
    for ref in range(3):
        session.feed(f'[null,"{ref}","phoenix","heartbeat",{{}}]')
    await session.finish()
    assert counted() - before == 3


async def test_written_frames_are_counted_per_flush() -> None:
    def counted() -> float:
        return REGISTRY.get_sample_value("relaygate_channel_messages_total", {"direction": "out"}) or 0.0

    transport = RecordingTransport()
    _, session = await session_with(transport)
    before = counted()
    for frame in ("a", "b", "c"):
        session.send(frame)
    await asyncio.sleep(0)
    assert transport.frames == ["a", "b", "c"] and counted() - before == 3
    await session.finish()


async def test_open_sockets_joined_channels_and_joins_are_exact_when_scraped() -> None:
    def sample(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    def scrape() -> tuple[float, float, float]:
        return (
            sample("relaygate_sockets_open"),
            sample("relaygate_channels_joined", {"prefix": "room"}),
            sample("relaygate_channel_joins_total"),
        )

    open_before, joined_before, joins_before = scrape()
    transport = RecordingTransport()
    _, session = await session_with(transport)
    assert scrape() == (open_before + 1, joined_before, joins_before)
    session.feed('["1","1","room:lobby","phx_join",{}]')
    while not transport.frames:
        await asyncio.sleep(0)
    assert scrape() == (open_before + 1, joined_before + 1, joins_before + 1)
    await session.finish()
    assert scrape() == (open_before, joined_before, joins_before + 1)

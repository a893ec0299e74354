"""Session outbound path with transports that block, yield or fail (no network needed)."""

from __future__ import annotations

import asyncio

from relaygate.channels import Endpoint, Session
from relaygate.protocol import V2, Frame
from relaygate.pubsub import MemoryPubSub
from relaygate.telemetry.metrics import REGISTRY
from tests.channels.support import make_socket


class GatedTransport:
    """Suspends every send while the gate is closed, like a WebSocket with a full buffer."""

    def __init__(self, bare_yield: bool = False) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.bare_yield = bare_yield
        self.frames: list[Frame] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, frame: Frame) -> None:
        if self.bare_yield:
            await asyncio.sleep(0)
        await self.gate.wait()
        self.frames.append(frame)

    async def close(self, code: int, reason: str) -> None:
        await self.gate.wait()
        self.closed = (code, reason)


class FailingTransport(GatedTransport):
    async def send(self, frame: Frame) -> None:
        raise ConnectionResetError("gone")


async def session_with(transport: GatedTransport, **options: int) -> tuple[Endpoint, Session]:
    endpoint = Endpoint(MemoryPubSub(), **options)  # type: ignore[arg-type]
    session = Session(endpoint, make_socket(), V2, {"user_id": None}, None, None, transport)
    await session.start()
    return endpoint, session


async def test_eager_send_then_queue_in_order_while_blocked() -> None:
    transport = GatedTransport()
    _, session = await session_with(transport)
    session.send("a")  # completes synchronously: no writer task
    assert transport.frames == ["a"]
    transport.gate.clear()
    for frame in ("b", "c", "d"):
        session.send(frame)
    await asyncio.sleep(0.01)
    assert transport.frames == ["a"]
    transport.gate.set()
    for _ in range(100):
        if len(transport.frames) == 4:
            break
        await asyncio.sleep(0.01)
    assert transport.frames == ["a", "b", "c", "d"]
    await session.finish()


async def test_bare_yield_in_transport_is_resumed() -> None:
    transport = GatedTransport(bare_yield=True)
    _, session = await session_with(transport)
    session.send("a")
    session.send("b")
    await asyncio.sleep(0.05)
    assert transport.frames == ["a", "b"]
    await session.finish()


async def test_queue_bound_closes_slow_consumer_1008() -> None:
    transport = GatedTransport()
    endpoint, session = await session_with(transport, max_queue_frames=3)
    transport.gate.clear()
    for n in range(5):
        session.send(str(n))
    assert endpoint.slow_consumers == 1 and session.closing
    transport.gate.set()
    for _ in range(100):
        if transport.closed:
            break
        await asyncio.sleep(0.01)
    assert transport.closed == (1008, "slow consumer")
    assert transport.frames == ["0"]  # the one in flight; the queued ones were dropped
    await session.finish()


async def test_finish_cancels_a_blocked_writer() -> None:
    transport = GatedTransport()
    endpoint, session = await session_with(transport)
    transport.gate.clear()
    session.send("a")
    await asyncio.sleep(0.01)
    await session.finish()
    await session.finish()  # idempotent
    assert endpoint.sessions == set() and transport.frames == []


async def test_failing_transport_stops_sending() -> None:
    transport = FailingTransport()
    _, session = await session_with(transport)
    session.send("a")
    assert session.closing
    session.send("b")
    await session.finish()


async def test_received_frames_are_all_counted_once_the_connection_closes() -> None:
    def counted() -> float:
        return REGISTRY.get_sample_value("relaygate_channel_messages_total", {"direction": "in"}) or 0.0

    _, session = await session_with(GatedTransport())
    before = counted()
    for ref in range(3):
        session.feed(f'[null,"{ref}","phoenix","heartbeat",{{}}]')
    await session.finish()
    assert counted() - before == 3

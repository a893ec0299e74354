"""The idle sweep: a connection expires after IDLE_TICKS + 1 quiet sweeps; a frame resets it."""

from __future__ import annotations

import asyncio

from relaygate.channels import Endpoint, Session
from relaygate.channels.idle import IDLE_TICKS, IdleSweep
from relaygate.protocol import V2
from relaygate.pubsub import MemoryPubSub
from tests.channels.support import make_socket
from tests.channels.test_session import RecordingTransport


class Conn:
    def __init__(self) -> None:
        self.quiet = 7
        self.expired = 0

    def idle_expired(self) -> None:
        self.expired += 1


async def test_a_quiet_connection_expires_after_the_last_tick_and_a_frame_resets_it() -> None:
    sweep = IdleSweep()
    quiet, busy = Conn(), Conn()
    sweep.watch(quiet, 60.0)
    sweep.watch(busy, 60.0)
    assert quiet.quiet == 0  # watching starts from a fresh count
    for _ in range(IDLE_TICKS):
        assert sweep.tick() == []
        busy.quiet = 0  # a frame arrived
    assert sweep.tick() == [quiet]
    assert len(sweep) == 1  # the expired connection is no longer watched
    busy.quiet = 0
    for _ in range(IDLE_TICKS):
        assert sweep.tick() == []
    assert sweep.tick() == [busy]
    assert len(sweep) == 0
    sweep.unwatch(busy)  # already gone: nothing happens


async def test_one_timer_for_all_connections_cancelled_with_the_last() -> None:
    sweep = IdleSweep()
    first, second = Conn(), Conn()
    sweep.watch(first, 60.0)
    handle = sweep._handle
    assert handle is not None and sweep.period == 60.0 / IDLE_TICKS
    sweep.watch(second, 60.0)
    assert sweep._handle is handle
    sweep.unwatch(first)
    assert not handle.cancelled()
    sweep.unwatch(second)
    assert handle.cancelled() and sweep._handle is None


async def test_sweeps_close_an_idle_session_and_spare_one_that_receives() -> None:
    endpoint = Endpoint(MemoryPubSub(), idle_timeout=0.04)
    idle_transport, live_transport = RecordingTransport(), RecordingTransport()
    idle, live = (
        Session(endpoint, make_socket(), V2, {"user_id": None}, None, None, t)
        for t in (idle_transport, live_transport)
    )
    await idle.start()
    await live.start()
    while not idle_transport.closed:  # the sweep's own timer closes it (no clock in the test)
        live.feed('[null,"1","phoenix","heartbeat",{}]')
        await asyncio.sleep(0.005)
    assert idle_transport.closed == (1001, "idle timeout")
    assert live_transport.closed is None and not live.closing
    await idle.finish()
    await live.finish()
    assert len(endpoint.idle) == 0 and endpoint.idle._handle is None

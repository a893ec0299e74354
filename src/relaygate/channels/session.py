"""One client connection, whatever the transport: routing, outbound queue, idle timer, close.

The transport feeds frames with :meth:`Session.feed` (synchronous, in arrival order) and calls
:meth:`Session.finish` once the connection is gone. Outbound frames go through a bounded queue
drained by a writer task that exists only while the queue is not empty; a client that cannot
keep up is closed with 1008 ``slow consumer`` instead of slowing anyone else down.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from relaygate.channels.api import Channel, logger
from relaygate.channels.channel_socket import ChannelSocket
from relaygate.protocol import (
    GOING_AWAY,
    POLICY_VIOLATION,
    SERVICE_RESTART,
    Connection,
    Deliver,
    Frame,
    Join,
    Leave,
    Message,
    ProtocolError,
    Send,
    Serializer,
)
from relaygate.pubsub import Broadcast
from relaygate.telemetry.metrics import CHANNEL_MESSAGES, SLOW_CONSUMERS, SOCKETS_OPEN

_FRAMES_IN = CHANNEL_MESSAGES.labels("in")
_FRAMES_IN_BATCH = 64
_frames_in = 0  # received frames not yet in _FRAMES_IN, added in batches (the counter locks per call);
# a scrape lags by fewer than _FRAMES_IN_BATCH frames while connections are open


def _count_frames_in() -> None:
    global _frames_in
    _FRAMES_IN.inc(_frames_in)
    _frames_in = 0


async def _resume(coroutine: Coroutine[Any, Any, None], blocker: Any) -> None:
    """Drive a coroutine that suspended on ``blocker`` (a future, or None for a bare yield)
    to completion from the current task, as a Task would have."""
    while True:
        if blocker is None:
            await asyncio.sleep(0)
        else:
            blocker._asyncio_future_blocking = False  # what a Task does with a yielded future
            try:
                await blocker
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    coroutine.close()
                    raise
            except Exception:  # noqa: S110 - the coroutine receives it from the future's result()
                pass
        try:
            blocker = coroutine.send(None)
        except StopIteration:
            return


if TYPE_CHECKING:
    from relaygate.channels.endpoint import Endpoint
    from relaygate.channels.socket import Socket


class Transport(Protocol):
    """Writes frames to the client; raising means the client is gone."""

    async def send(self, frame: Frame) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class Session:
    __slots__ = (
        "__weakref__",
        "_close",
        "_end_reason",
        "_last_rx",
        "_out",
        "_out_bytes",
        "_timer",
        "_writer",
        "assigns",
        "conn",
        "disconnect_topics",
        "endpoint",
        "peer",
        "serializer",
        "socket_id",
        "transport",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        socket: Socket,
        serializer: Serializer,
        assigns: dict[str, Any],
        socket_id: str | None,
        peer: tuple[str, int] | None,
        transport: Transport,
    ) -> None:
        self.endpoint = endpoint
        self.serializer = serializer
        self.assigns = assigns
        self.socket_id = socket_id
        self.disconnect_topics = socket.disconnect_topics(assigns, socket_id)
        self.peer = peer
        self.transport = transport
        self.conn: Connection[Channel, ChannelSocket] = Connection(
            serializer,
            socket.router,
            self._spawn,
            max_channels=endpoint.max_channels,
            max_frame_size=endpoint.max_frame_size,
        )
        self._out: deque[Frame] | None = None  # allocated while frames wait, to keep idle sockets small
        self._out_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._close: tuple[int, str] | None = None
        self._end_reason = "closed"
        self._last_rx = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    def _spawn(self, message: Message, handler: Channel) -> ChannelSocket:
        return ChannelSocket(self, message, handler)

    @property
    def closing(self) -> bool:
        return self._close is not None

    async def start(self, *, watch_idle: bool = True) -> None:
        """Register with the endpoint, subscribe to the socket id topic, arm the idle timer
        (not for long-poll, whose clients send no heartbeats: poll expiry is their liveness)."""
        self.endpoint.sessions.add(self)
        SOCKETS_OPEN.inc()
        for topic in self.disconnect_topics:
            await self.endpoint.pubsub.subscribe(topic, self)
        timeout = self.endpoint.idle_timeout
        if timeout is not None and watch_idle:
            self._timer = asyncio.get_running_loop().call_later(timeout, self._check_idle)

    def feed(self, data: str | bytes) -> None:
        """Handle one client frame (section 3 routing), in order, without awaiting."""
        if self._close is not None:
            return
        self._last_rx = time.monotonic()
        global _frames_in
        _frames_in += 1
        if _frames_in >= _FRAMES_IN_BATCH:
            _count_frames_in()
        action = self.conn.receive(data)
        if action is None:
            return
        kind = type(action)
        if kind is Deliver:
            action.channel.enqueue_in(action.message)  # type: ignore[union-attr]
        elif kind is Send:
            self.send(action.frame)  # type: ignore[union-attr]
        elif kind is Join:
            self._join(action)  # type: ignore[arg-type]
        elif kind is Leave:
            action.channel.enqueue_leave(action.message)  # type: ignore[union-attr]
        else:
            error: ProtocolError = action  # type: ignore[assignment]
            logger.info("closing connection %s: %s", self.peer, error.reason)
            self.close(error.code, error.reason, drop=True)

    def _join(self, action: Join[Channel, ChannelSocket]) -> None:
        if action.replaced is not None and action.replaced_close is not None:
            asyncio.get_running_loop().create_task(action.replaced.shutdown("duplicate_join"))
            self.send(action.replaced_close)
        action.channel.enqueue_join(action.message)

    def send(self, frame: Frame) -> None:
        """Write now if nothing is queued, else queue; over the bounds close as a slow consumer."""
        if self._close is not None:
            return
        if self._writer is None and self._out is None:
            self._send_eagerly(frame)
            return
        out = self._out
        if out is None:
            out = self._out = deque()
        out.append(frame)
        self._out_bytes += len(frame)
        endpoint = self.endpoint
        if len(out) > endpoint.max_queue_frames or self._out_bytes > endpoint.max_queue_bytes:
            self.slow_consumer(len(out))
        elif self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    def slow_consumer(self, queued: int) -> None:
        """Close a client that does not keep up (1008), dropping the ``queued`` frames it left."""
        self.endpoint.slow_consumers += 1
        SLOW_CONSUMERS.inc()
        logger.warning("closing slow consumer %s (%d frames queued)", self.peer, queued)
        self.close(POLICY_VIOLATION, "slow consumer", drop=True)

    def _send_eagerly(self, frame: Frame) -> None:
        """Run the transport's send until its first suspension, without a task.

        A WebSocket send normally completes without suspending (the frame goes straight to the
        socket buffer), so a fanout to N sockets costs N writes instead of N task switches. Only
        when the transport must wait (a full buffer) is a writer task started to finish the send
        and drain what gets queued meanwhile.
        """
        send = self.transport.send(frame)
        try:
            blocker = send.send(None)
        except StopIteration:
            return
        except Exception:  # the client went away; finish() will follow from the transport
            self._close = (GOING_AWAY, "gone")
            return
        self._writer = asyncio.get_running_loop().create_task(self._write(send, blocker))

    def close(self, code: int, reason: str, *, drop: bool = False, end_reason: str | None = None) -> None:
        """Close the connection with ``code`` after the queued frames (or dropping them)."""
        if self._close is not None:
            return
        self._close = (code, reason)
        if end_reason is not None:
            self._end_reason = end_reason
        if drop:
            self._out = None
            self._out_bytes = 0
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    def drain(self) -> None:
        self.close(SERVICE_RESTART, "server restart", end_reason="shutdown")

    async def _write(self, started: Coroutine[Any, Any, None] | None = None, blocker: Any = None) -> None:
        transport = self.transport
        try:
            if started is not None:
                await _resume(started, blocker)
            while out := self._out:  # re-read: a slow-consumer close drops the queue meanwhile
                frame = out.popleft()
                self._out_bytes -= len(frame)
                if not out:
                    self._out = None
                await transport.send(frame)
            if self._close is not None:
                await transport.close(*self._close)
        except Exception:  # the client went away; finish() will follow from the transport
            self._out = None
            self._out_bytes = 0
        finally:
            self._writer = None

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        """Socket id (and disconnect) topics: ``disconnect`` closes with 1001 and no phx frames."""
        if message.event == "disconnect":
            self.close(GOING_AWAY, "disconnected", drop=True, end_reason="disconnected")

    def _check_idle(self) -> None:
        timeout = self.endpoint.idle_timeout
        assert timeout is not None
        remaining = self._last_rx + timeout - time.monotonic()
        if remaining > 0:
            self._timer = asyncio.get_running_loop().call_later(remaining, self._check_idle)
        else:
            self._timer = None
            self.close(GOING_AWAY, "idle timeout", drop=True)

    async def finish(self) -> None:
        """The transport is gone: terminate every channel and forget the session."""
        endpoint = self.endpoint
        if self not in endpoint.sessions:
            return  # already finished
        endpoint.sessions.discard(self)
        if self._close is None:
            self._close = (GOING_AWAY, "closed")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._out = None
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
            await asyncio.wait((writer,))
        for topic in self.disconnect_topics:
            await endpoint.pubsub.unsubscribe(topic, self)
        channels = list(self.conn.channels.values())
        self.conn.channels.clear()
        for channel in channels:
            await channel.shutdown(self._end_reason)
        SOCKETS_OPEN.dec()
        _count_frames_in()  # nothing stays uncounted once connections close
        endpoint.session_finished(self)

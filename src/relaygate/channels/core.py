"""The transport-independent part of an Endpoint: limits, PubSub/Presence handles, live sessions.

Sessions and transports depend on this module; the public :class:`Endpoint` adds the routes
and the WebSocket protocol on top, so nothing here imports a transport."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from relaygate.channels.api import ConnectInfo, logger
from relaygate.channels.idle import IdleSweep
from relaygate.channels.outbound import Flusher
from relaygate.history import History, MemoryHistory
from relaygate.presence import Presence
from relaygate.protocol import OriginCheck, Serializer, serializer_for
from relaygate.protocol.connection import DEFAULT_MAX_CHANNELS, DEFAULT_MAX_FRAME_SIZE
from relaygate.pubsub import MemoryPubSub, PubSub

if TYPE_CHECKING:
    from relaygate.channels.socket import Socket


class Live(Protocol):
    """A live connection as the endpoint sees it (a session)."""

    def drain(self) -> None: ...


@dataclass(slots=True)
class Accepted:
    """A connect that passed vsn, the connect hook and the id function."""

    serializer: Serializer
    assigns: dict[str, Any]
    socket_id: str | None


class EndpointCore:
    """Holds the sockets and the limits every transport applies."""

    def __init__(
        self,
        pubsub: PubSub,
        presence: Presence | None = None,
        *,
        check_origin: Sequence[str] | bool | None = None,
        longpoll: bool = False,
        idle_timeout: float | None = 60.0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_queue_frames: int = 1000,
        max_queue_bytes: int = 8 << 20,
        longpoll_window: float = 10.0,
        history: History | None = None,
    ) -> None:
        """``history``: the engine for topics declared with history (a one-node MemoryPubSub gets a
        MemoryHistory by itself; a cluster passes a RedisHistory)."""
        self.pubsub = pubsub
        self.presence = presence
        self.history = history
        self.origin_check = OriginCheck(check_origin)
        self.longpoll = longpoll
        self.idle_timeout = idle_timeout
        self.max_frame_size = max_frame_size
        self.max_channels = max_channels
        self.max_queue_frames = max_queue_frames
        self.max_queue_bytes = max_queue_bytes
        self.longpoll_window = longpoll_window
        self.sockets: list[Socket] = []
        self.sessions: set[Live] = set()
        self.slow_consumers = 0
        """How many connections were closed for not keeping up (a metric)."""
        self.draining = False
        self._all_finished: asyncio.Event | None = None
        self.flusher = Flusher()
        """Writes every session's queued frames once per loop iteration."""
        self.idle = IdleSweep()
        """Closes the sessions that received nothing for ``idle_timeout`` (one timer for all)."""

    def add_socket(self, socket: Socket) -> None:
        for pattern, keep in socket.history:
            if self.history is None:
                if not isinstance(self.pubsub, MemoryPubSub):
                    raise ValueError(
                        "topics with history on a cluster PubSub need Endpoint(history=RedisHistory(...))"
                    )
                self.history = MemoryHistory(self.pubsub)
            self.history.keep(pattern, keep)
        self.sockets.append(socket)

    def require_presence(self) -> Presence:
        if self.presence is None:
            raise RuntimeError("this Endpoint was created without a presence tracker")
        return self.presence

    async def authorize(self, socket: Socket, params: dict[str, str], info: ConnectInfo) -> Accepted | None:
        """vsn, then the connect hook, then the id function; None means HTTP 403."""
        accepted = self.authorize_now(socket, params, info)
        return accepted if accepted is None or type(accepted) is Accepted else await accepted  # type: ignore[misc]

    def authorize_now(
        self, socket: Socket, params: dict[str, str], info: ConnectInfo
    ) -> Accepted | Awaitable[Accepted | None] | None:
        """:meth:`authorize` without suspending when the connect hook answers at once; else the
        awaitable of its outcome."""
        if self.draining:
            return None
        serializer = serializer_for(params)
        if serializer is None:
            return None
        try:
            assigns = socket.connect_now(params, info)
        except Exception:
            logger.exception("connect hook of %s raised; refusing the connection", socket.path)
            return None
        if assigns is None or type(assigns) is dict or not inspect.isawaitable(assigns):
            return self._accept(socket, serializer, assigns)
        return self._accept_later(socket, serializer, assigns)

    async def _accept_later(
        self, socket: Socket, serializer: Serializer, assigns: Awaitable[dict[str, Any] | None]
    ) -> Accepted | None:
        try:
            answer = await assigns
        except Exception:
            logger.exception("connect hook of %s raised; refusing the connection", socket.path)
            return None
        return self._accept(socket, serializer, answer)

    def _accept(
        self, socket: Socket, serializer: Serializer, assigns: dict[str, Any] | None
    ) -> Accepted | None:
        if assigns is None:
            return None
        try:
            socket_id = socket.id(assigns)
        except Exception:
            logger.exception("id function of %s raised; refusing the connection", socket.path)
            return None
        if socket_id is not None and not isinstance(socket_id, str):
            logger.error("socket id of %s must be a string or None", socket.path)
            return None
        return Accepted(serializer, assigns, socket_id)

    async def broadcast(self, topic: str, event: str, payload: Any) -> None:
        """Server-side broadcast to every subscriber of ``topic`` on every node."""
        await self.pubsub.broadcast(topic, event, payload)

    async def disconnect(self, socket_id: str) -> None:
        """Close every connection with this socket id (code 1001), on every node."""
        await self.pubsub.broadcast(socket_id, "disconnect", {})

    def session_finished(self, session: Live) -> None:
        """A session's channels have terminated: drain() may be waiting for the last one."""
        if not self.sessions and self._all_finished is not None:
            self._all_finished.set()

    async def drain(self, grace: float = 10.0) -> None:
        """Refuse new connections, close every live one with 1012 and wait (bounded) for them."""
        self.draining = True
        self._all_finished = asyncio.Event()
        if not self.sessions:
            return
        for session in list(self.sessions):
            session.drain()
        try:
            async with asyncio.timeout(grace):
                await self._all_finished.wait()
        except TimeoutError:
            logger.warning("drain timed out with %d connections left", len(self.sessions))

"""The Channel base class apps subclass: join, handle_in, handle_out, handle_info, terminate."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, ClassVar

from relaygate.channels.api import Reply, Stop, logger
from relaygate.channels.channel_socket import ChannelSocket


class Channel:
    """Base class for channel handlers; one instance serves every join of its route.

    Per-join state lives in ``socket.assigns`` (a copy of the connection's assigns taken at join),
    not on ``self``, because the instance is shared. Pass an instance to ``Socket.channel`` to give
    the handler dependencies; passing the class instantiates it once with no arguments.
    """

    intercepts: ClassVar[Sequence[str]] = ()
    """Broadcast events routed through :meth:`handle_out` per socket instead of the fastlane."""

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | Awaitable[Reply]:
        """Authorize the join; return ``Reply.ok(...)`` or ``Reply.error(...)``.

        Usually ``async def``; a plain ``def`` lets a join that needs no I/O finish without a task."""
        raise NotImplementedError(f"{type(self).__name__}.join is not implemented")

    def handle_in(
        self, event: str, payload: Any, socket: ChannelSocket
    ) -> Reply | Stop | Awaitable[Reply | Stop | None] | None:
        """A client push; None means no reply. The default crashes the channel, like a missing clause.

        Usually ``async def``. A plain ``def`` is called at once when nothing is queued before the
        push, so a push it answers directly costs no task; it may return a coroutine for the
        pushes that must wait (``return self.publish(payload, socket)``), which runs in order.
        """
        raise NotImplementedError(f"{type(self).__name__} has no handle_in for {event!r}")

    async def handle_out(self, event: str, payload: Any, socket: ChannelSocket) -> Stop | None:
        """An intercepted broadcast; the default forwards it as a push carrying this join's ref."""
        await socket.push(event, payload)
        return None

    def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | Awaitable[Stop | None] | None:
        """A message sent with ``socket.send_info``; the default logs and ignores it.

        Usually ``async def``. A plain ``def`` that returns None or ``Stop`` is called at once for
        what a join or push called at once queued (``send_info("after_join")``): no task, and what
        it pushes leaves with the join reply. It may return a coroutine for what must wait."""
        logger.warning("%s ignored an info message on %s", type(self).__name__, socket.topic)
        return None

    def terminate(self, reason: str, socket: ChannelSocket) -> Awaitable[None] | None:
        """The channel ended: left, closed, duplicate_join, disconnected, normal, shutdown or crash.

        Usually ``async def``; a plain ``def`` lets a leave finish without a task."""
        return None

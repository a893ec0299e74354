"""The application-facing Channel API: result values, connect info and the Channel base class."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from relaygate.channels.channel_socket import ChannelSocket

logger = logging.getLogger("relaygate.channels")

CLEAN_STOP_REASONS = frozenset({"normal", "shutdown"})


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply to a join or a client push. A ``bytes`` response is sent as a binary reply frame."""

    status: str
    response: Any = None
    """Any JSON value; None is sent as ``{}``."""

    @classmethod
    def ok(cls, response: Any = None) -> Reply:
        return cls("ok", response)

    @classmethod
    def error(cls, response: Any = None) -> Reply:
        return cls("error", response)


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the channel, optionally replying first.

    ``normal``, ``shutdown`` and ``shutdown:<anything>`` are clean (phx_close); any other reason is
    reported to the client as a crash (phx_error), as Phoenix does.
    """

    reason: str = "normal"
    reply: Reply | None = None

    @property
    def clean(self) -> bool:
        return self.reason in CLEAN_STOP_REASONS or self.reason.startswith("shutdown:")


@dataclass(frozen=True, slots=True)
class ConnectInfo:
    """What the connect hook may look at besides the query params. Never log ``auth_token``."""

    auth_token: str | None = field(default=None, repr=False)
    peer: tuple[str, int] | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    origin: str | None = None


class Channel:
    """Base class for channel handlers; one instance serves every join of its route.

    Per-join state lives in ``socket.assigns`` (a copy of the connection's assigns taken at join),
    not on ``self``, because the instance is shared. Pass an instance to ``Socket.channel`` to give
    the handler dependencies; passing the class instantiates it once with no arguments.
    """

    intercepts: ClassVar[Sequence[str]] = ()
    """Broadcast events routed through :meth:`handle_out` per socket instead of the fastlane."""

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        """Authorize the join; return ``Reply.ok(...)`` or ``Reply.error(...)``."""
        raise NotImplementedError(f"{type(self).__name__}.join is not implemented")

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Stop | None:
        """A client push; None means no reply. The default crashes the channel, like a missing clause."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_in for {event!r}")

    async def handle_out(self, event: str, payload: Any, socket: ChannelSocket) -> Stop | None:
        """An intercepted broadcast; the default forwards it as a push carrying this join's ref."""
        await socket.push(event, payload)
        return None

    async def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | None:
        """A message sent with ``socket.send_info``; the default logs and ignores it."""
        logger.warning("%s ignored an info message on %s", type(self).__name__, socket.topic)
        return None

    async def terminate(self, reason: str, socket: ChannelSocket) -> None:
        """The channel ended: left, closed, duplicate_join, disconnected, normal, shutdown or crash."""

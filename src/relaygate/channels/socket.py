"""Socket declarations: a mount path, a connect hook, an id function and channel routes."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from relaygate.channels.api import ConnectInfo
from relaygate.channels.channel import Channel
from relaygate.history import Keep
from relaygate.protocol import Router

ConnectHook = Callable[
    [dict[str, str], ConnectInfo], Awaitable[dict[str, Any] | None] | dict[str, Any] | None
]
IdFunction = Callable[[dict[str, Any]], str | None]
TopicsFunction = Callable[[dict[str, Any]], Iterable[str]]


class Socket:
    """A socket endpoint such as ``/socket``: transports are mounted under it (``/websocket``)."""

    def __init__(
        self,
        path: str,
        connect: ConnectHook | None = None,
        id: IdFunction | None = None,
        *,
        disconnect_topics: TopicsFunction | None = None,
    ) -> None:
        """``disconnect_topics`` names more topics than the socket id on which a ``disconnect``
        broadcast closes the connection (e.g. one per access token, so a logout closes only the
        sockets opened with that token)."""
        if not path.startswith("/") or path.endswith("/"):
            raise ValueError(f"socket path must start with '/' and not end with it, got {path!r}")
        self.path = path
        self._connect = connect
        self._id = id
        self._disconnect_topics = disconnect_topics
        self.router: Router[Channel] = Router()
        self.history: list[tuple[str, Keep]] = []
        """Topic patterns that keep history (registered with the endpoint's history by ``add_socket``)."""

    def channel(self, pattern: str, handler: type[Channel] | Channel, *, history: Keep | None = None) -> None:
        """Route topics matching ``pattern`` (exact or ``"prefix*"``) to ``handler``; with
        ``history=Keep(size, ttl)`` its broadcasts carry positions and joins can recover."""
        self.router.add(pattern, handler() if isinstance(handler, type) else handler)
        if history is not None:
            self.history.append((pattern, history))

    async def connect(self, params: dict[str, str], info: ConnectInfo) -> dict[str, Any] | None:
        """Run the connect hook: the socket's assigns, or None to refuse (no hook accepts with ``{}``)."""
        result = self.connect_now(params, info)
        if inspect.isawaitable(result):
            result = await result
        return result

    def connect_now(
        self, params: dict[str, str], info: ConnectInfo
    ) -> Awaitable[dict[str, Any] | None] | dict[str, Any] | None:
        """Call the connect hook: its answer, or the awaitable of it when the hook must wait
        (a hook that is a plain function, or returns at once, costs no task per connect)."""
        if self._connect is None:
            return {}
        return self._connect(params, info)

    def id(self, assigns: dict[str, Any]) -> str | None:
        return None if self._id is None else self._id(assigns)

    def disconnect_topics(self, assigns: dict[str, Any], socket_id: str | None) -> tuple[str, ...]:
        """The socket id topic and any extra ones, without repeats."""
        topics = [] if socket_id is None else [socket_id]
        if self._disconnect_topics is not None:
            topics.extend(self._disconnect_topics(assigns))
        return tuple(dict.fromkeys(topics))

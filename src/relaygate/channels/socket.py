"""Socket declarations: a mount path, a connect hook, an id function and channel routes."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from relaygate.channels.api import Channel, ConnectInfo
from relaygate.protocol import Router

ConnectHook = Callable[
    [dict[str, str], ConnectInfo], Awaitable[dict[str, Any] | None] | dict[str, Any] | None
]
IdFunction = Callable[[dict[str, Any]], str | None]


class Socket:
    """A socket endpoint such as ``/socket``: transports are mounted under it (``/websocket``)."""

    def __init__(self, path: str, connect: ConnectHook | None = None, id: IdFunction | None = None) -> None:
        if not path.startswith("/") or path.endswith("/"):
            raise ValueError(f"socket path must start with '/' and not end with it, got {path!r}")
        self.path = path
        self._connect = connect
        self._id = id
        self.router: Router[Channel] = Router()

    def channel(self, pattern: str, handler: type[Channel] | Channel) -> None:
        """Route topics matching ``pattern`` (exact or ``"prefix*"``) to ``handler``."""
        self.router.add(pattern, handler() if isinstance(handler, type) else handler)

    async def connect(self, params: dict[str, str], info: ConnectInfo) -> dict[str, Any] | None:
        """Run the connect hook: the socket's assigns, or None to refuse (no hook accepts with ``{}``)."""
        if self._connect is None:
            return {}
        result = self._connect(params, info)
        if inspect.isawaitable(result):
            result = await result
        return result

    def id(self, assigns: dict[str, Any]) -> str | None:
        return None if self._id is None else self._id(assigns)

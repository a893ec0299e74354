"""Exceptions raised by the asyncio Phoenix client."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base class of the client's errors."""


class ConnectError(ClientError):
    """The first connection attempt failed (refused upgrade, unreachable host, bad subprotocol)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PushError(ClientError):
    """The server answered a join or push with a non-"ok" status."""

    def __init__(self, status: str, response: Any) -> None:
        super().__init__(f"{status}: {response!r}")
        self.status = status
        self.response = response


class PushTimeout(ClientError):
    """No reply arrived within the push (or join) timeout."""


class ChannelClosed(ClientError):
    """The channel was closed (left, closed by the server, or the client closed) while awaited."""

"""Socket authentication for the app's channel socket, and the socket-id topics.

A socket's id is ``users_socket:<user_id>`` (deleting the user disconnects all of them); each
socket also listens on ``users_socket:<user_id>:<jti>`` so that logging out disconnects only the
sockets opened with that token. The channel runtime closes a socket when ``disconnect`` is
broadcast on one of these topics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from relaygate.accounts.service import Accounts


class ConnectInfoLike(Protocol):
    """The part of ``relaygate.channels.ConnectInfo`` that authentication reads."""

    @property
    def auth_token(self) -> str | None: ...


def user_socket_id(user_id: int) -> str:
    return f"users_socket:{user_id}"


def token_socket_topic(user_id: int, jti: str) -> str:
    return f"users_socket:{user_id}:{jti}"


def socket_id(assigns: Mapping[str, Any]) -> str:
    """The socket id of an authenticated socket (``Socket(id=...)``)."""
    return user_socket_id(int(assigns["user_id"]))


def socket_topics(assigns: Mapping[str, Any]) -> list[str]:
    """Every topic on which ``disconnect`` must close this socket."""
    user_id = int(assigns["user_id"])
    return [user_socket_id(user_id), token_socket_topic(user_id, str(assigns["jti"]))]


def socket_authenticator(
    accounts: Accounts,
) -> Callable[
    [Mapping[str, str], ConnectInfoLike], dict[str, object] | Awaitable[dict[str, object] | None] | None
]:
    """The ``connect`` hook: ``token`` query param or phoenix.js ``authToken`` → assigns.

    Returns ``{"user_id", "role", "jti", "name"}``, or ``None`` to refuse (HTTP 403); at once
    when the node's in-memory view decides (no task per connect), else the awaitable of it
    (``Accounts.identify_now`` answered ``UNKNOWN``: the database must be asked).
    """
    from relaygate.accounts.service import UNKNOWN, socket_assigns

    def connect(
        params: Mapping[str, str], info: ConnectInfoLike
    ) -> dict[str, object] | Awaitable[dict[str, object] | None] | None:
        token = params.get("token") or info.auth_token
        if not isinstance(token, str) or not token:
            return None
        found = accounts.identify_now(token)
        if found is UNKNOWN:
            return accounts.socket_assigns(token)
        return None if found is None else socket_assigns(found)  # type: ignore[arg-type]

    return connect

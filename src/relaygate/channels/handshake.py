"""The checks every WebSocket transport runs before it upgrades: subprotocols, origin, connect hook."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from urllib.parse import parse_qsl

from relaygate.channels.api import ConnectInfo
from relaygate.channels.core import Accepted, EndpointCore
from relaygate.channels.socket import Socket
from relaygate.protocol import parse_subprotocols

Admitted = tuple[Accepted, str | None]
"""An accepted connect and the subprotocol to answer (None: answer none)."""


def query_params(query: str) -> dict[str, str]:
    """Flat query params (the last value of a repeated key wins)."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    params = {}  # nothing to decode: split as parse_qsl would
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params[name] = value
    return params


async def admit(
    endpoint: EndpointCore,
    socket: Socket,
    query: str,
    headers: Mapping[str, str],
    offered: Sequence[str],
    peer: tuple[str, int] | None,
) -> Admitted | None:
    """The accepted connect and the subprotocol to answer, or None for HTTP 403."""
    admitted = admit_now(endpoint, socket, query, headers, offered, peer)
    return admitted if admitted is None or type(admitted) is tuple else await admitted  # type: ignore[misc]


def admit_now(
    endpoint: EndpointCore,
    socket: Socket,
    query: str,
    headers: Mapping[str, str],
    offered: Sequence[str],
    peer: tuple[str, int] | None,
) -> Admitted | Awaitable[Admitted | None] | None:
    """:func:`admit` without suspending when the connect hook answers at once; else its awaitable."""
    subprotocols = parse_subprotocols(offered)
    origin = headers.get("origin")
    if not subprotocols.valid or not endpoint.origin_check.allows(origin, headers.get("host")):
        return None
    info = ConnectInfo(subprotocols.auth_token, peer, headers, origin)
    accepted = endpoint.authorize_now(socket, query_params(query), info)
    if accepted is None:
        return None
    if type(accepted) is Accepted:
        return accepted, subprotocols.accept
    return _admitted_later(accepted, subprotocols.accept)  # type: ignore[arg-type]


async def _admitted_later(accepted: Awaitable[Accepted | None], subprotocol: str | None) -> Admitted | None:
    outcome = await accepted
    return None if outcome is None else (outcome, subprotocol)

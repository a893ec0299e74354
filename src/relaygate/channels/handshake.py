"""The checks every WebSocket transport runs before it upgrades: subprotocols, origin, connect hook."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl

from relaygate.channels.api import ConnectInfo
from relaygate.channels.core import Accepted, EndpointCore
from relaygate.channels.socket import Socket
from relaygate.protocol import parse_subprotocols


def query_params(query: str) -> dict[str, str]:
    """Flat query params (the last value of a repeated key wins)."""
    return dict(parse_qsl(query, keep_blank_values=True))


async def admit(
    endpoint: EndpointCore,
    socket: Socket,
    query: str,
    headers: Mapping[str, str],
    offered: Sequence[str],
    peer: tuple[str, int] | None,
) -> tuple[Accepted, str | None] | None:
    """The accepted connect and the subprotocol to answer, or None for HTTP 403."""
    subprotocols = parse_subprotocols(offered)
    origin = headers.get("origin")
    if not subprotocols.valid or not endpoint.origin_check.allows(origin, headers.get("host")):
        return None
    info = ConnectInfo(subprotocols.auth_token, peer, headers, origin)
    accepted = await endpoint.authorize(socket, query_params(query), info)
    if accepted is None:
        return None
    return accepted, subprotocols.accept

"""What a node serves, for ``relaygate routes`` (like ``mix phx.routes``): HTTP routes, socket
endpoints with their channel topics, and gateway functions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import BaseRoute, Route, WebSocketRoute

from relaygate.channels import Endpoint
from relaygate.web.resources import ResourceRoute


def flatten_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """(full path, route) for every leaf route, looking through FastAPI's included routers."""
    for route in routes:
        included: Any = getattr(route, "original_router", None)
        if included is not None:
            context: Any = getattr(route, "include_context", None)
            yield from flatten_routes(included.routes, prefix + str(getattr(context, "prefix", "")))
        else:
            yield prefix + str(getattr(route, "path", "")), route


def describe_routes(routes: Iterable[BaseRoute]) -> Iterator[str]:
    for path, route in flatten_routes(routes):
        if isinstance(route, WebSocketRoute):
            yield f"{'WS':<8} {path}"
        elif isinstance(route, Route | ResourceRoute):
            implicit = {"HEAD", "OPTIONS"} if isinstance(route, ResourceRoute) else {"HEAD"}
            methods = ",".join(sorted((route.methods or set()) - implicit)) or "ANY"
            yield f"{methods:<8} {path}"


def describe_sockets(endpoint: Endpoint) -> Iterator[str]:
    """``SOCKET /socket`` with its transports, then one line per channel topic pattern."""
    for socket in endpoint.sockets:
        transports = "websocket,longpoll" if endpoint.longpoll else "websocket"
        yield f"{'SOCKET':<8} {socket.path} ({transports})"
        for pattern, channel in socket.router.routes():
            yield f"{'':<8}   {pattern:<24} {type(channel).__module__}.{type(channel).__qualname__}"


def describe_gateway(listing: dict[str, dict[str, list[dict[str, Any]]]]) -> Iterator[str]:
    """One line per gateway function version: service, request_type, version, type, nodes, state."""
    for service, request_types in listing.items():
        for request_type, versions in request_types.items():
            for row in versions:
                nodes = row["nodes"] if isinstance(row["nodes"], str) else ",".join(row["nodes"])
                state = "enabled" if row["enabled"] else "disabled"
                name = f"{service}.{request_type}"
                version = row["version"] or "_"
                yield f"{'GATEWAY':<8} {name:<32} {version:<10} {row['response_type']:<7} {nodes:<10} {state}"

"""What a node serves, for ``relaygate routes`` (like ``mix phx.routes``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import BaseRoute, Route, WebSocketRoute

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

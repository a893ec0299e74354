"""The public Endpoint: the transport-independent core plus the ways to serve it.

This is the top of the channels package: it imports the transports, none of them imports it.
"""

from __future__ import annotations

import asyncio

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from relaygate.channels.core import EndpointCore
from relaygate.channels.longpoll import longpoll_routes
from relaygate.channels.websocket import websocket_dispatcher, websocket_routes
from relaygate.channels.wire import WebSocketProtocol


class Endpoint(EndpointCore):
    """Holds the sockets and the limits every transport applies, and mounts the transports."""

    def routes(self) -> list[BaseRoute]:
        """Starlette routes: ``<path>/websocket`` for every socket (``/longpoll`` when enabled)."""
        routes: list[BaseRoute] = []
        for socket in self.sockets:
            routes.extend(websocket_routes(self, socket))
            if self.longpoll:
                routes.extend(longpoll_routes(self, socket))
        return routes

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """An ASGI app serving this endpoint's WebSocket paths directly and delegating the rest to
        ``app`` (for ASGI servers other than uvicorn with :meth:`websocket_protocol`)."""
        return websocket_dispatcher(self, app)

    def http_protocol(self, fallback: type[asyncio.Protocol] | str = "httptools") -> type[WebSocketProtocol]:
        """The HTTP protocol class for uvicorn (``uvicorn.Config(app, http=...)``): a connection
        whose first request upgrades one of this endpoint's WebSocket paths runs on Relaygate's
        own transport from its first byte (no HTTP parsing by uvicorn); every other connection is
        handed, untouched, to ``fallback`` (a protocol class or a uvicorn ``--http`` name). Pass
        :meth:`websocket_protocol` as ``ws=`` too, for upgrades on a connection that began as HTTP."""
        return WebSocketProtocol.bind(self, http=fallback)

    def websocket_protocol(self) -> type[WebSocketProtocol]:
        """The WebSocket protocol class for uvicorn (``uvicorn.Config(app, ws=...)``): this
        endpoint's WebSocket paths run on Relaygate's own transport, any other WebSocket path and
        all HTTP stay with uvicorn. Add sockets before calling it."""
        return WebSocketProtocol.bind(self)

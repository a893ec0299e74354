"""How a node's ASGI app is put on the wire: the uvicorn configuration ``relaygate serve`` uses.

Tests that check behaviour "through the real server" build their server from this same function.
"""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import ASGIApp


def http_protocol() -> type[asyncio.Protocol] | str:
    """httptools with parser errors answered as problem+json (501 for unknown methods), else h11."""
    try:
        from relaygate.web.http_protocol import HttpProtocol
    except ImportError:  # httptools is optional (uvicorn[standard]); h11 lets any method reach the app
        return "h11"
    return HttpProtocol


def server_config(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    ws: type[asyncio.Protocol] | str = "websockets-sansio",
    http: type[asyncio.Protocol] | str | None = None,
) -> uvicorn.Config:
    """``ws``: the channel endpoint's own WebSocket transport (``Endpoint.websocket_protocol()``,
    as ``relaygate serve`` passes), else uvicorn's sans-I/O websockets protocol (the legacy one
    costs ~20x the CPU per connect; see bench/ANALYSIS.md). ``http``: by default
    :func:`http_protocol`; ``relaygate serve`` passes ``Endpoint.http_protocol(http_protocol())``
    so that socket upgrades skip the HTTP parser. uvloop and httptools when installed."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol() if http is None else http,
        ws=ws,
        log_config=None,
        access_log=False,  # RequestContextMiddleware logs each request (uvicorn's would format a second line)
        date_header=False,
        server_header=False,  # a `server: uvicorn` line in every response told clients nothing they need
        ws_max_size=16 * 1024 * 1024,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    )

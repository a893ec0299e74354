"""Serve an ASGI app over real TCP in this process, configured exactly as ``relaygate serve`` does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

from relaygate.web.server import server_config
from tests.servers import free_port


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """The base URL of ``app`` on a free loopback port; the caller runs the app's lifespan."""
    config = server_config(app, "127.0.0.1", free_port())
    config.lifespan = "off"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task

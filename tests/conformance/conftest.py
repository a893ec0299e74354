"""Serve the conformance app with uvicorn, in-process, on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.applications import Starlette


@asynccontextmanager
async def serve(application: Starlette) -> AsyncIterator[str]:
    """Run `application` (lifespan included) under uvicorn; yields its `ws://.../socket` URL."""
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        ws=application.state.endpoint.websocket_protocol(),  # Relaygate's own transport, as `serve`
        http=application.state.endpoint.http_protocol(),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        pytest.fail("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/socket"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture(scope="module")
async def server_url() -> AsyncIterator[str]:
    from tests.conformance import app  # needs relaygate.channels, which the test module checks first

    async with serve(app.build_app()) as url:
        yield url


@pytest.fixture(scope="module")
async def presence_server_url() -> AsyncIterator[str]:
    """The conformance app with a MemoryPresence: joins are followed by `presence_state`.

    Diffs go out one per change (no coalescing window), as Phoenix sends them: the scenarios
    count presence.js callbacks per change; tests/presence covers coalesced diffs."""
    from relaygate.presence import MemoryPresence
    from relaygate.pubsub import MemoryPubSub
    from tests.conformance import app

    pubsub = MemoryPubSub()
    async with serve(app.build_app(pubsub=pubsub, presence=MemoryPresence(pubsub, diff_window=0))) as url:
        yield url


@pytest.fixture
def clean_log() -> Iterator[list[tuple[object, ...]]]:
    """What the conformance app recorded during the test (join, handle_in, terminate)."""
    from tests.conformance import app

    app.LOG.clear()
    yield app.LOG
    app.LOG.clear()

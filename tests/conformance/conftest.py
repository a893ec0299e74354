"""Serve the conformance app with uvicorn, in-process, on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn


@pytest.fixture(scope="module")
async def server_url() -> AsyncIterator[str]:
    from tests.conformance import app  # needs relaygate.channels, which the test module checks first

    config = uvicorn.Config(app.build_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        pytest.fail("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"ws://127.0.0.1:{port}/socket"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
def clean_log() -> Iterator[list[tuple[object, ...]]]:
    """What the conformance app recorded during the test (join, handle_in, terminate)."""
    from tests.conformance import app

    app.LOG.clear()
    yield app.LOG
    app.LOG.clear()

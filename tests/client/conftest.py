"""Fixtures of the client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relaygate.client import Client
from tests.client.scripted import ScriptedServer


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def make_client(server: ScriptedServer) -> AsyncIterator[Callable[..., Client]]:
    """Clients on the scripted server, closed after the test."""
    clients: list[Client] = []

    def factory(**kwargs: Any) -> Client:
        client = Client(server.url, **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()

"""A started node whose app socket is driven in-process (relaygate.channels.testing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from relaygate.channels.testing import ChannelClient
from relaygate.config import Settings
from relaygate.db import Database
from relaygate.node import Node
from tests.company_api.contexts.chat.helpers import insert_users

Connect = Callable[[int], Awaitable[ChannelClient]]


@pytest.fixture
async def node(settings: Settings, db: Database) -> AsyncIterator[Node]:
    node = Node(settings)
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def users(db: Database) -> list[int]:
    return await insert_users(db, 3)


@pytest.fixture
async def connect(node: Node) -> AsyncIterator[Connect]:
    """Connect as a user with the assigns the accounts connect hook gives (the hook is tested apart)."""
    clients: list[ChannelClient] = []

    async def open_as(user_id: int) -> ChannelClient:
        assigns: dict[str, Any] = {
            "user_id": user_id,
            "role": "user",
            "jti": f"jti{len(clients)}",
            "name": f"N{user_id}",
        }
        client = await ChannelClient.connect(node.endpoint, node.endpoint.sockets[0], assigns=assigns)
        clients.append(client)
        return client

    yield open_as
    for client in clients:
        await client.close()

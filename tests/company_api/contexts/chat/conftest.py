"""Chat fixtures: users inserted directly (the accounts API is not what these tests are about)."""

from __future__ import annotations

import pytest

from company_api.contexts.chat import Chat, MemoryRateLimiter
from relaygate.db import Database
from relaygate.pubsub import MemoryPubSub
from tests.company_api.contexts.chat.helpers import insert_users


@pytest.fixture
async def users(db: Database) -> list[int]:
    return await insert_users(db, 4)


@pytest.fixture
def pubsub() -> MemoryPubSub:
    return MemoryPubSub()


@pytest.fixture
def chat(db: Database, pubsub: MemoryPubSub) -> Chat:
    return Chat(db, pubsub, MemoryRateLimiter(limit=1000, window=10.0))

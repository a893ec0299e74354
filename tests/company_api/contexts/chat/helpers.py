"""Test helpers for the chat context."""

from __future__ import annotations

from typing import Any

from relaygate.accounts.models import User
from relaygate.db import Database
from relaygate.pubsub import Broadcast


async def insert_users(db: Database, count: int) -> list[int]:
    rows = [
        User(name=f"User{i}", subname="Test", email=f"user{i}@example.com", job="tester", password_hash="x")
        for i in range(count)
    ]
    async with db.transaction() as session:
        session.add_all(rows)
    return [row.id for row in rows]


class Collector:
    """A PubSub subscriber that keeps what it is given."""

    def __init__(self) -> None:
        self.received: list[Broadcast] = []

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.received.append(message)

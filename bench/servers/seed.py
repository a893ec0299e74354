"""Prepare a node's SQLite database before it starts: schema, two users with tokens, data to read.

The ``relaygate-*`` node systems and the bare FastAPI peer start on a database seeded the same
way, so both serve the same rows. Tokens are issued through the accounts context (a login, as
``POST /api/v1/sessions`` does) with the node's own signing key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from company_api.contexts import catalog
from relaygate.accounts import Credentials, NewUser
from relaygate.config import Settings
from relaygate.db.migrate import upgrade
from relaygate.node import Node
from tests.reference import MIGRATIONS

PASSWORD = "bench-password-0123456789"


@dataclass(frozen=True)
class Seed:
    token: str
    """Bearer token of the sender (user 1)."""
    product_id: int
    conversation_id: int
    """The conversation of user 1 with user 2."""

    def as_dict(self) -> dict[str, Any]:
        return {"token": self.token, "product_id": self.product_id, "conversation_id": self.conversation_id}


async def seed(settings: Settings) -> Seed:
    node = Node(settings)
    try:
        await upgrade(node.db, MIGRATIONS)
        await node.pubsub.start()
        users = []
        for i in (1, 2):
            email = f"bench{i}@example.com"
            new = NewUser(name=f"Bench{i}", subname="User", email=email, job="Load", password=PASSWORD)
            users.append(await node.accounts.register(new))
        session = await node.accounts.login(Credentials(email=users[0].email, password=PASSWORD))
        product = await catalog.create_product(
            node.db,
            node.pubsub,
            catalog.ProductInput(
                name="bench widget", description="x" * 200, price_cents=1999, tags=["bench"]
            ),
        )
        conversation, _ = await node.contexts.chat.start_conversation(users[0].id, users[1].id)
        return Seed(session.token, product.id, conversation.id)
    finally:
        await node.stop()

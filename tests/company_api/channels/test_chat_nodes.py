"""Chat across real node processes: durability under kill -9, and two nodes sharing Redis + PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from relaygate.client import Client, ClientError
from relaygate.db import Database
from relaygate.db.migrate import upgrade
from tests.reference import MIGRATIONS, metadata
from tests.web.liveserver import LiveServer, register, start_conversation

SENDS = 40
KILL_AFTER = 5


async def _inbox(url: str, token: str, user_id: int) -> tuple[Client, Any]:
    client = Client(url, params={"token": token}, reconnect=False)
    await client.connect()
    channel = client.channel(f"user:{user_id}")
    await channel.join(timeout=10)
    return client, channel


async def test_no_acknowledged_message_is_lost_when_the_node_is_killed(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    server = LiveServer(tmp_path, database_url, RELAYGATE_CHAT_RATE_LIMIT="1000")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            alice, token = await register(http, "Alice")
            bob, _ = await register(http, "Bob")
            conversation = await start_conversation(http, token, bob)
        client, inbox = await _inbox(server.socket_url, token, alice)
        acknowledged: list[dict[str, Any]] = []
        enough = asyncio.Event()

        async def send(i: int) -> None:
            with contextlib.suppress(ClientError):
                reply = await inbox.push("send_msg", {"conv": conversation, "message": f"m{i}"}, timeout=10)
                acknowledged.append(reply["message"])
                if len(acknowledged) >= KILL_AFTER:
                    enough.set()

        senders = [asyncio.create_task(send(i)) for i in range(SENDS)]
        async with asyncio.timeout(30):
            await enough.wait()
        server.kill()  # right after an acknowledgement, with more pushes in flight
        await client.close()
        await asyncio.gather(*senders)
        assert len(acknowledged) >= KILL_AFTER

        await server.start()
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            history = await http.get(
                f"/api/v1/conversations/{conversation}/messages?limit=200",
                headers={"Authorization": f"Bearer {token}"},
            )
        stored = {message["id"]: message for message in history.json()["data"]}
        assert [m for m in acknowledged if stored.get(m["id"]) != m] == []
    finally:
        server.stop()


@pytest.fixture
async def shared_postgres(postgres_url: str) -> AsyncIterator[str]:
    """The PostgreSQL database both nodes use, migrated and emptied."""
    database = Database(postgres_url)
    await upgrade(database, MIGRATIONS)
    async with database.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            await session.execute(delete(table))
    await database.dispose()
    yield postgres_url


async def test_private_messages_cross_nodes_through_redis(
    shared_postgres: str, redis_url: str, tmp_path: Path
) -> None:
    node_a = LiveServer(tmp_path, shared_postgres, redis_url=redis_url, name="node-a")
    node_b = LiveServer(tmp_path, shared_postgres, redis_url=redis_url, name="node-b")
    await asyncio.gather(node_a.start(), node_b.start())
    clients: list[Client] = []
    try:
        async with httpx.AsyncClient(base_url=node_a.http_url, timeout=10) as http_a:
            alice, alice_token = await register(http_a, "Alice")
            bob, bob_token = await register(http_a, "Bob")
            conversation = await start_conversation(http_a, alice_token, bob)
        alice_client, alice_inbox = await _inbox(node_a.socket_url, alice_token, alice)
        bob_client, bob_inbox = await _inbox(node_b.socket_url, bob_token, bob)
        clients += [alice_client, bob_client]

        reply = await alice_inbox.push("send_msg", {"conv": conversation, "message": "via A"}, timeout=10)
        assert await bob_inbox.next_event("receive_msg", timeout=10) == {"message": reply["message"]}

        async with httpx.AsyncClient(base_url=node_b.http_url, timeout=10) as http_b:
            sent = await http_b.post(
                f"/api/v1/conversations/{conversation}/messages",
                json={"content": "via B over HTTP"},
                headers={"Authorization": f"Bearer {bob_token}"},
            )
            assert sent.status_code == 201
            assert await alice_inbox.next_event("receive_msg", timeout=10) == {"message": sent.json()["data"]}
            history = await http_b.get(
                f"/api/v1/conversations/{conversation}/messages",
                headers={"Authorization": f"Bearer {alice_token}"},
            )
        assert [m["content"] for m in history.json()["data"]] == ["via B over HTTP", "via A"]
    finally:
        for client in clients:
            await client.close()
        node_a.stop()
        node_b.stop()

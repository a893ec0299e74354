"""Fault injection on real processes: a node keeps its promises while Redis or PostgreSQL is away.

A node (``relaygate serve`` in a child process) is kept under chat load over HTTP while its
backing service is stopped and started again. Every request is answered: a ``2xx``, or a ``503``
problem with ``Retry-After`` while the service is away; never a ``500``. Every message
acknowledged with ``201`` is in the database afterwards, and the node serves again without a
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from relaygate.client import Client, ClientChannel, PushError
from tests.servers import PostgresServer, RedisServer
from tests.web.liveserver import LiveServer, register, start_conversation

# The load posts faster than the chat's per-user limit allows: a 429 would hide what is tested.
UNLIMITED = str(10**9)


class ChatLoad:
    """Posts messages in a loop and files every answer by status."""

    def __init__(self, http: httpx.AsyncClient, token: str, conversation: int) -> None:
        self.http = http
        self.headers = {"authorization": f"Bearer {token}"}
        self.path = f"/api/v1/conversations/{conversation}/messages"
        self.acked: list[int] = []
        self.unavailable: list[httpx.Response] = []
        self.other: list[httpx.Response] = []
        self._n = 0

    async def post_one(self) -> int:
        self._n += 1
        try:
            response = await self.http.post(
                self.path, json={"content": f"m{self._n}"}, headers=self.headers, timeout=15
            )
        except httpx.TransportError:  # the request never got an answer: not acknowledged
            return 0
        if response.status_code == 201:
            self.acked.append(int(response.json()["data"]["id"]))
        elif response.status_code == 503:
            self.unavailable.append(response)
        else:
            self.other.append(response)
        return response.status_code

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.post_one()
            await asyncio.sleep(0.02)

    async def until(self, status: int, attempts: int = 500) -> None:
        for _ in range(attempts):
            if await self.post_one() == status:
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"never answered {status}; last answers: {[r.status_code for r in self.other[-5:]]}")


@contextlib.asynccontextmanager
async def chat_load(server: LiveServer) -> AsyncIterator[tuple[ChatLoad, httpx.AsyncClient]]:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        tag = uuid.uuid4().hex[:6]
        _, token = await register(http, f"Ann{tag}")
        bob, _ = await register(http, f"Bob{tag}")
        load = ChatLoad(http, token, await start_conversation(http, token, bob))
        yield load, http


def assert_503_problems(load: ChatLoad) -> None:
    assert load.other == [], [(r.status_code, r.text) for r in load.other]
    for response in load.unavailable:
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["status"] == 503


async def assert_all_acked_stored(load: ChatLoad, http: httpx.AsyncClient) -> None:
    stored: set[int] = set()
    url: str | None = f"{load.path}?limit=100"
    while url:
        page = await http.get(url, headers=load.headers)
        assert page.status_code == 200, page.text
        stored.update(int(message["id"]) for message in page.json()["data"])
        url = page.json().get("links", {}).get("next")
    assert set(load.acked) <= stored


class SocketLoad:
    """Gateway calls and room broadcasts over one socket; every push gets a reply or an error
    reply (never a dropped socket), and once the outage is over both work again."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.client = Client(server.socket_url, params={"token": token}, reconnect=False)
        self.outcomes: Counter[str] = Counter()
        self.calls = itertools.count()

    async def run(self, stop: asyncio.Event) -> None:
        await self.client.connect()
        gateway = self.client.channel("gateway")
        room = self.client.channel("room:outage")
        await gateway.join(timeout=5)
        await room.join(timeout=5)
        while not stop.is_set():
            await self._push(gateway, "phoenix_gen_api", self._call())
            await self._push(room, "typing", {})
            await asyncio.sleep(0.02)
        assert self.client.is_connected
        reply = await gateway.push("phoenix_gen_api", self._call(), timeout=10)
        assert reply["success"], reply
        await room.push("typing", {}, timeout=10)
        await self.client.close()

    def _call(self) -> dict[str, object]:
        request = f"outage-{next(self.calls)}"
        return {"request_id": request, "service": "bench", "request_type": "echo", "args": {"n": 1}}

    async def _push(self, channel: ClientChannel, event: str, payload: object) -> None:
        try:
            reply = await channel.push(event, payload, timeout=10)
        except PushError:
            self.outcomes[f"{event}: error reply"] += 1
        else:
            ok = not isinstance(reply, dict) or reply.get("success", True)
            self.outcomes[f"{event}: {'ok' if ok else reply.get('code')}"] += 1


async def outage(
    server: LiveServer,
    stop: Callable[[], None],
    start: Callable[[], None],
    load: ChatLoad,
    sockets: SocketLoad | None = None,
) -> None:
    """Load running, the service goes away until a 503 is seen, then comes back until a 201."""
    done = asyncio.Event()
    background = asyncio.gather(load.run(done), *([sockets.run(done)] if sockets else []))
    await asyncio.sleep(0.5)
    stop()
    await load.until(503)
    await asyncio.sleep(1)
    start()
    await load.until(201)
    done.set()
    await background
    assert load.unavailable, "the outage was never seen"
    assert_503_problems(load)
    assert "Traceback" not in server.log(), server.log()[-4000:]
    assert (await load.http.get(f"{server.http_url}/healthz")).status_code == 200


async def test_redis_outage_is_503_then_recovers(tmp_path: Path) -> None:
    redis = RedisServer()
    redis.start()
    server = LiveServer(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        redis_url=redis.url,
        RELAYGATE_GATEWAY_MODULE="bench.servers.gateway_service:svc",
        RELAYGATE_CHAT_RATE_LIMIT=UNLIMITED,
    )
    try:
        await server.start()
        async with chat_load(server) as (load, http):
            sockets = SocketLoad(server, load.headers["authorization"].removeprefix("Bearer "))
            await outage(server, redis.stop, redis.start, load, sockets)
            assert sockets.outcomes["phoenix_gen_api: ok"] > 0, sockets.outcomes
            await assert_all_acked_stored(load, http)
    finally:
        server.stop()
        redis.close()


@pytest.fixture
def private_postgres() -> AsyncIterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server  # type: ignore[misc]
    server.close()


async def test_postgres_restart_is_503_then_recovers(
    tmp_path: Path, private_postgres: PostgresServer
) -> None:
    url = private_postgres.create_database("faults")
    server = LiveServer(tmp_path, url, RELAYGATE_CHAT_RATE_LIMIT=UNLIMITED)
    try:
        await server.start()
        async with chat_load(server) as (load, http):
            await outage(server, private_postgres.stop, private_postgres.start_again, load)
            await assert_all_acked_stored(load, http)
    finally:
        server.stop()

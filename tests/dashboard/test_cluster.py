"""Two ``relaygate serve`` processes sharing one real Redis (and one SQLite file): the dashboard on
node 1 shows both nodes, each one's sockets and the cluster totals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from relaygate.client import Client
from relaygate.dashboard.web import phoenix_js
from tests.dashboard.live import ARTIFACTS, chromium, create_users, sign_in
from tests.web.liveserver import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
async def nodes(
    redis: Redis, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[LiveServer, LiveServer, str]]:
    """Two nodes on a database that already has ``root@example.com`` and ``bob@example.com``; Bob's token."""
    if phoenix_js() is None:
        pytest.skip("node_modules/phoenix is not installed (npm ci)")
    database = f"sqlite+aiosqlite:///{tmp_path / 'cluster.db'}"
    tokens = await create_users(database)
    tag = uuid.uuid4().hex[:6]
    pair = tuple(LiveServer(tmp_path, database, redis_url=redis_url, name=f"{n}-{tag}") for n in ("n1", "n2"))
    try:
        await asyncio.gather(*(node.start() for node in pair))
        yield pair[0], pair[1], tokens["bob@example.com"]
    finally:
        for node in pair:
            node.stop()


async def test_the_dashboard_of_one_node_shows_both_nodes_and_the_totals(
    nodes: tuple[LiveServer, LiveServer, str],
) -> None:
    from playwright.async_api import expect

    n1, n2, bob_token = nodes
    async with chromium() as browser:
        page = await sign_in(browser, n1.http_url, "root@example.com")
        row = page.locator(f'#nodes tr[data-node="{n2.env["RELAYGATE_NODE_NAME"]}"]')
        await expect(page.locator("#nodes tbody tr")).to_have_count(2, timeout=15000)
        await expect(page.locator("#cluster-row")).to_contain_text("cluster (2 nodes)")
        await expect(page.locator("#total-sockets")).to_have_text("1", timeout=15000)  # the page's, on n1
        await expect(row.locator("td").nth(5)).to_have_text("0")

        bob = Client(n2.socket_url, params={"token": bob_token})
        await bob.connect()
        try:
            await bob.channel("room:lobby", {"device": "phone"}).join()
            await expect(row.locator("td").nth(5)).to_have_text("1", timeout=15000)
            await expect(page.locator("#total-sockets")).to_have_text("2", timeout=15000)
            await expect(page.locator("#cluster-row td").nth(5)).to_have_text("2")
            await expect(row.locator("td").nth(4)).to_have_text("ok")
            await page.locator('button.presence-button[data-topic="room:lobby"]').click()
            await expect(page.locator("#presence-list tbody")).to_contain_text('"name":"Bob"', timeout=15000)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard-cluster.png"), full_page=True)

            await page.select_option("#scope", n2.env["RELAYGATE_NODE_NAME"])
            await expect(page.locator("#total-sockets")).to_have_text("1")
            await expect(page.locator("#channels tbody")).to_contain_text("room")
        finally:
            await bob.close()

"""The demo page in headless Chromium: two users sign in, see each other online and exchange messages."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from company_api.web.demo import phoenix_js
from tests.web.liveserver import PASSWORD, LiveServer, register

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    if phoenix_js() is None:
        pytest.skip("node_modules/phoenix is not installed (npm ci)")
    live = LiveServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    await live.start()
    yield live
    live.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip("chromium is not installed")
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def _sign_in(browser: Any, url: str, email: str) -> Any:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#login-form button")
    await page.wait_for_selector("#chat-view:not(.hidden)", timeout=15000)
    return page


async def test_two_users_chat_in_the_demo_page(server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        await register(http, "Alice")
        bob, _ = await register(http, "Bob")
    alice_page = await _sign_in(browser, server.http_url, "alice@example.com")
    bob_page = await _sign_in(browser, server.http_url, "bob@example.com")

    for page in (alice_page, bob_page):
        await expect(page.locator("#online")).to_have_text("Alice, Bob", timeout=15000)

    await alice_page.fill("#room-input", "hello room")
    await alice_page.click("#room-form button")
    await expect(bob_page.locator("#room-log")).to_contain_text("Alice:hello room", timeout=15000)

    await alice_page.fill("#recipient-id", str(bob))
    await alice_page.click("#new-conversation-form button")
    await expect(alice_page.locator("#private-input")).to_be_enabled(timeout=15000)
    await alice_page.fill("#private-input", "hi Bob, privately")
    await alice_page.click("#private-send")
    await expect(alice_page.locator("#private-log")).to_contain_text("me:hi Bob, privately", timeout=15000)
    await expect(bob_page.locator("#conversations button")).to_have_count(1, timeout=15000)
    await bob_page.click("#conversations button")
    await expect(bob_page.locator("#private-log")).to_contain_text("hi Bob, privately", timeout=15000)

    ARTIFACTS.mkdir(exist_ok=True)
    await alice_page.screenshot(path=str(ARTIFACTS / "demo-alice.png"), full_page=True)
    await bob_page.screenshot(path=str(ARTIFACTS / "demo-bob.png"), full_page=True)


async def test_a_client_that_was_offline_gets_what_it_missed_once(server: LiveServer, browser: Any) -> None:
    """history.md: the page keeps positions and recovers on reconnect (private and room messages)."""
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        await register(http, "Alice")
        bob, _ = await register(http, "Bob")
    alice = await _sign_in(browser, server.http_url, "alice@example.com")
    bob_page = await _sign_in(browser, server.http_url, "bob@example.com")
    await alice.fill("#recipient-id", str(bob))
    await alice.click("#new-conversation-form button")
    await expect(alice.locator("#private-input")).to_be_enabled(timeout=15000)
    await alice.fill("#private-input", "first")
    await alice.click("#private-send")
    await expect(bob_page.locator("#conversations button")).to_have_count(1, timeout=15000)
    await bob_page.click("#conversations button")
    await expect(bob_page.locator("#private-log")).to_contain_text("first", timeout=15000)

    await bob_page.evaluate("state.socket.disconnect()")  # Bob goes offline
    await bob_page.wait_for_function("!state.socket.isConnected()")
    await alice.fill("#private-input", "while you were away")
    await alice.click("#private-send")
    await expect(alice.locator("#private-log")).to_contain_text("me:while you were away", timeout=15000)
    await alice.fill("#room-input", "room news")
    await alice.click("#room-form button")
    await expect(alice.locator("#room-log")).to_contain_text("Alice:room news", timeout=15000)
    await expect(bob_page.locator("#private-log")).not_to_contain_text("while you were away")

    await bob_page.evaluate("state.socket.connect()")  # back: the channels rejoin with since
    await expect(bob_page.locator("#private-log li", has_text="while you were away")).to_have_count(
        1, timeout=15000
    )
    await expect(bob_page.locator("#room-log li", has_text="room news")).to_have_count(1, timeout=15000)
    await alice.fill("#private-input", "live again")
    await alice.click("#private-send")
    await expect(bob_page.locator("#private-log li", has_text="live again")).to_have_count(1, timeout=15000)
    await expect(bob_page.locator("#private-log li", has_text="while you were away")).to_have_count(1)

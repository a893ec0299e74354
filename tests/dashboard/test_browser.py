"""The dashboard in headless Chromium against a real node (``relaygate serve``, one process).

An administrator signs in and sees their own socket counted, the count rising when another client
connects, a room's presence list, and a gateway function switched off (a phoenix.js call to it is
answered ``disabled``) and on again; a user who is not an administrator is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relaygate.client import Client
from relaygate.dashboard.web import phoenix_js
from tests.dashboard.live import ARTIFACTS, chromium, create_users, sign_in
from tests.web.liveserver import LiveServer

pytestmark = pytest.mark.browser
FUNCTION = "inventory/get_item/1.0.0"
CALL_FROM_THE_PAGE = """
async (token) => {
  const socket = new Phoenix.Socket("/socket", { params: { token } })
  socket.connect()
  const channel = socket.channel("gateway", { device_id: "browser" })
  await new Promise((ok, fail) => channel.join().receive("ok", ok).receive("error", fail).receive("timeout", fail))
  const request = { request_id: "r1", service: "inventory", request_type: "get_item", version: "1.0.0", args: { id: 1 } }
  const reply = await new Promise((ok) => channel.push("phoenix_gen_api", request)
    .receive("ok", (r) => ok({ status: "ok", response: r }))
    .receive("error", (r) => ok({ status: "error", response: r }))
    .receive("timeout", () => ok({ status: "timeout" })))
  socket.disconnect()
  return reply
}
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, dict[str, str]]]:
    """A node with the example inventory functions; ``root@`` and ``bob@example.com`` with their tokens."""
    if phoenix_js() is None:
        pytest.skip("node_modules/phoenix is not installed (npm ci)")
    live = LiveServer(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'dashboard.db'}",
        RELAYGATE_GATEWAY_MODULE="examples.inventory_service:svc",
        RELAYGATE_LOG_LEVEL="info",
    )
    tokens = await create_users(live.env["RELAYGATE_DATABASE_URL"])
    await live.start()
    yield live, tokens
    live.stop()


async def _call(page: Any, token: str) -> dict[str, Any]:
    reply: dict[str, Any] = await page.evaluate(CALL_FROM_THE_PAGE, token)
    return reply


async def _switch(page: Any, action: str) -> None:
    toggle = page.locator(f'input.toggle[data-function="{FUNCTION}"]')
    async with page.expect_response(lambda r: r.url.endswith(f"/{action}")) as answered:
        await (toggle.uncheck() if action == "disable" else toggle.check())
    assert (await answered.value).status == 204


async def test_an_administrator_watches_the_node_and_switches_a_function(
    server: tuple[LiveServer, dict[str, str]],
) -> None:
    from playwright.async_api import expect

    live, tokens = server
    bob_token = tokens["bob@example.com"]
    async with chromium() as browser:
        page = await sign_in(browser, live.http_url, "root@example.com")
        await expect(page.locator("#dashboard-view")).to_be_visible(timeout=15000)
        await expect(page.locator("#total-sockets")).to_have_text("1", timeout=15000)  # the page's own
        await expect(page.locator("#nodes tbody tr")).to_have_count(1)
        await expect(page.locator("#nodes tbody tr td").nth(4)).to_have_text("ok")

        bob = Client(live.socket_url, params={"token": bob_token})
        await bob.connect()
        try:
            room = bob.channel("room:lobby", {"device": "laptop"})
            await room.join()
            await expect(page.locator("#total-sockets")).to_have_text("2", timeout=15000)
            await expect(page.locator("#channels tbody")).to_contain_text("room", timeout=15000)
            await page.locator('button.presence-button[data-topic="room:lobby"]').click()
            await expect(page.locator("#presence-title")).to_have_text(
                "1 present on room:lobby", timeout=15000
            )
            await expect(page.locator("#presence-list tbody")).to_contain_text('"name":"Bob"')
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard-node.png"), full_page=True)
        finally:
            await bob.close()

        await expect(page.locator(f'tr[data-function="{FUNCTION}"]')).to_be_visible(timeout=15000)
        assert (await _call(page, bob_token))["status"] == "ok"
        await _switch(page, "disable")
        refused = await _call(page, bob_token)
        assert (refused["status"], refused["response"]["code"]) == ("error", "disabled")
        await expect(page.locator(f'input.toggle[data-function="{FUNCTION}"]')).not_to_be_checked(
            timeout=15000
        )
        await expect(page.locator(f'tr[data-function="{FUNCTION}"]')).to_contain_text(
            "disabled: 1", timeout=15000
        )
        await page.screenshot(path=str(ARTIFACTS / "dashboard-function-disabled.png"), full_page=True)

        await _switch(page, "enable")
        answered = await _call(page, bob_token)
        assert (answered["status"], answered["response"]["result"]["name"]) == ("ok", "bolt")
        await expect(page.locator(f'input.toggle[data-function="{FUNCTION}"]')).to_be_checked(timeout=15000)

        refused_page = await sign_in(browser, live.http_url, "bob@example.com")
        await expect(refused_page.locator("#refused-view")).to_be_visible(timeout=15000)
        await expect(refused_page.locator("#dashboard-view")).to_be_hidden()
        await refused_page.screenshot(path=str(ARTIFACTS / "dashboard-refused.png"))

    log = live.log()
    assert f"gateway function {FUNCTION}: disable" in log
    assert f"gateway function {FUNCTION}: enable" in log
    assert not any(token in log for token in tokens.values())

"""Helpers of the dashboard's end-to-end tests: the first administrator and headless Chromium."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from relaygate.accounts import NewUser
from relaygate.accounts.passwords import Passwords
from relaygate.config import load_settings
from relaygate.db import Database
from relaygate.db.migrate import upgrade
from relaygate.node import create_app
from tests.accounts.support import FAST_HASHER
from tests.company_api.web.test_demo_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.conftest import TEST_SECRET
from tests.reference import MIGRATIONS
from tests.web.liveserver import PASSWORD

__all__ = ["ARTIFACTS", "PASSWORD", "chromium", "create_users", "sign_in"]


async def create_users(database_url: str) -> dict[str, str]:
    """An administrator (``root@example.com``) and a user (``bob@example.com``, named Bob) in a node's
    database, migrated first; returns their access tokens. Registered in process with cheap hashing
    (the node's own argon2 parameters, or ``relaygate users create``, cost seconds per user here)."""
    database = Database(database_url)
    await upgrade(database, MIGRATIONS)
    await database.dispose()
    settings = load_settings(env="test", database_url=database_url, secret_key=TEST_SECRET, redis_url=None)
    app = create_app(settings)
    tokens = {}
    async with app.router.lifespan_context(app):
        accounts = app.state.relaygate.accounts
        accounts.passwords = Passwords(FAST_HASHER)
        for name, role in (("Root", "admin"), ("Bob", "user")):
            email = f"{name.lower()}@example.com"
            new = NewUser(name=name, subname="Test", email=email, job="Tester", password=PASSWORD)
            account = await accounts.register(new, role=role)
            tokens[email] = accounts.tokens.issue(account.id, account.created_us).token
    return tokens


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's chromium driven by Playwright (no browser download); skips where it is missing."""
    playwright_api = pytest.importorskip("playwright.async_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip("chromium is not installed")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(browser: Any, url: str, email: str) -> Any:
    """A new browser context on ``url``/dashboard, signed in through the page's form."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/dashboard")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#signin-form button")
    return page

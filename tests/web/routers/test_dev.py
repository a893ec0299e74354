"""Development routes exist in dev/test only; CORS follows RELAYGATE_CORS_ORIGINS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from relaygate.config import Settings, load_settings
from relaygate.mail import Email
from relaygate.node import create_app
from tests.conftest import TEST_SECRET


@asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_mailbox_lists_newest_first_and_empties(http: httpx.AsyncClient, app: FastAPI) -> None:
    mailer = app.state.relaygate.mailer
    await http.delete("/dev/mailbox")
    assert await mailer.send(Email(to="one@example.com", subject="1", text_body="first"))
    assert await mailer.send(
        Email(to="two@example.com", subject="2", text_body="second", html_body="<b>2</b>")
    )
    messages = (await http.get("/dev/mailbox")).json()["data"]
    assert [m["subject"] for m in messages] == ["2", "1"]
    assert set(messages[0]) == {"to", "from", "subject", "text_body", "html_body", "sent_at"}
    listed = await http.get("/dev/mailbox")
    assert listed.headers["cache-control"] == "no-store"
    head = await http.head("/dev/mailbox")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == listed.headers["content-length"]
    wrong = await http.post("/dev/mailbox", json={})
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD, DELETE, OPTIONS"
    assert (await http.delete("/dev/mailbox")).status_code == 204
    assert (await http.get("/dev/mailbox")).json() == {"data": []}


async def test_mailbox_is_404_in_prod(database_url: str, db: object) -> None:
    settings = load_settings(env="prod", database_url=database_url, secret_key=TEST_SECRET, redis_url=None)
    async with client(settings) as http:
        assert (await http.get("/dev/mailbox")).status_code == 404
        assert (await http.delete("/dev/mailbox")).status_code == 404
        assert "/dev/mailbox" not in (await http.get("/openapi.json")).json()["paths"]


async def test_cors_allows_only_the_configured_origins(settings: Settings, db: object) -> None:
    configured = settings.model_copy(update={"cors_origins": ["https://app.example.com"]})
    async with client(configured) as http:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        allowed = await http.options(
            "/api/v1/sessions", headers={"Origin": "https://app.example.com", **preflight}
        )
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        refused = await http.options(
            "/api/v1/sessions", headers={"Origin": "https://evil.example.com", **preflight}
        )
        assert "access-control-allow-origin" not in refused.headers
        simple = await http.get("/healthz", headers={"Origin": "https://app.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "authorization" in simple.headers["access-control-expose-headers"].lower()

"""Schemathesis and REDbot against a real ``relaygate serve`` on a free port.

Schemathesis runs every phase (coverage, fuzzing, stateful) with every check, authenticated as an
administrator made by the accounts context; ``schemathesis.toml`` makes warnings (e.g. failing
credentials) fail the run; it disables only ``DELETE /api/v1/sessions`` and ``DELETE /api/v1/users/{id}``,
which would revoke the run's credentials. REDbot lints the products resources from a HAR export.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from relaygate.config import load_settings
from relaygate.db import Database
from relaygate.db.migrate import upgrade
from relaygate.node import create_app
from tests.conftest import TEST_SECRET
from tests.reference import MIGRATIONS
from tests.servers import free_port
from tests.web.support import issue_token

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Server:
    url: str
    admin_token: str
    settings_env: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("served")
    env = {
        **os.environ,
        "RELAYGATE_ENV": "test",
        "RELAYGATE_SECRET_KEY": TEST_SECRET,
        "RELAYGATE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'relaygate.db'}",
        # fuzzing posts messages far faster than people do; the limit itself is tested in tests/web/routers
        "RELAYGATE_CHAT_RATE_LIMIT": "1000000",
        "RELAYGATE_GATEWAY_MODULE": "examples.inventory_service:svc",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("RELAYGATE_REDIS_URL", None)
    token = _admin_token(env["RELAYGATE_DATABASE_URL"])
    port = free_port()
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "relaygate", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, workdir / "server.log")
        yield Server(url, token, env)
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until this very process answers /healthz (a free port can be taken by someone else meanwhile)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"relaygate serve exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"relaygate serve did not become healthy: {log.read_text()[-3000:]}")


async def _new_admin(database_url: str, *, seed_chat: bool = False) -> str:
    """A token of a new administrator, written straight to the served node's database."""
    database = Database(database_url)
    await upgrade(database, MIGRATIONS)
    await database.dispose()
    app = create_app(load_settings(env="test", database_url=database_url, secret_key=TEST_SECRET))
    async with app.router.lifespan_context(app):
        token = await issue_token(app, "admin")
        if seed_chat:
            await _seed_chat(app, token)
        return token


def _admin_token(database_url: str) -> str:
    return asyncio.run(_new_admin(database_url, seed_chat=True))


async def _seed_chat(app: FastAPI, admin_token: str) -> None:
    """Conversation 1 between the administrator and a user, with message 1 (schemathesis.toml names them)."""
    node = app.state.relaygate
    admin = await node.accounts.authenticate_token(admin_token)
    other = await node.accounts.authenticate_token(await issue_token(app, "user"))
    conversation, _ = await node.contexts.chat.start_conversation(admin.user_id, other.user_id)
    message = await node.contexts.chat.send_message(admin.user_id, conversation.id, "seeded for schemathesis")
    assert (conversation.id, message.id) == (1, 1)


SCHEMATHESIS_SECONDS = 840
"""The run takes ~1 minute alone on a 2-core machine and ~2 on a loaded one, mostly waiting for a
CPU: its bound is generous (it must fail on findings, never on a slow machine). The test's own
timeout adds the server's start (module fixture) on top."""


@pytest.mark.timeout(SCHEMATHESIS_SECONDS + 60)
def test_schemathesis_finds_no_failure(server: Server) -> None:
    command = [
        str(BIN / "st"),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "25",
        "--seed",
        "20261122",
        "--wait-for-schema",
        "20",
        "-H",
        f"Authorization: Bearer {server.admin_token}",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=SCHEMATHESIS_SECONDS, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout


def _redbot(url: str, tmp_path: Path) -> list[dict[str, str]]:
    har = subprocess.run(
        [str(BIN / "redbot"), "-o", "har", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    entries = json.loads(har)["log"]["entries"]
    return [message for entry in entries for message in entry.get("_red_messages", [])]


@pytest.fixture(scope="module")
async def product_url(server: Server) -> AsyncIterator[str]:
    # not the schemathesis admin: that run may have demoted or changed it (PATCH /users/{id})
    token = await _new_admin(server.settings_env["RELAYGATE_DATABASE_URL"])
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/api/v1/products",
            json={"name": "REDbot lamp", "price_cents": 1999, "tags": ["lint"]},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
        yield server.url + response.headers["location"]


@pytest.mark.parametrize("which", ["item", "collection"])
async def test_redbot_rates_products_without_bad(
    server: Server, product_url: str, which: str, tmp_path: Path
) -> None:
    url = product_url if which == "item" else f"{server.url}/api/v1/products"
    messages = _redbot(url, tmp_path)
    levels = {message["note_id"]: message["level"].upper() for message in messages}
    bad = [message for message in messages if message["level"].upper() == "BAD"]
    assert not bad, bad
    assert levels.get("INM_304") == "GOOD", levels
    if which == "item":
        assert levels.get("IMS_304") == "GOOD", levels

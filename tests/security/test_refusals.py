"""What a production node refuses, and how: one test per line of SECURITY.md's table.

All of it runs against a real ``relaygate serve`` with ``RELAYGATE_ENV=prod`` and debug logging
(the most a log could ever reveal). ``test_the_list_matches_the_tests`` keeps SECURITY.md and
this module in step.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import orjson
import pytest

from tests.conftest import TEST_SECRET
from tests.faults.wsraw import CLOSE, TEXT, RawSocket, frame
from tests.web.liveserver import PASSWORD, LiveServer, register, start_conversation

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Node:
    server: LiveServer
    token: str
    user_id: int


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir = tmp_path_factory.mktemp("prod")
    server = LiveServer(
        workdir,
        f"sqlite+aiosqlite:///{workdir / 'db.sqlite'}",
        RELAYGATE_ENV="prod",
        RELAYGATE_LOG_LEVEL="debug",
    )

    async def start() -> tuple[int, str]:
        await server.start()
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            return await register(http, "Sec")

    user_id, token = asyncio.run(start())
    yield Node(server, token, user_id)
    server.stop()


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _upgrade_status(node: Node, token: str, origin: str | None = None) -> bytes:
    """The status line a socket upgrade gets."""
    reader, writer = await asyncio.open_connection("127.0.0.1", node.server.port)
    origin_header = f"Origin: {origin}\r\n" if origin else ""
    writer.write(
        f"GET /socket/websocket?vsn=2.0.0&token={token} HTTP/1.1\r\nHost: 127.0.0.1:{node.server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{origin_header}\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    return head.split(b"\r\n", 1)[0]


async def test_cross_site_socket_origins_are_refused(node: Node) -> None:
    assert b" 403 " in await _upgrade_status(node, node.token, origin="https://evil.example")
    assert b" 101 " in await _upgrade_status(node, node.token, origin=f"http://127.0.0.1:{node.server.port}")


async def test_tampered_tokens_are_refused(node: Node) -> None:
    header, _payload, signature = _segments(node.token)
    claims = {**_claims(node.token), "sub": str(node.user_id + 1)}
    forged = f"{header}.{_b64(claims)}.{signature}"
    async with httpx.AsyncClient(base_url=node.server.http_url) as http:
        me = await http.get(f"/api/v1/users/{node.user_id}", headers={"authorization": f"Bearer {forged}"})
        assert me.status_code == 401
        assert me.headers["content-type"] == "application/problem+json"
    assert b" 403 " in await _upgrade_status(node, forged)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("attack", ["none", "HS512", "wrong-key"])
async def test_algorithm_confusion_is_refused(node: Node, attack: str) -> None:
    claims = _claims(node.token)
    if attack == "none":
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    elif attack == "HS512":
        token = jwt.encode(claims, TEST_SECRET, algorithm="HS512")  # the server key, another algorithm
    else:
        token = jwt.encode(claims, "not-the-server-key-0123456789-abcdefghijkl", algorithm="HS256")
    async with httpx.AsyncClient(base_url=node.server.http_url) as http:
        response = await http.get(
            f"/api/v1/users/{node.user_id}", headers={"authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401
    assert b" 403 " in await _upgrade_status(node, token)


async def test_oversize_bodies_and_frames_are_refused(node: Node) -> None:
    async with httpx.AsyncClient(base_url=node.server.http_url) as http:
        body = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        response = await http.post(
            "/api/v1/products", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
    raw = await RawSocket.connect(node.server.port, f"/socket/websocket?vsn=2.0.0&token={node.token}")
    message = orjson.dumps(["1", "1", "room:big", "phx_join", {"pad": "x" * (2 * 1024 * 1024)}])
    await raw.send(frame(TEXT, message))
    received = await raw.drain_replies(quiet=5)
    await raw.close()
    assert received.close_code == 1009


@pytest.mark.parametrize(
    "path",
    [
        "/docs/static/../../config.py",
        "/docs/static/..%2f..%2fconfig.py",
        "/docs/static/%2e%2e%2f%2e%2e%2fconfig.py",
        "/docs/static/....//....//etc/passwd",
        "/docs/static/%2fetc%2fpasswd",
        "/docs/static/swagger-ui.css%00.py",
    ],
)
async def test_static_routes_do_not_traverse(node: Node, path: str) -> None:
    async with httpx.AsyncClient(base_url=node.server.http_url) as http:
        response = await http.get(path)
    assert response.status_code == 404, response.text[:200]
    assert "root:" not in response.text and "import " not in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/products"),
        ("DELETE", "/api/v1/products/1"),
        ("GET", "/api/v1/gateway/services"),
        ("GET", "/api/v1/gateway/functions"),
        ("GET", "/api/v1/gateway/rate-limits"),
    ],
)
async def test_admin_routes_need_the_role(node: Node, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=node.server.http_url) as http:
        anonymous = await http.request(method, path, json={})
        assert anonymous.status_code == 401
        user = await http.request(method, path, json={}, headers={"authorization": f"Bearer {node.token}"})
        assert user.status_code == 403, user.text


async def test_logs_hold_no_secrets_or_message_bodies(node: Node) -> None:
    secret_body = f"body-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=node.server.http_url) as http:
        bob, bob_token = await register(http, f"Bob{uuid.uuid4().hex[:6]}")
        await http.post("/api/v1/sessions", json={"email": "nobody@example.com", "password": PASSWORD})
        conversation = await start_conversation(http, node.token, bob)
        sent = await http.post(
            f"/api/v1/conversations/{conversation}/messages",
            json={"content": secret_body},
            headers={"authorization": f"Bearer {node.token}"},
        )
        assert sent.status_code == 201
    raw = await RawSocket.connect(node.server.port, f"/socket/websocket?vsn=2.0.0&token={bob_token}")
    await raw.send(frame(TEXT, orjson.dumps(["1", "1", "room:sec", "phx_join", {}])))
    await raw.send(frame(TEXT, orjson.dumps(["1", "2", "room:sec", "message:new", {"body": secret_body}])))
    await raw.drain_replies(quiet=0.5)
    await raw.send(frame(CLOSE, b"\x03\xe9"))
    await raw.close()
    log = node.server.log()
    assert log, "the node logged nothing at debug level"
    for secret in (PASSWORD, TEST_SECRET, node.token, bob_token, secret_body):
        assert secret not in log
    assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+", log), "a JWT reached the log"


def test_the_list_matches_the_tests() -> None:
    listed = set(re.findall(r"`(test_\w+)`", (ROOT / "SECURITY.md").read_text()))
    here = {
        name for name in globals() if name.startswith("test_") and name != "test_the_list_matches_the_tests"
    }
    assert listed == here

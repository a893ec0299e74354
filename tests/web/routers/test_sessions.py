"""/api/v1/sessions: login, logout, bad tokens, throttling, and what reaches the logs."""

from __future__ import annotations

import base64
import json
import logging
import time

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.accounts.support import PASSWORD, bearer
from tests.conftest import TEST_SECRET
from tests.web.routers.support import Users, mailbox
from tests.web.support import problem


async def test_login_returns_user_token_expiry_and_header(
    http: httpx.AsyncClient, users: Users, app: FastAPI
) -> None:
    user, _ = await users.create()
    before = int(time.time())
    response = await http.post(
        "/api/v1/sessions", json={"email": str(user["email"]).upper(), "password": PASSWORD}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["user"] == user
    assert response.headers["authorization"] == f"Bearer {data['token']}"
    ttl = app.state.relaygate.settings.token_ttl
    assert before + ttl <= data["expire"] <= int(time.time()) + ttl
    assert (await http.get("/api/v1/me", headers=bearer(data["token"]))).status_code == 200


async def test_wrong_email_and_wrong_password_look_the_same(http: httpx.AsyncClient, users: Users) -> None:
    user, _ = await users.create()
    wrong_password = await http.post(
        "/api/v1/sessions", json={"email": user["email"], "password": "nope" * 4}
    )
    unknown = await http.post("/api/v1/sessions", json={"email": "who@example.com", "password": "nope" * 4})
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.json() == unknown.json()
    assert wrong_password.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"


async def test_login_body_is_validated(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/sessions", json={"email": "a@example.com"})
    assert response.status_code == 422 and "password" in response.json()["errors"]
    response = await http.post("/api/v1/sessions", json={"email": 1, "password": PASSWORD})
    assert response.status_code == 422 and "email" in response.json()["errors"]


async def test_logout_revokes_only_the_presented_token(http: httpx.AsyncClient, users: Users) -> None:
    user, first = await users.create()
    second = await users.login(str(user["email"]), PASSWORD)
    assert (await http.delete("/api/v1/sessions", headers=bearer(first))).status_code == 204
    refused = await http.get("/api/v1/me", headers=bearer(first))
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert (await http.delete("/api/v1/sessions", headers=bearer(first))).status_code == 401
    assert (await http.get("/api/v1/me", headers=bearer(second))).status_code == 200
    assert (await http.delete("/api/v1/sessions")).status_code == 401


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_expired_and_tampered_tokens_are_401(
    http: httpx.AsyncClient, users: Users, app: FastAPI
) -> None:
    user, token = await users.create()
    other, _ = await users.create()
    claims = jwt.decode(token, options={"verify_signature": False})
    codec = app.state.relaygate.accounts.tokens
    expired = codec.issue(int(str(user["id"])), claims["uat"], now=int(time.time()) - 10 * codec.ttl).token
    header, _, signature = token.split(".")
    bad_tokens = {
        "expired": expired,
        "wrong signature": jwt.encode(
            claims, "another-secret-key-of-enough-length-0123456789", algorithm="HS256"
        ),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "changed sub": f"{header}.{_b64(claims | {'sub': str(other['id'])})}.{signature}",
        "hs512 with the key": jwt.encode(claims, TEST_SECRET + TEST_SECRET, algorithm="HS512"),
        "garbage": "not-a-token",
    }
    for name, bad in bad_tokens.items():
        response = await http.get("/api/v1/me", headers=bearer(bad))
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith("Bearer"), name


async def test_failed_logins_are_throttled_per_email(http: httpx.AsyncClient, users: Users) -> None:
    user, _ = await users.create()
    for _ in range(10):
        response = await http.post("/api/v1/sessions", json={"email": user["email"], "password": "wrong" * 3})
        assert response.status_code == 401
    for password in ("wrong" * 3, PASSWORD):  # even the right password waits now
        response = await http.post("/api/v1/sessions", json={"email": user["email"], "password": password})
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 300
        assert response.headers["content-type"] == "application/problem+json"
    # Another address is refused too: the email's own counter is exhausted.
    transport = httpx.ASGITransport(app=users.app, client=("127.0.0.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
        response = await elsewhere.post(
            "/api/v1/sessions", json={"email": user["email"], "password": PASSWORD}
        )
        assert response.status_code == 429


async def test_failed_logins_are_throttled_per_address(http: httpx.AsyncClient, users: Users) -> None:
    user, _ = await users.create()
    for attempt in range(10):
        body = {"email": f"nobody{attempt}@example.com", "password": "wrong" * 3}
        assert (await http.post("/api/v1/sessions", json=body)).status_code == 401
    response = await http.post("/api/v1/sessions", json={"email": user["email"], "password": PASSWORD})
    assert response.status_code == 429 and "retry-after" in response.headers
    transport = httpx.ASGITransport(app=users.app, client=("127.0.0.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
        response = await elsewhere.post(
            "/api/v1/sessions", json={"email": user["email"], "password": PASSWORD}
        )
        assert response.status_code == 200


async def test_successful_logins_do_not_count(http: httpx.AsyncClient, users: Users) -> None:
    user, _ = await users.create()
    for _ in range(12):
        await users.login(str(user["email"]), PASSWORD)


async def test_no_password_or_token_reaches_the_logs(
    http: httpx.AsyncClient, users: Users, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    await http.delete("/dev/mailbox")
    body = users.body(email="secret@example.com")
    del body["password"]
    assert (await http.post("/api/v1/users", json=body)).status_code == 201
    [mail] = await mailbox(http)
    generated = mail["text_body"].split("password is:")[1].split()[0]
    token = await users.login("secret@example.com", generated)
    failed = await http.post(
        "/api/v1/sessions", json={"email": "secret@example.com", "password": "a wrong guess"}
    )
    assert failed.status_code == 401
    await http.get("/api/v1/me", headers=bearer(token))
    await http.delete("/api/v1/sessions", headers=bearer(token))
    await http.get("/api/v1/me", headers=bearer(token))
    records = caplog.records
    assert records, "nothing was logged: the test would prove nothing"
    text = "\n".join(f"{record.getMessage()} {record.__dict__} {record.exc_text or ''}" for record in records)
    for secret in (generated, token, "a wrong guess", token.split(".")[2]):
        assert secret not in text


async def test_sessions_semantics_table(http: httpx.AsyncClient, users: Users) -> None:
    user, token = await users.create()
    login = {"email": user["email"], "password": PASSWORD}
    for method in ("GET", "PUT", "PATCH"):
        response = await http.request(method, "/api/v1/sessions", headers=bearer(token))
        problem(response, 405)
        assert response.headers["allow"] == "POST, DELETE, OPTIONS"
    for headers in ({}, bearer("not-a-token"), {"authorization": "Basic abc"}):
        response = await http.delete("/api/v1/sessions", headers=headers)
        problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    for accept in ("text/xml", "application/json;q=0"):
        problem(await http.post("/api/v1/sessions", json=login, headers={"accept": accept}), 406)
        problem(await http.delete("/api/v1/sessions", headers={**bearer(token), "accept": accept}), 406)
    options = await http.options("/api/v1/sessions")
    assert options.status_code == 204 and options.headers["allow"] == "POST, DELETE, OPTIONS"
    assert options.headers["accept-post"] == "application/json"
    for content_type in ("text/plain", "application/merge-patch+json", "application/json; charset=latin-1"):
        response = await http.post(
            "/api/v1/sessions", content=json.dumps(login), headers={"content-type": content_type}
        )
        problem(response, 415)
        assert response.headers["accept-post"] == "application/json"
    plain = {"content-type": "application/json"}
    for malformed in (b'{"email": ', b'{"email": "\xff"}', b""):
        problem(await http.post("/api/v1/sessions", content=malformed, headers=plain), 400)
    for body, field in (
        ({**login, "password": 12345678901234}, "password"),
        ({**login, "remember": True}, "remember"),
        ({**login, "email": ""}, "email"),
    ):
        assert list(problem(await http.post("/api/v1/sessions", json=body), 422)["errors"]) == [field]
    head = await http.head("/api/v1/sessions")
    assert (
        head.status_code == 405 and head.content == b"" and head.headers["allow"] == "POST, DELETE, OPTIONS"
    )
    response = await http.post("/api/v1/sessions", json=login)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"


async def test_openapi_documents_login_errors(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    login = document["paths"]["/api/v1/sessions"]["post"]
    assert "WWW-Authenticate" in login["responses"]["401"]["headers"]
    assert "Retry-After" in login["responses"]["429"]["headers"]
    assert login["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SessionView"
    }
    assert document["paths"]["/api/v1/sessions"]["delete"]["security"] == [{"bearer": []}]
    assert "/dev/mailbox" in document["paths"]

"""/api/v1/users and /api/v1/me over HTTP (on SQLite and PostgreSQL)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.contexts.accounts.support import PASSWORD, bearer
from tests.web.routers.support import Users, mailbox


async def test_register_returns_the_user_without_password(http: httpx.AsyncClient, users: Users) -> None:
    response = await http.post("/api/v1/users", json=users.body(email="Ada@Example.com"))
    assert response.status_code == 201
    user = response.json()["data"]
    assert set(user) == {"id", "name", "subname", "email", "job", "role", "inserted_at", "updated_at"}
    assert user["role"] == "user" and user["email"] == "Ada@example.com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", user["inserted_at"])
    assert response.headers["location"] == f"/api/v1/users/{user['id']}"
    assert PASSWORD not in response.text and "password" not in response.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"subname": ""}, "subname"),
        ({"job": "j" * 201}, "job"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "a" * 190 + "@example.com"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"password": 123456789012}, "password"),
        ({"role": "admin"}, "role"),
    ],
)
async def test_register_rejects_each_invalid_field(
    http: httpx.AsyncClient, users: Users, change: dict[str, object], field: str
) -> None:
    response = await http.post("/api/v1/users", json=users.body(**change))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["errors"]


@pytest.mark.parametrize("missing", ["name", "subname", "email", "job"])
async def test_register_requires_each_field(http: httpx.AsyncClient, users: Users, missing: str) -> None:
    body = users.body()
    del body[missing]
    response = await http.post("/api/v1/users", json=body)
    assert response.status_code == 422 and missing in response.json()["errors"]


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/v1/users", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_duplicate_email_in_another_case_is_taken(http: httpx.AsyncClient, users: Users) -> None:
    assert (await http.post("/api/v1/users", json=users.body(email="dup@example.com"))).status_code == 201
    response = await http.post("/api/v1/users", json=users.body(email="DUP@example.COM"))
    assert response.status_code == 422
    assert response.json()["errors"] == {"email": ["has already been taken"]}


async def test_generated_password_is_mailed_and_logs_in(http: httpx.AsyncClient, users: Users) -> None:
    await http.delete("/dev/mailbox")
    body = users.body(email="gen@example.com")
    del body["password"]
    response = await http.post("/api/v1/users", json=body)
    assert response.status_code == 201
    [mail] = await mailbox(http)
    assert mail["to"] == "gen@example.com" and mail["subject"] == "Your Relaygate password"
    assert mail["from"] == "no-reply@relaygate.local" and mail["sent_at"].endswith("Z")
    password = re.search(r"password is:\s+(\S+)", mail["text_body"])
    assert password is not None and len(password.group(1)) >= 16
    assert re.fullmatch(r"[A-Za-z0-9_-]+", password.group(1))
    assert password.group(1) not in response.text
    assert await users.login("gen@example.com", password.group(1))


async def test_protected_routes_need_a_bearer_token(http: httpx.AsyncClient, users: Users) -> None:
    user, _ = await users.create()
    for path in ("/api/v1/users", f"/api/v1/users/{user['id']}", "/api/v1/me"):
        response = await http.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"
    response = await http.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401


async def test_get_user_and_me(http: httpx.AsyncClient, users: Users) -> None:
    ada, token = await users.create()
    bob, _ = await users.create(name="Bob")
    response = await http.get(f"/api/v1/users/{bob['id']}", headers=bearer(token))
    assert response.status_code == 200 and response.json()["data"] == bob
    assert response.headers["cache-control"] == "private, no-cache"
    me = await http.get("/api/v1/me", headers=bearer(token))
    assert me.json()["data"] == ada


@pytest.mark.parametrize("user_id", ["999999", "abc", "1.5", "99999999999999999999999", "%C2%B9"])
async def test_unknown_or_malformed_ids_are_404(http: httpx.AsyncClient, users: Users, user_id: str) -> None:
    _, token = await users.create()
    assert (await http.get(f"/api/v1/users/{user_id}", headers=bearer(token))).status_code == 404


async def test_list_is_paginated_with_link_and_cursor(http: httpx.AsyncClient, users: Users) -> None:
    created = [await users.create() for _ in range(5)]
    token = created[0][1]
    seen: list[int] = []
    url: str | None = "/api/v1/users?limit=2"
    pages = 0
    while url is not None and pages < 10:
        response = await http.get(url, headers=bearer(token))
        assert response.status_code == 200
        body = response.json()
        seen += [user["id"] for user in body["data"]]
        link = response.headers.get("link")
        if body["meta"]["next"] is None:
            assert link is None
            url = None
        else:
            assert link is not None and link.endswith('rel="next"')
            url = link[1 : link.index(">")]
        pages += 1
    assert seen == sorted(user["id"] for user, _ in created) and pages == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "limit=1.5"])
async def test_list_rejects_bad_limits(http: httpx.AsyncClient, users: Users, query: str) -> None:
    _, token = await users.create()
    response = await http.get(f"/api/v1/users?{query}", headers=bearer(token))
    assert response.status_code == 422 and "limit" in response.json()["errors"]


async def test_tampered_cursor_is_400(http: httpx.AsyncClient, users: Users) -> None:
    _, token = await users.create()
    await users.create()
    cursor = (await http.get("/api/v1/users?limit=1", headers=bearer(token))).json()["meta"]["next"]
    assert cursor
    for bad in ("garbage", "OTk." + cursor.split(".")[1], cursor[:-2] + "xx", "!!!.x"):
        response = await http.get("/api/v1/users", params={"after": bad}, headers=bearer(token))
        assert response.status_code == 400, bad


async def test_patch_own_profile(http: httpx.AsyncClient, users: Users) -> None:
    user, token = await users.create()
    response = await http.patch(
        f"/api/v1/users/{user['id']}", json={"name": "Augusta", "job": "Analyst"}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "Augusta" and response.json()["data"]["job"] == "Analyst"
    assert response.json()["data"]["subname"] == user["subname"]


async def test_patch_rules(http: httpx.AsyncClient, users: Users) -> None:
    ada, ada_token = await users.create()
    bob, _ = await users.create()
    admin, admin_token = await users.create(admin=True)
    path = f"/api/v1/users/{ada['id']}"

    async def patch(target: str, body: dict[str, object], token: str) -> httpx.Response:
        return await http.patch(target, json=body, headers=bearer(token))

    assert (await patch(f"/api/v1/users/{bob['id']}", {"name": "x"}, ada_token)).status_code == 403
    assert (await patch(path, {"role": "admin"}, ada_token)).status_code == 403
    assert (await patch(path, {"name": None}, ada_token)).status_code == 422
    assert (await patch(path, {"nickname": "x"}, ada_token)).status_code == 422
    assert (await patch(path, {"email": str(bob["email"]).upper()}, ada_token)).json()["errors"] == {
        "email": ["has already been taken"]
    }
    missing = await patch(path, {"password": "a new password!"}, ada_token)
    assert missing.status_code == 422 and "current_password" in missing.json()["errors"]
    wrong = await patch(path, {"password": "a new password!", "current_password": "wrong one!!!"}, ada_token)
    assert wrong.status_code == 422 and "current_password" in wrong.json()["errors"]
    ok = await patch(path, {"password": "a new password!", "current_password": PASSWORD}, ada_token)
    assert ok.status_code == 200
    assert await users.login(str(ada["email"]), "a new password!")
    # An admin changes another user's password without theirs, and roles.
    assert (await patch(path, {"password": "set by the admin"}, admin_token)).status_code == 200
    assert await users.login(str(ada["email"]), "set by the admin")
    promoted = await patch(path, {"role": "admin"}, admin_token)
    assert promoted.status_code == 200 and promoted.json()["data"]["role"] == "admin"
    # ... but needs the current password for their own.
    own = await patch(f"/api/v1/users/{admin['id']}", {"password": "another password"}, admin_token)
    assert own.status_code == 422
    assert (await patch("/api/v1/users/999999", {"name": "x"}, admin_token)).status_code == 404


async def test_delete_self_and_by_admin(http: httpx.AsyncClient, users: Users) -> None:
    ada, ada_token = await users.create()
    bob, bob_token = await users.create()
    _, admin_token = await users.create(admin=True)
    assert (await http.delete(f"/api/v1/users/{bob['id']}", headers=bearer(ada_token))).status_code == 403
    response = await http.delete(f"/api/v1/users/{ada['id']}", headers=bearer(ada_token))
    assert response.status_code == 204 and response.content == b""
    assert (await http.get("/api/v1/me", headers=bearer(ada_token))).status_code == 401
    assert (await http.delete(f"/api/v1/users/{bob['id']}", headers=bearer(admin_token))).status_code == 204
    assert (await http.get("/api/v1/me", headers=bearer(bob_token))).status_code == 401
    assert (await http.get(f"/api/v1/users/{bob['id']}", headers=bearer(admin_token))).status_code == 404

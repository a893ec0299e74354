"""/api/v1/users and /api/v1/me over HTTP (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import re

import httpx
import pytest

from tests.accounts.support import PASSWORD, bearer
from tests.web.routers.support import Users, mailbox
from tests.web.support import problem


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
    assert response.headers["vary"] == "Accept, Authorization"
    assert response.headers["etag"].startswith('"') and response.headers["last-modified"].endswith("GMT")
    me = await http.get("/api/v1/me", headers=bearer(token))
    assert me.json()["data"] == ada
    assert me.headers["cache-control"] == "private, no-cache"
    assert me.headers["etag"] != response.headers["etag"] and me.headers["last-modified"]
    for path, shown in ((f"/api/v1/users/{bob['id']}", response), ("/api/v1/me", me)):
        head = await http.head(path, headers=bearer(token))
        assert head.status_code == 200 and head.content == b""
        for name in ("etag", "last-modified", "cache-control", "content-length", "content-type"):
            assert head.headers[name] == shown.headers[name], name


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
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    # another position under the original tag (swapped or longer), changed trailing bytes, not base64
    other = b"8" if raw.endswith(b"9") else b"9"
    moved = base64.urlsafe_b64encode(raw[:-1] + other).decode().rstrip("=")
    forged = base64.urlsafe_b64encode(raw + b"9").decode().rstrip("=")
    flipped = cursor[:-2] + ("xx" if not cursor.endswith("xx") else "yy")
    for bad in ("garbage", moved, forged, flipped, "!!!.x"):
        response = await http.get("/api/v1/users", params={"after": bad}, headers=bearer(token))
        assert response.status_code == 400, bad


async def test_conditional_get_and_write(http: httpx.AsyncClient, users: Users) -> None:
    user, token = await users.create()
    path = f"/api/v1/users/{user['id']}"
    shown = await http.get(path, headers=bearer(token))
    etag, last_modified = shown.headers["etag"], shown.headers["last-modified"]
    for conditions in (
        {"if-none-match": etag},
        {"if-none-match": f"W/{etag}"},
        {"if-modified-since": last_modified},
    ):
        for method in ("GET", "HEAD"):
            response = await http.request(method, path, headers={**bearer(token), **conditions})
            assert response.status_code == 304, (method, conditions)
            assert response.content == b"" and "content-type" not in response.headers
            for name in ("etag", "last-modified", "cache-control", "vary"):
                assert response.headers[name] == shown.headers[name], name
    changed = await http.get(path, headers={**bearer(token), "if-none-match": '"other"'})
    assert changed.status_code == 200
    for stale in ({"if-match": '"other"'}, {"if-match": f"W/{etag}"}, {"if-none-match": "*"}):
        response = await http.patch(path, json={"job": "Poet"}, headers={**bearer(token), **stale})
        problem(response, 412)
    ok = await http.patch(path, json={"job": "Poet"}, headers={**bearer(token), "if-match": etag})
    assert ok.status_code == 200 and ok.json()["data"]["job"] == "Poet"
    assert ok.headers["etag"] != etag
    assert (await http.get(path, headers={**bearer(token), "if-none-match": etag})).status_code == 200
    problem(await http.delete(path, headers={**bearer(token), "if-match": etag}), 412)
    assert (
        await http.delete(path, headers={**bearer(token), "if-match": ok.headers["etag"]})
    ).status_code == 204


async def test_users_semantics_table(http: httpx.AsyncClient, users: Users) -> None:
    ada, token = await users.create()
    bob, _ = await users.create()
    _, admin = await users.create(admin=True)
    path = f"/api/v1/users/{ada['id']}"
    # 405 lists every method of the path
    for method, target, allow in (
        ("POST", path, "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("PUT", "/api/v1/users", "GET, HEAD, POST, OPTIONS"),
        ("DELETE", "/api/v1/me", "GET, HEAD, OPTIONS"),
    ):
        response = await http.request(method, target, json={}, headers=bearer(token))
        problem(response, 405)
        assert response.headers["allow"] == allow
    # 401 before the existence check, so ids cannot be probed
    for target in (path, "/api/v1/users/999999", "/api/v1/users/abc"):
        for method in ("GET", "PATCH", "DELETE"):
            response = await http.request(method, target, json={"name": "x"})
            problem(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"
    # 403 for another user, before the existence check; an admin then gets 404
    for target in (f"/api/v1/users/{bob['id']}", "/api/v1/users/999999", "/api/v1/users/abc"):
        problem(await http.patch(target, json={"name": "x"}, headers=bearer(token)), 403)
        problem(await http.delete(target, headers=bearer(token)), 403)
    for target in ("/api/v1/users/999999", "/api/v1/users/abc", "/api/v1/users/%C2%B9"):
        problem(
            await http.patch(target, json={"name": "x"}, headers={**bearer(admin), "if-match": '"x"'}), 404
        )
        problem(await http.delete(target, headers={**bearer(admin), "if-match": '"x"'}), 404)
    # 406 when Accept excludes JSON
    for accept in ("text/xml", "application/json;q=0, */*"):
        problem(await http.get(path, headers={**bearer(token), "accept": accept}), 406)
        problem(await http.get("/api/v1/me", headers={**bearer(token), "accept": accept}), 406)
    # OPTIONS needs no token
    options = await http.options("/api/v1/users")
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert options.headers["accept-post"] == "application/json"
    options = await http.options(path)
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, PATCH, DELETE, OPTIONS"
    assert options.headers["accept-patch"] == "application/merge-patch+json, application/json"
    # 415, 400, 422
    response = await http.post("/api/v1/users", content=b"{}", headers={"content-type": "text/plain"})
    problem(response, 415)
    assert response.headers["accept-post"] == "application/json"
    response = await http.patch(path, content=b"{}", headers={**bearer(token), "content-type": "text/plain"})
    problem(response, 415)
    assert response.headers["accept-patch"] == "application/merge-patch+json, application/json"
    json = {**bearer(token), "content-type": "application/json"}
    for malformed in (b'{"name": ', b'{"name": "\xff"}', b""):
        problem(await http.patch(path, content=malformed, headers=json), 400)
    assert problem(await http.patch(path, content=b"[1]", headers=json), 422)["errors"] == {
        "body": ["must be a JSON object"]
    }
    for body, field in (({"name": 5}, "name"), ({"job": True}, "job"), ({"role": "root"}, "role")):
        assert list(problem(await http.patch(path, json=body, headers=bearer(token)), 422)["errors"]) == [
            field
        ]
    merged = await http.patch(
        path,
        content=b'{"subname": "King"}',
        headers={**bearer(token), "content-type": "application/merge-patch+json"},
    )
    assert merged.status_code == 200 and merged.json()["data"]["subname"] == "King"


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

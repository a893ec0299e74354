from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from company_api.contexts.chat import MemoryRateLimiter
from company_api.contexts.chat.models import Conversation, Message
from company_api.contexts.chat.records import isotime as to_json_time
from relaygate.config import Settings
from relaygate.db import Database
from tests.company_api.contexts.chat.helpers import Collector
from tests.web.routers.support import Users


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _pair(users: Users) -> tuple[tuple[int, str], tuple[int, str]]:
    alice, alice_token = await users.create()
    bob, bob_token = await users.create()
    return (int(str(alice["id"])), alice_token), (int(str(bob["id"])), bob_token)


async def _conversation(http: httpx.AsyncClient, token: str, recipient: int) -> int:
    response = await http.post("/api/v1/conversations", json={"recipient_id": recipient}, headers=auth(token))
    assert response.status_code in (200, 201), response.text
    conversation_id: int = response.json()["data"]["id"]
    return conversation_id


async def test_one_conversation_per_pair(http: httpx.AsyncClient, users: Users) -> None:
    (alice, alice_token), (bob, bob_token) = await _pair(users)
    first = await http.post("/api/v1/conversations", json={"recipient_id": bob}, headers=auth(alice_token))
    assert first.status_code == 201
    data = first.json()["data"]
    assert (data["sender_id"], data["recipient_id"], data["status"]) == (alice, bob, "active")
    assert first.headers["location"] == f"/api/v1/conversations/{data['id']}"
    assert first.headers["etag"].startswith('"')
    for token, recipient in [(alice_token, bob), (bob_token, alice)]:
        again = await http.post(
            "/api/v1/conversations", json={"recipient_id": recipient}, headers=auth(token)
        )
        assert again.status_code == 200
        assert again.json()["data"] == data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipient_id": 999_999}, "recipient_id"),
        ({"recipient_id": "2"}, "recipient_id"),
        ({"recipient_id": 2**40}, "recipient_id"),
        ({}, "recipient_id"),
        ({"recipient_id": 1, "topic": "x"}, "topic"),
    ],
)
async def test_bad_recipients_are_422(
    http: httpx.AsyncClient, users: Users, body: object, field: str
) -> None:
    _, token = await users.create()
    response = await http.post("/api/v1/conversations", json=body, headers=auth(token))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["errors"]


async def test_a_conversation_with_oneself_is_422(http: httpx.AsyncClient, users: Users) -> None:
    me, token = await users.create()
    response = await http.post("/api/v1/conversations", json={"recipient_id": me["id"]}, headers=auth(token))
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["recipient_id"]


async def test_every_route_needs_a_token(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("POST", "/api/v1/conversations"),
        ("GET", "/api/v1/conversations"),
        ("GET", "/api/v1/conversations/1"),
        ("GET", "/api/v1/conversations/1/messages"),
        ("POST", "/api/v1/conversations/1/messages"),
    ]:
        response = await http.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_only_participants_see_a_conversation(http: httpx.AsyncClient, users: Users) -> None:
    (_, alice_token), (bob, bob_token) = await _pair(users)
    _, carol_token = await users.create()
    conversation_id = await _conversation(http, alice_token, bob)
    response = await http.get(f"/api/v1/conversations/{conversation_id}", headers=auth(bob_token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-cache"
    assert response.headers["etag"] and response.headers["last-modified"].endswith("GMT")
    for path in [
        f"/api/v1/conversations/{conversation_id}",
        f"/api/v1/conversations/{conversation_id}/messages",
    ]:
        response = await http.get(path, headers=auth(carol_token))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    for path in [
        "/api/v1/conversations/abc",
        "/api/v1/conversations/99999999999999999999",
        "/api/v1/conversations/¹",
    ]:
        assert (await http.get(path, headers=auth(alice_token))).status_code == 404
    response = await http.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"content": "hi"}, headers=auth(carol_token)
    )
    assert response.status_code == 404


async def test_conversations_are_listed_by_activity_and_paginated(
    http: httpx.AsyncClient, users: Users
) -> None:
    _, token = await users.create()
    others = [await users.create() for _ in range(3)]
    ids = [await _conversation(http, token, int(str(other["id"]))) for other, _ in others]
    response = await http.post(
        f"/api/v1/conversations/{ids[0]}/messages", json={"content": "up"}, headers=auth(token)
    )
    assert response.status_code == 201
    expected = [ids[0], ids[2], ids[1]]
    seen: list[int] = []
    url: str | None = "/api/v1/conversations?limit=2"
    while url is not None:
        response = await http.get(url, headers=auth(token))
        assert response.status_code == 200
        body = response.json()
        seen += [conversation["id"] for conversation in body["data"]]
        url = None
        if body["meta"]["next"] is not None:
            assert 'rel="next"' in response.headers["link"]
            url = f"/api/v1/conversations?limit=2&after={body['meta']['next']}"
    assert seen == expected
    _, other_token = others[1]
    listed = (await http.get("/api/v1/conversations", headers=auth(other_token))).json()
    assert [c["id"] for c in listed["data"]] == [ids[1]] and listed["meta"] == {"next": None}


async def test_bad_pagination_is_refused(http: httpx.AsyncClient, users: Users) -> None:
    (_, token), (bob, _) = await _pair(users)
    conversation_id = await _conversation(http, token, bob)
    for path in ["/api/v1/conversations", f"/api/v1/conversations/{conversation_id}/messages"]:
        assert (await http.get(f"{path}?limit=0", headers=auth(token))).status_code == 422
        assert (await http.get(f"{path}?limit=201", headers=auth(token))).status_code == 422
        assert (await http.get(f"{path}?after=MTIz.forged", headers=auth(token))).status_code == 400


async def test_messages_are_created_and_read_back_newest_first(
    http: httpx.AsyncClient, users: Users, app: FastAPI
) -> None:
    (alice, alice_token), (bob, bob_token) = await _pair(users)
    conversation_id = await _conversation(http, alice_token, bob)
    node = app.state.relaygate
    bob_socket, alice_socket = Collector(), Collector()
    await node.pubsub.subscribe(f"user:{bob}", bob_socket)
    await node.pubsub.subscribe(f"user:{alice}", alice_socket)
    path = f"/api/v1/conversations/{conversation_id}/messages"
    sent = []
    for i in range(3):
        response = await http.post(path, json={"content": f"m{i}"}, headers=auth(alice_token))
        assert response.status_code == 201
        message = response.json()["data"]
        assert (message["conversation_id"], message["sender_id"], message["content"]) == (
            conversation_id,
            alice,
            f"m{i}",
        )
        assert set(message) == {"id", "conversation_id", "sender_id", "content", "date", "inserted_at"}
        fetched = await http.get(response.headers["location"], headers=auth(bob_token))
        assert fetched.status_code == 200 and fetched.json()["data"] == message
        sent.append(message)
    for socket in (bob_socket, alice_socket):
        assert [(b.event, b.payload) for b in socket.received] == [
            ("receive_msg", {"message": m}) for m in sent
        ]

    first = (await http.get(f"{path}?limit=2", headers=auth(bob_token))).json()
    assert [m["content"] for m in first["data"]] == ["m2", "m1"]
    rest = (await http.get(f"{path}?limit=2&after={first['meta']['next']}", headers=auth(bob_token))).json()
    assert [m["content"] for m in rest["data"]] == ["m0"] and rest["meta"]["next"] is None
    assert (await http.get(f"{path}/{sent[0]['id'] + 100}", headers=auth(bob_token))).status_code == 404


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"content": ""}, ["content"]),
        ({"content": "x" * 4001}, ["content"]),
        ({"content": "a\x00b"}, ["content"]),
        ({"content": 5}, ["content"]),
        ({}, ["content"]),
        ({"content": "hi", "extra": 1}, ["extra"]),
    ],
)
async def test_bad_messages_are_422(
    http: httpx.AsyncClient, users: Users, body: object, errors: list[str]
) -> None:
    (_, token), (bob, _) = await _pair(users)
    conversation_id = await _conversation(http, token, bob)
    response = await http.post(
        f"/api/v1/conversations/{conversation_id}/messages", json=body, headers=auth(token)
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == errors
    listed = await http.get(f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token))
    assert listed.json()["data"] == []


async def test_the_rate_limit_answers_429_with_retry_after(
    http: httpx.AsyncClient, users: Users, app: FastAPI
) -> None:
    app.state.relaygate.contexts.chat.limiter = MemoryRateLimiter(limit=2, window=10.0)
    (_, token), (bob, _) = await _pair(users)
    conversation_id = await _conversation(http, token, bob)
    path = f"/api/v1/conversations/{conversation_id}/messages"
    for _ in range(2):
        assert (await http.post(path, json={"content": "x"}, headers=auth(token))).status_code == 201
    response = await http.post(path, json={"content": "x"}, headers=auth(token))
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 10
    assert len((await http.get(path, headers=auth(token))).json()["data"]) == 2


async def test_a_conversation_supports_conditional_get(http: httpx.AsyncClient, users: Users) -> None:
    (_, token), (bob, _) = await _pair(users)
    conversation_id = await _conversation(http, token, bob)
    path = f"/api/v1/conversations/{conversation_id}"
    first = await http.get(path, headers=auth(token))
    unchanged = await http.get(path, headers={**auth(token), "If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    await http.post(f"{path}/messages", json={"content": "activity"}, headers=auth(token))
    changed = await http.get(path, headers={**auth(token), "If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]


async def test_a_missing_conversation_is_404_before_body_and_precondition_checks(
    http: httpx.AsyncClient, users: Users
) -> None:
    """POST messages finds the conversation in its write; the decision order still holds."""
    (_, token), (bob, bob_token) = await _pair(users)
    conversation_id = await _conversation(http, token, bob)
    (_, stranger_token), _ = await _pair(users)
    path = f"/api/v1/conversations/{conversation_id}/messages"
    missing = f"/api/v1/conversations/{conversation_id + 1000}/messages"
    for url, who in ((missing, token), (path, stranger_token)):
        for body in ({"content": "hi"}, {"content": ""}, {"bogus": 1}):
            assert (await http.post(url, json=body, headers=auth(who))).status_code == 404
        not_json = await http.post(url, content=b"{", headers=auth(who) | {"content-type": "text/plain"})
        assert not_json.status_code == 404
        with_precondition = await http.post(
            url, json={"content": "hi"}, headers=auth(who) | {"if-match": "*"}
        )
        assert with_precondition.status_code == 404
    wrong_type = await http.post(path, content=b"{", headers=auth(token) | {"content-type": "text/plain"})
    assert wrong_type.status_code == 415
    assert (await http.post(path, json={"content": ""}, headers=auth(token))).status_code == 422
    listed = await http.get(path, headers=auth(bob_token))
    assert listed.json()["data"] == []


async def test_an_acknowledged_message_is_committed(
    http: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    """Read back through a database connection of its own, opened after the 201."""
    (alice, token), (bob, _) = await _pair(users)
    conversation_id = await _conversation(http, token, bob)
    response = await http.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"content": "kept"}, headers=auth(token)
    )
    assert response.status_code == 201
    message_id = response.json()["data"]["id"]
    other = Database(settings.database_url)
    try:
        async with other.session() as session:
            row = await session.get(Message, message_id)
            conversation = await session.get(Conversation, conversation_id)
    finally:
        await other.dispose()
    assert row is not None and (row.content, row.sender_id, row.conversation_id) == (
        "kept",
        alice,
        conversation_id,
    )
    assert conversation is not None and conversation.last_activity_at == row.inserted_at
    assert to_json_time(row.inserted_at) == response.json()["data"]["inserted_at"]

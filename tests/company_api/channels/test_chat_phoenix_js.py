"""Chat end to end with the official phoenix.js client (tests/conformance driver) on a real node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relaygate.db import Database
from tests.conformance.node import Observation, run_driver, select
from tests.web.liveserver import LiveServer, register, start_conversation

pytestmark = pytest.mark.node

NO_RETRY = {"rejoinAfterMs": [60000], "reconnectAfterMs": [60000]}


@pytest.fixture(scope="module")
async def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("live"), database_url)
    await server.start()
    yield server
    server.stop()


@pytest.fixture
def server(live: LiveServer, db: Database) -> LiveServer:
    """The module's node on a database emptied for this test."""
    return live


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as client:
        yield client


def sockets(**tokens: str) -> list[dict[str, Any]]:
    """One phoenix.js Socket per user, named after them, connected with their token."""
    steps: list[dict[str, Any]] = []
    for name, token in tokens.items():
        steps.append({"op": "socket", "socket": name, "opts": {**NO_RETRY, "params": {"token": token}}})
        steps.append({"op": "connect", "socket": name})
    return steps


def join(
    chan: str, socket: str, topic: str, params: Any = None, presence: bool = False
) -> list[dict[str, Any]]:
    return [
        {
            "op": "channel",
            "chan": chan,
            "socket": socket,
            "topic": topic,
            "params": params or {},
            "presence": presence,
        },
        {"op": "join", "chan": chan},
        {"op": "until", "match": {"type": "join", "chan": chan, "status": "ok"}},
    ]


def push(chan: str, event: str, payload: Any, id: str) -> list[dict[str, Any]]:
    return [
        {"op": "push", "chan": chan, "event": event, "payload": payload, "id": id},
        {"op": "until", "match": {"type": "push", "id": id}},
    ]


def events(observations: list[Observation], chan: str, event: str) -> list[Any]:
    return [o["payload"] for o in select(observations, type="event", chan=chan, event=event)]


def reply(observations: list[Observation], id: str) -> Observation:
    [found] = select(observations, type="push", id=id)
    return found


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_private_messages_live_and_in_history_and_never_to_strangers(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice, alice_token = await register(http, "Alice")
    bob, bob_token = await register(http, "Bob")
    _, carol_token = await register(http, "Carol")
    conversation = await start_conversation(http, alice_token, bob)
    carol = (await http.get("/api/v1/me", headers=auth(carol_token))).json()["data"]["id"]

    observations = await run_driver(
        server.socket_url,
        [
            *sockets(alice=alice_token, alice2=alice_token, bob=bob_token, carol=carol_token),
            *join("a", "alice", f"user:{alice}"),
            *join("a2", "alice2", f"user:{alice}"),
            *join("b", "bob", f"user:{bob}"),
            *join("c", "carol", f"user:{carol}"),
            *push("a", "send_msg", {"conv": conversation, "message": "hello bob"}, "hello"),
            {"op": "until", "match": {"type": "event", "chan": "b", "event": "receive_msg"}},
            {"op": "until", "match": {"type": "event", "chan": "a2", "event": "receive_msg"}},
            *push("c", "send_msg", {"conv": conversation, "message": "let me in"}, "sneak"),
            {"op": "channel", "chan": "spy", "socket": "carol", "topic": f"user:{bob}"},
            {"op": "join", "chan": "spy"},
            {"op": "until", "match": {"type": "join", "chan": "spy"}},
            *push("a", "send_msg", {"conv": conversation, "message": ""}, "empty"),
        ],
        NO_RETRY,
    )
    hello = reply(observations, "hello")
    assert hello["status"] == "ok"
    message = hello["response"]["message"]
    assert (message["sender_id"], message["content"], message["conversation_id"]) == (
        alice,
        "hello bob",
        conversation,
    )
    assert events(observations, "b", "receive_msg") == [{"message": message}]
    assert events(observations, "a2", "receive_msg") == [{"message": message}]
    assert events(observations, "a", "receive_msg") == []  # the sending socket has it in its reply
    assert events(observations, "c", "receive_msg") == []
    sneak = reply(observations, "sneak")
    assert (sneak["status"], sneak["response"]) == ("error", {"reason": "not_found"})
    [spy] = select(observations, type="join", chan="spy")
    assert (spy["status"], spy["response"]) == ("error", {"reason": "unauthorized"})
    empty = reply(observations, "empty")
    assert empty["status"] == "error" and empty["response"]["reason"] == "invalid"

    history = await http.get(f"/api/v1/conversations/{conversation}/messages", headers=auth(bob_token))
    assert history.status_code == 200 and history.json()["data"] == [message]
    stranger = await http.get(f"/api/v1/conversations/{conversation}/messages", headers=auth(carol_token))
    assert stranger.status_code == 404


async def test_room_presence_messages_and_typing(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice, alice_token = await register(http, "Alice")
    bob, bob_token = await register(http, "Bob")
    observations = await run_driver(
        server.socket_url,
        [
            *sockets(alice=alice_token, bob=bob_token),
            *join("a", "alice", "room:lobby", {"device": "laptop"}, presence=True),
            *join("b", "bob", "room:lobby", {"device": "phone"}, presence=True),
            {"op": "until", "match": {"type": "presence_join", "chan": "a", "key": str(bob)}},
            {"op": "presence_list", "chan": "a"},
            *push("a", "typing", {}, "typing"),
            {"op": "until", "match": {"type": "event", "chan": "b", "event": "typing"}},
            *push("b", "message:new", {"body": "hi all"}, "says"),
            {"op": "until", "match": {"type": "event", "chan": "a", "event": "message:new"}},
            {"op": "until", "match": {"type": "event", "chan": "b", "event": "message:new"}},
            {"op": "leave", "chan": "b"},
            {"op": "until", "match": {"type": "presence_leave", "chan": "a", "key": str(bob)}},
            {"op": "presence_list", "chan": "a"},
        ],
        NO_RETRY,
    )
    both, after_leave = select(observations, type="presence_list", chan="a")
    listed = {entry["key"]: entry["metas"] for entry in both["list"]}
    assert sorted(listed) == sorted([str(alice), str(bob)])
    assert [(m["name"], m["device"]) for m in listed[str(bob)]] == [("Bob", "phone")]
    assert [entry["key"] for entry in after_leave["list"]] == [str(alice)]

    assert events(observations, "b", "typing") == [{"user_id": alice}]
    assert events(observations, "a", "typing") == []  # broadcast_from: not back to the typist
    for chan in ("a", "b"):
        [said] = events(observations, chan, "message:new")
        assert {k: said[k] for k in ("user_id", "name", "body")} == {
            "user_id": bob,
            "name": "Bob",
            "body": "hi all",
        }
    assert reply(observations, "says")["status"] == "ok"

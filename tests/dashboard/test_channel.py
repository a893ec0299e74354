"""``admin:dashboard`` in process: administrators only, a view on join, snapshots while joined,
presence on demand, and no work left running once nobody watches."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from relaygate.channels.testing import ChannelClient, JoinRefused
from relaygate.dashboard import TOPIC
from relaygate.node import Node
from tests.dashboard.conftest import SQLITE_ONLY
from tests.web.support import Tokens

pytestmark = SQLITE_ONLY


def _node(app: FastAPI) -> Node:
    node: Node = app.state.relaygate
    return node


async def _connect(node: Node, token: str) -> ChannelClient:
    socket = next(s for s in node.endpoint.sockets if s.path == "/dashboard/socket")
    return await ChannelClient.connect(node.endpoint, socket, {"token": token})


async def test_a_user_who_is_not_an_administrator_cannot_join(app: FastAPI, tokens: Tokens) -> None:
    client = await _connect(_node(app), tokens.user)
    with pytest.raises(JoinRefused) as refused:
        await client.join(TOPIC)
    assert refused.value.response == {"reason": "forbidden"}
    await client.close()


async def test_an_administrator_gets_a_view_then_snapshots_and_presence_lists(
    app: FastAPI, tokens: Tokens
) -> None:
    node = _node(app)
    client = await _connect(node, tokens.admin)
    channel = await client.join(TOPIC)
    [me] = channel.response["nodes"]
    assert me["name"] == node.settings.node
    assert me["stats"]["sockets"] >= 1  # this very socket

    snapshot = await channel.assert_broadcast("snapshot", within=5)
    assert [n["name"] for n in snapshot["nodes"]] == [node.settings.node]

    owner = object()
    await node.presence.track(owner, "room:lobby", "42", {"name": "Ada"})
    ref = await channel.push("presence", {"topic": "room:lobby"})
    reply = await channel.assert_reply(ref)
    assert reply["topic"] == "room:lobby"
    assert [(p["key"], p["metas"][0]["name"]) for p in reply["presences"]] == [("42", "Ada")]
    await node.presence.untrack_all(owner)

    ref = await channel.push("presence", {"topic": ""})
    assert "topic" in (await channel.assert_reply(ref, "error"))["reason"]
    ref = await channel.push("shutdown", {})
    assert (await channel.assert_reply(ref, "error"))["reason"] == "unknown event 'shutdown'"

    await channel.leave()
    await client.close()
    dashboard = node.dashboard
    async with asyncio.timeout(10):  # the reporter stops by itself once the watch expires
        while dashboard._pusher is not None or dashboard._reporter is not None:
            await asyncio.sleep(0.05)
    assert node.pubsub.on_dispatch is None


async def test_logging_out_closes_the_dashboard_socket(app: FastAPI, tokens: Tokens) -> None:
    node = _node(app)
    client = await _connect(node, tokens.admin)
    await client.join(TOPIC)
    principal = await node.accounts.authenticate_token(tokens.admin)
    assert principal is not None
    await node.accounts.logout(principal)
    assert await client.assert_closed(1001) == 1001

"""Presence through the channel API: track/update/untrack/list and cleanup when a channel ends."""

from __future__ import annotations

import asyncio
from typing import Any

from relaygate.channels import Endpoint
from relaygate.channels.testing import ChannelClient, TestChannel
from relaygate.presence import MemoryPresence, RedisPresence
from relaygate.pubsub import MemoryPubSub
from tests.channels.support import make_socket
from tests.servers import RedisServer


def presence_endpoint() -> Endpoint:
    pubsub = MemoryPubSub()
    endpoint = Endpoint(pubsub, MemoryPresence(pubsub, diff_window=0))  # a diff per change
    endpoint.add_socket(make_socket())
    return endpoint


async def joined(endpoint: Endpoint, user: str) -> tuple[ChannelClient, TestChannel, dict[str, Any]]:
    client = await ChannelClient.connect(endpoint, endpoint.sockets[0], {"user": user})
    chan = await client.join("room:presence")
    state = await chan.assert_push("presence_state")
    return client, chan, state


def refs(entry: dict[str, Any]) -> list[str]:
    return [meta["phx_ref"] for meta in entry["metas"]]


async def test_presence_state_and_join_diff_scenario_41() -> None:
    endpoint = presence_endpoint()
    client, chan, state = await joined(endpoint, "u1")
    assert list(state) == ["u1"]
    (meta,) = state["u1"]["metas"]
    assert meta["online_at"] == 1 and isinstance(meta["phx_ref"], str)
    diff = await chan.assert_push("presence_diff")
    assert diff == {"joins": {"u1": {"metas": [meta]}}, "leaves": {}}
    await client.close()


async def test_leave_close_and_crash_untrack_scenario_42() -> None:
    endpoint = presence_endpoint()
    watcher, watch, _ = await joined(endpoint, "w")
    await watch.assert_push("presence_diff")
    for how in ("close", "leave", "crash"):
        client, chan, _ = await joined(endpoint, "u1")
        joins = await watch.assert_push("presence_diff")
        ref = refs(joins["joins"]["u1"])
        if how == "close":
            await client.close()
        elif how == "leave":
            await chan.leave()
        else:
            await chan.push("boom")
            await chan.assert_error()
        leave = await watch.assert_push("presence_diff")
        assert leave["joins"] == {} and refs(leave["leaves"]["u1"]) == ref, how
        if how != "close":
            await client.close()
    assert list(endpoint.require_presence().list("room:presence")) == ["w"]
    await watcher.close()


async def test_update_and_untrack_scenario_43() -> None:
    endpoint = presence_endpoint()
    client, chan, state = await joined(endpoint, "u1")
    await chan.assert_push("presence_diff")
    old_ref = refs(state["u1"])[0]
    await chan.assert_reply(await chan.push("away"))
    diff = await chan.assert_push("presence_diff")
    (new,) = diff["joins"]["u1"]["metas"]
    assert new["status"] == "away" and new["phx_ref_prev"] == old_ref
    assert refs(diff["leaves"]["u1"]) == [old_ref]
    await chan.assert_reply(await chan.push("untrack"))
    assert (await chan.assert_push("presence_diff"))["leaves"]["u1"]["metas"] == [new]
    assert endpoint.require_presence().list("room:presence") == {}
    await client.close()


async def test_multi_device_presence_scenario_44() -> None:
    endpoint = presence_endpoint()
    first, chan1, _ = await joined(endpoint, "u1")
    second, _, state = await joined(endpoint, "u1")
    assert len(set(refs(state["u1"]))) == 2
    await second.close()
    await chan1.assert_push("presence_diff")  # first's own join
    await chan1.assert_push("presence_diff")  # second's join
    leave = await chan1.assert_push("presence_diff")
    assert len(leave["leaves"]["u1"]["metas"]) == 1
    assert len(endpoint.require_presence().list("room:presence")["u1"]["metas"]) == 1
    await first.close()


async def test_a_crash_during_a_redis_outage_errors_at_once_and_the_leave_follows() -> None:
    """The channel's end never waits on Redis; once Redis is back every node sees the leave."""
    server = RedisServer()
    server.start()
    options: dict[str, Any] = {
        "prefix": "crash:",
        "heartbeat_interval": 0.2,
        "ttl": 1.0,
        "reap_interval": 0.2,
        "diff_window": 0,
    }
    pubsub = MemoryPubSub()
    presence = RedisPresence(pubsub, server.url, "n1", **options)
    other = RedisPresence(MemoryPubSub(), server.url, "n2", **options)
    endpoint = Endpoint(pubsub, presence)
    endpoint.add_socket(make_socket())
    try:
        await presence.start()
        await other.start()
        watcher, watch, _ = await joined(endpoint, "w")
        await watch.assert_push("presence_diff")
        client, chan, _ = await joined(endpoint, "u1")
        joins = await watch.assert_push("presence_diff")
        async with asyncio.timeout(10):
            while set(other.list("room:presence")) != {"w", "u1"}:
                await asyncio.sleep(0.02)
        server.stop()
        await chan.push("boom")
        await chan.assert_error(within=3)  # before Redis is back
        server.start()
        leave = await watch.assert_push("presence_diff", within=20)
        assert leave["joins"] == {} and refs(leave["leaves"]["u1"]) == refs(joins["joins"]["u1"])
        async with asyncio.timeout(20):
            while set(other.list("room:presence")) != {"w"} or set(presence.list("room:presence")) != {"w"}:
                await asyncio.sleep(0.02)
        await client.close()
        await watcher.close()
    finally:
        await other.stop()
        await presence.stop()
        server.close()

"""The Channel API through the in-process test helper (no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import relaygate.channels as channels
from relaygate.channels import Channel, ChannelSocket, ConnectInfo, Endpoint, Reply, Socket
from relaygate.channels.testing import ChannelClient, ConnectRefused, JoinRefused
from relaygate.protocol import Message
from relaygate.pubsub import MemoryPubSub
from tests.channels.support import EndpointFactory, RoomChannel, make_socket


async def connect(make_endpoint: EndpointFactory, **params: str) -> ChannelClient:
    endpoint = make_endpoint()
    return await ChannelClient.connect(endpoint, endpoint.sockets[0], params)


async def test_join_reply_and_params_scenarios_9_10(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    assert (await client.join("room:hello")).response == {"hello": "x"}
    assert (await client.join("room:p", {"a": 1})).response == {"params": {"a": 1}}
    assert (await client.join("room:1")).response == {}
    await client.close()


async def test_connect_params_and_info_reach_the_channel(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    client = await ChannelClient.connect(
        endpoint, endpoint.sockets[0], {"token": "t"}, info=ConnectInfo(auth_token="secret")
    )
    chan = await client.join("room:info")
    assert chan.response == {"connect": {"token": "t", "vsn": "2.0.0"}, "auth_token": "secret"}
    await client.close()


async def test_connect_refused_or_crashing(make_endpoint: EndpointFactory) -> None:
    for token in ("deny", "raise"):
        with pytest.raises(ConnectRefused):
            await connect(make_endpoint, token=token)


async def test_assigns_given_directly_skip_connect(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    client = await ChannelClient.connect(
        endpoint, endpoint.sockets[0], assigns={"user_id": "7", "params": {}}
    )
    chan = await client.join("room:1")
    assert await chan.assert_reply(await chan.push("assign", 1)) == {"assigns": 1, "id": "user:7"}
    await client.close()


async def test_join_refused_and_crashed_scenarios_11_12(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    with pytest.raises(JoinRefused) as refused:
        await client.join("room:deny")
    assert (refused.value.status, refused.value.response) == ("error", {"reason": "unauthorized"})
    with pytest.raises(JoinRefused) as crashed:
        await client.join("room:boom")
    assert crashed.value.response == {"reason": "join crashed"}
    with pytest.raises(JoinRefused) as bad:
        await client.join("room:badjoin")
    assert bad.value.response == {"reason": "join crashed"}
    assert RoomChannel.terminated == []  # terminate runs only for joined channels
    await client.close()


async def test_replies_scenarios_14_to_17(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    chan = await client.join("room:1")
    assert await chan.assert_reply(await chan.push("ping", {"n": 1})) == {"n": 1}
    assert await chan.assert_reply(await chan.push("bare")) == {}
    assert await chan.assert_reply(await chan.push("err"), "error") == {"why": "nope"}
    ref = await chan.push("noreply")
    with pytest.raises(AssertionError):
        await chan.assert_reply(ref, within=0.1)
    await client.close()


async def test_async_reply_through_handle_info(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    chan = await client.join("room:1")
    assert await chan.assert_reply(await chan.push("later", 5)) == {"later": 5}
    await client.close()


async def test_push_during_join_is_sent_after_the_join_reply(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    chan = await client.join("room:pushy")
    assert await chan.assert_push("early") == {"n": 1}
    events = [m.event for m in client.frames.items if m is not None]
    assert events == []  # the reply was consumed first by join(), then the push
    await client.close()


async def test_broadcast_and_intercept_filter_scenarios_20_23(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    a = await ChannelClient.connect(endpoint, endpoint.sockets[0])
    b = await ChannelClient.connect(endpoint, endpoint.sockets[0])
    chan_a, chan_b = await a.join("room:1"), await b.join("room:1")
    await chan_a.assert_reply(await chan_a.push("bcast", {"x": 1}))
    assert await chan_a.assert_push("new_msg") == {"x": 1}
    assert await chan_b.assert_push("new_msg") == {"x": 1}
    assert await chan_b.assert_broadcast("new_msg") == {"x": 1}
    await chan_b.assert_reply(await chan_b.push("filter"))
    await chan_a.assert_reply(await chan_a.push("intercept", {"y": 2}))
    assert await chan_a.assert_push("intercepted") == {"y": 2, "field": chan_a.join_ref}
    await chan_b.refute_push("intercepted")
    await a.close()
    await b.close()


async def test_stops_scenarios_28_29_and_shutdown_reason(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    chan = await client.join("room:1")
    await chan.push("stop")
    await chan.assert_close()
    chan = await client.join("room:2")
    ref = await chan.push("stop_reply")
    assert await chan.assert_reply(ref) == {}
    await chan.assert_close()
    chan = await client.join("room:3")
    await chan.push("info_stop")
    await chan.assert_close()
    chan = await client.join("room:4")
    await chan.push("stop_bad")
    await chan.assert_error()
    assert RoomChannel.terminated == [
        ("room:1", "normal"),
        ("room:2", "shutdown"),
        ("room:3", "shutdown:done"),
        ("room:4", "kaput"),
    ]
    await client.close()


async def test_crashes_and_bad_results_become_phx_error(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    for event in ("boom", "bad_result"):
        chan = await client.join("room:1")
        await chan.push(event)
        await chan.assert_error()
        ref = await chan.push("ping")
        reply = await client._reply("room:1", ref, 1.0)
        assert reply == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert RoomChannel.terminated == [("room:1", "crash"), ("room:1", "crash")]
    await client.close()


async def test_leave_and_terminate_reasons_scenarios_25_27(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    chan = await client.join("room:1")
    await chan.leave()
    client.send(Message("7", "7", "room:z", "phx_leave", {}))
    assert await client._reply("room:z", "7", 1.0) == {"status": "ok", "response": {}}
    await client.join("room:2")
    await client.close()
    assert RoomChannel.terminated == [("room:1", "left"), ("room:2", "closed")]


async def test_leave_while_join_pending_then_rejoin_scenario_47(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    client.send(Message("11", "11", "room:slow", "phx_join", {"sleep": 0.2}))
    client.send(Message("11", "12", "room:slow", "phx_leave", {}))
    assert (await client._reply("room:slow", "11", 2.0))["status"] == "ok"
    assert await client._reply("room:slow", "12", 2.0) == {"status": "ok", "response": {}}
    chan = await client.join("room:slow", {"sleep": 0})
    assert await chan.assert_reply(await chan.push("ping", {"ok": True})) == {"ok": True}
    await client.close()


async def test_refused_join_answers_what_was_queued_behind_it(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    client.send(Message("3", "3", "room:deny", "phx_join", {}))
    client.send(Message("3", "4", "room:deny", "ping", {}))
    client.send(Message("3", "5", "room:deny", "phx_leave", {}))
    assert (await client._reply("room:deny", "3", 1.0))["status"] == "error"
    assert await client._reply("room:deny", "4", 1.0) == {
        "status": "error",
        "response": {"reason": "unmatched topic"},
    }
    assert await client._reply("room:deny", "5", 1.0) == {"status": "ok", "response": {}}
    await client.close()


async def test_duplicate_join_replaces_and_terminates_old(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    client = await ChannelClient.connect(endpoint, endpoint.sockets[0])
    old = await client.join("room:1")
    new = await client.join("room:1")
    await old.assert_close()
    await asyncio.sleep(0.05)
    assert RoomChannel.terminated == [("room:1", "duplicate_join")]
    assert endpoint.pubsub.subscriber_count("room:1") == 2  # the new channel + the helper's recorder
    await endpoint.broadcast("room:1", "e", {})
    assert await new.assert_push("e") == {}
    await new.refute_push("e")
    await client.close()


async def test_max_channels_scenario_35(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint(max_channels=1)
    client = await ChannelClient.connect(endpoint, endpoint.sockets[0])
    await client.join("room:1")
    with pytest.raises(JoinRefused) as refused:
        await client.join("room:2")
    assert refused.value.response == {"reason": "too many channels joined"}
    await client.close()


async def test_slow_handler_does_not_delay_other_topics(make_endpoint: EndpointFactory) -> None:
    client = await connect(make_endpoint)
    slow, fast = await client.join("room:a"), await client.join("room:b")
    slow_ref = await slow.push("slow", {"sleep": 0.5})
    assert await fast.assert_reply(await fast.push("ping", {"n": 2}), within=0.4) == {"n": 2}
    assert client.frames.items == []  # the slow reply is not out yet
    assert await slow.assert_reply(slow_ref) == {"sleep": 0.5}
    await client.close()


async def test_presence_requires_a_tracker(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    with pytest.raises(RuntimeError):
        endpoint.require_presence()


async def test_disconnect_closes_sessions_with_that_id(make_endpoint: EndpointFactory) -> None:
    endpoint = make_endpoint()
    user = await ChannelClient.connect(endpoint, endpoint.sockets[0], {"user": "1"})
    other = await ChannelClient.connect(endpoint, endpoint.sockets[0], {"user": "2"})
    await user.join("room:1")
    await endpoint.disconnect("user:1")
    await endpoint.broadcast("user:1", "not_disconnect", {})
    assert await user.assert_closed(1001) == 1001
    assert user.frames.items == []
    await other.frames.refute(lambda m: m is None, 0.05, "close")
    await user.close()
    await other.close()
    assert ("room:1", "disconnected") in RoomChannel.terminated


def test_public_names() -> None:
    for name in channels.__all__:
        assert hasattr(channels, name)
    assert make_socket().path == "/socket"


class Minimal(Channel):
    """Only join: every other callback keeps the base class behaviour."""

    intercepts = ["shout"]

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        if topic == "base":
            return await super().join(topic, payload, socket)
        return Reply.ok()


async def test_base_class_defaults() -> None:
    endpoint = Endpoint(MemoryPubSub())
    socket = Socket("/s")
    socket.channel("base", Minimal())
    socket.channel("min:*", Minimal)
    endpoint.add_socket(socket)
    client = await ChannelClient.connect(endpoint, socket)
    with pytest.raises(JoinRefused):
        await client.join("base")  # the default join is not implemented: join crashed
    chan = await client.join("min:1")
    await endpoint.broadcast("min:1", "shout", {"a": 1})  # default handle_out forwards with JR
    assert await chan.assert_push("shout") == {"a": 1}
    assert [m.join_ref for m in client.frames.items] == []
    client.session.conn.channels["min:1"].send_info("ignored")  # default handle_info ignores
    await chan.push("ping")  # the default handle_in crashes, like a missing Phoenix clause
    await chan.assert_error()
    await client.close()


async def test_leave_queued_behind_a_replaced_join_is_answered(make_endpoint: EndpointFactory) -> None:
    """Join timeout then rejoin (scenario 47 as phoenix.js does it): the leave still gets its reply."""
    client = await connect(make_endpoint)
    client.send(Message("11", "11", "room:slow", "phx_join", {"sleep": 0.5}))
    client.send(Message("11", "12", "room:slow", "phx_leave", {}))
    client.send(Message("13", "13", "room:slow", "phx_join", {"sleep": 0}))
    assert await client._reply("room:slow", "12", 1.0) == {"status": "ok", "response": {}}
    assert (await client._reply("room:slow", "13", 1.0))["status"] == "ok"
    await client.close()

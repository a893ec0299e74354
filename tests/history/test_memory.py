"""The memory engine and the join-time recovery through the real channel runtime (in process)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relaygate.channels import Channel, ChannelSocket, Endpoint, Reply, Socket, Stop
from relaygate.channels.testing import ChannelClient
from relaygate.history import Keep, MemoryHistory, Position, parse
from relaygate.protocol import Message
from relaygate.pubsub import MemoryPubSub
from relaygate.telemetry.metrics import HISTORY_RECOVERIES, HISTORY_REPLAYED


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_positions_count_up_within_an_epoch_and_reads_recover_or_say_why() -> None:
    clock = Clock()
    history = MemoryHistory(MemoryPubSub(), clock=clock)
    history.keep("room:*", Keep(3, 60))
    first = await history.read("room:1", None)
    assert first.top is not None and first.top.offset == 0
    for n in range(1, 6):
        await history.publish("room:1", "m", {"n": n}, None)
    read = await history.read("room:1", str(Position(first.top.epoch, 3)))
    assert read.failure is None
    assert [(e.position.offset, e.payload) for e in read.entries] == [(4, {"n": 4}), (5, {"n": 5})]
    assert (await history.read("room:1", f"{first.top.epoch}:5")).entries == ()
    assert (await history.read("room:1", f"{first.top.epoch}:1")).failure == "trimmed"  # size 3 kept 3..5
    assert (await history.read("room:1", f"{first.top.epoch}:9")).failure == "unknown"
    assert (await history.read("room:1", "other:1")).failure == "epoch"
    assert (await history.read("room:1", "garbage")).failure == "malformed"
    clock.now += 61  # idle past the ttl: the stream is gone, the next life has another epoch
    again = await history.read("room:1", f"{first.top.epoch}:5")
    assert again.failure == "epoch"
    assert again.top is not None and again.top.epoch != first.top.epoch and again.top.offset == 0


async def test_entries_older_than_the_ttl_are_trimmed_even_in_a_busy_stream() -> None:
    clock = Clock()
    history = MemoryHistory(MemoryPubSub(), clock=clock)
    history.keep("t", Keep(100, 10))
    await history.publish("t", "m", {}, None)
    epoch = (await history.read("t", None)).top.epoch  # type: ignore[union-attr]
    clock.now += 8
    await history.publish("t", "m", {}, None)
    clock.now += 8
    assert (await history.read("t", f"{epoch}:0")).failure == "trimmed"  # entry 1 is 16 s old
    assert [e.position.offset for e in (await history.read("t", f"{epoch}:1")).entries] == [2]


async def test_every_process_start_has_its_own_epochs() -> None:
    a, b = MemoryHistory(MemoryPubSub()), MemoryHistory(MemoryPubSub())
    for history in (a, b):
        history.keep("t", Keep(1, 1))
    assert (await a.read("t", None)).top != (await b.read("t", None)).top


class Room(Channel):
    intercepts = ["tagged"]

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        return Reply.ok({"hello": 1})

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Stop | None:
        await socket.broadcast(event, payload)
        return Reply.ok()

    async def handle_out(self, event: str, payload: Any, socket: ChannelSocket) -> Stop | None:
        await socket.push(event, {**payload, "seen": True})
        return None


def make_endpoint() -> tuple[Endpoint, Socket]:
    socket = Socket("/socket")
    socket.channel("room:*", Room, history=Keep(100, 300))
    socket.channel("plain:*", Room)
    endpoint = Endpoint(MemoryPubSub())
    endpoint.add_socket(socket)
    return endpoint, socket


def broadcasts(client: ChannelClient, topic: str) -> list[Message]:
    return [m for m in client.frames.items if m is not None and m.topic == topic and m.event != "phx_reply"]


async def settled(client: ChannelClient, topic: str, count: int) -> list[Message]:
    """The topic's frames once ``count`` arrived (intercepted ones pass through a channel's inbox)."""
    for _ in range(400):
        got = broadcasts(client, topic)
        if len(got) >= count:
            return got
        await asyncio.sleep(0.005)
    raise AssertionError(f"{count} frames on {topic} expected, got {broadcasts(client, topic)}")


async def test_a_rejoin_with_since_replays_what_was_missed_through_handle_out_then_live() -> None:
    endpoint, socket = make_endpoint()
    sender = await ChannelClient.connect(endpoint, socket)
    chan = await sender.join("room:1")
    position = chan.response["position"]
    assert chan.response["hello"] == 1 and parse(position) is not None
    for n in range(3):
        await endpoint.broadcast("room:1", "tagged" if n == 1 else "m", {"n": n})
    # live, an intercepted broadcast may trail fastlaned ones (it waits in the channel's inbox)
    sent = sorted(await settled(sender, "room:1", 3), key=lambda m: parse(m.ref).offset)  # type: ignore[union-attr]
    assert [parse(m.ref).offset for m in sent] == [1, 2, 3]  # type: ignore[union-attr]
    recovered_before = HISTORY_RECOVERIES.labels("succeeded", "")._value.get()
    replayed_before = HISTORY_REPLAYED._value.get()

    late = await ChannelClient.connect(endpoint, socket)
    rejoined = await late.join("room:1", {"since": position})
    assert rejoined.response == {"hello": 1, "position": sent[-1].ref, "recovered": True}
    await endpoint.broadcast("room:1", "m", {"n": 3})
    got = await settled(late, "room:1", 4)
    assert [(m.payload, m.join_ref) for m in got] == [
        ({"n": 0}, None),
        ({"n": 1, "seen": True}, rejoined.join_ref),  # replayed through handle_out, as a push
        ({"n": 2}, None),
        ({"n": 3}, None),
    ]
    assert [m.ref for m in got[:3]] == [m.ref for m in sent]
    assert HISTORY_RECOVERIES.labels("succeeded", "")._value.get() == recovered_before + 1
    assert HISTORY_REPLAYED._value.get() == replayed_before + 3


@pytest.mark.parametrize("since", ["garbage", "zz:1", None])
async def test_an_unrecoverable_since_joins_with_recovered_false_and_replays_nothing(since: Any) -> None:
    endpoint, socket = make_endpoint()
    client = await ChannelClient.connect(endpoint, socket)
    await endpoint.broadcast("room:2", "m", {"n": 1})
    chan = await client.join("room:2", {"since": since})
    assert parse(chan.response["position"]).offset == 1  # type: ignore[union-attr]
    assert chan.response.get("recovered") is (None if since is None else False)
    await chan.push("m", {"n": 2})
    assert [m.payload for m in await settled(client, "room:2", 1)] == [{"n": 2}]


async def test_topics_without_history_are_untouched() -> None:
    endpoint, socket = make_endpoint()
    client = await ChannelClient.connect(endpoint, socket)
    chan = await client.join("plain:1", {"since": "x:1"})
    assert chan.response == {"hello": 1}
    await endpoint.broadcast("plain:1", "m", {})
    assert [m.ref for m in await settled(client, "plain:1", 1)] == [None]


async def test_a_cluster_pubsub_needs_an_explicit_history_engine() -> None:
    from relaygate.pubsub import RedisPubSub

    socket = Socket("/socket")
    socket.channel("room:*", Room, history=Keep(1, 1))
    with pytest.raises(ValueError, match="RedisHistory"):
        Endpoint(RedisPubSub("redis://127.0.0.1:1", "n")).add_socket(socket)

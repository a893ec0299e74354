from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from unittest.mock import ANY

import pytest
from redis.asyncio import Redis

from relaygate.channels.testing import ChannelClient
from relaygate.client.presence import sync_diff
from relaygate.presence import AlreadyTracked, NoPresence, RedisPresence
from relaygate.pubsub import MemoryPubSub
from tests.presence.tracking import TOPIC, endpoint_with, normal
from tests.recording import Recorder
from tests.servers import RedisServer

Make = Callable[..., Any]


class Chan:
    pass


class Node:
    def __init__(self, presence: RedisPresence, pubsub: MemoryPubSub) -> None:
        self.presence = presence
        self.pubsub = pubsub

    async def watch(self, topic: str) -> Recorder:
        rec = Recorder()
        await self.pubsub.subscribe(topic, rec)
        return rec


@pytest.fixture
async def make_node(redis_url: str) -> AsyncIterator[Make]:
    """Factory of started nodes sharing one key prefix (a private cluster per test)."""
    prefix = f"test:{{{uuid.uuid4().hex[:8]}}}:"
    nodes: list[RedisPresence] = []

    async def make(name: str, url: str = redis_url, **options: Any) -> Node:
        settings = {"heartbeat_interval": 0.2, "ttl": 1.0, "reap_interval": 0.2, "diff_window": 0, **options}
        pubsub = MemoryPubSub()
        presence = RedisPresence(pubsub, url, name, prefix=prefix, **settings)
        nodes.append(presence)
        await presence.start()
        assert presence.ready
        return Node(presence, pubsub)

    yield make
    for presence in nodes:
        await presence.stop()


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_track_is_listed_on_every_node_with_one_diff_each(make_node: Make) -> None:
    a, b = await make_node("a"), await make_node("b")
    rec_a, rec_b = await a.watch("room:1"), await b.watch("room:1")
    ref = await a.presence.track(Chan(), "room:1", "u1", {"online_at": 1})
    state = {"u1": {"metas": [{"online_at": 1, "phx_ref": ref}]}}
    assert a.presence.list("room:1") == state  # read-your-writes on the tracking node
    assert rec_a.payloads() == [{"joins": state, "leaves": {}}]
    assert await rec_b.wait_for(1) == [{"joins": state, "leaves": {}}]
    assert b.presence.list("room:1") == state
    assert b.presence.get_by_key("room:1", "u1") == state["u1"]


async def test_update_untrack_and_errors_across_nodes(make_node: Make) -> None:
    a, b = await make_node("a"), await make_node("b")
    rec_b = await b.watch("room:1")
    chan = Chan()
    r1 = await a.presence.track(chan, "room:1", "u1", {"status": "online"})
    with pytest.raises(AlreadyTracked):
        await a.presence.track(chan, "room:1", "u1", {})
    await a.presence.replicated()  # else the writer sends the track and the update as one change
    r2 = await a.presence.update(chan, "room:1", "u1", {"status": "away"})
    with pytest.raises(NoPresence):
        await a.presence.update(Chan(), "room:1", "u1", {})
    diffs = await rec_b.wait_for(2)
    new = {"status": "away", "phx_ref": r2, "phx_ref_prev": r1}
    assert diffs[1] == {
        "joins": {"u1": {"metas": [new]}},
        "leaves": {"u1": {"metas": [{"status": "online", "phx_ref": r1}]}},
    }
    assert b.presence.list("room:1") == {"u1": {"metas": [new]}}
    await a.presence.untrack(chan, "room:1", "u1")
    assert (await rec_b.wait_for(3))[2] == {"joins": {}, "leaves": {"u1": {"metas": [new]}}}
    assert a.presence.list("room:1") == b.presence.list("room:1") == {}


async def test_multi_device_on_two_nodes_lists_agree(make_node: Make) -> None:
    a, b = await make_node("a"), await make_node("b")
    rec_a = await a.watch("room:1")
    phone, laptop = Chan(), Chan()
    r1 = await a.presence.track(phone, "room:1", "u1", {"d": "phone"})
    await a.presence.replicated()
    r2 = await b.presence.track(laptop, "room:1", "u1", {"d": "laptop"})
    await rec_a.wait_for(2)
    expected = {"u1": {"metas": [{"d": "phone", "phx_ref": r1}, {"d": "laptop", "phx_ref": r2}]}}
    # b lists its own meta at once, in store order once the store has it
    await eventually(lambda: a.presence.list("room:1") == b.presence.list("room:1") == expected)
    await b.presence.untrack_all(laptop)
    assert (await rec_a.wait_for(3))[2] == {
        "joins": {},
        "leaves": {"u1": {"metas": [{"d": "laptop", "phx_ref": r2}]}},
    }
    assert a.presence.list("room:1") == {"u1": {"metas": [{"d": "phone", "phx_ref": r1}]}}


async def test_concurrent_changes_from_two_nodes_converge(make_node: Make) -> None:
    a, b = await make_node("a"), await make_node("b")
    chans = {node: [Chan() for _ in range(30)] for node in (a, b)}

    async def churn(node: Node, name: str) -> None:
        for i, chan in enumerate(chans[node]):
            await node.presence.track(chan, "room:c", f"{name}{i % 5}", {"n": i})

    async def update(node: Node, name: str) -> None:
        await asyncio.gather(
            *(
                node.presence.update(chan, "room:c", f"{name}{i % 5}", {"n": i, "v": 2})
                for i, chan in enumerate(chans[node])
                if i % 2 == 0
            )
        )
        await asyncio.gather(
            *(node.presence.untrack_all(chan) for i, chan in enumerate(chans[node]) if i % 3 == 0)
        )

    await asyncio.gather(churn(a, "a"), churn(b, "b"))
    await asyncio.gather(update(a, "a"), update(b, "b"))
    expected_count = 2 * sum(1 for i in range(30) if i % 3 != 0)
    await eventually(lambda: a.presence.list("room:c") == b.presence.list("room:c"))
    listed = a.presence.list("room:c")
    assert sum(len(v["metas"]) for v in listed.values()) == expected_count
    for metas in (m for v in listed.values() for m in v["metas"]):
        assert ("v" in metas) == (metas["n"] % 2 == 0)


async def test_a_late_node_gets_the_full_state(make_node: Make) -> None:
    a = await make_node("a")
    ref = await a.presence.track(Chan(), "room:1", "u1", {"x": 1})
    await a.presence.track(Chan(), "room:2", "u2", {"x": 2})
    await a.presence.replicated()
    b = await make_node("b")
    assert b.presence.list("room:1") == {"u1": {"metas": [{"x": 1, "phx_ref": ref}]}}
    assert set(b.presence.list("room:2")) == {"u2"}


async def test_clean_stop_untracks_at_once(make_node: Make) -> None:
    a, b = await make_node("a", ttl=60.0), await make_node("b", ttl=60.0)
    rec_b = await b.watch("room:1")
    ref = await a.presence.track(Chan(), "room:1", "u1", {})
    await rec_b.wait_for(1)
    await a.presence.stop()
    diffs = await rec_b.wait_for(2, timeout=5)  # far below the 60 s TTL: not the reaper
    assert diffs[1] == {"joins": {}, "leaves": {"u1": {"metas": [{"phx_ref": ref}]}}}
    assert b.presence.list("room:1") == {}
    assert a.presence.list("room:1") == {}


async def test_a_dead_node_is_reaped(make_node: Make) -> None:
    a, b = await make_node("a"), await make_node("b")
    rec_b = await b.watch("room:1")
    ref = await a.presence.track(Chan(), "room:1", "u1", {})
    await b.presence.track(Chan(), "room:1", "u2", {})
    await rec_b.wait_for(2)
    await a.presence._halt()  # like kill -9: no goodbye, heartbeats stop
    diffs = await rec_b.wait_for(3, timeout=10)
    assert diffs[2] == {"joins": {}, "leaves": {"u1": {"metas": [{"phx_ref": ref}]}}}
    assert set(b.presence.list("room:1")) == {"u2"}


async def test_a_restarted_node_leaves_no_ghosts(make_node: Make) -> None:
    a, b = await make_node("a", ttl=60.0), await make_node("b", ttl=60.0)
    rec_b = await b.watch("room:1")
    ref = await a.presence.track(Chan(), "room:1", "u1", {})
    await rec_b.wait_for(1)
    await a.presence._halt()
    again = await make_node("a", ttl=60.0)  # same node name, new incarnation
    diffs = await rec_b.wait_for(2, timeout=5)  # long before the 60 s TTL
    assert diffs[1] == {"joins": {}, "leaves": {"u1": {"metas": [{"phx_ref": ref}]}}}
    assert again.presence.list("room:1") == b.presence.list("room:1") == {}


async def test_a_node_reaped_while_alive_comes_back(make_node: Make, redis_url: str) -> None:
    a, b = await make_node("a"), await make_node("b")
    rec_b = await b.watch("room:1")
    ref = await a.presence.track(Chan(), "room:1", "u1", {})
    await rec_b.wait_for(1)
    client = Redis.from_url(redis_url)
    try:
        # another node's reaper decides a is dead (e.g. a stalled longer than the TTL)
        await client.delete(f"{a.presence._prefix}alive:{a.presence.replica}")
        await rec_b.wait_for(3)  # the leave, then the join of the re-asserted entry
    finally:
        await client.aclose()
    assert b.presence.list("room:1") == {"u1": {"metas": [{"phx_ref": ref}]}}


async def test_a_lost_change_message_makes_the_mirror_reload(make_node: Make, redis_url: str) -> None:
    a, b = await make_node("a"), await make_node("b")
    ref = await a.presence.track(Chan(), "room:1", "u1", {})
    await eventually(lambda: bool(b.presence.list("room:1")))
    client = Redis.from_url(redis_url)
    try:
        # a change b never hears about, then the next change: b sees the version gap
        await client.hset(a.presence._keys[0], "ghost:1:1", b'1|["room:1","u9",{"phx_ref":"x"}]')
        await client.incr(a.presence._keys[1])
        await a.presence.track(Chan(), "room:1", "u2", {})
    finally:
        await client.aclose()
    await eventually(lambda: set(b.presence.list("room:1")) == {"u1", "u2", "u9"})
    assert b.presence.list("room:1")["u1"] == {"metas": [{"phx_ref": ref}]}


async def test_survives_a_redis_restart(make_node: Make) -> None:
    server = RedisServer()
    server.start()
    try:
        a = await make_node("a", server.url)
        b = await make_node("b", server.url)
        chan = Chan()
        await a.presence.track(chan, "room:1", "u1", {"x": 1})
        await eventually(lambda: bool(b.presence.list("room:1")))
        server.stop()
        server.start()  # empty: the store is gone
        # each node re-asserts its own entries and reloads the mirror
        await eventually(lambda: b.presence.ready and set(b.presence.list("room:1")) == {"u1"}, timeout=20)
        await b.presence.track(Chan(), "room:1", "u2", {})
        await eventually(lambda: set(a.presence.list("room:1")) == {"u1", "u2"}, timeout=20)
        await a.presence.update(chan, "room:1", "u1", {"x": 2})
        await eventually(lambda: b.presence.list("room:1")["u1"]["metas"][0]["x"] == 2)
    finally:
        server.close()


async def test_not_started_is_a_clear_error(redis_url: str) -> None:
    presence = RedisPresence(MemoryPubSub(), redis_url, "idle")
    with pytest.raises(RuntimeError, match="not started"):
        await presence.track(Chan(), "room:1", "u1", {})
    with pytest.raises(ValueError):
        RedisPresence(MemoryPubSub(), redis_url, "x", heartbeat_interval=5.0, ttl=1.0)


def merged(diffs: list[Any]) -> dict[str, Any]:
    """presence.js's state after applying ``diffs`` in order to an empty state."""
    state: dict[str, Any] = {}
    for diff in diffs:
        state = sync_diff(state, diff)
    return state


async def test_coalesced_diffs_across_two_nodes(make_node: Make) -> None:
    """A burst of tracks and untracks on both nodes: each node's few merged diffs rebuild the list."""
    a, b = await make_node("a", diff_window=0.05), await make_node("b", diff_window=0.05)
    rec_a, rec_b = await a.watch("room:1"), await b.watch("room:1")
    chans = {a: [Chan() for _ in range(100)], b: [Chan() for _ in range(100)]}

    async def burst(node: Node, name: str) -> None:
        for i, chan in enumerate(chans[node]):
            await node.presence.track(chan, "room:1", f"u{i % 30}", {"node": name, "i": i})
        for chan in chans[node][:20]:
            await node.presence.untrack_all(chan)

    await asyncio.gather(burst(a, "a"), burst(b, "b"))

    def settled() -> bool:
        listed = a.presence.list("room:1")
        return sum(len(p["metas"]) for p in listed.values()) == 160 and listed == b.presence.list("room:1")

    await eventually(settled)
    for rec in (rec_a, rec_b):  # once the last windows closed, the diffs rebuild the list
        await rec.wait_until(lambda r=rec: normal(merged(r.payloads())) == normal(a.presence.list("room:1")))
        assert len(rec.payloads()) <= 10, len(rec.payloads())  # 280 changes without coalescing


async def test_a_track_during_a_redis_outage_does_not_hold_the_join() -> None:
    """presence_state of a tracking join comes at once while Redis is stopped; the other node
    lists the presence once Redis is back."""
    server = RedisServer()
    server.start()
    options: dict[str, Any] = {
        "prefix": "outage:",
        "heartbeat_interval": 0.2,
        "ttl": 1.0,
        "reap_interval": 0.2,
    }
    presence = RedisPresence(MemoryPubSub(), server.url, "n1", **options)
    other = RedisPresence(MemoryPubSub(), server.url, "n2", **options)
    endpoint = endpoint_with(presence)
    try:
        await presence.start()
        await other.start()
        server.stop()
        client = await ChannelClient.connect(endpoint, endpoint.sockets[0])
        chan = await client.join(TOPIC, {"key": "u1", "device": "phone"}, within=3)
        state = await chan.assert_push("presence_state", within=3)  # before Redis is back
        assert [m["device"] for m in state["u1"]["metas"]] == ["phone"]
        assert other.list(TOPIC) == {}
        server.start()
        await eventually(lambda: other.list(TOPIC) == presence.list(TOPIC) == state, timeout=20)
        await client.close()
        await eventually(lambda: other.list(TOPIC) == {}, timeout=20)
    finally:
        await other.stop()
        await presence.stop()
        server.close()


async def test_changes_queued_together_reach_the_other_node_as_one_message(make_node: Make) -> None:
    """The writer sends what was queued meanwhile as one APPLY: one publish, one message per node
    (so one diff there even without coalescing)."""
    a, b = await make_node("a"), await make_node("b")
    rec_b = await b.watch("room:1")
    chans = [Chan() for _ in range(5)]
    for i, chan in enumerate(chans):  # track never waits: the five are queued before the writer runs
        await a.presence.track(chan, "room:1", f"u{i}", {"i": i})
    diffs = await rec_b.wait_for(1)
    assert sorted(diffs[0]["joins"]) == ["u0", "u1", "u2", "u3", "u4"]
    for chan in chans[:3]:
        await a.presence.untrack_all(chan)
    diffs = await rec_b.wait_for(2)
    assert diffs[1] == {
        "joins": {},
        "leaves": {f"u{i}": {"metas": [{"i": i, "phx_ref": ANY}]} for i in range(3)},
    }
    assert b.presence.list("room:1") == a.presence.list("room:1")


async def test_scripts_lost_by_redis_are_loaded_again(make_node: Make, redis_url: str) -> None:
    """Writes send EVALSHA only; after SCRIPT FLUSH (what a restart does) the next write loads the
    scripts and runs again."""
    a, b = await make_node("a"), await make_node("b")
    chan = Chan()
    await a.presence.track(chan, "room:1", "u1", {"v": 1})
    await eventually(lambda: set(b.presence.list("room:1")) == {"u1"})
    client = Redis.from_url(redis_url)
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    await a.presence.update(chan, "room:1", "u1", {"v": 2})
    await a.presence.track(Chan(), "room:1", "u2", {})
    await eventually(lambda: b.presence.list("room:1") == a.presence.list("room:1"))
    assert b.presence.list("room:1")["u1"]["metas"][0]["v"] == 2


async def test_a_room_spread_over_nodes_gets_the_window_of_its_whole_size(make_node: Make) -> None:
    """b has one local subscriber of a 200-key room tracked on a: its diffs wait as long as a
    room of 200 members' do, so the whole cluster spends about one budget on the room."""
    a, b = await make_node("a", diff_window=0.02), await make_node("b", diff_window=0.02)
    await b.watch("room:1")
    for i in range(200):
        await a.presence.track(Chan(), "room:1", f"u{i}", {})
    await eventually(lambda: len(b.presence.list("room:1")) == 200)
    assert b.presence._window_of("room:1") == pytest.approx(200 / b.presence._budget)
    assert b.presence._window_of("room:2") == 0.02  # an empty room: the shortest window


async def test_a_killed_link_reconnects_and_catches_up(make_node: Make) -> None:
    """Each node has one connection for scripts, snapshots and change messages: when Redis drops
    it, the node reconnects, re-asserts its entries and reloads what it missed meanwhile."""
    server = RedisServer()  # of its own: the test kills every subscribed connection
    server.start()
    try:
        a, b = await make_node("a", server.url), await make_node("b", server.url)
        chan = Chan()
        await a.presence.track(chan, "room:1", "u1", {})
        await eventually(lambda: set(b.presence.list("room:1")) == {"u1"})
        client = Redis.from_url(server.url)
        try:
            assert await client.client_kill_filter(_type="pubsub", skipme=True) == 2  # both links
            await a.presence.track(Chan(), "room:1", "u2", {})
            await b.presence.track(Chan(), "room:1", "u3", {})
            await a.presence.untrack_all(chan)
        finally:
            await client.aclose()
        await eventually(
            lambda: set(a.presence.list("room:1")) == set(b.presence.list("room:1")) == {"u2", "u3"}
        )
        assert b.presence.list("room:1") == a.presence.list("room:1")
        assert a.presence.ready and b.presence.ready
    finally:
        server.close()

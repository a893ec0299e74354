"""Issue #4 at full-stack level: two node processes behind real WebSocket clients, one real Redis.

Clients are `relaygate.client` sockets; node 1 and node 2 are separate uvicorn processes (see
conftest.py). Broadcasts cross nodes exactly once, presence lists agree on both nodes, a killed
node's presences leave within 10 s, and a Redis restart is survived without restarting the nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from relaygate.client import Client, ClientChannel, PresenceState, PushError, PushTimeout
from tests.cluster.conftest import NodeServer
from tests.servers import RedisServer

Open = Callable[[NodeServer], Awaitable[Client]]


@asynccontextmanager
async def clients() -> AsyncIterator[Open]:
    """Open clients to nodes; every one is closed at the end."""
    opened: list[Client] = []

    async def open_(node: NodeServer) -> Client:
        client = Client(node.url, timeout=10.0, rejoin_after=lambda _: 0.2, reconnect_after=lambda _: 0.2)
        await client.connect()
        opened.append(client)
        return client

    try:
        yield open_
    finally:
        for client in opened:
            await client.close()


async def join(
    client: Client, topic: str, track: str | None = None, **meta: Any
) -> tuple[ClientChannel, PresenceState, dict[str, Any]]:
    """Join (tracking `track` with `meta` if given); returns the channel, its presence and its state."""
    chan = client.channel(topic, {"track": track, "meta": meta} if track else {})
    presence = PresenceState(chan)
    await chan.join()
    state = await chan.next_event("presence_state", timeout=10)
    return chan, presence, state


def collect(chan: ClientChannel, event: str) -> list[Any]:
    seen: list[Any] = []
    chan.on(event, seen.append)
    return seen


async def next_diff_where(
    chan: ClientChannel, test: Callable[[dict[str, Any]], bool], timeout: float
) -> None:
    """Wait (at most `timeout` s in all) for a presence_diff that passes `test`."""
    async with asyncio.timeout(timeout):
        while not test(await chan.next_event("presence_diff", timeout=timeout)):
            pass


def keys_and_refs(state: dict[str, Any]) -> dict[str, list[str]]:
    return {key: [m["phx_ref"] for m in entry["metas"]] for key, entry in state.items()}


async def test_broadcast_on_node_1_reaches_node_2_once(
    nodes: tuple[NodeServer, NodeServer], topic: str
) -> None:
    n1, n2 = nodes
    async with clients() as open_:
        a, _, _ = await join(await open_(n1), topic)
        b, _, _ = await join(await open_(n2), topic)
        shouts_a, shouts_b = collect(a, "shout"), collect(b, "shout")

        await a.push("broadcast", {"event": "shout", "payload": {"n": 1}})
        assert await b.next_event("shout", timeout=10) == {"n": 1}
        await a.push("bin_broadcast")
        assert await b.next_event("b", timeout=10) == b"\x09\x09"
        # node 2 answers through Redis: any duplicate of node 1's shout (an echo of its own
        # publish, a second delivery) was published before this and would arrive before it
        await b.push("broadcast", {"event": "marker", "payload": {}})
        await a.next_event("marker", timeout=10)
        await b.next_event("marker", timeout=10)
        assert shouts_a == [{"n": 1}]
        assert shouts_b == [{"n": 1}]


async def test_presence_lists_agree_and_late_joiners_see_both_nodes(
    nodes: tuple[NodeServer, NodeServer], topic: str
) -> None:
    n1, n2 = nodes
    async with clients() as open_:
        watch_1, _, _ = await join(await open_(n1), topic)
        watch_2, _, _ = await join(await open_(n2), topic)
        _, _, own_1 = await join(await open_(n1), topic, "u1", node=1)
        _, _, own_2 = await join(await open_(n2), topic, "u2", node=2)
        [meta_1] = own_1["u1"]["metas"]
        [meta_2] = own_2["u2"]["metas"]
        assert meta_1["node"] == 1 and meta_2["node"] == 2 and meta_1["phx_ref"] != meta_2["phx_ref"]
        # each node has seen the other's track (its presence_diff went out on that node)
        await next_diff_where(watch_2, lambda d: "u1" in d["joins"], 10)
        await next_diff_where(watch_1, lambda d: "u2" in d["joins"], 10)

        expected = {"u1": {"metas": [meta_1]}, "u2": {"metas": [meta_2]}}
        _, _, late_on_2 = await join(await open_(n2), topic)
        _, _, late_on_1 = await join(await open_(n1), topic)
        assert late_on_2 == expected
        assert late_on_1 == expected


async def test_kill_9_of_a_node_gives_leaves_on_the_other_within_10_s(
    nodes: tuple[NodeServer, NodeServer], topic: str
) -> None:
    n1, n2 = nodes
    async with clients() as open_:
        watch, presence, _ = await join(await open_(n2), topic)
        _, _, own = await join(await open_(n1), topic, "u1", device="d1")
        _, _, state = await join(await open_(n2), topic, "u2")
        kept = {"u2": state["u2"]}
        await next_diff_where(watch, lambda d: "u1" in d["joins"], 10)

        n1.kill()
        await next_diff_where(watch, lambda d: d["leaves"] == {"u1": own["u1"]} and not d["joins"], 10)
        assert keys_and_refs(presence.state) == keys_and_refs(kept)
        _, _, late = await join(await open_(n2), topic)
        assert late == kept


async def push_until(chan: ClientChannel, event: str, payload: dict[str, Any]) -> Any:
    """Push until the node answers ok (it may time out or error while Redis is away)."""
    while True:
        try:
            return await chan.push(event, payload, timeout=2)
        except (PushTimeout, PushError):
            await asyncio.sleep(0.2)


async def test_redis_restart_is_survived_without_restarting_the_nodes(
    nodes: tuple[NodeServer, NodeServer], topic: str, redis_server: RedisServer
) -> None:
    n1, n2 = nodes
    async with clients() as open_:
        a, _, own_1 = await join(await open_(n1), topic, "u1")
        b, presence_2, _ = await join(await open_(n2), topic, "u2")
        async with asyncio.timeout(10):
            while "u1" not in presence_2.state:  # in b's presence_state, or in a diff just after it
                await asyncio.sleep(0.05)
        before = keys_and_refs(presence_2.state)
        assert before == {"u1": keys_and_refs(own_1)["u1"], "u2": before["u2"]}

        redis_server.restart()

        async with asyncio.timeout(30):
            # broadcasts flow again once both nodes have reconnected
            n = 0
            while True:
                await push_until(a, "broadcast", {"event": "after_restart", "payload": {"n": n}})
                try:
                    await b.next_event("after_restart", timeout=0.5)
                    break
                except PushTimeout:
                    n += 1
            # presence is consistent again: the same entries (same refs) on both nodes, and the
            # client state kept from diffs across the restart agrees with them
            while True:
                late_1 = (await join(await open_(n1), topic))[2]
                late_2 = (await join(await open_(n2), topic))[2]
                if keys_and_refs(late_1) == keys_and_refs(late_2) == before:
                    break
                await asyncio.sleep(0.5)
            while keys_and_refs(presence_2.state) != before:
                await asyncio.sleep(0.1)

        # and new presence crosses nodes again
        _, _, own_3 = await join(await open_(n1), topic, "u3")
        await next_diff_where(b, lambda d: d["joins"] == {"u3": own_3["u3"]} and not d["leaves"], 10)

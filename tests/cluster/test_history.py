"""history.md across two node processes on one Redis, with phoenix.js and relaygate.client."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from relaygate.client import Client, PushError, PushTimeout
from relaygate.protocol import parse_position
from tests.cluster.conftest import NodeServer
from tests.conformance.node import run_driver, select
from tests.servers import RedisServer

pytestmark = pytest.mark.node
OPTIONS = {"reconnectAfterMs": [50], "rejoinAfterMs": [100], "heartbeatIntervalMs": 30000}


def say(chan: str, n: int, socket: str | None = None) -> list[dict[str, Any]]:
    """Push one broadcast and wait until it comes back to the pusher.

    The reply only says the broadcast was queued; its echo says Redis appended it, so publishes
    from two nodes keep the order of the steps."""
    push = {
        "op": "push",
        "chan": chan,
        "event": "broadcast",
        "payload": {"event": "m", "payload": {"n": n}},
        "id": n,
    }
    return [
        push,
        {"op": "until", "match": {"type": "push", "chan": chan, "id": n, "status": "ok"}},
        {"op": "until", "match": {"type": "event", "chan": chan, "event": "m", "payload": {"n": n}}},
    ]


def events(observations: list[dict[str, Any]], chan: str) -> list[tuple[int, str]]:
    return [(o["payload"]["n"], o["ref"]) for o in select(observations, type="event", chan=chan, event="m")]


@pytest.fixture
def hist_topic() -> str:
    return f"histbig:{uuid.uuid4().hex[:8]}"


async def test_a_client_recovers_on_the_other_node_what_was_published_on_either(
    nodes: tuple[NodeServer, NodeServer], hist_topic: str
) -> None:
    n1, n2 = nodes
    t = hist_topic
    steps = [
        {"op": "connect"},  # main: node 1
        {"op": "socket", "socket": "s1", "opts": OPTIONS},
        {"op": "socket", "socket": "s2", "url": n2.url, "opts": OPTIONS},
        {"op": "connect", "socket": "s1"},
        {"op": "connect", "socket": "s2"},
        {"op": "channel", "chan": "c", "topic": t, "history": True},
        {"op": "join", "chan": "c"},
        {"op": "channel", "chan": "p1", "topic": t, "socket": "s1"},
        {"op": "join", "chan": "p1"},
        {"op": "channel", "chan": "p2", "topic": t, "socket": "s2"},
        {"op": "join", "chan": "p2"},
        {"op": "until", "match": {"type": "join", "status": "ok"}, "count": 3},
        *say("p1", 0),
        {"op": "until", "match": {"type": "event", "chan": "c", "event": "m"}},
        {"op": "disconnect"},
        {"op": "until", "match": {"type": "close", "socket": "main"}},
        *say("p1", 1),
        *say("p2", 2),
        *say("p1", 3),
        # the same client comes back through node 2, resuming from what it saw on node 1
        {"op": "socket", "socket": "late", "url": n2.url, "opts": OPTIONS},
        {"op": "connect", "socket": "late"},
        {"op": "channel", "chan": "c2", "topic": t, "socket": "late", "since_of": "c"},
        {"op": "join", "chan": "c2"},
        {"op": "until", "match": {"type": "join", "chan": "c2", "status": "ok"}},
        *say("p1", 4),
        {"op": "until", "match": {"type": "event", "chan": "c2", "event": "m"}, "count": 4, "timeout": 10000},
        {"op": "sleep", "ms": 300},
    ]
    observations = await run_driver(n1.url, steps, OPTIONS)
    before, after = events(observations, "c"), events(observations, "c2")
    assert [n for n, _ in before] == [0]
    assert [n for n, _ in after] == [1, 2, 3, 4]
    assert events(observations, "p1") == events(observations, "p2") == before + after  # same positions
    join = select(observations, type="join", chan="c2", status="ok")[0]["response"]
    assert join == {"position": after[2][1], "recovered": True}


async def test_after_redis_lost_everything_recovery_fails_and_never_replays_wrongly(
    nodes: tuple[NodeServer, NodeServer], hist_topic: str, redis_server: RedisServer
) -> None:
    n1, n2 = nodes
    t = hist_topic
    client = Client(n2.url, timeout=10.0, rejoin_after=lambda _: 0.2, reconnect_after=lambda _: 0.2)
    await client.connect()
    try:
        chan = client.channel(t)
        await chan.join()
        for n in range(3):
            await chan.push("broadcast", {"event": "m", "payload": {"n": n}})
            await chan.next_event("m")
        old = chan.position
        assert old is not None and old.endswith(":3")

        redis_server.restart()  # no persistence: every stream and epoch is gone

        # publish until 5 broadcasts went out with positions of the new stream life (the nodes
        # reconnect to Redis meanwhile; until then broadcasts stay local and carry no position)
        fresh: list[str] = []
        async with asyncio.timeout(30):
            n = 10
            while len(fresh) < 5:
                try:
                    await chan.push("broadcast", {"event": "m", "payload": {"n": n}}, timeout=2)
                    await chan.next_event("m", timeout=2)
                except (PushTimeout, PushError):
                    await asyncio.sleep(0.2)
                    continue
                n += 1
                ref = chan.position
                if ref is not None and parse_position(ref).epoch != parse_position(old).epoch:  # type: ignore[union-attr]
                    fresh.append(ref)
        assert parse_position(fresh[-1]).offset > 3  # type: ignore[union-attr]  # a naive replay would have something to send

        steps = [
            {"op": "connect"},  # node 1, the other one
            {"op": "channel", "chan": "c", "topic": t, "params": {"since": old}},
            {"op": "join", "chan": "c"},
            {"op": "until", "match": {"type": "join", "chan": "c"}},
            *say("c", 99),
            {"op": "until", "match": {"type": "event", "chan": "c", "event": "m"}},
            {"op": "sleep", "ms": 200},
        ]
        observations = await run_driver(n1.url, steps, OPTIONS)
        join = select(observations, type="join", chan="c")[0]
        assert join["status"] == "ok" and join["response"]["recovered"] is False
        assert [n for n, _ in events(observations, "c")] == [99]  # nothing replayed
    finally:
        await client.close()

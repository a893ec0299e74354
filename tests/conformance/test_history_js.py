"""history.md with the official phoenix.js: positions in the ref, recovery through a params function."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conformance.node import Observation, run_driver, select, sent

pytestmark = pytest.mark.node
OPTIONS = {"reconnectAfterMs": [50], "rejoinAfterMs": [50], "heartbeatIntervalMs": 30000}


def topic(prefix: str = "hist") -> str:
    return f"{prefix}:{uuid.uuid4().hex[:8]}"


def say(chan: str, n: int) -> dict[str, Any]:
    return {"op": "push", "chan": chan, "event": "broadcast", "payload": {"event": "m", "payload": {"n": n}}}


def events(observations: list[Observation], chan: str) -> list[tuple[int, str]]:
    return [(o["payload"]["n"], o["ref"]) for o in select(observations, type="event", chan=chan, event="m")]


def joins(observations: list[Observation], chan: str) -> list[Any]:
    return [o["response"] for o in select(observations, type="join", chan=chan, status="ok")]


def offsets(received: list[tuple[int, str]]) -> list[int]:
    return [int(ref.rsplit(":", 1)[1]) for _, ref in received]


async def test_missed_messages_arrive_in_order_after_the_rejoin_then_live_ones(server_url: str) -> None:
    t = topic()
    steps = [
        {"op": "connect"},
        {"op": "socket", "socket": "pub", "opts": OPTIONS},
        {"op": "connect", "socket": "pub"},
        {"op": "channel", "chan": "c", "topic": t, "history": True},
        {"op": "join", "chan": "c"},
        {"op": "channel", "chan": "p", "topic": t, "socket": "pub"},
        {"op": "join", "chan": "p"},
        {"op": "until", "match": {"type": "join", "status": "ok"}, "count": 2},
        say("p", 0),
        {"op": "until", "match": {"type": "event", "chan": "c", "event": "m"}},
        {"op": "disconnect"},
        {"op": "until", "match": {"type": "close", "socket": "main"}},
        say("p", 1),
        say("p", 2),
        say("p", 3),
        {"op": "until", "match": {"type": "push", "chan": "p", "status": "ok"}, "count": 4},
        {"op": "connect"},
        {"op": "until", "match": {"type": "join", "chan": "c", "status": "ok"}, "count": 2},
        say("p", 4),
        {"op": "until", "match": {"type": "event", "chan": "c", "event": "m"}, "count": 5},
        {"op": "sleep", "ms": 200},  # room for a duplicate to show up
    ]
    observations = await run_driver(server_url, steps, OPTIONS)
    received = events(observations, "c")
    assert [n for n, _ in received] == [0, 1, 2, 3, 4]
    assert offsets(received) == [1, 2, 3, 4, 5]
    assert received == events(observations, "p")  # the same positions for everyone
    first, second = joins(observations, "c")
    assert first == {"position": received[0][1].rsplit(":", 1)[0] + ":0"}
    assert second == {"position": received[3][1], "recovered": True}
    rejoin = sent(observations, socket="main", event="phx_join")[-1]
    assert rejoin["payload"] == {"since": received[0][1]}


@pytest.mark.parametrize("case", ["other_epoch", "trimmed", "garbage"])
async def test_an_unrecoverable_since_gives_recovered_false_and_no_replay(server_url: str, case: str) -> None:
    t = topic()
    steps: list[dict[str, Any]] = [
        {"op": "connect"},
        {"op": "channel", "chan": "p", "topic": t, "history": True},
        {"op": "join", "chan": "p"},
        *(say("p", n) for n in range(7)),  # 7 messages; the topic keeps the last 5
        {"op": "until", "match": {"type": "event", "chan": "p", "event": "m"}, "count": 7},
    ]
    first = await run_driver(server_url, steps, OPTIONS)
    refs = [ref for _, ref in events(first, "p")]
    epoch = refs[0].rsplit(":", 1)[0]
    since = {"other_epoch": "zz" + epoch + ":3", "trimmed": refs[0], "garbage": "not a position"}[case]
    steps = [
        {"op": "connect"},
        {"op": "channel", "chan": "c", "topic": t, "params": {"since": since}},
        {"op": "join", "chan": "c"},
        {"op": "until", "match": {"type": "join", "chan": "c"}},
        say("c", 99),
        {"op": "until", "match": {"type": "event", "chan": "c", "event": "m"}},
    ]
    observations = await run_driver(server_url, steps, OPTIONS)
    assert joins(observations, "c") == [{"position": refs[-1], "recovered": False}]
    assert events(observations, "c") == [(99, f"{epoch}:8")]  # nothing replayed; live goes on


async def test_a_burst_published_during_the_rejoin_arrives_exactly_once(server_url: str) -> None:
    t = topic("histbig")
    burst = {"op": "push", "chan": "p", "event": "burst", "payload": {"event": "m", "n": 60}}
    steps = [
        {"op": "connect"},
        {"op": "socket", "socket": "pub", "opts": OPTIONS},
        {"op": "connect", "socket": "pub"},
        {"op": "channel", "chan": "c", "topic": t, "history": True},
        {"op": "join", "chan": "c"},
        {"op": "channel", "chan": "p", "topic": t, "socket": "pub"},
        {"op": "join", "chan": "p"},
        {"op": "until", "match": {"type": "join", "status": "ok"}, "count": 2},
        say("p", -1),
        {"op": "until", "match": {"type": "event", "chan": "c", "event": "m"}},
        {"op": "disconnect"},
        {"op": "until", "match": {"type": "close", "socket": "main"}},
        say("p", -2),  # missed while away
        {"op": "until", "match": {"type": "push", "chan": "p", "status": "ok"}, "count": 2},
        {"op": "connect"},
        burst,  # races the rejoin: some before the read, some during, some after
        {"op": "until", "match": {"type": "push", "chan": "p", "status": "ok"}, "count": 3},
        {"op": "until", "match": {"type": "event", "chan": "c", "event": "m"}, "count": 62, "timeout": 10000},
        {"op": "sleep", "ms": 200},
    ]
    observations = await run_driver(server_url, steps, OPTIONS)
    received = events(observations, "c")
    assert offsets(received) == list(range(1, 63))  # no gap, no duplicate, in order
    assert [n for n, _ in received] == [-1, -2, *range(60)]
    assert joins(observations, "c")[-1]["recovered"] is True

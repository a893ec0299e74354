"""phoenix.js `Presence` watching a burst of joins and leaves with coalesced diffs."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.presence import MemoryPresence
from relaygate.pubsub import MemoryPubSub
from tests.conformance import app
from tests.conformance.conftest import serve
from tests.conformance.node import frames, run_driver, select

pytestmark = pytest.mark.node

TOPIC = "room:burst"
OPTIONS = {"rejoinAfterMs": [50], "reconnectAfterMs": [60000]}


async def test_phoenix_js_presence_list_equals_the_servers_after_a_burst() -> None:
    pubsub = MemoryPubSub()
    presence = MemoryPresence(pubsub, diff_window=0.05)
    steps: list[dict[str, Any]] = [
        {"op": "connect"},
        {"op": "channel", "chan": "w", "topic": TOPIC, "params": {"track": "watcher"}, "presence": True},
        {"op": "join", "chan": "w"},
        {"op": "until", "match": {"type": "presence_sync", "chan": "w"}},
    ]
    for i in range(80):  # 30 keys, several devices each
        steps += [
            {"op": "socket", "socket": f"s{i}", "opts": OPTIONS},
            {"op": "connect", "socket": f"s{i}"},
            {
                "op": "channel",
                "chan": f"c{i}",
                "topic": TOPIC,
                "socket": f"s{i}",
                "params": {"track": f"u{i % 30}", "meta": {"i": i}},
            },
            {"op": "join", "chan": f"c{i}"},
        ]
    steps += [{"op": "until", "match": {"type": "join", "chan": f"c{i}", "status": "ok"}} for i in range(80)]
    steps += [{"op": "leave", "chan": f"c{i}"} for i in range(0, 80, 4)]  # a meta of some keys goes
    steps += [{"op": "sleep", "ms": 1500}, {"op": "presence_list", "chan": "w"}]
    async with serve(app.build_app(pubsub=pubsub, presence=presence)) as url:
        observations = await run_driver(url, steps, OPTIONS)
    [listed] = select(observations, type="presence_list", chan="w")
    # what the server held then: the watcher, and the 60 devices that did not leave
    expected: dict[str, list[Any]] = {"watcher": [None]}
    for i in range(80):
        if i % 4:
            expected.setdefault(f"u{i % 30}", []).append(i)
    got = {p["key"]: sorted(m.get("i") for m in p["metas"]) for p in listed["list"]}
    assert got == {key: sorted(v) for key, v in expected.items()}
    refs = [m["phx_ref"] for p in listed["list"] for m in p["metas"]]
    assert len(set(refs)) == len(refs) == 61
    diffs = frames(observations, socket="main", event="presence_diff")
    assert len(diffs) <= 15, len(diffs)  # 101 changes, one diff each without coalescing

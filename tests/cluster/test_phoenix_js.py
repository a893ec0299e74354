"""The official phoenix.js client against two node processes: one socket on each node."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import NodeServer
from tests.conformance import presence_scenario
from tests.conformance.node import frames, run_driver

pytestmark = pytest.mark.node


async def test_broadcast_crosses_nodes_once(nodes: tuple[NodeServer, NodeServer], topic: str) -> None:
    n1, n2 = nodes
    shout = {"event": "shout", "payload": {"n": 1}}
    steps = [
        {"op": "connect"},  # main: node 2
        {"op": "socket", "socket": "n1", "url": n1.url, "opts": presence_scenario.OPTIONS},
        {"op": "connect", "socket": "n1"},
        {"op": "channel", "chan": "on2", "topic": topic},
        {"op": "join", "chan": "on2"},
        {"op": "channel", "chan": "on1", "topic": topic, "socket": "n1"},
        {"op": "join", "chan": "on1"},
        {"op": "until", "match": {"type": "join", "status": "ok"}, "count": 2},
        {"op": "push", "chan": "on1", "event": "broadcast", "payload": shout},
        {"op": "until", "match": {"type": "frame", "socket": "main", "event": "shout"}},
        # node 2 answers: a duplicate of node 1's shout would arrive before this on both sockets
        {"op": "push", "chan": "on2", "event": "broadcast", "payload": {"event": "marker", "payload": {}}},
        {"op": "until", "match": {"type": "frame", "event": "marker"}, "count": 2},
    ]
    observations = await run_driver(n2.url, steps, presence_scenario.OPTIONS)
    for socket in ("main", "n1"):
        received = frames(observations, socket=socket, event="shout")
        assert [(f["join_ref"], f["ref"], f["topic"], f["payload"]) for f in received] == [
            (None, None, topic, {"n": 1})
        ], socket


async def test_multi_device_presence_across_nodes(nodes: tuple[NodeServer, NodeServer], topic: str) -> None:
    """Device a on node 1 watches with phoenix.js Presence; device b is on node 2."""
    n1, n2 = nodes
    observations = await run_driver(
        n1.url, presence_scenario.steps(topic, url_b=n2.url), presence_scenario.OPTIONS
    )
    presence_scenario.check(observations)

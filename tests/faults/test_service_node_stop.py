"""A service node that stops answering (SIGSTOP: alive, holding its connections, silent).

Calls to it time out as the function configures, liveness marks it down so later calls are
answered ``unavailable`` at once, and after SIGCONT it is live and called again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from tests.gateway.test_cluster import call, eventually, req

FUNCTION = ("demo", "short", None)


async def test_a_stopped_service_node_times_out_is_marked_down_then_recovers(
    make_cluster, start_node
) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    node = await start_node("frozen", cluster=cluster)
    assert (await call(gw, req("before", "short", {"ms": 0})))["success"]

    os.kill(node.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        timed_out = await call(gw, req("during", "short", {"ms": 0}))
        assert (timed_out["code"], timed_out["can_retry"]) in {("timeout", True), ("unavailable", True)}
        assert time.monotonic() - started < 5  # the function's 300 ms timeout, not a hang
        await eventually(lambda: _down(cluster), within=10)
        down = await call(gw, req("down", "short", {"ms": 0}))
        assert down["code"] == "unavailable", down
    finally:
        os.kill(node.process.pid, signal.SIGCONT)

    await eventually(lambda: _up(cluster), within=10)
    async with asyncio.timeout(10):
        while not (await call(gw, req(f"after-{time.monotonic()}", "short", {"ms": 0})))["success"]:
            await asyncio.sleep(0.1)


async def _down(cluster) -> bool:
    return "frozen" not in cluster.live_nodes(FUNCTION)


async def _up(cluster) -> bool:
    return "frozen" in cluster.live_nodes(FUNCTION)

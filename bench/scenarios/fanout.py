"""fanout: S subscribers on one topic, one publisher broadcasts M ~100-byte messages.

The publisher stamps ``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by all processes on the
machine) into each payload; subscribers record receipt minus stamp. The publisher keeps at most
``window`` publishes awaiting their reply, so the server is saturated without unbounded queues.
On a cluster (``relaygate-redis``) the subscriber workers are spread over the nodes round-robin
and the publisher is on node 1, so half the subscribers are reached through Redis.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

from bench.scenarios import Metric, RunContext, Target, machine_busy, others_pct, percentiles, split
from bench.wire import Heartbeats, open_client, open_joined
from bench.workers import Control, WorkerPool

NAME = "fanout"
TITLE = "Fan-out: one publisher, S subscribers on one topic"
SYSTEMS = ("relaygate", "relaygate-redis", "python-socketio", "bare-websockets")
TOPIC = "bench:fanout"
HEARTBEAT_SECONDS = 30.0
PAD = "x" * 48  # {"t":..., "seq":..., "pad":...} encodes to ~100 bytes

METRICS = [
    Metric("subscribers", "subscribers"),
    Metric("delivered", "delivered"),
    Metric("lost", "lost"),
    Metric("delivered_per_s", "delivered msg/s", plot=True),
    Metric("p50_ms", "p50 (ms)", "{:.1f}", plot=True),
    Metric("p99_ms", "p99 (ms)", "{:.1f}", plot=True),
    Metric("max_ms", "max (ms)", "{:.1f}"),
    Metric("server_cpu_us_per_msg", "server CPU/msg (µs)", "{:.2f}"),
    Metric("client_cpu_us_per_msg", "client CPU/msg (µs)", "{:.2f}"),
    Metric("others_cpu_pct", "other processes' CPU (%)", "{:.0f}"),
]

TARGETS = [
    Target(
        "≤ 3 µs server CPU per delivered message (10,000 subscribers in the full run)",
        "server_cpu_us_per_msg",
        "<=",
        3,
    ),
    Target("≥ 200,000 messages/s delivered", "delivered_per_s", ">=", 200_000),
    Target("p99 ≤ 100 ms (at 10,000 subscribers in the full run)", "p99_ms", "<=", 100),
    Target("≥ 2 x python-socketio fan-out rate", "delivered_per_s", ">=", 2, versus="python-socketio"),
    Target(
        "through Redis across two nodes ≥ 100,000/s",
        "delivered_per_s",
        ">=",
        100_000,
        system="relaygate-redis",
    ),
]


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"subscribers": 500, "messages": 100, "workers": 2, "window": 4}
    return {"subscribers": 10_000, "messages": 50, "workers": 3, "window": 4}


async def subscriber(ctl: Control, params: dict[str, Any]) -> None:
    # Subscribers heartbeat like phoenix.js: connecting 10k takes over a minute here, and Relaygate
    # closes sockets that sent nothing for 60 s (the first full run lost 7k subscribers that way).
    heartbeats = Heartbeats(HEARTBEAT_SECONDS)
    heartbeats.start()
    clients, errors = await open_joined(
        params["protocol"], params["url"], TOPIC, range(*params["indices"]), on_joined=heartbeats.add
    )
    latencies = array("q")
    expected = len(clients) * params["messages"]
    finished = asyncio.Event()
    last = [0]
    clock = time.monotonic_ns

    def received(event: str, payload: Any) -> None:
        now = clock()
        latencies.append(now - payload["t"])
        last[0] = now
        if len(latencies) >= expected:
            finished.set()

    for c in clients:
        c.on_broadcast = received
    await ctl.step("ready", {"joined": len(clients), "failed": len(errors), "errors": errors[:3]})
    seen = -1
    while not finished.is_set() and len(latencies) != seen:  # stop when done or 10 s without progress
        seen = len(latencies)
        try:
            await asyncio.wait_for(finished.wait(), 10)
        except TimeoutError:
            pass
    heartbeats.stop()
    await ctl.step(
        "done",
        {
            "latencies": latencies.tobytes(),
            "last_ns": last[0],
            "closed": sum(not c.is_open for c in clients),
        },
    )


async def publisher(ctl: Control, params: dict[str, Any]) -> None:
    client = await open_client(params["protocol"], params["url"])
    await client.join(TOPIC)
    heartbeats = Heartbeats(HEARTBEAT_SECONDS)
    heartbeats.add(client)
    heartbeats.start()
    await ctl.step("ready", {"joined": 1, "failed": 0, "errors": []})
    inflight: set[asyncio.Task[Any]] = set()
    first = time.monotonic_ns()
    for seq in range(params["messages"]):
        payload = {"t": time.monotonic_ns(), "seq": seq, "pad": PAD}
        inflight.add(asyncio.create_task(client.push(TOPIC, "publish", payload)))
        if len(inflight) >= params["window"]:
            done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
    for task in inflight:
        await task
    await ctl.step("done", {"first_ns": first, "published_ns": time.monotonic_ns()})


def run(ctx: RunContext) -> dict[str, Any]:
    import numpy as np

    size, server = ctx.size, ctx.server
    common = {"protocol": server.spec.protocol, "url": server.url, "messages": size["messages"]}
    urls = server.urls
    jobs = [
        (f"{__name__}:subscriber", common | {"indices": (r.start, r.stop), "url": urls[i % len(urls)]})
        for i, r in enumerate(split(size["subscribers"], size["workers"]))
    ]
    jobs.append((f"{__name__}:publisher", common | {"window": size["window"]}))
    with WorkerPool(jobs) as pool:
        ready = pool.step("ready", 300)
        t0, s0, c0, m0 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        reports = pool.step("done", 600, release=False)
        t1, s1, c1, m1 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        pool.release()
    joined = sum(r["joined"] for r in ready[:-1])
    errors = [e for r in ready for e in r["errors"]]
    if errors:
        ctx.notes.append(f"connect errors, e.g. {errors[0]}")
    latencies = np.concatenate([np.frombuffer(r["latencies"], dtype=np.int64) for r in reports[:-1]])
    delivered = int(latencies.size)
    first_ns = reports[-1]["first_ns"]
    seconds = (max(r["last_ns"] for r in reports[:-1]) - first_ns) / 1e9
    per = max(delivered, 1)
    return {
        "subscribers": joined,
        "messages": size["messages"],
        "expected": joined * size["messages"],
        "delivered": delivered,
        "lost": joined * size["messages"] - delivered,
        "closed_by_server": sum(r["closed"] for r in reports[:-1]),
        "seconds": seconds,
        "delivered_per_s": delivered / seconds if seconds > 0 else 0.0,
        "publish_per_s": size["messages"] / ((reports[-1]["published_ns"] - first_ns) / 1e9),
        **percentiles(latencies),
        "server_cpu_us_per_msg": (s1 - s0) / per * 1e6,
        "client_cpu_us_per_msg": (c1 - c0) / per * 1e6,
        "server_cpu_s": s1 - s0,
        "client_cpu_s": c1 - c0,
        "others_cpu_pct": others_pct(m1 - m0, s1 - s0 + c1 - c0, t1 - t0),
    }

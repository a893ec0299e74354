"""roundtrip: C clients each push ``ping`` and await the reply, in a loop, for a fixed duration."""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.scenarios import Metric, RunContext, Target, machine_busy, others_pct, percentiles, split
from bench.wire import WireClient, open_joined
from bench.workers import Control, WorkerPool

NAME = "roundtrip"
TITLE = "Round trip: C clients push and await the reply in a loop"
SYSTEMS = ("relaygate", "python-socketio", "bare-websockets")
TOPIC = "bench:rtt"

METRICS = [
    Metric("clients", "clients"),
    Metric("replies_per_s", "replies/s", plot=True),
    Metric("p50_ms", "p50 (ms)", "{:.2f}", plot=True),
    Metric("p99_ms", "p99 (ms)", "{:.2f}", plot=True),
    Metric("max_ms", "max (ms)", "{:.1f}"),
    Metric("server_cpu_us_per_msg", "server CPU/reply (µs)", "{:.1f}"),
    Metric("client_cpu_us_per_msg", "client CPU/reply (µs)", "{:.1f}"),
    Metric("others_cpu_pct", "other processes' CPU (%)", "{:.0f}"),
]

TARGETS = [
    Target("≤ 15 µs server CPU per reply", "server_cpu_us_per_msg", "<=", 15),
    Target("≥ 50,000 replies/s at 100 clients", "replies_per_s", ">=", 50_000),
    Target("p99 ≤ 10 ms (at 1,000 clients in the full run)", "p99_ms", "<=", 10),
]


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"clients": 100, "workers": 2, "warmup_seconds": 1.0, "seconds": 5.0}
    return {"clients": 1_000, "workers": 2, "warmup_seconds": 3.0, "seconds": 20.0}


async def client(ctl: Control, params: dict[str, Any]) -> None:
    clients, errors = await open_joined(params["protocol"], params["url"], TOPIC, range(*params["indices"]))
    await ctl.step("ready", {"joined": len(clients), "failed": len(errors), "errors": errors[:3]})
    clock = time.monotonic_ns
    start = clock() + int(params["warmup_seconds"] * 1e9)
    end = start + int(params["seconds"] * 1e9)
    latencies = array("q")
    payload = {"n": 0}
    all_done = asyncio.get_running_loop().create_future()
    running = len(clients)

    def pinger(c: WireClient) -> Callable[[Any], None]:
        """Each reply sends the next push from the reply's own callback: no task or future per push."""
        sent = 0

        def on_reply(_: Any) -> None:
            nonlocal sent, running
            now = clock()
            if sent >= start:
                latencies.append(now - sent)
            if now < end:
                sent = now
                c.push_then(TOPIC, "ping", payload, on_reply)
                return
            running -= 1
            if not running:
                all_done.set_result(None)

        return on_reply

    for c in clients:
        pinger(c)(None)
    with contextlib.suppress(TimeoutError):  # a client whose connection died never finishes
        await asyncio.wait_for(all_done, (end - clock()) / 1e9 + 30)
    await ctl.step("done", {"latencies": latencies.tobytes(), "stalled": running})


def run(ctx: RunContext) -> dict[str, Any]:
    size, server = ctx.size, ctx.server
    jobs = [
        (
            f"{__name__}:client",
            {
                "protocol": server.spec.protocol,
                "url": server.url,
                "indices": (r.start, r.stop),
                "warmup_seconds": size["warmup_seconds"],
                "seconds": size["seconds"],
            },
        )
        for r in split(size["clients"], size["workers"])
    ]
    with WorkerPool(jobs) as pool:
        ready = pool.step("ready", 300)
        time.sleep(size["warmup_seconds"])
        s0, c0, m0 = server.cpu(), pool.cpu(), machine_busy()
        time.sleep(size["seconds"])
        s1, c1, m1 = server.cpu(), pool.cpu(), machine_busy()
        reports = pool.step("done", 120)
    errors = [e for r in ready for e in r["errors"]]
    if errors:
        ctx.notes.append(f"connect errors, e.g. {errors[0]}")
    stalled = sum(r["stalled"] for r in reports)
    if stalled:
        ctx.notes.append(f"{stalled} clients lost their connection before the end")
    latencies = np.concatenate([np.frombuffer(r["latencies"], dtype=np.int64) for r in reports])
    replies = max(int(latencies.size), 1)
    return {
        "clients": sum(r["joined"] for r in ready),
        "replies": int(latencies.size),
        "replies_per_s": latencies.size / size["seconds"],
        **percentiles(latencies),
        "server_cpu_us_per_msg": (s1 - s0) / replies * 1e6,
        "client_cpu_us_per_msg": (c1 - c0) / replies * 1e6,
        "server_cpu_pct": (s1 - s0) / size["seconds"] * 100,
        "client_cpu_pct": (c1 - c0) / size["seconds"] * 100,
        "others_cpu_pct": others_pct(m1 - m0, s1 - s0 + c1 - c0, size["seconds"]),
    }

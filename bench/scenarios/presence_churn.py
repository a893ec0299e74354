"""presence-churn: sockets join and leave a tracked topic at a fixed rate; observers time the diffs.

Churn workers hold ``rate * (hold + 1 s)`` connections between them; each connection joins the
topic tracking a fresh key (``{"track": key, "meta": {"t": send time}}``), stays ``hold`` seconds,
leaves, and joins again on its next slot, so joins are paced at ``rate`` per second in total for
``seconds``. A join whose slot has passed is skipped, not queued: the joins completed per second
are the rate the server sustained. Observer sockets (one per node) join the topic without
tracking and stamp every ``presence_diff``: a join's latency is receipt minus the ``t`` in its
meta (join sent -> diff received), a leave's is receipt minus the time its ``phx_leave`` was sent.
Churning sockets stay joined while they hold, so they receive the diffs too, as in a real room.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

from bench.scenarios import Metric, RunContext, Target, machine_busy, others_pct, percentiles
from bench.wire import PhoenixClient, WireClient, open_client
from bench.workers import Control, WorkerPool

NAME = "presence-churn"
TITLE = "Presence churn: sockets join and leave a tracked topic at a fixed rate"
SYSTEMS = ("relaygate", "relaygate-redis")
TOPIC = "bench:presence"

METRICS = [
    Metric("rate", "target joins/s"),
    Metric("joins_per_s", "joins/s sustained", plot=True),
    Metric("join_p99_ms", "join reply p99 (ms)", "{:.1f}"),
    Metric("diff_p50_ms", "diff p50 (ms)", "{:.1f}", plot=True),
    Metric("diff_p99_ms", "diff p99 (ms)", "{:.1f}", plot=True),
    Metric("diff_max_ms", "diff max (ms)", "{:.1f}"),
    Metric("missed_diffs", "missed diffs"),
    Metric("server_cpu_us_per_join", "server CPU/join (µs)", "{:.0f}"),
    Metric("others_cpu_pct", "other processes' CPU (%)", "{:.0f}"),
]

TARGETS = [
    Target("≤ 500 µs server CPU per tracked join, one node", "server_cpu_us_per_join", "<=", 500),
    Target(
        "≤ 500 µs server CPU per tracked join through Redis (both nodes + redis-server)",
        "server_cpu_us_per_join",
        "<=",
        500,
        system="relaygate-redis",
    ),
]


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"rate": 100, "seconds": 8.0, "hold": 1.0, "workers": 2}
    return {"rate": 400, "seconds": 30.0, "hold": 2.0, "workers": 2}


async def churner(ctl: Control, params: dict[str, Any]) -> None:
    rate, hold = params["rate"], params["hold"]
    count = max(1, round(rate * (hold + 1.0)))
    clients = [await open_client("phoenix", params["url"]) for _ in range(count)]
    await ctl.step("ready", {"joined": len(clients), "failed": 0, "errors": []})
    clock = time.monotonic_ns
    start = clock() + 200_000_000
    end = start + int(params["seconds"] * 1e9)
    period = int(count / rate * 1e9)  # each connection's slot comes round every `period`
    join_latencies = array("q")
    leaves: dict[str, int] = {}
    skipped = 0

    async def cycle(c: WireClient, j: int) -> None:
        nonlocal skipped
        assert isinstance(c, PhoenixClient)
        slot, n = start + int(j * 1e9 / rate), 0
        while slot < end:
            wait = slot - clock()
            if wait < 0:
                skipped += 1
            else:
                await asyncio.sleep(wait / 1e9)
                key = f"{params['name']}-{j}-{n}"
                sent = clock()
                await c.join(TOPIC, timeout=30, payload={"track": key, "meta": {"t": sent}})
                join_latencies.append(clock() - sent)
                await asyncio.sleep(hold)
                leaves[key] = clock()
                await c.leave(TOPIC, timeout=30)
            slot += period
            n += 1

    await asyncio.gather(*(cycle(c, j) for j, c in enumerate(clients)))
    report = {"join_latencies": join_latencies.tobytes(), "leaves": leaves, "skipped": skipped}
    await ctl.step("done", report)
    for c in clients:
        await c.close()


async def observer(ctl: Control, params: dict[str, Any]) -> None:
    client = await open_client("phoenix", params["url"])
    join_latencies = array("q")
    left: dict[str, int] = {}
    last = [time.monotonic_ns()]
    clock = time.monotonic_ns

    def received(event: str, payload: Any) -> None:
        if event != "presence_diff":
            return
        now = last[0] = clock()
        for entry in payload["joins"].values():
            for meta in entry["metas"]:
                join_latencies.append(now - meta["t"])
        for key in payload["leaves"]:
            left[key] = now

    client.on_broadcast = received
    await client.join(TOPIC)
    await ctl.step("ready", {"joined": 1, "failed": 0, "errors": []})
    deadline = time.monotonic() + params["seconds"] + params["hold"] + 60
    await asyncio.sleep(params["seconds"] + params["hold"])
    while time.monotonic() < deadline and clock() - last[0] < 2e9:  # until 2 s without a diff
        await asyncio.sleep(0.2)
    await ctl.step("done", {"join_latencies": join_latencies.tobytes(), "left": left})
    await client.close()


def run(ctx: RunContext) -> dict[str, Any]:
    import numpy as np

    size, server = ctx.size, ctx.server
    urls = server.urls
    common = {"seconds": size["seconds"], "hold": size["hold"]}
    jobs = [
        (
            f"{__name__}:churner",
            common | {"url": urls[i % len(urls)], "rate": size["rate"] / size["workers"], "name": f"w{i}"},
        )
        for i in range(size["workers"])
    ]
    jobs += [(f"{__name__}:observer", common | {"url": url}) for url in urls]
    churners = size["workers"]
    with WorkerPool(jobs) as pool:
        pool.step("ready", 300)
        t0, s0, c0, m0 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        reports = pool.step("done", size["seconds"] + size["hold"] + 180, release=False)
        t1, s1, c1, m1 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        pool.release()
    join_replies = np.concatenate(
        [np.frombuffer(r["join_latencies"], dtype=np.int64) for r in reports[:churners]]
    )
    leave_sent: dict[str, int] = {}
    for r in reports[:churners]:
        leave_sent |= r["leaves"]
    joins = int(join_replies.size)
    diffs: list[Any] = []
    missed = 0
    for r in reports[churners:]:
        seen = np.frombuffer(r["join_latencies"], dtype=np.int64)
        diffs.append(seen)
        diffs.append(np.array([t - leave_sent[k] for k, t in r["left"].items() if k in leave_sent], np.int64))
        missed += joins - seen.size + len(leave_sent) - sum(k in leave_sent for k in r["left"])
    latency = percentiles(np.concatenate(diffs))
    reply = percentiles(join_replies)
    return {
        "rate": size["rate"],
        "joins": joins,
        "skipped": sum(r["skipped"] for r in reports[:churners]),
        "joins_per_s": joins / size["seconds"],
        "join_p50_ms": reply["p50_ms"],
        "join_p99_ms": reply["p99_ms"],
        "diff_p50_ms": latency["p50_ms"],
        "diff_p99_ms": latency["p99_ms"],
        "diff_max_ms": latency["max_ms"],
        "missed_diffs": missed,
        "server_cpu_us_per_join": (s1 - s0) / max(joins, 1) * 1e6,
        "server_cpu_s": s1 - s0,
        "client_cpu_s": c1 - c0,
        "others_cpu_pct": others_pct(m1 - m0, s1 - s0 + c1 - c0, t1 - t0),
    }

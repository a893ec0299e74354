"""idle-connections: N sockets connect, join, heartbeat and stay; what does the server pay per socket?"""

from __future__ import annotations

import time
from typing import Any

from bench.scenarios import Metric, RunContext, Target, machine_busy, others_pct, split
from bench.servers import raise_fd_limit
from bench.servers.relaygate_app import token
from bench.wire import Heartbeats, open_joined
from bench.workers import Control, WorkerPool

NAME = "idle-connections"
TITLE = "Idle connections (joined, heartbeats on)"
SYSTEMS = ("relaygate", "relaygate-workers", "python-socketio", "bare-websockets")
TOPIC = "bench:idle"

METRICS = [
    Metric("joined", "joined sockets"),
    Metric("failed", "failed"),
    Metric("rss_per_conn_kb", "server RSS/socket (KB)", "{:,.1f}", plot=True),
    Metric("connect_rate", "connects+joins/s", "{:,.0f}", plot=True),
    Metric("server_cpu_per_connect_ms", "server CPU/connect (ms)", "{:.2f}"),
    Metric("client_cpu_per_connect_ms", "client CPU/connect (ms)", "{:.2f}"),
    Metric("idle_server_cpu_pct", "server CPU idle (%)", "{:.1f}", plot=True),
    Metric("idle_client_cpu_pct", "client CPU idle (%)", "{:.1f}"),
    Metric("heartbeats_ok", "heartbeat replies in idle window"),
    Metric("others_cpu_pct", "other processes' CPU while connecting (%)", "{:.0f}"),
]

TARGETS = [
    Target("50,000 joined sockets", "joined", ">=", 50_000, capped_by="connections"),
    Target(
        "50,000 joined sockets on one node with workers",
        "joined",
        ">=",
        50_000,
        system="relaygate-workers",
        capped_by="connections",
    ),
    Target("≤ 10 KB server RSS per joined socket", "rss_per_conn_kb", "<=", 10),
    Target("connect + auth + join ≤ 250 µs server CPU", "server_cpu_per_connect_ms", "<=", 0.25),
    Target(
        "≤ 0.5 x python-socketio memory per connection",
        "rss_per_conn_kb",
        "<=",
        0.5,
        versus="python-socketio",
    ),
]

FD_HEADROOM = 200


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "connections": 2_000,
            "workers": 2,
            "idle_seconds": 5.0,
            "settle_seconds": 1.0,
            "heartbeat_seconds": 2.0,
        }
    # phoenix.js heartbeats every 30 s; the idle window covers one full round.
    return {
        "connections": 50_000,
        "workers": 4,
        "idle_seconds": 35.0,
        "settle_seconds": 3.0,
        "heartbeat_seconds": 30.0,
    }


async def client(ctl: Control, params: dict[str, Any]) -> None:
    heartbeats = Heartbeats(params["heartbeat_seconds"])
    # Every client authenticates with an access token of its own, new to the server (the
    # costlier first verification); peers without token auth ignore the parameter.
    tokens = {index: f"&token={token(index)}" for index in range(*params["indices"])}
    await ctl.step("ready")
    heartbeats.start()
    started = time.monotonic()
    clients, errors = await open_joined(
        params["protocol"],
        params["url"],
        TOPIC,
        range(*params["indices"]),
        on_joined=heartbeats.add,
        query=tokens.__getitem__,
    )
    seconds = time.monotonic() - started
    before = sum(c.heartbeats_ok for c in clients)
    report = {"joined": len(clients), "failed": len(errors), "errors": errors[:3], "seconds": seconds}
    await ctl.step("connected", report)
    heartbeats.stop()
    await ctl.step(
        "idle-done",
        {
            "heartbeats_ok": sum(c.heartbeats_ok for c in clients) - before,
            "open": sum(c.is_open for c in clients),
        },
    )


def run(ctx: RunContext) -> dict[str, Any]:
    size, server = ctx.size, ctx.server
    limit = raise_fd_limit() - FD_HEADROOM
    connections = size["connections"]
    server_limit = limit * max(1, server.spec.workers)  # worker processes each have the limit
    if connections > server_limit:
        ctx.notes.append(
            f"open-files hard limit {limit + FD_HEADROOM} per process (not raisable here): "
            f"{connections:,} sockets capped to {server_limit:,}"
        )
        connections = server_limit
    workers = max(size["workers"], -(-connections // limit))
    time.sleep(size["settle_seconds"])
    baseline = server.rss()
    jobs = [
        (
            f"{__name__}:client",
            {
                "protocol": server.spec.protocol,
                "url": server.url,
                "indices": (r.start, r.stop),
                "heartbeat_seconds": size["heartbeat_seconds"],
            },
        )
        for r in split(connections, workers)
    ]
    with WorkerPool(jobs) as pool:
        pool.step("ready", 120)
        t0, s0, c0, m0 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        reports = pool.step("connected", 600, release=False)
        t1, s1, c1, m1 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        joined = sum(r["joined"] for r in reports)
        ctx.log(f"{joined:,} joined in {t1 - t0:.1f}s")
        time.sleep(size["settle_seconds"])
        rss = server.rss()
        s2, c2 = server.cpu(), pool.cpu()
        time.sleep(size["idle_seconds"])
        s3, c3 = server.cpu(), pool.cpu()
        pool.release()
        final = pool.step("idle-done", 120)
    errors = [e for r in reports for e in r["errors"]]
    if errors:
        ctx.notes.append(f"connect errors, e.g. {errors[0]}")
    per = max(joined, 1)
    return {
        "connections": connections,
        "joined": joined,
        "failed": sum(r["failed"] for r in reports),
        "open_after_idle": sum(r["open"] for r in final),
        "baseline_rss_mb": baseline / 1e6,
        "rss_mb": rss / 1e6,
        "rss_per_conn_kb": (rss - baseline) / per / 1e3,
        "connect_seconds": t1 - t0,
        "connect_rate": joined / (t1 - t0),
        "server_cpu_per_connect_ms": (s1 - s0) / per * 1e3,
        "client_cpu_per_connect_ms": (c1 - c0) / per * 1e3,
        "idle_server_cpu_pct": (s3 - s2) / size["idle_seconds"] * 100,
        "idle_client_cpu_pct": (c3 - c2) / size["idle_seconds"] * 100,
        "heartbeats_ok": sum(r["heartbeats_ok"] for r in final),
        "client_workers": workers,
        "others_cpu_pct": others_pct(m1 - m0, s1 - s0 + c1 - c0, t1 - t0),
    }

"""soak: minutes of steady mixed load on the reference app; the server's RSS must stop growing.

The load, all at once and at a steady pace: sockets that connect, join a presence-tracked
``room:*`` and leave again (churn); residents of one room broadcasting ``typing`` to the others
and awaiting the reply (broadcasts and round trips); a socket calling a gateway function in a
loop; REST reads (``GET /api/v1/products``) and writes (``POST .../messages``). The server's RSS
is sampled every ``sample_seconds``; the figure is its growth from the end of the warm-up to the
end of the run. ``tests/bench/test_soak.py`` runs the same driver for a minute in the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.scenarios import Metric, RunContext, Target
from relaygate.client import Client

NAME = "soak"
TITLE = "Soak: steady mixed load (churn with presence, broadcasts, round trips, gateway, REST); RSS over time"
SYSTEMS = ("relaygate-gateway",)

METRICS = [
    Metric("seconds", "seconds"),
    Metric("rss_warm_mb", "RSS after warm-up (MB)", "{:.1f}"),
    Metric("rss_end_mb", "RSS at the end (MB)", "{:.1f}"),
    Metric("rss_growth_pct", "growth after warm-up (%)", "{:.1f}", plot=True),
    Metric("operations", "operations"),
    Metric("failures", "failed operations"),
]

TARGETS = [
    Target(
        "memory growth after the first minute ≤ 5 %", "rss_growth_pct", "<=", 5, system="relaygate-gateway"
    )
]

CHURN_ROOMS = 5
RESIDENTS = 10


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"seconds": 60.0, "warmup_seconds": 20.0, "sample_seconds": 5.0}
    return {"seconds": 600.0, "warmup_seconds": 60.0, "sample_seconds": 30.0}


@dataclass
class Tally:
    done: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    first_failures: list[str] = field(default_factory=list)

    async def run(self, kind: str, operation: Awaitable[object]) -> None:
        try:
            await operation
        except Exception as exc:
            self.failed[kind] += 1
            if len(self.first_failures) < 5:
                self.first_failures.append(f"{kind}: {type(exc).__name__}: {exc}")
        else:
            self.done[kind] += 1


@dataclass(frozen=True)
class LoadTarget:
    """Where the load goes: the node's socket and HTTP addresses and a signed-in user's data."""

    socket_url: str
    http_url: str
    token: str
    conversation_id: int


async def _paced(period: float, until: float, step: Callable[[], Awaitable[None]]) -> None:
    """``step`` every ``period`` seconds until ``until``; a slow step delays the next one rather
    than being made up for by a burst (or running past ``until``)."""
    next_at = time.monotonic()
    while (now := time.monotonic()) < until:
        await step()
        next_at = max(next_at + period, now)
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _churn(target: LoadTarget, tally: Tally, until: float) -> None:
    numbers = itertools.count()

    async def visit() -> None:
        client = Client(target.socket_url, params={"token": target.token}, reconnect=False)
        await client.connect()
        try:
            channel = client.channel(f"room:soak-churn-{next(numbers) % CHURN_ROOMS}", {"device": "soak"})
            await channel.join(timeout=10)
            await channel.next_event("presence_state", timeout=10)
            await asyncio.sleep(1.0)
            await channel.leave()
        finally:
            await client.close()

    visits: set[asyncio.Task[None]] = set()

    async def start_visit() -> None:
        task = asyncio.create_task(tally.run("churn", visit()))
        visits.add(task)
        task.add_done_callback(visits.discard)

    await _paced(0.1, until, start_visit)
    await asyncio.gather(*visits)


async def _residents(target: LoadTarget, tally: Tally, until: float) -> None:
    clients = [
        Client(target.socket_url, params={"token": target.token}, reconnect=False) for _ in range(RESIDENTS)
    ]
    for client in clients:
        await client.connect()
    try:
        channels = [client.channel("room:soak") for client in clients]
        for channel in channels:
            await channel.join(timeout=10)
        turns = itertools.cycle(channels)

        async def speak() -> None:
            await tally.run("broadcast+reply", next(turns).push("typing", {}, timeout=10))

        await _paced(0.02, until, speak)
    finally:
        for client in clients:
            await client.close()


async def _gateway(target: LoadTarget, tally: Tally, until: float) -> None:
    client = Client(target.socket_url, params={"token": target.token}, reconnect=False)
    await client.connect()
    try:
        channel = client.channel("gateway")
        await channel.join(timeout=10)
        ids = itertools.count()

        async def call() -> None:
            payload = {
                "request_id": f"soak-{next(ids)}",
                "service": "bench",
                "request_type": "echo",
                "args": {"n": 1},
            }
            reply = await channel.push("phoenix_gen_api", payload, timeout=10)
            if not reply.get("success"):
                raise RuntimeError(f"gateway call failed: {reply}")

        await _paced(0.02, until, lambda: tally.run("gateway", call()))
    finally:
        await client.close()


async def _rest(target: LoadTarget, tally: Tally, until: float) -> None:
    headers = {"authorization": f"Bearer {target.token}"}
    path = f"/api/v1/conversations/{target.conversation_id}/messages"
    turns = itertools.count()
    async with httpx.AsyncClient(base_url=target.http_url, headers=headers, timeout=10) as http:

        async def request() -> None:
            if next(turns) % 4:
                response = await http.get("/api/v1/products?limit=10")
            else:
                response = await http.post(path, json={"content": "soak"})
            response.raise_for_status()

        await _paced(0.02, until, lambda: tally.run("rest", request()))


async def drive(
    target: LoadTarget,
    rss: Callable[[], int],
    *,
    seconds: float,
    warmup_seconds: float,
    sample_seconds: float,
    log: Callable[[str], None] = lambda _message: None,
) -> dict[str, Any]:
    """Run the mixed load for ``seconds``; RSS samples and the growth after ``warmup_seconds``."""
    tally = Tally()
    started = time.monotonic()
    until = started + seconds
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        samples.append((round(time.monotonic() - started, 1), rss()))
        log(f"t={samples[-1][0]:.0f}s rss={samples[-1][1] / 1e6:.1f} MB ops={sum(tally.done.values())}")

    loads = [
        asyncio.create_task(part(target, tally, until), name=part.__name__)
        for part in (_churn, _residents, _gateway, _rest)
    ]
    with contextlib.suppress(Exception):
        await _paced(sample_seconds, until + sample_seconds / 2, sample)
    _, hung = await asyncio.wait(loads, timeout=60)  # in-flight steps end within their own timeouts
    if hung:  # a load that never finished is a failure; say where every waiting task waits
        tally.failed["hung"] += len(hung)
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            frames = "; ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in task.get_stack(limit=8))
            tally.first_failures.append(f"hung: {task.get_name()} at {frames}")
        for task in hung:
            task.cancel()
    warm = next(value for at, value in samples if at >= warmup_seconds)
    end = samples[-1][1]
    return {
        "seconds": seconds,
        "rss_samples_mb": [(at, round(value / 1e6, 2)) for at, value in samples],
        "rss_warm_mb": warm / 1e6,
        "rss_end_mb": end / 1e6,
        "rss_growth_pct": (end - warm) / warm * 100,
        "operations": sum(tally.done.values()),
        "operations_by_kind": dict(tally.done),
        "failures": sum(tally.failed.values()),
        "failures_by_kind": dict(tally.failed),
        "first_failures": tally.first_failures,
    }


def run(ctx: RunContext) -> dict[str, Any]:
    from bench.servers.node import NodeProcess

    server = ctx.server
    assert isinstance(server, NodeProcess) and server.seed is not None
    target = LoadTarget(
        socket_url=f"ws://127.0.0.1:{server.port}/socket",
        http_url=f"http://127.0.0.1:{server.port}",
        token=server.seed.token,
        conversation_id=server.seed.conversation_id,
    )
    return asyncio.run(drive(target, server.rss, **ctx.size, log=ctx.log))

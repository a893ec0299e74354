"""gateway: C sockets joined to ``gateway`` each call a function and await its result, in a loop.

Phases per system: ``sync1`` and ``sync10`` (sync calls from 1 and 10 of the callers: latency
without queueing), then one per response type of :mod:`bench.servers.gateway_service` with every
caller: ``sync`` (the result is in the reply), ``async`` (ack, then the result event) and
``stream`` (ack, ``STREAM_CHUNKS`` chunk events, the terminal event); a call's latency runs from
the push to its last response. ``relaygate-gateway`` runs the functions in the node,
``relaygate-gateway-redis`` on a service node over Redis. CPU per call is reported for the
whole system and per process: the gateway node, the service node and redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

from bench.phases import Operation, flatten, measure_phases, run_phases
from bench.scenarios import Metric, RunContext, Target, split
from bench.servers.node import NodeProcess
from bench.wire import PhoenixClient, PushFailed, open_joined
from bench.workers import Control, WorkerPool

NAME = "gateway"
TITLE = "Gateway: C sockets call a function through phoenix_gen_api and await the result, in a loop"
SYSTEMS = ("relaygate-gateway", "relaygate-gateway-redis")
TOPIC = "gateway"
EVENT = "phoenix_gen_api"
PHASES = ("sync1", "sync10", "sync", "async", "stream")
FUNCTIONS = {"sync": "echo", "async": "echo_async", "stream": "count"}
FEW_CALLERS = {"sync1": 1, "sync10": 10}
"""Phases run by the first N callers only (global indices), the others idle."""
STREAM_CHUNKS = 3

METRICS = [
    Metric("callers", "callers"),
    Metric("sync1_p50_ms", "1 caller: sync p50 (ms)", "{:.2f}"),
    Metric("sync1_p99_ms", "1 caller: sync p99 (ms)", "{:.2f}"),
    Metric("sync1_server_cpu_us", "1 caller: CPU/call (µs)", "{:.0f}"),
    Metric("sync10_per_s", "10 callers: sync calls/s"),
    Metric("sync10_p50_ms", "10 callers: sync p50 (ms)", "{:.2f}"),
    Metric("sync10_p99_ms", "10 callers: sync p99 (ms)", "{:.2f}"),
    Metric("sync_per_s", "sync calls/s", plot=True),
    Metric("sync_p50_ms", "sync p50 (ms)", "{:.2f}"),
    Metric("sync_p99_ms", "sync p99 (ms)", "{:.2f}", plot=True),
    Metric("sync_server_cpu_us", "server CPU/sync call (µs)", "{:.0f}"),
    Metric("sync_gateway_cpu_us", "gateway CPU/sync call (µs)", "{:.0f}"),
    Metric("sync_service_cpu_us", "service node CPU/sync call (µs)", "{:.0f}"),
    Metric("sync_redis_cpu_us", "redis-server CPU/sync call (µs)", "{:.0f}"),
    Metric("async_per_s", "async calls/s"),
    Metric("async_p50_ms", "async p50 (ms)", "{:.2f}"),
    Metric("async_p99_ms", "async p99 (ms)", "{:.2f}"),
    Metric("stream_per_s", "streams/s"),
    Metric("stream_p50_ms", "stream p50 (ms)", "{:.2f}"),
    Metric("stream_p99_ms", "stream p99 (ms)", "{:.2f}"),
    Metric("failures", "failed calls"),
    Metric("others_cpu_pct", "other processes' CPU (%)", "{:.0f}"),
]

TARGETS = [
    Target(
        "local sync ≤ 40 µs gateway CPU per call", "sync_gateway_cpu_us", "<=", 40, system="relaygate-gateway"
    ),
    Target(
        "over Redis sync p50 ≤ 1 ms at 1 caller", "sync1_p50_ms", "<=", 1, system="relaygate-gateway-redis"
    ),
    Target(
        "over Redis ≥ 8,000 sync calls/s at 100 callers",
        "sync_per_s",
        ">=",
        8_000,
        system="relaygate-gateway-redis",
    ),
    Target(
        "over Redis ≤ 200 µs CPU per sync call (gateway + service node + redis-server)",
        "sync_server_cpu_us",
        "<=",
        200,
        system="relaygate-gateway-redis",
    ),
]


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"callers": 100, "workers": 2, "warmup_seconds": 1.0, "seconds": 5.0}
    return {"callers": 100, "workers": 2, "warmup_seconds": 3.0, "seconds": 20.0}


class Caller:
    """One joined socket; async results and stream chunks arrive as events keyed by request id."""

    def __init__(self, client: PhoenixClient, prefix: str) -> None:
        self.client = client
        self.ids = (f"{prefix}-{n}" for n in itertools.count())
        self.waiting: dict[str, tuple[asyncio.Future[bool], list[int], bool]] = {}
        client.on_broadcast = self.event

    def event(self, event: str, response: Any) -> None:
        waiting = self.waiting.get(response.get("request_id")) if event == EVENT else None
        if waiting is None:
            return
        future, chunks, stream = waiting
        if response["success"] and response["has_more"]:  # a stream chunk
            chunks.append(response["seq"])
            return
        del self.waiting[response["request_id"]]
        future.set_result(bool(response["success"]) and len(chunks) == (STREAM_CHUNKS if stream else 0))

    async def call(self, phase: str) -> bool:
        phase = "sync" if phase in FEW_CALLERS else phase
        request_id = next(self.ids)
        payload = {"request_id": request_id, "service": "bench", "request_type": FUNCTIONS[phase]}
        payload["args"] = {"n": STREAM_CHUNKS if phase == "stream" else 1}
        if phase == "sync":
            reply = await self.client.push(TOPIC, EVENT, payload, timeout=None)
            return bool(reply["success"]) and reply["result"] == {"n": 1}
        # Registered before the push: the events may arrive right behind the ack.
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = (future, [], phase == "stream")
        ack = await self.client.push(TOPIC, EVENT, payload, timeout=None)
        if not ack["async"]:
            self.waiting.pop(request_id, None)
            return False
        return await future


async def wait_until_callable(caller: Caller, timeout: float = 30) -> None:
    """A service node registers through Redis after the gateway node started: retry until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(PushFailed):
            if await caller.call("sync"):
                return
        if time.monotonic() > deadline:
            raise TimeoutError("the bench functions did not become callable")
        await asyncio.sleep(0.1)


async def client(ctl: Control, params: dict[str, Any]) -> None:
    clients, errors = await open_joined("phoenix", params["url"], TOPIC, range(*params["indices"]))
    callers = [
        Caller(c, f"w{params['indices'][0]}c{i}")
        for i, c in enumerate(clients)
        if isinstance(c, PhoenixClient)
    ]
    await wait_until_callable(callers[0])
    await ctl.step("ready", {"joined": len(callers), "errors": errors[:3]})

    first = params["indices"][0]

    def operations(phase: str) -> list[Operation]:
        few = FEW_CALLERS.get(phase)
        chosen = callers if few is None else callers[: max(0, few - first)]
        return [lambda c=c: c.call(phase) for c in chosen]

    await run_phases(ctl, PHASES, operations, params["warmup_seconds"], params["seconds"])


def run(ctx: RunContext) -> dict[str, Any]:
    size, server = ctx.size, ctx.server
    assert isinstance(server, NodeProcess) and server.seed is not None
    url = f"{server.url}&token={server.seed.token}"
    jobs = [
        (
            f"{__name__}:client",
            {
                "url": url,
                "indices": (r.start, r.stop),
                "warmup_seconds": size["warmup_seconds"],
                "seconds": size["seconds"],
            },
        )
        for r in split(size["callers"], size["workers"])
    ]
    with WorkerPool(jobs) as pool:
        ready = pool.step("ready", 120)
        results = measure_phases(
            pool, server, PHASES, size["warmup_seconds"], size["seconds"], parts=server.cpu_by_part
        )
    errors = [e for r in ready for e in r["errors"]]
    if errors:
        ctx.notes.append(f"connect errors, e.g. {errors[0]}")
    metrics: dict[str, Any] = {"callers": sum(r["joined"] for r in ready)}
    return metrics | flatten(results, ctx.notes)

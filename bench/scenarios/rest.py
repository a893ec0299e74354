"""rest: C keep-alive connections each send a request and await the response, in a loop.

Two phases on one seeded node: ``GET /api/v1/products/{id}`` (one row read), then
``POST /api/v1/conversations/{id}/messages`` (token check, participant check, rate limit, insert,
push). Peers (``bench.servers.bare_rest``): ``bare-fastapi``, the same steps as FastAPI routes
with the SQLAlchemy ORM; ``bare-starlette``, the same steps as Starlette routes on the driver
with prepared statements (the floor of the stack). Each runs on SQLite and, as ``*-pg``, on a
throwaway PostgreSQL whose CPU counts as the system's. The chat rate limit is lifted for the run
(see bench.servers.node).
"""

from __future__ import annotations

from typing import Any

from bench.http1 import Connection, request
from bench.phases import Operation, flatten, measure_phases, run_phases
from bench.scenarios import Metric, RunContext, Target, split
from bench.servers.node import NodeProcess
from bench.workers import Control, WorkerPool

NAME = "rest"
TITLE = "REST: C keep-alive connections, GET a product / POST a message in a loop"
SYSTEMS = tuple(
    f"{system}{suffix}"
    for suffix in ("", "-pg")
    for system in ("relaygate-api", "bare-fastapi", "bare-starlette")
)
PHASES = ("get", "post")
EXPECTED = {"get": 200, "post": 201}

METRICS = [
    Metric("connections", "connections"),
    Metric("get_per_s", "GET/s", plot=True),
    Metric("get_p50_ms", "GET p50 (ms)", "{:.2f}"),
    Metric("get_p99_ms", "GET p99 (ms)", "{:.2f}", plot=True),
    Metric("get_server_cpu_us", "server CPU/GET (µs)", "{:.0f}"),
    Metric("post_per_s", "POST/s", plot=True),
    Metric("post_p50_ms", "POST p50 (ms)", "{:.2f}"),
    Metric("post_p99_ms", "POST p99 (ms)", "{:.2f}", plot=True),
    Metric("post_server_cpu_us", "server CPU/POST (µs)", "{:.0f}"),
    Metric("failures", "failed requests"),
    Metric("others_cpu_pct", "other processes' CPU (%)", "{:.0f}"),
]

TARGETS = [
    target
    for suffix, db in (("", "SQLite"), ("-pg", "PostgreSQL"))
    for target in (
        Target(
            f"GET ≤ 250 µs server CPU ({db})", "get_server_cpu_us", "<=", 250, system=f"relaygate-api{suffix}"
        ),
        Target(
            f"POST ≤ 1,000 µs server CPU ({db})",
            "post_server_cpu_us",
            "<=",
            1000,
            system=f"relaygate-api{suffix}",
        ),
        *(
            Target(
                f"{phase.upper()} ≥ 3x bare FastAPI + SQLAlchemy rate ({db})",
                f"{phase}_per_s",
                ">=",
                3.0,
                system=f"relaygate-api{suffix}",
                versus=f"bare-fastapi{suffix}",
            )
            for phase in PHASES
        ),
        *(
            Target(
                f"{phase.upper()} CPU within 1.5x the bare Starlette floor ({db})",
                f"{phase}_server_cpu_us",
                "<=",
                1.5,
                system=f"relaygate-api{suffix}",
                versus=f"bare-starlette{suffix}",
            )
            for phase in PHASES
        ),
    )
]


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"connections": 64, "workers": 2, "warmup_seconds": 1.0, "seconds": 5.0}
    return {"connections": 64, "workers": 2, "warmup_seconds": 3.0, "seconds": 20.0}


async def client(ctl: Control, params: dict[str, Any]) -> None:
    connections = [await Connection.open(params["port"]) for _ in range(params["connections"])]
    auth = {"Authorization": f"Bearer {params['token']}"}
    raw = {
        "get": request("GET", f"/api/v1/products/{params['product_id']}"),
        "post": request(
            "POST", f"/api/v1/conversations/{params['conversation_id']}/messages", auth, {"content": "hello"}
        ),
    }

    def operations(phase: str) -> list[Operation]:
        def operation(conn: Connection) -> Operation:
            async def call() -> bool:
                status, _ = await conn.send(raw[phase])
                return status == EXPECTED[phase]

            return call

        return [operation(conn) for conn in connections]

    await ctl.step("ready", len(connections))
    await run_phases(ctl, PHASES, operations, params["warmup_seconds"], params["seconds"])
    for conn in connections:
        await conn.close()


def run(ctx: RunContext) -> dict[str, Any]:
    size, server = ctx.size, ctx.server
    assert isinstance(server, NodeProcess) and server.seed is not None
    jobs = [
        (
            f"{__name__}:client",
            {
                "port": server.port,
                "connections": len(r),
                **server.seed.as_dict(),
                "warmup_seconds": size["warmup_seconds"],
                "seconds": size["seconds"],
            },
        )
        for r in split(size["connections"], size["workers"])
    ]
    with WorkerPool(jobs) as pool:
        ready = pool.step("ready", 120)
        results = measure_phases(pool, server, PHASES, size["warmup_seconds"], size["seconds"])
    metrics: dict[str, Any] = {"connections": sum(ready)}
    return metrics | flatten(results, ctx.notes)

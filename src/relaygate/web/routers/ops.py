"""Health, readiness and Prometheus metrics (outside the API schema, same HTTP semantics)."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from relaygate.telemetry.metrics import DB_POOL_CHECKED_OUT, REGISTRY
from relaygate.web.resources import Call, Reply, ResourceGroup

group = ResourceGroup(include_in_schema=False)
READY_TIMEOUT = 2.0


@group.resource("/healthz").get()
async def healthz(_call: Call) -> Reply:
    return Reply(json={"status": "ok"})


@group.resource("/readyz").get()
async def readyz(call: Call) -> Reply:
    node = call.node
    checks: dict[str, str] = {}
    probes = {"database": node.db.ping}
    if node.redis is not None:
        probes["redis"] = node.redis.ping
    for name, probe in probes.items():
        try:
            await asyncio.wait_for(probe(), READY_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return Reply(
        status=200 if ready else 503, json={"status": "ok" if ready else "unavailable", "checks": checks}
    )


@group.resource("/metrics").get(provides=("text/plain", "application/openmetrics-text"))
async def metrics(call: Call) -> Reply:
    DB_POOL_CHECKED_OUT.set(call.node.db.pool_status()["checked_out"])
    return Reply(body=generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

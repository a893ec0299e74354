"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from relaygate.telemetry.metrics import DB_POOL_CHECKED_OUT, REGISTRY
from relaygate.web.responses import JSON

router = APIRouter(include_in_schema=False)
READY_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> JSON:
    return JSON({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSON:
    state = request.app.state.relaygate
    checks: dict[str, str] = {}
    probes = {"database": state.db.ping}
    if state.redis is not None:
        probes["redis"] = state.redis.ping
    for name, probe in probes.items():
        try:
            await asyncio.wait_for(probe(), READY_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSON(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    DB_POOL_CHECKED_OUT.set(request.app.state.relaygate.db.pool_status()["checked_out"])
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

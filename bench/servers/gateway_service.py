"""The gateway functions the ``gateway`` scenario calls: one per response type, doing no work.

Loaded by a node as ``RELAYGATE_GATEWAY_MODULE=bench.servers.gateway_service:svc`` (local
functions) or run as ``relaygate service run bench.servers.gateway_service:svc`` (a service node
reached over Redis), so both rows measure the gateway path alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from relaygate.service import CallContext, Service

svc = Service("bench", config_version="1.0.0")


@svc.function("echo", args={"n": "integer"})
async def echo(n: int, ctx: CallContext) -> dict[str, Any]:
    """sync: the result is in the reply to the push."""
    return {"n": n}


@svc.function("echo_async", response_type="async", args={"n": "integer"})
async def echo_async(n: int, ctx: CallContext) -> dict[str, Any]:
    """async: acknowledged at once, the result follows as a ``phoenix_gen_api`` event."""
    return {"n": n}


@svc.function("count", response_type="stream", args={"n": {"type": "integer", "min": 1, "max": 100}})
async def count(n: int, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
    """stream: ``n`` chunks, then the terminal response."""
    for i in range(n):
        yield {"i": i}

"""A service node run as a separate process by the cluster tests.

    python -m tests.gateway.service_app REDIS_URL NODE_NAME [VARIANT]

VARIANT ``v1`` (default) declares every test function; ``v2`` is a new config_version that
only keeps ``echo``. Executions are counted in Redis so tests can prove nothing ran twice.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from relaygate.service import CallContext, Service, ServiceError, run

redis_url, node_name = sys.argv[1], sys.argv[2]
variant = sys.argv[3] if len(sys.argv) > 3 else "v1"
svc = Service("demo", config_version=variant)
_redis: Redis | None = None


def counter() -> Redis:
    global _redis
    if _redis is None:
        _redis = Redis.from_url(redis_url)
    return _redis


@svc.function("echo", args={"x": "any", "when": {"type": "datetime", "allow_nil": True}})
async def echo(x: Any, when: Any, ctx: CallContext) -> dict[str, Any]:
    return {
        "x": x,
        "when_type": type(when).__name__,
        "node": node_name,
        "user": ctx.user_id,
        "roles": list(ctx.user_roles),
    }


if variant == "v1":

    @svc.function("whoami", choose_node_mode="round_robin")
    async def whoami(ctx: CallContext) -> str:
        return node_name

    @svc.function("where", args={"key": "string"}, choose_node_mode="hash:key")
    async def where(key: str, ctx: CallContext) -> str:
        return node_name

    @svc.function("slow", args={"ms": "integer"}, timeout_ms=20_000, retry="all_nodes:2")
    async def slow(ms: int, ctx: CallContext) -> str:
        await counter().incr(f"started:{ctx.request_id}")
        await asyncio.sleep(ms / 1000)
        await counter().incr(f"done:{ctx.request_id}")
        return node_name

    @svc.function("slow_once", args={"ms": "integer"}, timeout_ms=20_000)
    async def slow_once(ms: int, ctx: CallContext) -> str:
        await asyncio.sleep(ms / 1000)
        return node_name

    @svc.function("short", args={"ms": "integer"}, timeout_ms=300)
    async def short(ms: int, ctx: CallContext) -> str:
        await asyncio.sleep(ms / 1000)
        return "late"

    @svc.function("fail")
    async def fail(ctx: CallContext) -> None:
        raise ServiceError("item_not_found", "no such item")

    @svc.function("boom")
    async def boom(ctx: CallContext) -> None:
        raise RuntimeError("hidden")

    @svc.function("v", version="1.0.0")
    async def v1(ctx: CallContext) -> str:
        return "1.0.0"

    @svc.function("v", version="1.1.0")
    async def v11(ctx: CallContext) -> str:
        return "1.1.0"

    @svc.function("numbers", args={"n": "integer"}, response_type="stream", timeout_ms=10_000)
    async def numbers(n: int, ctx: CallContext) -> AsyncIterator[int]:
        for i in range(n):
            await counter().set(f"produced:{ctx.request_id}", i + 1)
            yield i

    started: list[str] = []

    @svc.function("order", args={"tag": "string"})
    async def order(tag: str, ctx: CallContext) -> int:
        """The position in which this node started the call (before any await)."""
        started.append(tag)
        return len(started)

    @svc.function("limited", rate_limits=[{"key": "user_id", "max_requests": 3, "window_ms": 60_000}])
    async def limited(ctx: CallContext) -> str:
        return "ok"


if __name__ == "__main__":
    run(svc, redis_url, node_name=node_name, heartbeat_interval=0.3)

"""An example gateway service with a sync, an async and a stream function.

Run it as a service node next to a cluster of gateway nodes (they share one Redis)::

    relaygate service run examples.inventory_service:svc --redis redis://127.0.0.1:6379/0

or let a single node run the same functions itself::

    RELAYGATE_GATEWAY_MODULE=examples.inventory_service:svc relaygate serve

Clients join ``gateway`` and push ``phoenix_gen_api`` (see ``examples/gateway_client.mjs``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from relaygate.service import CallContext, Service, ServiceError

svc = Service("inventory", config_version="1.0.0")

ITEMS: dict[int, dict[str, Any]] = {
    1: {"id": 1, "name": "bolt", "stock": 120},
    2: {"id": 2, "name": "nut", "stock": 80},
    3: {"id": 3, "name": "washer", "stock": 0},
}


@svc.function("get_item", version="1.0.0", args={"id": "integer"}, check_permission="any_authenticated")
async def get_item(id: int, ctx: CallContext) -> dict[str, Any]:
    """sync: the result comes in the reply to the push."""
    item = ITEMS.get(id)
    if item is None:
        raise ServiceError("item_not_found", f"no item {id}")
    return item


@svc.function(
    "reserve",
    response_type="async",
    args={"id": "integer", "quantity": {"type": "integer", "min": 1, "max": 100}},
    rate_limits=[{"key": "user_id", "max_requests": 20, "window_ms": 1000}],
)
async def reserve(id: int, quantity: int, ctx: CallContext) -> dict[str, Any]:
    """async: the push is acknowledged at once, the result arrives later as an event."""
    item = ITEMS.get(id)
    if item is None:
        raise ServiceError("item_not_found", f"no item {id}")
    await asyncio.sleep(0.05)  # e.g. a call to a warehouse system
    if item["stock"] < quantity:
        raise ServiceError("out_of_stock", f"only {item['stock']} {item['name']} left")
    return {"reservation": f"{ctx.request_id}:{id}", "user_id": ctx.user_id, "quantity": quantity}


@svc.function("export", response_type="stream", args={"min_stock": {"type": "integer", "default": 0}})
async def export(min_stock: int, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
    """stream: one chunk per item; the gateway pauses this generator when the client is slow."""
    for item in ITEMS.values():
        if item["stock"] >= min_stock:
            yield item

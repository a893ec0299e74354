"""The service node SDK: declarations, in-process node against real Redis, dedupe, shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from relaygate.protocol.gateway import wire
from relaygate.service import CallContext, ConfigError, Service, ServiceError, ServiceNode


def test_declarations_are_validated() -> None:
    svc = Service("inv")
    with pytest.raises(ConfigError):
        svc.function("f", timeout_ms=10)
    with pytest.raises(ConfigError):
        svc.function("f", check_permission=lambda caller, args: True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):

        @svc.function("g", response_type="stream")
        async def not_a_generator(ctx: CallContext) -> None: ...

    @svc.function("h", version="1.0.0", args={"id": "integer"})
    async def h(id: int, ctx: CallContext) -> int:
        return id

    with pytest.raises(ConfigError):
        svc.function("h", version="1.0.0")(h)
    first = svc.config_version
    svc.function("k")(h)
    assert svc.config_version != first  # without an explicit version, a content hash


async def test_node_runs_a_call_once_and_resends_the_reply_to_a_duplicate(redis: Redis) -> None:
    svc = Service("inv", config_version="1")
    runs: list[int] = []

    @svc.function("get", args={"id": "integer"})
    async def get(id: int, ctx: CallContext) -> dict[str, Any]:
        runs.append(id)
        return {"id": id, "user": ctx.user_id}

    node = ServiceNode(svc, redis, node_name="n1")
    await node.start()
    assert node.pushed
    pubsub = redis.pubsub()
    await pubsub.subscribe(wire.gateway_replies("g1"))
    ctx = CallContext("r1", "u1", None, (), deadline=__import__("time").time() + 5).to_wire()
    message = {
        "t": "call",
        "id": "c1",
        "gw": "g1",
        "fn": "get",
        "v": None,
        "rt": "sync",
        "args": {"id": 3},
        "ctx": ctx,
    }
    replies: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        for expected in (1, 2):  # the duplicate is sent once the first call has finished
            await redis.lpush(wire.node_queue("n1"), wire.encode(message))
            async for item in pubsub.listen():
                if item["type"] == "message":
                    replies += wire.decode_batch(item["data"])
                    if len(replies) == expected:
                        break
    assert replies[0] == replies[1] == {"t": "ok", "id": "c1", "result": {"id": 3, "user": "u1"}}
    assert runs == [3]  # the duplicate did not run again
    await pubsub.aclose()

    again = ServiceNode(svc, redis, node_name="n2")
    await again.start()
    assert not again.pushed  # same config_version: skipped
    await again.stop()
    await node.stop()
    assert await redis.hgetall(wire.NODES) == {} and await redis.hgetall(wire.HEARTBEATS) == {}
    registry = orjson.loads(await redis.hget(wire.SERVICES, "inv"))
    assert registry["config_version"] == "1" and registry["functions"][0]["request_type"] == "get"


async def test_a_call_with_invalid_credits_is_refused_and_the_node_keeps_serving(redis: Redis) -> None:
    svc = Service("inv", config_version="1")

    @svc.function("get", args={"id": "integer"})
    async def get(id: int, ctx: CallContext) -> int:
        return id

    node = ServiceNode(svc, redis, node_name="n1")
    await node.start()
    pubsub = redis.pubsub()
    await pubsub.subscribe(wire.gateway_replies("g1"))
    ctx = CallContext("r1", "u1", None, (), deadline=time.time() + 5).to_wire()
    base = {"t": "call", "gw": "g1", "fn": "get", "v": None, "rt": "sync", "ctx": ctx}
    for call_id, credits in (("bad1", "lots"), ("bad2", -1), ("good", 0)):
        message = {**base, "id": call_id, "args": {"id": 7}, "credits": credits}
        await redis.lpush(wire.node_queue("n1"), wire.encode(message))
    replies = {}
    async with asyncio.timeout(10):
        async for item in pubsub.listen():
            if item["type"] == "message":
                replies |= {reply["id"]: reply for reply in wire.decode_batch(item["data"])}
                if len(replies) == 3:
                    break
    assert replies["bad1"]["code"] == replies["bad2"]["code"] == "bad_request"
    assert replies["good"] == {"t": "ok", "id": "good", "result": 7}
    await pubsub.aclose()
    await node.stop()


async def test_calls_answered_in_their_first_step_or_after_suspending_end_alike(redis: Redis) -> None:
    """A coroutine function's first step runs as the call is popped; one that suspends goes on
    in a task, within the caller's deadline."""
    svc = Service("inv", config_version="1")
    gate = asyncio.Event()

    @svc.function("at_once")
    async def at_once(ctx: CallContext) -> str:
        return "now"

    @svc.function("later")
    async def later(ctx: CallContext) -> str:
        await gate.wait()
        return "later"

    @svc.function("own_timeout")
    async def own_timeout(ctx: CallContext) -> str:
        try:
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        except TimeoutError:
            return "own timeout"
        return "not reached"

    @svc.function("refuse")
    async def refuse(ctx: CallContext) -> None:
        raise ServiceError("out_of_stock", "none left")

    @svc.function("forever")
    async def forever(ctx: CallContext) -> None:
        await asyncio.Event().wait()

    node = ServiceNode(svc, redis, node_name="n1")
    await node.start()
    pubsub = redis.pubsub()
    await pubsub.subscribe(wire.gateway_replies("g1"))
    calls = {"c1": "at_once", "c2": "later", "c3": "own_timeout", "c4": "refuse", "c5": "forever"}
    for call_id, fn in calls.items():
        deadline = time.time() + (0.05 if fn == "forever" else 30)
        ctx = CallContext(call_id, "u1", None, (), deadline=deadline).to_wire()
        message = {
            "t": "call",
            "id": call_id,
            "gw": "g1",
            "fn": fn,
            "v": None,
            "rt": "sync",
            "args": {},
            "ctx": ctx,
        }
        await redis.lpush(wire.node_queue("n1"), wire.encode(message))
    replies: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(10):
        async for item in pubsub.listen():
            if item["type"] == "message":
                replies |= {reply["id"]: reply for reply in wire.decode_batch(item["data"])}
                if len(replies) == 4:
                    assert "c2" not in replies  # still waiting for its gate
                    gate.set()
                if len(replies) == 5:
                    break
    assert replies["c1"]["result"] == "now" and replies["c2"]["result"] == "later"
    assert replies["c3"]["result"] == "own timeout"
    assert (replies["c4"]["code"], replies["c4"]["business"]) == ("out_of_stock", True)
    assert replies["c5"]["code"] == "timeout"
    await pubsub.aclose()
    await node.stop()

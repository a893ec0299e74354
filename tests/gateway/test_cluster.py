"""Gateways and service node processes sharing one real Redis."""

from __future__ import annotations

import asyncio
import collections
import itertools
from typing import Any

from redis.asyncio import Redis

from relaygate.gateway import CallerContext, Gateway, LimiterConfig
from relaygate.protocol.gateway import RateLimit

from .test_gateway_local import Inbox

USER = CallerContext("u1", roles=frozenset({"staff"}), connection="sock1")


def req(rid: str, request_type: str, args: dict | None = None, **extra: Any) -> dict[str, Any]:
    return {"request_id": rid, "service": "demo", "request_type": request_type, "args": args or {}, **extra}


async def call(gw: Gateway, payload: dict, caller: CallerContext = USER, inbox: Inbox | None = None) -> dict:
    return await gw.handle_request(payload, caller, (inbox or Inbox()).emit)


async def eventually(predicate: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not await predicate():
            await asyncio.sleep(0.05)


async def test_remote_calls_and_error_codes(make_cluster, start_node) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    await start_node("n1", cluster=cluster)
    r = await call(
        gw, req("r1", "echo", {"x": [1, "a"], "when": "2024-01-01T00:00:00Z"}, user_roles=["admin"])
    )
    assert r["success"], r
    assert r["result"] == {
        "x": [1, "a"],
        "when_type": "datetime",
        "node": "n1",
        "user": "u1",
        "roles": ["staff"],
    }
    r = await call(gw, req("r2", "fail"))
    assert (r["code"], r["error"], r["can_retry"]) == ("item_not_found", "no such item", False)
    r = await call(gw, req("r3", "boom"))
    assert (r["code"], r["error"]) == ("internal", "internal error")
    r = await call(gw, req("r4", "short", {"ms": 3000}))
    assert (r["code"], r["can_retry"]) == ("timeout", True)
    assert (await call(gw, req("r5", "v")))["result"] == "1.1.0"
    assert (await call(gw, req("r6", "v", version="1.0.0")))["result"] == "1.0.0"
    assert (await call(gw, req("r7", "v", version="2.0.0")))["code"] == "not_found"
    assert (await call(gw, req("r8", "echo", {"x": 1, "when": "soon"})))["code"] == "invalid_args"


async def test_late_gateway_sees_services_and_admin_changes_reach_both(make_cluster, start_node) -> None:
    gw1 = await make_cluster("gw1")
    await start_node("n1", cluster=gw1)
    gw2 = await make_cluster("gw2")  # started after the service: reads the registry on start
    a, b = gw1.gateway(), gw2.gateway()
    assert (await call(b, req("r", "v")))["result"] == "1.1.0"

    await gw1.admin.disable(("demo", "v", "1.1.0"))
    await eventually(lambda: _result(b, "v", "1.0.0"))
    assert (await call(b, req("r", "v", version="1.1.0")))["code"] == "disabled"
    await gw2.admin.enable(("demo", "v", "1.1.0"))
    await eventually(lambda: _result(a, "v", "1.1.0"))
    await gw2.admin.delete(("demo", "v", "1.1.0"))
    await eventually(lambda: _code(a, "v", "not_found", version="1.1.0"))
    assert (await call(a, req("r", "v")))["result"] == "1.0.0"
    listing = gw1.admin.functions()["demo"]["v"]
    assert listing == [{"version": "1.0.0", "enabled": True, "response_type": "sync", "nodes": "service"}]
    services = await gw2.admin.services()
    assert services[0]["service"] == "demo" and services[0]["config_version"] == "v1"
    assert services[0]["nodes"][0]["name"] == "n1" and services[0]["nodes"][0]["alive"]


async def _result(gw: Gateway, request_type: str, expected: Any, **extra: Any) -> bool:
    return (await call(gw, req("r", request_type, **extra)))["result"] == expected


async def _succeeds(gw: Gateway, request_type: str, **extra: Any) -> bool:
    return bool((await call(gw, req("r", request_type, **extra)))["success"])


async def _code(gw: Gateway, request_type: str, expected: str, **extra: Any) -> bool:
    return (await call(gw, req("r", request_type, **extra)))["code"] == expected


async def test_new_config_version_replaces_the_function_set(make_cluster, start_node) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    old = await start_node("n1", cluster=cluster)
    assert (await call(gw, req("r", "whoami")))["success"]
    assert old.terminate() == 0  # clean shutdown deregisters
    await eventually(lambda: _code(gw, "whoami", "unavailable"))
    await start_node("n2", variant="v2", cluster=cluster)
    await eventually(lambda: _code(gw, "whoami", "not_found"))
    assert (await call(gw, req("r", "echo", {"x": 1})))["result"]["node"] == "n2"


async def test_round_robin_and_hash_distribution(make_cluster, start_node) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    for name in ("n1", "n2", "n3"):
        await start_node(name, cluster=cluster)
    seen = [(await call(gw, req(f"r{i}", "whoami")))["result"] for i in range(9)]
    assert collections.Counter(seen) == {"n1": 3, "n2": 3, "n3": 3}
    assert len(set(seen[:3])) == 3
    by_key: dict[str, str] = {}
    for i in range(30):
        key = f"k{i % 10}"
        node = (await call(gw, req(f"h{i}", "where", {"key": key})))["result"]
        assert by_key.setdefault(key, node) == node  # the same key always lands on the same node
    assert len(set(by_key.values())) >= 2


async def test_kill_mid_call_retries_on_the_other_node_without_running_twice(
    make_cluster, start_node, redis: Redis
) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    first = await start_node("n1", cluster=cluster)
    second = await start_node("n2", cluster=cluster)
    nodes = {"n1": first, "n2": second}
    task = asyncio.create_task(call(gw, req("k1", "slow", {"ms": 1500})))
    await eventually(lambda: _started(redis, "k1"))
    victim = next(n for n in nodes if cluster.calls_on(n))
    nodes[victim].kill()
    r = await asyncio.wait_for(task, 15)
    assert r["success"], r
    assert r["result"] != victim
    assert int(await redis.get("done:k1")) == 1  # completed exactly once


async def test_kill_without_retry_answers_unavailable_before_the_timeout(
    make_cluster, start_node, redis
) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    node = await start_node("n1", cluster=cluster)
    task = asyncio.create_task(call(gw, req("k2", "slow_once", {"ms": 15_000})))
    await eventually(lambda: _sent_to(cluster, "n1"))
    node.kill()
    r = await asyncio.wait_for(task, 10)  # the function's timeout is 20 s
    assert (r["code"], r["can_retry"]) == ("unavailable", True)
    assert "n1" in r["error"]


async def _sent_to(cluster: Any, node: str) -> bool:
    return bool(cluster.calls_on(node))


async def _started(redis: Redis, rid: str) -> bool:
    return await redis.get(f"started:{rid}") is not None


async def test_stream_backpressure_and_cancel(make_cluster, start_node, redis: Redis) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway(stream_credits=4)
    await start_node("n1", cluster=cluster)
    release = asyncio.Event()
    received: list[dict] = []

    async def slow_emit(response: dict[str, Any]) -> None:
        received.append(response)
        if response["has_more"]:
            await release.wait()

    ack = await gw.handle_request(req("s1", "numbers", {"n": 1000}), USER, slow_emit)
    assert (ack["result"], ack["has_more"]) == ("init", True)
    await eventually(lambda: _produced_at_least(redis, "s1", 1))
    await asyncio.sleep(0.5)
    produced = int(await redis.get("produced:s1"))
    assert produced <= 4 + 1  # the producer waits for credits: never more than the window ahead
    assert len(received) == 1 and cluster.buffered_replies() <= 4  # gateway memory stays bounded
    assert await gw.cancel("s1", USER)
    release.set()
    async with asyncio.timeout(10):
        while not received or received[-1]["has_more"]:
            await asyncio.sleep(0.02)
    assert received[-1]["code"] == "cancelled"
    assert sum(1 for r in received if not r["has_more"]) == 1
    await asyncio.sleep(0.3)
    assert int(await redis.get("produced:s1")) < 1000  # the node stopped producing


async def test_stream_completes_with_seq_numbers(make_cluster, start_node) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway(stream_credits=4)
    await start_node("n1", cluster=cluster)
    inbox = Inbox()
    await call(gw, req("s2", "numbers", {"n": 25}), inbox=inbox)
    end = await inbox.wait_final("s2")
    chunks = [i for i in inbox.items if i["has_more"]]
    assert [c["result"] for c in chunks] == list(range(25))
    assert [c["seq"] for c in chunks] == list(range(1, 26))
    assert end["success"] and end["result"] is None


async def _produced_at_least(redis: Redis, rid: str, n: int) -> bool:
    value = await redis.get(f"produced:{rid}")
    return value is not None and int(value) >= n


async def test_rate_limits_hold_across_two_gateways(make_cluster, start_node) -> None:
    gw1 = await make_cluster("gw1")
    gw2 = await make_cluster("gw2")
    a, b = gw1.gateway(), gw2.gateway()
    await start_node("n1", cluster=gw1)
    # wait until both gateways reach the node through a function without limits, so that no
    # attempt made while the registry syncs can spend the limited function's quota
    for gateway in (a, b):
        await eventually(lambda gateway=gateway: _succeeds(gateway, "echo", args={"x": 1}))
    assert (await call(b, req("r", "limited")))["success"]  # 1
    assert (await call(a, req("r", "limited")))["success"]  # 2
    assert (await call(b, req("r", "limited")))["success"]  # 3
    r = await call(a, req("r", "limited"))
    assert r["code"] == "rate_limited" and r["retry_after_ms"] > 0
    # a global limit set through one gateway applies on the other within a second
    await gw1.admin.set_rate_limits(LimiterConfig(global_limits=(RateLimit("user_id", 2, 60_000),)))
    await eventually(lambda: _limits_applied(gw2))
    other = CallerContext("u2", connection="x")
    assert (await call(b, req("r", "echo", {"x": 1}), other))["success"]
    assert (await call(a, req("r", "echo", {"x": 1}), other))["success"]
    assert (await call(b, req("r", "echo", {"x": 1}), other))["code"] == "rate_limited"


async def _limits_applied(cluster: Any) -> bool:
    return bool(cluster.limiter.config.global_limits)


async def test_limiter_fails_open_when_redis_is_gone(redis_url: str) -> None:
    from relaygate.gateway import RateLimiter, RedisWindowStore
    from relaygate.gateway.config import FunctionConfig

    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    spec = FunctionConfig.build(
        service="s", request_type="t", rate_limits=[{"key": "user_id", "max_requests": 1, "window_ms": 1000}]
    ).spec
    limiter = RateLimiter(RedisWindowStore(dead))
    await limiter.check(spec, USER, None, {})  # fail_open: allowed
    limiter.configure(LimiterConfig(fail_open=False))
    from relaygate.gateway import GatewayError

    try:
        await limiter.check(spec, USER, None, {})
    except GatewayError as exc:
        assert exc.code == "unavailable"
    else:
        raise AssertionError("fail_open=False must reject when the store fails")
    await dead.aclose()


async def test_limiter_store_down_with_fail_open_false_answers_unavailable() -> None:
    """The gateway answers (never raises) when a stopped Redis fails the limiter with fail_open off."""
    from relaygate.gateway import RateLimiter, RedisWindowStore
    from tests.servers import RedisServer

    server = RedisServer()
    server.start()
    client = Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        limiter = RateLimiter(RedisWindowStore(client), LimiterConfig(fail_open=False, timeout_ms=2000))
        gw = Gateway(limiter=limiter)

        async def hello(ctx: Any) -> str:
            return "hi"

        gw.register_local(
            "demo", "hello", hello, rate_limits=[{"key": "user_id", "max_requests": 100, "window_ms": 60_000}]
        )
        assert (await call(gw, req("l1", "hello")))["success"]
        server.stop()
        r = await call(gw, req("l2", "hello"))
        assert (r["code"], r["can_retry"], r["request_id"]) == ("unavailable", True, "l2")
    finally:
        await client.aclose()
        server.close()


async def test_service_node_survives_a_redis_restart(make_cluster, start_node, redis_server: Any) -> None:
    """After Redis restarts empty on the same port the node announces itself again, serves calls,
    and its control subscription delivers stream credits again (25 chunks through a window of 4)."""
    cluster = await make_cluster("gw1")
    gw = cluster.gateway(stream_credits=4)
    node = await start_node("n1", cluster=cluster)
    assert (await call(gw, req("before", "echo", {"x": 1})))["success"]
    redis_server.restart()
    await eventually(lambda: _succeeds(gw, "echo", args={"x": 2}), within=30)
    # Until the node has announced itself again the gateway keeps the registry it read before,
    # and liveness may flap while the restart settles: calls answer `unavailable` (retryable) then.
    streams = itertools.count()

    async def stream_completes() -> bool:
        rid = f"s{next(streams)}"
        inbox = Inbox()
        ack = await call(gw, req(rid, "numbers", {"n": 25}), inbox=inbox)
        if not ack["success"]:
            assert ack["code"] == "unavailable", ack
            return False
        end = await inbox.wait_final(rid)
        if end["code"] == "unavailable":
            return False
        assert end["success"], end
        assert [i["result"] for i in inbox.items if i["has_more"]] == list(range(25))
        return True

    await eventually(stream_completes, within=30)
    assert node.process.poll() is None

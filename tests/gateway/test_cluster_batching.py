"""What batching calls and replies through Redis could break: order, bad requests inside a
batch, a service node killed mid-batch, and a gateway that goes away with replies in flight."""

from __future__ import annotations

import asyncio

import orjson
from redis.asyncio import Redis

from relaygate.gateway import CallerContext, RedisCluster
from relaygate.protocol.gateway import wire
from relaygate.protocol.gateway.context import CallContext

from .conftest import HEARTBEAT
from .test_cluster import USER, call, req


async def test_calls_of_one_socket_start_in_the_order_they_were_made(make_cluster, start_node) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    await start_node("n1", cluster=cluster)
    # issued in one loop turn: they leave in one LPUSH and the node pops them in one batch
    responses = await asyncio.gather(*(call(gw, req(f"o{i}", "order", {"tag": str(i)})) for i in range(12)))
    positions = [r["result"] for r in responses]
    assert all(r["success"] for r in responses), responses
    assert positions == sorted(positions) and len(set(positions)) == 12


async def test_a_batch_with_bad_entries_answers_each_and_runs_the_good_ones(
    start_node, redis: Redis, redis_url: str
) -> None:
    node = await start_node("n1")
    pubsub = redis.pubsub()
    await pubsub.subscribe(wire.gateway_replies("g1"))
    ctx = CallContext("r", "u1", None, (), deadline=__import__("time").time() + 10).to_wire()
    base = {"t": "call", "gw": "g1", "v": None, "rt": "sync", "ctx": ctx, "credits": 0}
    batch = [
        wire.encode({**base, "id": "good1", "fn": "echo", "args": {"x": 1}}),
        b"{not json",
        wire.encode({**base, "id": "credits", "fn": "echo", "args": {"x": 2}, "credits": "many"}),
        wire.encode({**base, "id": "nofn", "fn": "missing", "args": {}}),
        wire.encode({**base, "id": "args", "fn": "echo", "args": {"x": 3, "when": "soon"}}),
        orjson.dumps(["a", "list"]),
        wire.encode({**base, "id": "good2", "fn": "echo", "args": {"x": 4}}),
    ]
    await redis.lpush(wire.node_queue("n1"), *reversed(batch))  # one command, popped as one batch
    replies: dict[str, dict] = {}
    async with asyncio.timeout(10):
        async for item in pubsub.listen():
            if item["type"] == "message":
                replies |= {r["id"]: r for r in wire.decode_batch(item["data"])}
                if len(replies) == 5:
                    break
    await pubsub.aclose()
    assert replies["good1"]["result"]["x"] == 1 and replies["good2"]["result"]["x"] == 4
    assert replies["credits"]["code"] == "bad_request"
    assert replies["nofn"]["code"] == "not_found"
    assert replies["args"]["code"] == "invalid_args"
    assert node.process.poll() is None  # the node survived the batch


async def test_a_node_killed_mid_batch_has_each_call_retried_once_and_run_at_most_once(
    make_cluster, start_node, redis: Redis
) -> None:
    cluster = await make_cluster("gw1")
    gw = cluster.gateway()
    nodes = {"n1": await start_node("n1", cluster=cluster), "n2": await start_node("n2", cluster=cluster)}
    rids = [f"b{i}" for i in range(10)]
    callers = [CallerContext(f"u{i}", connection=f"s{i}") for i in range(len(rids))]
    tasks = [
        asyncio.create_task(call(gw, req(rid, "slow", {"ms": 1500}), caller))
        for rid, caller in zip(rids, callers, strict=True)
    ]
    async with asyncio.timeout(10):  # every call has started on some node
        while sum([await redis.exists(f"started:{rid}") for rid in rids]) < len(rids):
            await asyncio.sleep(0.05)
    victim = max(nodes, key=cluster.calls_on)
    assert cluster.calls_on(victim) > 1  # a batch of calls was in flight on it
    nodes[victim].kill()
    responses = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    for rid, response in zip(rids, responses, strict=True):
        if response["success"]:
            assert response["result"] != victim
            assert int(await redis.get(f"done:{rid}")) == 1  # completed exactly once
        else:
            assert response["code"] == "unavailable", response
    assert sum(r["success"] for r in responses) == len(rids)  # retry allowed: all land on the survivor
    assert max([int(await redis.get(f"started:{rid}")) for rid in rids]) <= 2  # at most one retry each


async def test_a_gateway_gone_with_replies_in_flight_leaves_the_node_and_its_successor_unharmed(
    make_cluster, start_node, redis: Redis, redis_url: str
) -> None:
    """The first gateway stops listening while its calls run (as a killed one would): the node
    publishes their replies to nobody and keeps serving; a gateway restarted under the same name
    ignores the late replies of calls it never made and gets its own answers."""
    own = Redis.from_url(redis_url)  # its own connections, dropped with it
    first = RedisCluster(own, node_name="gw-x", liveness_interval=0.1, heartbeat_interval=HEARTBEAT)
    await first.start()
    await start_node("n1", cluster=first)
    gone = first.gateway()
    orphans = [asyncio.create_task(call(gone, req(f"g{i}", "slow", {"ms": 600}), USER)) for i in range(5)]
    async with asyncio.timeout(10):
        while sum([await redis.exists(f"started:g{i}") for i in range(5)]) < 5:
            await asyncio.sleep(0.05)
    for task in first._tasks:  # deaf and mute from now on, like a killed process
        task.cancel()
    await asyncio.gather(*first._tasks, return_exceptions=True)
    await first.outbox.close()  # the cancels its callers send below never leave
    for task in orphans:
        task.cancel()
    await asyncio.gather(*orphans, return_exceptions=True)
    await own.aclose(close_connection_pool=True)
    successor = await make_cluster("gw-x")
    while "n1" not in successor.live_nodes(("demo", "echo", None)):
        await asyncio.sleep(0.05)
    gw = successor.gateway()
    answers = await asyncio.gather(*(call(gw, req(f"n{i}", "echo", {"x": i})) for i in range(5)))
    assert [a["result"]["x"] for a in answers] == list(range(5))
    async with asyncio.timeout(10):  # the orphaned calls completed on the node, once each
        while sum([await redis.exists(f"done:g{i}") for i in range(5)]) < 5:
            await asyncio.sleep(0.05)
    assert [int(await redis.get(f"done:g{i}")) for i in range(5)] == [1] * 5
    later = await call(gw, req("after", "echo", {"x": "ok"}))
    assert later["success"] and successor.calls_on("n1") == 0

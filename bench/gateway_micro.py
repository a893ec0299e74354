"""``python -m bench.gateway_micro``: the gateway's own CPU per call, in process, no sockets.

Sessions joined to the ``gateway`` channel push ``phoenix_gen_api`` requests for the bench's
``echo`` function through the channel runtime to a transport that completes every send at once,
so the figure is Relaygate's CPU alone (channel runtime + gateway), comparable with
``bench.micro``'s plain round trip (the runtime's floor). ``--redis URL`` also runs the function on
a :class:`ServiceNode` in the same process over that Redis: the figure then is gateway + service
node Python CPU per call (redis-server not included). Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench.micro import CountingTransport
from bench.servers.gateway_service import svc
from relaygate.channels import Endpoint, Socket
from relaygate.channels.session import Session
from relaygate.gateway import Gateway, GatewayChannel
from relaygate.protocol import V2
from relaygate.pubsub import MemoryPubSub


def _endpoint(gateway: Gateway) -> tuple[Endpoint, Socket]:
    endpoint = Endpoint(MemoryPubSub(), idle_timeout=None)
    socket = Socket("/socket")
    socket.channel("gateway", GatewayChannel(gateway))
    endpoint.add_socket(socket)
    return endpoint, socket


async def _joined(endpoint: Endpoint, socket: Socket, count: int) -> list[tuple[Session, CountingTransport]]:
    sessions = []
    for index in range(count):
        transport = CountingTransport()
        assigns = {"user_id": f"u{index}", "role": "member"}
        session = Session(endpoint, socket, V2, assigns, None, ("127.0.0.1", index), transport)
        await session.start()
        session.feed(json.dumps(["1", "1", "gateway", "phx_join", {}]))
        sessions.append((session, transport))
    while any(transport.frames < 1 for _, transport in sessions):
        await asyncio.sleep(0)
    return sessions


async def calls(gateway: Gateway, clients: int, rounds: int) -> tuple[float, float]:
    """(µs of CPU, µs of wall time) per sync call: each session pushes and awaits the reply."""
    endpoint, socket = _endpoint(gateway)
    sessions = await _joined(endpoint, socket, clients)
    frames = [
        json.dumps(
            ["1", str(n), "gateway", "phoenix_gen_api",
             {"request_id": f"r{n}", "service": "bench", "request_type": "echo", "args": {"n": 1}}]
        )
        for n in range(rounds)
    ]  # fmt: skip
    cpu, wall = time.process_time(), time.perf_counter()
    for frame in frames:
        expected = CountingTransport.total + clients
        for session, _ in sessions:
            session.feed(frame)
        while CountingTransport.total < expected:
            await asyncio.sleep(0)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for session, _ in sessions:
        await session.finish()
    return cpu / (clients * rounds) * 1e6, wall / (clients * rounds) * 1e6


async def _main(args: argparse.Namespace) -> dict[str, float]:
    from relaygate.gateway import local

    gateway = Gateway()
    local.install(gateway, "bench.servers.gateway_service:svc")
    results: dict[str, float] = {}
    for _ in range(args.repeat):
        cpu, _wall = await calls(gateway, args.clients, args.rounds)
        results["local_sync_us_per_call"] = min(results.get("local_sync_us_per_call", cpu), cpu)
    if args.redis:
        results |= await _remote(args)
    return results


async def _remote(args: argparse.Namespace) -> dict[str, Any]:
    from redis.asyncio import BlockingConnectionPool, Redis

    from relaygate.gateway import RedisCluster
    from relaygate.service import ServiceNode

    redis = Redis.from_pool(BlockingConnectionPool.from_url(args.redis, max_connections=64, timeout=10))
    await redis.flushdb()
    cluster = RedisCluster(redis, node_name="micro-gw")
    await cluster.start()
    node = ServiceNode(svc, redis, node_name="micro-node")
    await node.start()
    while not cluster.live_nodes(("bench", "echo", None)):
        await cluster.pull()
        await cluster.check_liveness()
        await asyncio.sleep(0.05)
    gateway = cluster.gateway()
    results: dict[str, float] = {}
    try:
        for _ in range(args.repeat):
            cpu, wall = await calls(gateway, args.clients, args.rounds)
            if cpu < results.get("redis_sync_us_per_call", cpu + 1):
                results |= {"redis_sync_us_per_call": cpu, "redis_sync_wall_us_per_call": wall}
    finally:
        await node.stop()
        await cluster.stop()
        await redis.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_micro", description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis", help="redis://... : also measure calls to an in-process service node")
    args = parser.parse_args()
    import uvloop

    for key, value in uvloop.run(_main(args)).items():
        print(f"{key}: {value:.1f}")


if __name__ == "__main__":
    main()

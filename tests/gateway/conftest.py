"""Cluster fixtures: a clean Redis database per test, gateway nodes, service node processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from relaygate.gateway.cluster import RedisCluster
from relaygate.protocol.gateway import wire

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = 0.3  # service nodes in these tests beat faster so liveness tests stay short


@pytest.fixture
async def make_cluster(redis: Redis) -> AsyncIterator[Callable[[str], asyncio.Future[RedisCluster]]]:
    clusters: list[RedisCluster] = []

    async def make(name: str) -> RedisCluster:
        cluster = RedisCluster(
            redis, node_name=name, pull_interval=0.5, liveness_interval=0.1, heartbeat_interval=HEARTBEAT
        )
        await cluster.start()
        clusters.append(cluster)
        return cluster

    yield make  # type: ignore[misc]
    for cluster in clusters:
        await cluster.stop()


class NodeProcess:
    def __init__(self, redis_url: str, name: str, variant: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.service_app", redis_url, name, variant],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.terminate()
        return self.process.wait(15)


@pytest.fixture
async def start_node(
    redis: Redis, redis_url: str
) -> AsyncIterator[Callable[..., asyncio.Future[NodeProcess]]]:
    nodes: list[NodeProcess] = []

    async def start(name: str, variant: str = "v1", cluster: RedisCluster | None = None) -> NodeProcess:
        node = NodeProcess(redis_url, name, variant)
        nodes.append(node)
        async with asyncio.timeout(20):
            while await redis.hget(wire.HEARTBEATS, name) is None:
                assert node.process.poll() is None, "the service node process exited"
                await asyncio.sleep(0.05)
            if cluster is not None:
                while name not in cluster.live_nodes(("demo", "echo", None)):
                    await asyncio.sleep(0.05)
        return node

    yield start  # type: ignore[misc]
    for node in nodes:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait(10)

"""``relaygate service run``, ``relaygate gateway ...`` and ``relaygate routes`` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from redis.asyncio import Redis

from relaygate.protocol.gateway import wire
from tests.servers import free_port, wait_for_port
from tests.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def service_node(redis: Redis, redis_url: str) -> AsyncIterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "relaygate", "service", "run", "examples.inventory_service:svc"),
            *("--redis", redis_url, "--node-name", "inventory-cli"),
        ],
        cwd=ROOT,
        env={**os.environ, "RELAYGATE_REDIS_URL": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with asyncio.timeout(30):
            while await redis.hget(wire.HEARTBEATS, "inventory-cli") is None:
                assert process.poll() is None, process.communicate()[0]
                await asyncio.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def gateway_cli(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    return run_cli("gateway", *args, "--redis", redis_url, cwd=ROOT)


def test_gateway_commands_against_a_running_service_node(
    service_node: subprocess.Popen[str], redis_url: str
) -> None:
    services = gateway_cli("services", redis_url=redis_url)
    assert services.returncode == 0, services.stderr
    lines = services.stdout.splitlines()
    assert lines[0] == "inventory  config_version=1.0.0"
    assert lines[1].split()[:2] == ["inventory-cli", "alive"]

    functions = gateway_cli("functions", redis_url=redis_url)
    assert functions.returncode == 0, functions.stderr
    rows = {line.split()[0]: line.split() for line in functions.stdout.splitlines()}
    assert rows["inventory.get_item"] == ["inventory.get_item", "1.0.0", "sync", "service", "enabled"]
    assert rows["inventory.export"][1:3] == ["_", "stream"]

    disabled = gateway_cli("disable", "inventory", "get_item", "1.0.0", redis_url=redis_url)
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout.strip() == "disabled inventory get_item 1.0.0"
    assert gateway_cli("disable", "inventory", "export", "_", redis_url=redis_url).returncode == 0
    rows = {
        line.split()[0]: line.split()
        for line in gateway_cli("functions", redis_url=redis_url).stdout.splitlines()
    }
    assert (rows["inventory.get_item"][-1], rows["inventory.export"][-1]) == ("disabled", "disabled")
    assert gateway_cli("enable", "inventory", "get_item", "1.0.0", redis_url=redis_url).returncode == 0
    rows = {
        line.split()[0]: line.split()
        for line in gateway_cli("functions", redis_url=redis_url).stdout.splitlines()
    }
    assert rows["inventory.get_item"][-1] == "enabled"

    unknown = gateway_cli("enable", "inventory", "get_item", "9.9.9", redis_url=redis_url)
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "relaygate: no function inventory get_item 9.9.9",
    )

    service_node.send_signal(signal.SIGTERM)
    output, _ = service_node.communicate(timeout=30)
    assert service_node.returncode == 0, output


def test_gateway_commands_need_redis_and_a_service(tmp_path: Path) -> None:
    no_redis = run_cli("gateway", "functions", cwd=tmp_path, env={"RELAYGATE_REDIS_URL": ""})
    assert no_redis.returncode == 2
    assert "--redis" in no_redis.stderr
    dead = run_cli("gateway", "services", "--redis", "redis://127.0.0.1:1/0", cwd=tmp_path)
    assert dead.returncode == 1
    assert "cannot reach Redis" in dead.stderr
    missing = run_cli("service", "run", "examples.nope:svc", "--redis", "redis://127.0.0.1:1/0", cwd=ROOT)
    assert missing.returncode == 2
    assert "cannot import examples.nope" in missing.stderr
    not_service = run_cli(
        "service", "run", "examples.inventory_service:ITEMS", "--redis", "redis://127.0.0.1:1/0", cwd=ROOT
    )
    assert (not_service.returncode, not_service.stderr.strip()) == (
        2,
        "relaygate: examples.inventory_service:ITEMS is not a relaygate.service.Service",
    )


def test_routes_lists_sockets_topics_and_gateway_functions(tmp_path: Path) -> None:
    (tmp_path / "my_functions.py").write_text(
        "async def hello(ctx):\n"
        "    return 'hi'\n\n"
        "def register(gateway):\n"
        "    gateway.register_local('greeter', 'hello', hello, version='1.0.0')\n"
    )
    result = run_cli("routes", cwd=tmp_path, env={"RELAYGATE_GATEWAY_MODULE": "my_functions:register"})
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["SOCKET", "/socket", "(websocket)"] in lines
    topics = {line[0]: line[1] for line in lines if len(line) == 2}
    assert topics["gateway"] == topics["gateway:*"] == "relaygate.gateway.channel.GatewayChannel"
    assert topics["room:*"].endswith("RoomChannel")
    assert ["GATEWAY", "greeter.hello", "1.0.0", "sync", "local", "enabled"] in lines
    assert ["GET", "/api/v1/gateway/functions"] in lines

    bad = run_cli("routes", cwd=tmp_path, env={"RELAYGATE_GATEWAY_MODULE": "my_functions:nothing"})
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        == "relaygate: configuration error: RELAYGATE_GATEWAY_MODULE: my_functions has no attribute nothing"
    )


SLOW_FUNCTIONS = """
import asyncio
import pathlib


def register(gateway):
    async def slow(ctx):
        pathlib.Path("started").touch()
        await asyncio.sleep(1.5)
        return "finished"

    gateway.register_local("ops", "slow", slow, timeout_ms=30_000)
"""


async def test_sigterm_lets_a_running_gateway_call_finish_before_closing_with_1012(tmp_path: Path) -> None:
    (tmp_path / "slow_functions.py").write_text(SLOW_FUNCTIONS)
    email, password = "ops@example.com", "correct horse battery"
    created = run_cli("users", "create", "--email", email, "--password", password, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "relaygate", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "RELAYGATE_ENV": "dev", "RELAYGATE_GATEWAY_MODULE": "slow_functions:register"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    frames: list[Any] = []
    try:
        wait_for_port(port, timeout=90)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            login = await http.post("/api/v1/sessions", json={"email": email, "password": password})
            token = login.json()["data"]["token"]
        url = f"ws://127.0.0.1:{port}/socket/websocket?token={token}&vsn=2.0.0"
        async with websockets.connect(url) as socket:
            await socket.send(orjson.dumps(["1", "1", "gateway", "phx_join", {}]).decode())
            assert orjson.loads(await asyncio.wait_for(socket.recv(), 30))[4]["status"] == "ok"
            request = {"request_id": "r1", "service": "ops", "request_type": "slow"}
            await socket.send(orjson.dumps(["1", "2", "gateway", "phoenix_gen_api", request]).decode())
            async with asyncio.timeout(30):
                while not (tmp_path / "started").exists():
                    await asyncio.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    frames.append(orjson.loads(await asyncio.wait_for(socket.recv(), 60)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    replies = [f for f in frames if f[1] == "2" and f[3] == "phx_reply"]
    assert len(replies) == 1, frames
    assert replies[0][4]["status"] == "ok" and replies[0][4]["response"]["result"] == "finished"
    assert process.returncode == 0, output

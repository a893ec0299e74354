"""The official phoenix.js client calls a service node process through a real gateway node.

A ``relaygate serve`` node (uvicorn) in cluster mode and a ``relaygate service run
examples.inventory_service:svc`` node share one Redis; phoenix.js joins ``gateway`` and calls the
example's sync, async and stream functions, through the conformance driver and through
``examples/gateway_client.mjs`` as a user would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from relaygate.protocol.gateway import wire
from tests.conformance.node import node_available, run_driver, select
from tests.web.liveserver import LiveServer, register

pytestmark = pytest.mark.node
ROOT = Path(__file__).resolve().parents[2]
NO_RETRY = {"rejoinAfterMs": [60000], "reconnectAfterMs": [60000]}


@pytest.fixture
async def gateway_node(
    redis: Redis, redis_url: str, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[tuple[LiveServer, str]]:
    """(gateway node, a user's token) with the inventory service node already registered."""
    service = subprocess.Popen(
        [
            *(sys.executable, "-m", "relaygate", "service", "run", "examples.inventory_service:svc"),
            *("--redis", redis_url, "--node-name", "inventory-js"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = LiveServer(tmp_path, sqlite_url, redis_url=redis_url, name="gw-js")
    try:
        async with asyncio.timeout(30):
            while await redis.hget(wire.HEARTBEATS, "inventory-js") is None:
                assert service.poll() is None, "the service node exited"
                await asyncio.sleep(0.05)
        await server.start()  # a gateway reads the registry before it reports ready
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            _, token = await register(http, f"Js{uuid.uuid4().hex[:12]}")
        yield server, token
    finally:
        server.stop()
        service.terminate()
        service.wait(15)


def events(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["payload"] for o in select(observations, type="event", chan="g", event="phoenix_gen_api")]


def call(id: str, request_type: str, args: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    request = {"request_id": id, "service": "inventory", "request_type": request_type, "args": args}
    if version is not None:
        request["version"] = version
    return {"op": "push", "chan": "g", "event": "phoenix_gen_api", "payload": request, "id": id}


async def test_phoenix_js_calls_sync_async_and_stream_functions(gateway_node: tuple[LiveServer, str]) -> None:
    server, token = gateway_node
    event = {"type": "event", "chan": "g", "event": "phoenix_gen_api"}
    steps: list[dict[str, Any]] = [
        {"op": "connect"},
        {"op": "channel", "chan": "g", "topic": "gateway", "params": {"device_id": "js-1"}},
        {"op": "join", "chan": "g"},
        {"op": "until", "match": {"type": "join", "chan": "g", "status": "ok"}},
        call("sync", "get_item", {"id": 1}, "1.0.0"),
        {"op": "until", "match": {"type": "push", "id": "sync"}},
        call("missing", "get_item", {"id": 99}),
        {"op": "until", "match": {"type": "push", "id": "missing"}},
        call("async", "reserve", {"id": 2, "quantity": 5}),
        {"op": "until", "match": {"type": "push", "id": "async"}},
        {"op": "until", "match": event, "count": 1},
        call("stream", "export", {"min_stock": 1}),
        {"op": "until", "match": {"type": "push", "id": "stream"}},
        {"op": "until", "match": event, "count": 4},
    ]
    socket = {**NO_RETRY, "params": {"token": token}}
    observations = await run_driver(server.socket_url, steps, socket=socket)

    [sync] = select(observations, type="push", id="sync")
    assert sync["status"] == "ok"
    assert sync["response"]["result"] == {"id": 1, "name": "bolt", "stock": 120}
    [missing] = select(observations, type="push", id="missing")
    assert missing["status"] == "error"
    assert (missing["response"]["code"], missing["response"]["error"]) == ("item_not_found", "no item 99")

    [ack] = select(observations, type="push", id="async")
    assert (ack["status"], ack["response"]["async"], ack["response"]["result"]) == ("ok", True, None)
    [stream_ack] = select(observations, type="push", id="stream")
    assert (stream_ack["status"], stream_ack["response"]["result"]) == ("ok", "init")

    reserved, *stream = events(observations)
    assert (reserved["request_id"], reserved["async"], reserved["success"]) == ("async", False, True)
    assert reserved["result"]["quantity"] == 5
    assert reserved["result"]["user_id"] is not None
    assert [(e["request_id"], e["seq"], e["has_more"]) for e in stream] == [
        ("stream", 1, True),
        ("stream", 2, True),
        ("stream", None, False),
    ]
    assert [e["result"]["name"] for e in stream[:2]] == ["bolt", "nut"]
    assert (stream[2]["success"], stream[2]["async"]) == (True, True)


async def test_the_example_client_runs_against_the_node(gateway_node: tuple[LiveServer, str]) -> None:
    reason = node_available()
    if reason:
        pytest.skip(reason)
    server, token = gateway_node
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(ROOT / "examples" / "gateway_client.mjs"),
        cwd=ROOT,
        env={**os.environ, "RELAYGATE_URL": server.socket_url, "RELAYGATE_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    results = {line["call"]: line for line in map(json.loads, stdout.decode().splitlines())}
    assert results["get_item"]["result"]["name"] == "bolt"
    assert results["reserve"]["result"]["quantity"] == 5
    assert [item["name"] for item in results["export"]["result"]] == ["bolt", "nut"]
    assert results["missing"] == {"call": "missing", "code": "item_not_found", "error": "no item 99"}

"""``/api/v1/gateway``: admin-only registry and rate-limit administration, one node and a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from examples.inventory_service import svc
from relaygate.accounts.passwords import Passwords
from relaygate.config import Settings
from relaygate.db import Database
from relaygate.gateway.local import register_service_locally
from relaygate.node import create_app
from relaygate.service import ServiceNode
from tests.accounts.support import FAST_HASHER, bearer
from tests.web.routers.support import Users

BASE = "/api/v1/gateway"
ROUTES = [
    ("GET", "/services"),
    ("GET", "/functions"),
    ("POST", "/functions/inventory/get_item/1.0.0/disable"),
    ("POST", "/functions/inventory/get_item/1.0.0/enable"),
    ("DELETE", "/functions/inventory/get_item/1.0.0"),
    ("GET", "/rate-limits"),
    ("PUT", "/rate-limits"),
]


@pytest.fixture
def local_app(app: FastAPI) -> FastAPI:
    register_service_locally(app.state.relaygate.gateway, svc)
    return app


@pytest.fixture
async def admin(users: Users, local_app: FastAPI) -> dict[str, str]:
    _, token = await users.create(admin=True)
    return bearer(token)


async def test_every_route_needs_an_admin(http: httpx.AsyncClient, users: Users, local_app: FastAPI) -> None:
    _, user_token = await users.create()
    for method, path in ROUTES:
        anonymous = await http.request(method, BASE + path, json={})
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.headers["content-type"] == "application/problem+json"
        forbidden = await http.request(method, BASE + path, json={}, headers=bearer(user_token))
        assert forbidden.status_code == 403, (method, path)


async def test_functions_listing_disable_enable(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    listing = await http.get(f"{BASE}/functions", headers=admin)
    assert listing.status_code == 200
    assert listing.headers["cache-control"] == "private, no-cache"
    functions = listing.json()["data"]["inventory"]
    assert functions["get_item"] == [
        {"version": "1.0.0", "enabled": True, "response_type": "sync", "nodes": "local"}
    ]
    assert {name: rows[0]["response_type"] for name, rows in functions.items()} == {
        "get_item": "sync",
        "reserve": "async",
        "export": "stream",
    }
    etag = listing.headers["etag"]
    unchanged = await http.get(f"{BASE}/functions", headers={**admin, "If-None-Match": etag})
    assert unchanged.status_code == 304

    disabled = await http.post(f"{BASE}/functions/inventory/get_item/1.0.0/disable", headers=admin)
    assert (disabled.status_code, disabled.content) == (204, b"")
    after = await http.get(f"{BASE}/functions", headers={**admin, "If-None-Match": etag})
    assert after.status_code == 200
    assert after.json()["data"]["inventory"]["get_item"][0]["enabled"] is False
    # "_" names the unversioned function
    assert (await http.post(f"{BASE}/functions/inventory/export/_/disable", headers=admin)).status_code == 204
    assert (
        await http.post(f"{BASE}/functions/inventory/get_item/1.0.0/enable", headers=admin)
    ).status_code == 204
    rows = (await http.get(f"{BASE}/functions", headers=admin)).json()["data"]["inventory"]
    assert (rows["get_item"][0]["enabled"], rows["export"][0]["enabled"]) == (True, False)


@pytest.mark.parametrize(
    "path",
    [
        "/functions/inventory/get_item/2.0.0/disable",
        "/functions/inventory/get_item/_/disable",
        "/functions/inventory/get_item/latest/enable",
        "/functions/nope/get_item/1.0.0/enable",
        "/functions/inventory/export/1.0.0",
    ],
)
async def test_unknown_functions_are_404(http: httpx.AsyncClient, admin: dict[str, str], path: str) -> None:
    method = "DELETE" if not path.endswith("able") else "POST"
    response = await http.request(method, BASE + path, headers=admin)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_delete_removes_a_function(
    http: httpx.AsyncClient, admin: dict[str, str], local_app: FastAPI
) -> None:
    deleted = await http.delete(f"{BASE}/functions/inventory/reserve/_", headers=admin)
    assert deleted.status_code == 204
    assert "reserve" not in (await http.get(f"{BASE}/functions", headers=admin)).json()["data"]["inventory"]
    assert (await http.delete(f"{BASE}/functions/inventory/reserve/_", headers=admin)).status_code == 404
    options = await http.options(f"{BASE}/functions/inventory/get_item/1.0.0", headers=admin)
    assert options.headers["allow"] == "DELETE, OPTIONS"


async def test_services_in_one_node_mode(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await http.get(f"{BASE}/services", headers=admin)
    assert response.status_code == 200
    assert response.json() == {"data": []}  # local functions belong to no service node


async def test_rate_limits_are_validated_and_applied(
    http: httpx.AsyncClient, admin: dict[str, str], local_app: FastAPI
) -> None:
    current = await http.get(f"{BASE}/rate-limits", headers=admin)
    assert current.json() == {"data": {"global": [], "fail_open": True, "timeout_ms": 250}}
    config = {
        "global": [
            {"key": "user_id", "max_requests": 10, "window_ms": 1000},
            {"key": "ip_address", "max_requests": 500, "window_ms": 60000},
        ],
        "fail_open": False,
        "timeout_ms": 100,
    }
    replaced = await http.put(f"{BASE}/rate-limits", headers=admin, json=config)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"data": config}
    assert replaced.headers["etag"]
    limiter = local_app.state.relaygate.gateway.limiter.config
    assert (len(limiter.global_limits), limiter.fail_open, limiter.timeout_ms) == (2, False, 100)
    assert (await http.get(f"{BASE}/rate-limits", headers=admin)).json() == {"data": config}

    bad_bodies = [
        {"global": [{"key": "cookie", "max_requests": 1, "window_ms": 1}]},
        {"global": [{"key": "user_id", "max_requests": "5", "window_ms": 1}]},
        {"global": [{"key": "user_id", "max_requests": 0, "window_ms": 1}]},
        {"fail_open": "yes"},
        {"timeout_ms": 99999},
        {"burst": 3},
    ]
    for body in bad_bodies:
        response = await http.put(f"{BASE}/rate-limits", headers=admin, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"]
    assert (await http.get(f"{BASE}/rate-limits", headers=admin)).json() == {"data": config}
    stale = await http.put(f"{BASE}/rate-limits", headers={**admin, "If-Match": '"old"'}, json=config)
    assert stale.status_code == 412


# --- cluster mode -------------------------------------------------------------------------------


async def until(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    async with asyncio.timeout(10):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


@pytest.fixture
async def cluster_apps(
    settings: Settings, db: Database, redis: Redis, redis_url: str
) -> AsyncIterator[tuple[FastAPI, FastAPI, ServiceNode]]:
    async with AsyncExitStack() as stack:
        apps = []
        for name in ("gw1", "gw2"):
            app = create_app(settings.model_copy(update={"redis_url": redis_url, "node_name": name}))
            app.state.relaygate.accounts.passwords = Passwords(FAST_HASHER)
            await stack.enter_async_context(app.router.lifespan_context(app))
            apps.append(app)
        node = ServiceNode(svc, redis, node_name="inventory-1", heartbeat_interval=0.2)
        await node.start()
        stack.push_async_callback(node.stop)
        key = ("inventory", "get_item", "1.0.0")
        for app in apps:
            cluster = app.state.relaygate.gateway_cluster
            await until(lambda c=cluster: "inventory-1" in c.live_nodes(key), "the node is seen")
        yield apps[0], apps[1], node


async def test_cluster_admin_changes_reach_every_gateway(
    cluster_apps: tuple[FastAPI, FastAPI, ServiceNode],
) -> None:
    first, second, _ = cluster_apps
    users = []
    for app in (first, second):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        users.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
    http1, http2 = users
    try:
        _, token = await Users(http1, first).create(admin=True)
        admin = bearer(token)
        services = (await http2.get(f"{BASE}/services", headers=admin)).json()["data"]
        [inventory] = services
        assert (inventory["service"], inventory["config_version"]) == ("inventory", "1.0.0")
        [node] = inventory["nodes"]
        assert (node["name"], node["alive"], node["draining"]) == ("inventory-1", True, False)
        assert isinstance(node["last_heartbeat"], int)

        key = ("inventory", "get_item", "1.0.0")
        second_registry = second.state.relaygate.gateway.registry
        response = await http1.post(f"{BASE}/functions/inventory/get_item/1.0.0/disable", headers=admin)
        assert response.status_code == 204
        await until(lambda: not second_registry.is_enabled(key), "the disable reached gw2")
        rows = (await http2.get(f"{BASE}/functions", headers=admin)).json()["data"]["inventory"]["get_item"]
        assert rows == [{"version": "1.0.0", "enabled": False, "response_type": "sync", "nodes": "service"}]
        assert (
            await http2.post(f"{BASE}/functions/inventory/get_item/1.0.0/enable", headers=admin)
        ).status_code == 204
        first_registry = first.state.relaygate.gateway.registry
        await until(lambda: first_registry.is_enabled(key), "the enable reached gw1")

        limits = {
            "global": [{"key": "user_id", "max_requests": 3, "window_ms": 1000}],
            "fail_open": True,
            "timeout_ms": 250,
        }
        assert (await http1.put(f"{BASE}/rate-limits", headers=admin, json=limits)).status_code == 200
        second_limiter = second.state.relaygate.gateway.limiter
        await until(lambda: second_limiter.config.to_wire() == limits, "the limits reached gw2")

        assert (await http2.delete(f"{BASE}/functions/inventory/export/_", headers=admin)).status_code == 204
        await until(
            lambda: first_registry.get(("inventory", "export", None)) is None, "the delete reached gw1"
        )
    finally:
        for client in users:
            await client.aclose()

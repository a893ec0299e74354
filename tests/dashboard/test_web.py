"""``GET /dashboard``: the page for browsers, problem+json for clients that are not administrators."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from relaygate.config import Settings
from relaygate.dashboard.web import phoenix_js
from relaygate.node import create_app
from tests.dashboard.conftest import SQLITE_ONLY
from tests.web.support import Tokens, problem

pytestmark = SQLITE_ONLY
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_a_browser_gets_the_sign_in_page_without_credentials(http: httpx.AsyncClient) -> None:
    response = await http.get("/dashboard", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert 'id="signin-form"' in response.text
    assert "/dashboard/assets/phoenix.min.js" in response.text


async def test_an_api_client_without_a_token_gets_401(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"accept": "*/*"}, {"accept": "application/json"}):
        body = problem(await http.get("/dashboard", headers=headers), 401)
        assert body["detail"] == "Authentication required."
    response = await http.get("/dashboard", headers={"authorization": "Bearer nope"})
    assert problem(response, 401)["detail"] == "A valid bearer token is required."
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_user_who_is_not_an_administrator_gets_403(http: httpx.AsyncClient, tokens: Tokens) -> None:
    for accept in ("application/json", BROWSER["accept"]):
        response = await http.get("/dashboard", headers={**tokens.headers("user"), "accept": accept})
        problem(response, 403)


async def test_an_administrator_gets_the_current_view_as_json(
    http: httpx.AsyncClient, tokens: Tokens, settings: Settings
) -> None:
    response = await http.get("/dashboard", headers=tokens.headers("admin"))
    assert response.status_code == 200
    view = response.json()["data"]
    [node] = view["nodes"]
    assert node["name"] == settings.node
    assert node["health"] == {"database": "ok"}
    assert node["workers"] == 1
    assert view["cluster"] is False
    assert set(view["gateway"]) == {"services", "functions", "rate_limits"}
    assert isinstance(view["totals"]["sockets"], int)


async def test_other_methods_and_types_follow_the_resource_rules(http: httpx.AsyncClient) -> None:
    response = await http.post("/dashboard")
    assert problem(response, 405)["status"] == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    problem(await http.get("/dashboard", headers={"accept": "image/png"}), 406)


async def test_the_assets_are_served_and_nothing_else(http: httpx.AsyncClient) -> None:
    script = await http.get("/dashboard/assets/dashboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript"
    assert "admin:dashboard" in script.text
    assert (await http.get("/dashboard/assets/dashboard.css")).headers["content-type"] == "text/css"
    problem(await http.get("/dashboard/assets/index.py"), 404)
    problem(await http.get("/dashboard/assets/..%2F__init__.py"), 404)
    if phoenix_js() is None:
        pytest.skip("node_modules/phoenix is not installed (npm ci)")
    phoenix = await http.get("/dashboard/assets/phoenix.min.js")
    assert phoenix.status_code == 200 and "Phoenix" in phoenix.text


async def test_prod_keeps_the_dashboard_while_the_demo_page_is_gone(settings: Settings, db: object) -> None:
    app: FastAPI = create_app(settings.model_copy(update={"env": "prod"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/dashboard", headers=BROWSER)).status_code == 200
            problem(await http.get("/dashboard"), 401)
            assert (await http.get("/", headers=BROWSER)).status_code == 404

"""``/api/v1/products`` through the resource layer, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from relaygate.config import Settings
from relaygate.node import create_app
from relaygate.pubsub import Broadcast
from tests.web.support import Tokens, make_tokens

LAMP = {"name": "Lamp", "price_cents": 1999, "tags": ["home", "light"]}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Broadcast] = []

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.messages.append(message)


@pytest.fixture
async def tokens(app: FastAPI) -> Tokens:
    return await make_tokens(app)


async def create(http: httpx.AsyncClient, tokens: Tokens, **fields: Any) -> httpx.Response:
    response = await http.post("/api/v1/products", json={**LAMP, **fields}, headers=tokens.headers("admin"))
    assert response.status_code == 201, response.text
    return response


async def test_crud_with_validators_and_broadcasts(
    http: httpx.AsyncClient, app: FastAPI, tokens: Tokens
) -> None:
    inbox = Inbox()
    await app.state.relaygate.pubsub.subscribe("products", inbox)
    admin = tokens.headers("admin")
    created = await create(http, tokens)
    product = created.json()["data"]
    url = f"/api/v1/products/{product['id']}"
    assert created.headers["location"] == url
    assert product["description"] == "" and product["inserted_at"].endswith("Z")
    shown = await http.get(url)
    assert shown.json()["data"] == product
    assert shown.headers["etag"] == created.headers["etag"]
    assert shown.headers["cache-control"] == "no-cache" and shown.headers["last-modified"]
    assert (await http.get(url, headers={"if-none-match": shown.headers["etag"]})).status_code == 304
    assert (
        await http.get(url, headers={"if-modified-since": shown.headers["last-modified"]})
    ).status_code == 304

    stale = await http.put(url, json={"name": "x", "price_cents": 1}, headers={**admin, "if-match": '"old"'})
    assert stale.status_code == 412
    replaced = await http.put(
        url,
        json={"name": "Desk lamp", "price_cents": 2500},
        headers={**admin, "if-match": shown.headers["etag"]},
    )
    assert replaced.status_code == 200
    assert replaced.json()["data"]["tags"] == [] and replaced.headers["etag"] != shown.headers["etag"]
    patched = await http.patch(
        url,
        content=b'{"description": "bright", "tags": ["x"]}',
        headers={**admin, "content-type": "application/merge-patch+json"},
    )
    assert patched.json()["data"] | {"updated_at": None} == {
        **replaced.json()["data"],
        "description": "bright",
        "tags": ["x"],
        "updated_at": None,
    }
    reset = await http.patch(url, json={"description": None, "tags": None}, headers=admin)
    assert (reset.json()["data"]["description"], reset.json()["data"]["tags"]) == ("", [])
    assert (await http.patch(url, json={"price_cents": None}, headers=admin)).status_code == 422
    assert (await http.delete(url, headers=admin)).status_code == 204
    assert (await http.get(url)).status_code == 404
    assert (await http.delete(url, headers=admin)).status_code == 404

    events = [message.event for message in inbox.messages]
    assert events == [
        "product:created",
        "product:updated",
        "product:updated",
        "product:updated",
        "product:deleted",
    ]
    assert inbox.messages[0].payload == product
    assert inbox.messages[-1].payload == {"id": product["id"]}


async def test_a_write_on_one_node_is_served_by_the_other_at_once(
    http: httpx.AsyncClient, app: FastAPI, tokens: Tokens, settings: Settings
) -> None:
    """Each node keeps the encoded answer of a product it served (``Representation.memo``), keyed
    by the row it read: the next read after another node's write must show that write."""
    other = create_app(settings)
    admin = tokens.headers("admin")
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("127.0.0.1", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as writer:
            url = (await create(http, tokens)).headers["location"]
            first = await http.get(url)
            assert (await http.get(url)).content == first.content  # served again from the memo
            replaced = await writer.put(url, json={"name": "Desk lamp", "price_cents": 5}, headers=admin)
            assert replaced.status_code == 200
            shown = await http.get(url)
            assert shown.json()["data"]["name"] == "Desk lamp"
            assert shown.headers["etag"] == replaced.headers["etag"] != first.headers["etag"]
            assert (await http.get(url, headers={"if-none-match": first.headers["etag"]})).status_code == 200
            assert (await writer.delete(url, headers=admin)).status_code == 204
            assert (await http.get(url)).status_code == 404


async def test_writes_need_an_admin(http: httpx.AsyncClient, tokens: Tokens) -> None:
    anonymous = await http.post("/api/v1/products", json=LAMP)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    user = await http.post("/api/v1/products", json=LAMP, headers=tokens.headers("user"))
    assert user.status_code == 403
    # 401 comes before the existence check, so ids cannot be probed
    assert (await http.delete("/api/v1/products/424242")).status_code == 401


async def test_post_on_an_item_is_405(http: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await http.post("/api/v1/products/1", json=LAMP, headers=tokens.headers("admin"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "price_cents": "12"}, "price_cents"),
        ({"name": "x", "price_cents": False}, "price_cents"),
        ({"name": "x", "price_cents": -1}, "price_cents"),
        ({"name": "", "price_cents": 1}, "name"),
        ({"name": "x" * 201, "price_cents": 1}, "name"),
        ({"name": "x", "price_cents": 1, "tags": ["t"] * 21}, "tags"),
        ({"name": "x", "price_cents": 1, "tags": [""]}, "tags.0"),
        ({"name": "nul\u0000", "price_cents": 1}, "name"),
        ({"name": "x", "price_cents": 1, "id": 5}, "id"),
        ({"price_cents": 1}, "name"),
    ],
)
async def test_strict_schema(
    http: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], field: str
) -> None:
    response = await http.post("/api/v1/products", json=body, headers=tokens.headers("admin"))
    assert response.status_code == 422, response.text
    assert list(response.json()["errors"]) == [field]


async def test_integral_numbers_are_integers(http: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await http.post(
        "/api/v1/products",
        content=b'{"name": "x", "price_cents": 12.0}',
        headers={**tokens.headers("admin"), "content-type": "application/json"},
    )
    assert response.status_code == 201 and response.json()["data"]["price_cents"] == 12


async def test_pages_tags_and_cursors(http: httpx.AsyncClient, tokens: Tokens) -> None:
    for number in range(5):
        await create(http, tokens, name=f"p{number}", tags=["even" if number % 2 == 0 else "odd"])
    first = await http.get("/api/v1/products", params={"limit": 2})
    assert [p["name"] for p in first.json()["data"]] == ["p0", "p1"]
    cursor = first.json()["meta"]["next"]
    assert (
        cursor and f"after={cursor}" in first.headers["link"] and first.headers["link"].endswith('rel="next"')
    )
    second = await http.get("/api/v1/products", params={"limit": 2, "after": cursor})
    assert [p["name"] for p in second.json()["data"]] == ["p2", "p3"]
    last = await http.get("/api/v1/products", params={"limit": 2, "after": second.json()["meta"]["next"]})
    assert [p["name"] for p in last.json()["data"]] == ["p4"]
    assert last.json()["meta"]["next"] is None and "link" not in last.headers
    even = await http.get("/api/v1/products", params={"tag": "even"})
    assert [p["name"] for p in even.json()["data"]] == ["p0", "p2", "p4"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert (await http.get("/api/v1/products", params={"after": tampered})).status_code == 400
    assert (await http.get("/api/v1/products", params={"after": "%%%"})).status_code == 400
    for limit in ("0", "201", "abc", "1.5"):
        response = await http.get("/api/v1/products", params={"limit": limit})
        assert response.status_code == 422 and list(response.json()["errors"]) == ["limit"]


async def test_openapi_lists_errors_and_security(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    put = document["paths"]["/api/v1/products/{id}"]["put"]
    assert put["security"] == [{"bearer": []}]
    for status in ("400", "401", "403", "404", "406", "412", "413", "415", "422"):
        assert "application/problem+json" in put["responses"][status]["content"], status
    assert "304" in document["paths"]["/api/v1/products/{id}"]["get"]["responses"]
    patch_body = document["paths"]["/api/v1/products/{id}"]["patch"]["requestBody"]["content"]
    assert set(patch_body) == {"application/merge-patch+json", "application/json"}
    docs = await http.get("/docs")
    assert (
        docs.status_code == 200
        and "/docs/static/swagger-ui-bundle.js" in docs.text
        and "https://" not in docs.text
    )
    assert (await http.get("/docs/static/swagger-ui-bundle.js")).status_code == 200
    assert (await http.get("/docs/static/../../etc/passwd")).status_code == 404

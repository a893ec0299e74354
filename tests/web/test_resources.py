"""The decision table of http-api.md, on a small in-memory resource declared with the layer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from relaygate.config import Settings
from relaygate.db import Database
from relaygate.node import create_app
from relaygate.telemetry.metrics import REGISTRY
from relaygate.web import resources
from relaygate.web.conditional import Validators, http_date
from relaygate.web.problems import Problem
from relaygate.web.resources import Call, Page, Representation, ResourceGroup, install_resources
from tests.web.support import Tokens, make_tokens, problem
from tests.web.tcp import served


class WidgetIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str = Field(min_length=1, max_length=20)
    weight: float = 1.0
    count: int = 0


class WidgetOut(WidgetIn):
    id: int


STAMP = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
widgets: dict[int, dict[str, Any]] = {}
WIDGET = Representation(
    schema=WidgetOut,
    render=lambda widget: dict(widget),
    validators=lambda widget: Validators(f"w{widget['id']}-{widget['rev']}", STAMP),
)


async def load_widget(call: Call) -> dict[str, Any] | None:
    return widgets.get(call.params["id"])


@dataclass(frozen=True)
class Gadget:
    """An immutable entity: its representation may be memoized."""

    id: int
    rev: int
    name: str


class GadgetOut(BaseModel):
    id: int
    name: str


gadgets: dict[int, Gadget] = {}
gadget_renders: list[Gadget] = []


def render_gadget(gadget: Gadget) -> dict[str, Any]:
    gadget_renders.append(gadget)
    return {"id": gadget.id, "name": gadget.name}


GADGET = Representation(
    schema=GadgetOut,
    render=render_gadget,
    validators=lambda gadget: Validators(f"g{gadget.id}-{gadget.rev}", STAMP),
    memo=2,
)


async def load_gadget(call: Call) -> Gadget | None:
    return gadgets.get(call.params["id"])


group = ResourceGroup(prefix="/t", tag="widgets")
collection = group.resource("/widgets")
item = group.resource("/widgets/{id}", ids=("id",), load=load_widget, representation=WIDGET)
gadget = group.resource("/gadgets/{id}", ids=("id",), load=load_gadget, representation=GADGET)
limited = group.resource("/limited")
broken = group.resource("/broken")


@collection.get(page=WIDGET)
async def list_widgets(_call: Call) -> Page:
    return Page(list(widgets.values()), next=None)


@collection.post(
    auth="admin",
    body=WidgetIn,
    representation=WIDGET,
    status=201,
    location=lambda widget: f"/t/widgets/{widget['id']}",
)
async def create_widget(call: Call) -> dict[str, Any]:
    widget_id = max(widgets, default=0) + 1
    widgets[widget_id] = {"id": widget_id, "rev": 1, **call.body.model_dump()}
    return widgets[widget_id]


@item.get()
async def show_widget(call: Call) -> dict[str, Any]:
    return call.entity  # type: ignore[no-any-return]


@gadget.get()
async def show_gadget(call: Call) -> Gadget:
    return call.entity  # type: ignore[no-any-return]


@item.put(auth="admin", body=WidgetIn)
async def replace_widget(call: Call) -> dict[str, Any]:
    widget = call.entity
    widget.update(call.body.model_dump(), rev=widget["rev"] + 1)
    return widget  # type: ignore[no-any-return]


@item.patch(auth="admin", body=WidgetIn)
async def patch_widget(call: Call) -> dict[str, Any]:
    return await replace_widget(call)


@item.delete(auth="user", authorize=lambda call: _admin_only(call))
async def delete_widget(call: Call) -> None:
    widgets.pop(call.params["id"])


async def _admin_only(call: Call) -> bool:
    return call.principal is not None and call.principal.role == "admin"


async def _always_limited(_call: Call) -> float:
    return 2.4


@limited.get(rate_limit=_always_limited)
async def limited_get(_call: Call) -> None:
    raise AssertionError("never reached")


@broken.get()
async def broken_get(_call: Call) -> None:
    raise RuntimeError("secret internals")


@pytest.fixture(params=["asgi", "tcp"])
async def client(
    request: pytest.FixtureRequest, settings: Settings, db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, and the same app behind the real server (``relaygate serve``'s uvicorn
    configuration over TCP), so that the HTTP parser cannot answer differently from the layer."""
    app = create_app(settings.model_copy(update={"cors_origins": ["https://ok.example"]}))
    install_resources(app, [group])
    widgets.clear()
    widgets[1] = {"id": 1, "rev": 1, "name": "one", "weight": 2.5, "count": 3}
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as stack:
        if request.param == "asgi":
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        else:
            http = httpx.AsyncClient(base_url=await stack.enter_async_context(served(app)))
        async with http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def tokens(client: httpx.AsyncClient) -> Tokens:
    return await make_tokens(client.app)  # type: ignore[attr-defined]


async def test_unknown_method_is_501_everywhere(client: httpx.AsyncClient) -> None:
    problem(await client.request("FROB", "/t/widgets/1"), 501)
    problem(await client.request("FROB", "/no/such/route"), 501)


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.post("/t/widgets/1", json={"name": "x"})
    problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
    response = await client.delete("/t/widgets")
    assert response.headers["allow"] == "GET, HEAD, POST, OPTIONS"


async def test_413_before_authentication(client: httpx.AsyncClient) -> None:
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post("/t/widgets", content=body, headers={"content-type": "application/json"})
    problem(response, 413)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 65536

    response = await client.post("/t/widgets", content=chunks(), headers={"content-type": "application/json"})
    problem(response, 413)


async def test_401_then_403(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.put("/t/widgets/abc", json={"name": "x"})
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    response = await client.put("/t/widgets/1", json={"name": "x"}, headers={"authorization": "Bearer nope"})
    problem(response, 401)
    response = await client.put(
        "/t/widgets/1", json={"name": "x"}, headers={"authorization": f"Bearer {tokens.user}"}
    )
    problem(response, 403)
    response = await client.delete("/t/widgets/1", headers={"authorization": f"Bearer {tokens.user}"})
    problem(response, 403)


async def test_429_with_retry_after(client: httpx.AsyncClient) -> None:
    before = REGISTRY.get_sample_value("relaygate_rate_limit_rejections_total", {"scope": "http"}) or 0.0
    response = await client.get("/t/limited")
    problem(response, 429)
    assert response.headers["retry-after"] == "2"
    assert REGISTRY.get_sample_value("relaygate_rate_limit_rejections_total", {"scope": "http"}) == before + 1


async def test_406_when_json_is_excluded(client: httpx.AsyncClient) -> None:
    problem(await client.get("/t/widgets/1", headers={"accept": "text/xml"}), 406)
    problem(await client.get("/t/widgets/1", headers={"accept": "application/json;q=0, */*"}), 406)
    ok = await client.get("/t/widgets/1", headers={"accept": "text/html, application/*;q=0.2"})
    assert ok.status_code == 200


async def test_options_and_cors_preflight(client: httpx.AsyncClient) -> None:
    response = await client.options("/t/widgets")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert response.headers["accept-post"] == "application/json"
    response = await client.options(
        "/t/widgets/1", headers={"origin": "https://ok.example", "access-control-request-method": "PUT"}
    )
    assert response.status_code == 204
    assert response.headers["accept-patch"] == "application/merge-patch+json, application/json"
    assert response.headers["access-control-allow-origin"] == "https://ok.example"
    assert response.headers["access-control-allow-methods"] == response.headers["allow"]
    simple = await client.get("/t/widgets/1", headers={"origin": "https://ok.example"})
    assert simple.headers["access-control-allow-origin"] == "https://ok.example"
    assert "etag" in simple.headers["access-control-expose-headers"].lower()
    response = await client.options(
        "/t/widgets/1", headers={"origin": "https://evil.example", "access-control-request-method": "PUT"}
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "path", ["/t/widgets/2", "/t/widgets/abc", "/t/widgets/%C2%B9", "/t/widgets/-1", "/t/widgets/99999999999"]
)
async def test_404_for_missing_and_non_integer_ids(
    client: httpx.AsyncClient, tokens: Tokens, path: str
) -> None:
    problem(await client.get(path), 404)
    problem(
        await client.put(
            path, json={"name": "x"}, headers={"authorization": f"Bearer {tokens.admin}", "if-match": '"zzz"'}
        ),
        404,
    )


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    problem(await client.get("/nothing/here"), 404)


async def test_get_has_validators_and_conditional_get(client: httpx.AsyncClient) -> None:
    response = await client.get("/t/widgets/1")
    assert response.status_code == 200
    assert response.json() == {"data": {"id": 1, "rev": 1, "name": "one", "weight": 2.5, "count": 3}}
    assert response.headers["etag"] == '"w1-1"'
    assert response.headers["last-modified"] == http_date(STAMP)
    assert response.headers["cache-control"] == "no-cache"
    for headers in (
        {"if-none-match": '"w1-1"'},
        {"if-none-match": 'W/"w1-1"'},
        {"if-modified-since": http_date(STAMP)},
    ):
        not_modified = await client.get("/t/widgets/1", headers=headers)
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert "content-type" not in not_modified.headers
        for name in ("etag", "last-modified", "cache-control", "vary"):
            assert not_modified.headers[name] == response.headers[name]
    # If-None-Match wins over If-Modified-Since
    changed = await client.get(
        "/t/widgets/1", headers={"if-none-match": '"other"', "if-modified-since": http_date(STAMP)}
    )
    assert changed.status_code == 200


async def test_a_memoized_representation_follows_every_change(client: httpx.AsyncClient) -> None:
    gadgets.clear()
    gadget_renders.clear()
    gadgets[1] = Gadget(1, 1, "one")
    first = await client.get("/t/gadgets/1")
    assert first.json() == {"data": {"id": 1, "name": "one"}} and first.headers["etag"] == '"g1-1"'
    gadgets[1] = Gadget(1, 1, "one")  # an equal value read again: the same state
    again = await client.get("/t/gadgets/1")
    head = await client.head("/t/gadgets/1")
    assert again.content == first.content
    for name in ("etag", "last-modified", "cache-control", "vary", "content-type", "content-length"):
        assert again.headers[name] == first.headers[name]
    assert head.content == b"" and head.headers["content-length"] == first.headers["content-length"]
    assert (await client.get("/t/gadgets/1", headers={"if-none-match": '"g1-1"'})).status_code == 304
    assert gadget_renders == [Gadget(1, 1, "one")]  # rendered once
    gadgets[1] = Gadget(1, 2, "two")
    changed = await client.get("/t/gadgets/1", headers={"if-none-match": '"g1-1"'})
    assert changed.status_code == 200 and changed.json()["data"]["name"] == "two"
    assert changed.headers["etag"] == '"g1-2"'
    gadgets[2], gadgets[3] = Gadget(2, 1, "b"), Gadget(3, 1, "c")  # more than the memo keeps
    for number, name in ((2, "b"), (3, "c"), (1, "two")):
        assert (await client.get(f"/t/gadgets/{number}")).json()["data"]["name"] == name
    del gadgets[1]
    assert (await client.get("/t/gadgets/1")).status_code == 404


def test_a_memo_renders_unhashable_entities_every_time() -> None:
    route = resources.ResourceRoute([gadget])
    memoized = Representation(schema=WidgetOut, render=lambda widget: dict(widget), memo=2)
    first = route._encoded(memoized, {"id": 1, "name": "one"})
    assert first.body == b'{"data":{"id":1,"name":"one"}}' and route.encoded == {}
    assert route._encoded(memoized, {"id": 1, "name": "two"}).body == b'{"data":{"id":1,"name":"two"}}'


async def test_head_is_get_without_body(client: httpx.AsyncClient) -> None:
    get = await client.get("/t/widgets/1")
    head = await client.head("/t/widgets/1")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == get.headers["content-length"]
    problem_head = await client.head("/t/widgets/9")
    assert problem_head.status_code == 404 and problem_head.content == b""


async def test_preconditions_on_writes(client: httpx.AsyncClient, tokens: Tokens) -> None:
    auth = {"authorization": f"Bearer {tokens.admin}"}
    problem(
        await client.put("/t/widgets/1", json={"name": "x"}, headers={**auth, "if-match": 'W/"w1-1"'}), 412
    )
    problem(await client.put("/t/widgets/1", json={"name": "x"}, headers={**auth, "if-none-match": "*"}), 412)
    problem(
        await client.put(
            "/t/widgets/1",
            json={"name": "x"},
            headers={**auth, "if-unmodified-since": "Sat, 01 Jan 2000 00:00:00 GMT"},
        ),
        412,
    )
    # a precondition is checked before the body
    problem(await client.put("/t/widgets/1", content=b"{", headers={**auth, "if-match": '"nope"'}), 412)
    ok = await client.put("/t/widgets/1", json={"name": "x"}, headers={**auth, "if-match": '"a", "w1-1"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"w1-2"'


async def test_415_400_422(client: httpx.AsyncClient, tokens: Tokens) -> None:
    auth = {"authorization": f"Bearer {tokens.admin}"}
    response = await client.post(
        "/t/widgets", content=b'{"name": "x"}', headers={**auth, "content-type": "text/plain"}
    )
    problem(response, 415)
    assert response.headers["accept-post"] == "application/json"
    problem(
        await client.post(
            "/t/widgets", content=b'{"name": "x"}', headers={**auth, "content-type": "application/vnd.x+json"}
        ),
        415,
    )
    problem(await client.post("/t/widgets", content=b'{"name": "x"}', headers=auth), 415)
    response = await client.patch(
        "/t/widgets/1", content=b"{}", headers={**auth, "content-type": "text/plain"}
    )
    assert response.headers["accept-patch"] == "application/merge-patch+json, application/json"
    json = {**auth, "content-type": "application/json"}
    problem(await client.post("/t/widgets", content=b'{"name": ', headers=json), 400)
    problem(await client.post("/t/widgets", content=b'{"name": "\xff"}', headers=json), 400)
    problem(await client.post("/t/widgets", content=b"", headers=json), 400)
    errors = problem(await client.post("/t/widgets", content=b"[1]", headers=json), 422)["errors"]
    assert errors == {"body": ["must be a JSON object"]}
    for body, field in [
        ({"name": "x", "count": "12"}, "count"),
        ({"name": "x", "weight": False}, "weight"),
        ({"name": "x", "count": True}, "count"),
        ({"name": "x", "color": "red"}, "color"),
        ({"name": ""}, "name"),
        ({}, "name"),
    ]:
        errors = problem(await client.post("/t/widgets", json=body, headers=auth), 422)["errors"]
        assert list(errors) == [field], body


async def test_created_updated_deleted(client: httpx.AsyncClient, tokens: Tokens) -> None:
    auth = {"authorization": f"Bearer {tokens.admin}"}
    created = await client.post("/t/widgets", json={"name": "two", "weight": 3}, headers=auth)
    assert created.status_code == 201
    assert created.headers["location"] == "/t/widgets/2"
    assert created.headers["etag"] == '"w2-1"'
    assert created.json()["data"]["weight"] == 3
    patched = await client.patch(
        "/t/widgets/2",
        json={"count": 5, "weight": None},
        headers={**auth, "content-type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200
    assert patched.json()["data"] == {"id": 2, "rev": 2, "name": "two", "weight": 1.0, "count": 5}
    errors = problem(await client.patch("/t/widgets/2", json={"name": None}, headers=auth), 422)["errors"]
    assert list(errors) == ["name"]
    deleted = await client.delete("/t/widgets/2", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    problem(await client.get("/t/widgets/2"), 404)


async def test_collection_has_a_content_etag(client: httpx.AsyncClient) -> None:
    response = await client.get("/t/widgets")
    assert response.json()["meta"] == {"next": None}
    again = await client.get("/t/widgets", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304


async def test_500_reveals_nothing(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    response = await client.get("/t/broken", headers={"x-request-id": "req-500"})
    body = problem(response, 500)
    assert "secret" not in response.text and "Traceback" not in response.text
    assert body["detail"]
    assert any(record.exc_info and "/t/broken" in record.getMessage() for record in caplog.records)


async def test_problem_raised_by_a_handler() -> None:
    assert Problem(409, "taken").body().startswith(b'{"type":"about:blank","title":"Conflict"')


class PostOnly(BaseRoute):
    """A route of a kind the dispatcher cannot read: it takes POST /t/widgets/1 only (not by path)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"] == "/t/widgets/1" and scope["method"] == "POST":
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("taken", status_code=202)(scope, receive, send)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # dispatch only: one database is enough
async def test_dispatch_remembers_only_what_the_path_decides(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resources, "DISPATCH_MEMORY", 2)
    app = create_app(settings)
    install_resources(app, [group])
    app.router.routes.insert(0, PostOnly())
    widgets.clear()
    widgets.update({n: {"id": n, "rev": 1, "name": f"w{n}", "weight": 1.0, "count": 0} for n in (1, 2, 3)})
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        for _ in range(2):  # answered alike the second time, from memory where it may be remembered
            for n in (1, 2, 3):
                response = await http.get(f"/t/widgets/{n}")
                assert response.status_code == 200 and response.json()["data"]["id"] == n
            assert (await http.post("/t/widgets/1")).status_code == 202
            assert (await http.get("/healthz")).status_code == 200
            problem(await http.get("/t/widgets/x"), 404)

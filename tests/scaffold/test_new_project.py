"""A team's own project, as a newcomer makes it: ``relaygate new``, ``gen``, ``pytest``, ``serve``.

One project is generated per module (a channel and a resource added); its own tests run in a
child pytest, and the served app is driven by the official phoenix.js client and plain HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from click.testing import Result
from typer.testing import CliRunner
from websockets.exceptions import InvalidStatus

from relaygate.cli import cli as commands
from tests.conformance.node import frames, run_driver, select
from tests.servers import free_port
from tests.web.liveserver import PASSWORD

BIN = Path(sys.executable).parent
FIELDS = ["name:str", "notes:text", "stock:int", "active:bool", "price:float", "available_at:datetime"]
PRODUCT = {
    "name": "lamp",
    "notes": "warm light",
    "stock": 3,
    "active": True,
    "price": 19.5,
    "available_at": "2024-05-01T12:00:00Z",
}


def cli(*args: str, cwd: Path) -> Result:
    """The ``relaygate`` command in this process (a child process costs seconds of imports), for
    commands that do not import the project's models: they would meet the reference app's tables
    in the shared ``relaygate.db.Base`` of this process."""
    saved_path, saved_cwd = list(sys.path), Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(commands, list(args))
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for name in [name for name in sys.modules if name == "shop" or name.startswith("shop.")]:
            del sys.modules[name]


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def run(*args: str, cwd: Path, **settings: str) -> str:
    """The ``relaygate`` command in a child process, as a user runs it (``settings``: ``RELAYGATE_*``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELAYGATE_")}
    env |= {f"RELAYGATE_{name.upper()}": value for name, value in settings.items()}
    result = subprocess.run(
        [sys.executable, "-m", "relaygate", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("newcomer")
    ok(cli("new", "shop", cwd=root))
    project = root / "shop"
    ok(cli("gen", "channel", "lobby", cwd=project))
    out = run("gen", "resource", "catalog", "Product", "products", *FIELDS, cwd=project)
    assert "created shop/migrations/0002_create_products.py" in out
    return project


def test_the_project_is_green_formatted_and_typed(project: Path) -> None:
    """Its own pytest (in this environment, the project on ``sys.path`` as rootdir), ruff and
    mypy --strict, run side by side."""
    checks = {
        "pytest": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"],
        "mypy": [
            str(BIN / "mypy"),
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            "shop",
            "tests",
        ],
        "ruff format": [str(BIN / "ruff"), "format", "--check", "--no-cache", "."],
        "ruff check": [str(BIN / "ruff"), "check", "--no-cache", "."],
    }
    running = {
        name: subprocess.Popen(
            command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for name, command in checks.items()
    }
    for name, process in running.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {output[-4000:]}"
    assert "TODO" not in "".join(path.read_text() for path in project.rglob("*.py"))


def test_a_migration_without_model_changes_is_empty(project: Path) -> None:
    run("gen", "migration", "nothing_new", cwd=project)
    revision = project / "shop" / "migrations" / "0003_nothing_new.py"
    text = revision.read_text()
    revision.unlink()
    assert 'down_revision = "0002"' in text
    assert "op.create_table" not in text


def test_migrate_applies_only_the_pending_revisions(project: Path, tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'counted.db'}"
    assert run("migrate", cwd=project, database_url=database).strip() == "applied 2 migration(s)"
    assert run("migrate", cwd=project, database_url=database).strip() == "database is up to date"


def test_routes_lists_the_generated_route_and_topic(project: Path) -> None:
    listing = run("routes", cwd=project)
    assert "/api/v1/products/{id}" in listing
    assert "lobby:*" in listing
    assert "/conversations" not in listing  # the project's app, not the reference app


@pytest.fixture(scope="module")
def served(project: Path) -> Iterator[str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELAYGATE_")}
    env["RELAYGATE_LOG_LEVEL"] = "warning"
    log = (project / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "relaygate", "serve", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert process.poll() is None, (project / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            subprocess.run(["sleep", "0.05"], check=True)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


async def _token(http: httpx.AsyncClient, email: str) -> str:
    user = {"email": email, "password": PASSWORD}
    assert (await http.post("/api/v1/users", json=user)).status_code == 201
    session = await http.post("/api/v1/sessions", json=user)
    assert session.status_code == 200, session.text
    return str(session.json()["data"]["token"])


@pytest.mark.node
async def test_phoenix_js_joins_the_generated_channel(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        ada, bob = await _token(http, "ada@example.com"), await _token(http, "bob@example.com")
    no_retry = {"rejoinAfterMs": [60000], "reconnectAfterMs": [60000]}
    steps = [
        {"op": "socket", "socket": "ada", "opts": {**no_retry, "params": {"token": ada}}},
        {"op": "socket", "socket": "bob", "opts": {**no_retry, "authToken": bob}},
        {"op": "connect", "socket": "ada"},
        {"op": "connect", "socket": "bob"},
    ]
    for name in ("ada", "bob"):
        steps += [
            {"op": "channel", "chan": name, "socket": name, "topic": "lobby:hall"},
            {"op": "join", "chan": name},
            {"op": "until", "match": {"type": "join", "chan": name, "status": "ok"}},
        ]
    steps += [
        {"op": "push", "chan": "ada", "event": "ping", "payload": {"n": 1}, "id": "ping"},
        {"op": "until", "match": {"type": "push", "id": "ping"}},
        {"op": "push", "chan": "ada", "event": "shout", "payload": {"body": "hi all"}},
        {"op": "until", "match": {"type": "frame", "socket": "bob", "event": "shout"}},
    ]
    observations = await run_driver(served.replace("http", "ws") + "/socket", steps, no_retry)
    [ping] = select(observations, type="push", id="ping")
    assert (ping["status"], ping["response"]) == ("ok", {"n": 1})
    [shout] = frames(observations, socket="bob", event="shout")
    assert shout["payload"] == {"body": "hi all"}


async def test_the_socket_refuses_a_bad_token(served: str) -> None:
    url = served.replace("http", "ws") + "/socket/websocket?vsn=2.0.0&token=forged"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 403


async def test_the_generated_resource_has_the_http_semantics(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        bearer = {"authorization": f"Bearer {await _token(http, 'cy@example.com')}"}
        created = await http.post("/api/v1/products", json=PRODUCT, headers=bearer)
        assert created.status_code == 201, created.text
        location, etag = created.headers["location"], created.headers["etag"]
        assert (await http.get(location, headers={"if-none-match": etag})).status_code == 304
        stale = await http.put(location, json=PRODUCT, headers={**bearer, "if-match": '"old"'})
        assert (stale.status_code, stale.headers["content-type"]) == (412, "application/problem+json")
        wrong = await http.post(location, json=PRODUCT, headers=bearer)
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, HEAD, PUT, PATCH, DELETE, OPTIONS")
        assert (await http.get(location, headers={"accept": "text/csv"})).status_code == 406
        text = await http.post(
            "/api/v1/products", content=b"x", headers={**bearer, "content-type": "text/plain"}
        )
        assert text.status_code == 415
        invalid = await http.post("/api/v1/products", json={**PRODUCT, "stock": "3"}, headers=bearer)
        assert invalid.status_code == 422
        assert invalid.json()["errors"] == {"stock": ["Input should be a valid integer"]}
        assert "/api/v1/products/{id}" in (await http.get("/openapi.json")).json()["paths"]


def test_bad_input_is_one_line_and_exit_2(project: Path, tmp_path: Path) -> None:
    """Run last in the module: the project is complete, and must come out unchanged."""
    before = (project / "shop" / "channels" / "socket.py").read_text()
    cases = [
        (("new", str(project)), tmp_path, "exists and is not empty"),
        (("new", "x", "--module", "json"), tmp_path, "would shadow"),
        (("gen", "channel", "lobby"), project, "exists already"),
        (("gen", "channel", "Not-a-name"), project, "not a lowercase identifier"),
        (("gen", "resource", "catalog", "Item", "items", "cost:money"), project, "unknown type 'money'"),
        (("gen", "resource", "catalog", "Item", "items", "id:int"), project, "added by the generator"),
        (("gen", "migration", "x"), tmp_path, "not in a Relaygate project"),
        (("serve", "--app", "shop.settings:nothing"), project, "has no attribute"),
        (("migrate", "--app", "shop.nowhere:app"), project, "cannot import shop.nowhere"),
        (("routes", "--app", "shop.settings:AppSettings"), project, "not a relaygate.App"),
    ]
    for args, cwd, message in cases:
        result = cli(*args, cwd=cwd)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (project / "shop" / "channels" / "socket.py").read_text() == before
    assert not (project / "shop" / "web" / "items.py").exists()
